"""Who and when, as the state database records them: the UTC time of a record and the
user (and host) running the process that writes it.

Runs (`runs.user_name`, the host in its own column), key rotations and holds
(`created_by`, `released_by`: `user@host`) all ask `who_is_running`.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import socket


def utc_now() -> str:
    """Now, as the state database stores a time (`times.stored`): UTC, with `+00:00`."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def who_is_running(*, at_host: bool = False) -> str:
    """The user running this process, as the state database records it.

    Without `at_host`: the login name, at most 120 characters (`runs.user_name`; the
    host has a column of its own), or the numeric uid when there is no passwd entry
    (some containers). With `at_host`: `user@host`, at most 255 characters, as a hold
    records who added or released it (`unknown@host` without a passwd entry).
    """
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        if not at_host:
            return str(os.getuid())
        user = "unknown"
    if not at_host:
        return user[:120]
    return f"{user}@{socket.gethostname()}"[:255]

"""`--shard I/N`: which tenants one of N processes sweeps.

Rendezvous (highest random weight) hashing of the database's handle: each tenant goes
to the shard whose weight — the first 8 bytes of SHA-256 over the shard's number and
the handle — is highest. Stable everywhere (hashlib, never Python's salted `hash()`),
so N processes on N machines agree without talking; every tenant is in exactly one
shard; adding or removing a tenant moves no other tenant, and going from N to N+1
shards moves only the tenants the new shard wins (about 1/(N+1) of them).

`--shard auto/N` takes I from `JOB_COMPLETION_INDEX`, as a Kubernetes Indexed Job
sets it for each of its pods (0 to N-1).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping

from .errors import UsageError

INDEX_ENV = "JOB_COMPLETION_INDEX"
#: Upper bound on N: a typo (`--shard 0/40000`) is refused rather than run as shards.
MAX_SHARDS = 1024


def weight(shard: int, handle: str) -> int:
    digest = hashlib.sha256(f"gdpr-sweep shard\0{shard}\0{handle}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def shard_of(handle: str, count: int) -> int:
    """The shard (0 to count-1) that sweeps the database `handle`."""
    return max(range(count), key=lambda shard: weight(shard, handle))


def in_shard(handles: Iterable[str], shard: tuple[int, int] | None) -> list[str]:
    """The handles of shard (I, N), in their given order; all of them for None."""
    if shard is None:
        return list(handles)
    index, count = shard
    return [handle for handle in handles if shard_of(handle, count) == index]


def parse_shard(
    text: str | None, environ: Mapping[str, str] | None = None
) -> tuple[int, int] | None:
    """`I/N` or `auto/N` (I from JOB_COMPLETION_INDEX) as (I, N); exit 2 naming --shard."""
    if text is None:
        return None
    environ = os.environ if environ is None else environ
    index_text, slash, count_text = text.strip().partition("/")
    if not slash or not count_text.isdigit() or not 1 <= int(count_text) <= MAX_SHARDS:
        raise UsageError(
            f"--shard: {text!r} is not I/N or auto/N (N a whole number from 1 to {MAX_SHARDS})"
        )
    count = int(count_text)
    if index_text == "auto":
        given = environ.get(INDEX_ENV)
        if given is None or not given.strip():
            raise UsageError(
                f"--shard: auto/{count} takes the shard from {INDEX_ENV}, which is not set "
                "(a Kubernetes Indexed Job sets it; elsewhere give I/N)"
            )
        if not given.strip().isdigit() or int(given) >= count:
            raise UsageError(
                f"--shard: {INDEX_ENV} is {given.strip()[:20]!r}, not a shard number from 0 "
                f"to {count - 1}"
            )
        return int(given), count
    if not index_text.isdigit() or int(index_text) >= count:
        raise UsageError(
            f"--shard: {text!r}: I counts from 0 and must be below N (0 to {count - 1})"
        )
    return int(index_text), count

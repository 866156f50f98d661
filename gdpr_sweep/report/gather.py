"""Gather the report: per database the schedule, outlook, holds and coverage; from the
state database the history, requests and the audit trail's verification.

Everything is read; nothing is written anywhere (the state database is opened as
`audit list` opens it: migrated if it is older, never written otherwise). A database
that cannot be read is in the report as unreadable, with its one-line reason, and the
report's exit code is 3; an altered audit trail is in it too, and the exit code is 5.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa

from .. import __version__
from ..config import Config
from ..engines import DatabaseFailure, database_failure, select_databases
from ..errors import ConfigError, DatabaseUnavailable, ExitCode
from ..holds.store import Hold, active_holds, list_holds
from ..keys import keyring
from ..periods import add_months, local_date
from ..scan import ScanFinding, scan_config
from ..state.stamps import utc_now
from ..state.store import StateStore
from .forecast import RuleOutlook, month_ends, outlook_database
from .history import History, read_history
from .schedule import RuleSchedule, describe_rule


@dataclass
class DatabaseReport:
    """One database (one controller's data): what the report says about it."""

    name: str
    controller: str
    schedule: list[RuleSchedule]
    outlook: list[RuleOutlook] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)
    coverage: list[ScanFinding] = field(default_factory=list)
    unreadable: str | None = None  # why the database could not be read

    @property
    def due_now(self) -> int:
        return sum(o.due for o in self.outlook)

    @property
    def coming(self) -> int:
        return sum(o.coming for o in self.outlook)


@dataclass
class Integrity:
    """`audit verify`, as the report ran it."""

    checked_at: str
    intact: bool | None  # None: not checked
    entries: int = 0
    head: str | None = None
    problem: str | None = None  # the break, or why it was not checked


@dataclass
class Report:
    as_of: dt.datetime
    since: dt.date
    today: dt.date
    timezone: str
    config_digest: str
    version: str
    generated_at: str
    months: list[dt.date]  # the last day of each month of the outlook
    databases: list[DatabaseReport]
    history: History
    integrity: Integrity

    @property
    def exit_code(self) -> int:
        if self.integrity.intact is False:
            return ExitCode.REFUSED
        if any(db.unreadable for db in self.databases):
            return ExitCode.PARTIAL
        return ExitCode.OK


def default_since(today: dt.date) -> dt.date:
    """The period's first day when --since is not given: a year before the as-of."""
    return add_months(today, -12) + dt.timedelta(days=1)


def build_report(
    config: Config,
    as_of: dt.datetime,
    since: dt.date | None = None,
    databases: list[str] | None = None,
) -> Report:
    """Read everything the report shows; change nothing."""
    tz = config.sweep.tz
    today = local_date(as_of, tz)
    since = since or default_since(today)
    targets = select_databases(config, databases)
    holds = active_holds(config, today)
    every_hold = list_holds(config)
    scan = scan_config(
        config,
        [t.name for t in targets],
        config.sweep.personal_column_patterns,
        config.sweep.scan_ignore,
    )
    unscanned = {f["database"]: f["error"] for f in scan.failures}
    reports = []
    for target in targets:
        report = DatabaseReport(
            name=target.name,
            controller=target.db.controller or "(controller not configured)",
            schedule=[describe_rule(rule, config.sweep) for rule in config.rules_for(target.name)],
            holds=[h for h in every_hold if h.database == target.name],
            coverage=[f for f in scan.findings if f.database == target.name],
        )
        try:
            report.outlook = outlook_database(target, config.rules, as_of, holds)
        except (DatabaseUnavailable, sa.exc.DBAPIError) as exc:
            failure: DatabaseFailure = database_failure(target, exc)
            report.unreadable = failure["error"]
        finally:
            target.dispose()
        if report.unreadable is None and target.name in unscanned:
            report.unreadable = unscanned[target.name]
        reports.append(report)
    with StateStore(config, None) as store:
        history = read_history(store.engine, since, today, tz)
    return Report(
        as_of=as_of,
        since=since,
        today=today,
        timezone=config.sweep.timezone,
        config_digest=config.digest,
        version=__version__,
        generated_at=utc_now(),
        months=month_ends(as_of, tz),
        databases=reports,
        history=history,
        integrity=check_integrity(config),
    )


def check_integrity(config: Config) -> Integrity:
    """Verify the hash chain as `audit verify` does; say why when it cannot be checked."""
    try:
        ring = keyring(config)
    except ConfigError as exc:
        return Integrity(utc_now(), None, problem=str(exc))
    with StateStore(config, ring[0], ring) as store:
        verification = store.verify_chain()
        head = store.head()
    checked_at = utc_now()
    if verification.broken is not None:
        broken = verification.broken
        where = f"entry {broken.entry_id}: " if broken.entry_id is not None else ""
        return Integrity(checked_at, False, verification.checked, head, where + broken.reason)
    if verification.unchecked:
        name = config.sweep.hash_key_env
        problem = "; ".join(s.describe(name) for s in verification.unchecked)
        return Integrity(checked_at, None, verification.checked, head, problem)
    return Integrity(checked_at, True, verification.checked, head)

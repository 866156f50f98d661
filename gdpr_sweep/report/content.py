"""The report's content, once, as sections of paragraphs, tables and charts; `html.py`
and `markdown.py` only lay it out, so the two say exactly the same.

Every text here comes from the config (rule ids, tables, columns, periods, bases), the
state database (counts, statuses, tickets, approvers, one-line reasons, which name
databases, rules and counts only) or the calendar: never from a row of a target
database.
"""

from __future__ import annotations

import datetime as dt

from .database_content import database_sections
from .document import Chart, Section, Table, month_label, n
from .gather import Report
from .history import TROUBLE, RequestRecord


def build_content(report: Report) -> list[Section]:
    sections = [_title(report), _glance(report), _sweeps(report)]
    for database in report.databases:
        sections += database_sections(report, database)
    sections += [_requests(report), _integrity(report), _left_out()]
    return sections


def _title(report: Report) -> Section:
    section = Section("Retention and erasure report", 1, anchor="top")
    section.add(
        "facts",
        facts=[
            ("As of", f"{report.today.isoformat()} ({report.timezone})"),
            ("Period", f"{report.since.isoformat()} to {report.today.isoformat()}"),
            ("Controllers", ", ".join(sorted({db.controller for db in report.databases}))),
            ("Databases", ", ".join(db.name for db in report.databases)),
            ("Config", report.config_digest),
            (
                "Made",
                f"{report.generated_at[:16].replace('T', ' ')} UTC by gdpr-sweep {report.version}",
            ),
        ],
    )
    section.add(
        "note",
        "What this report holds: the retention schedule of every database (the record "
        "of processing, GDPR Art. 30(1)(f)), what the sweeps did in the period, what is "
        "due next, the legal holds, the erasure and access requests, personal-looking "
        "data that no rule covers, and whether the audit trail is intact (Art. 5(2)). "
        "It holds counts, rule ids, table and column names and references only — no "
        "personal data of anyone.",
    )
    return section


def _glance(report: Report) -> Section:
    section = Section("At a glance", 2, anchor="glance")
    rows = []
    for db in report.databases:
        done = sum(s.rows(db.name) for s in report.history.sweeps)
        active = [h for h in db.holds if h.active_on(report.today)]
        rows.append(
            [
                db.name,
                db.controller,
                n(len(db.schedule)),
                n(done),
                "unreadable" if db.unreadable else n(db.due_now),
                "unreadable" if db.unreadable else n(db.coming),
                n(len(active)),
                n(len(db.coverage)),
            ]
        )
    section.add(
        "table",
        table=Table(
            [
                "database",
                "controller",
                "rules",
                "rows changed in the period",
                "due now",
                "due in the next 12 months",
                "active holds",
                "uncovered findings",
            ],
            rows,
            numeric=(2, 3, 4, 5, 6, 7),
        ),
    )
    for warning in _warnings(report):
        section.add("warn", warning)
    if not _warnings(report):
        section.add(
            "ok",
            "Nothing needs attention: every database was read, every sweep "
            "of the period completed, and the audit trail is intact.",
        )
    period = _period_months(report.since, report.today)
    done_by_db = [
        (db.name, [sum(s.rows(db.name) for s in report.history.sweeps if s.as_of.replace(day=1)
                       == month) for month in period])
        for db in report.databases
    ]  # fmt: skip
    section.add(
        "chart",
        chart=Chart(
            "Rows deleted or anonymised per month, all databases",
            [month_label(m) for m in period],
            [(name, values) for name, values in done_by_db if any(values)],
        ),
    )
    section.add(
        "chart",
        chart=Chart(
            "Rows becoming due per month, all databases",
            [month_label(m) for m in report.months],
            [
                (db.name, [sum(o.months[i] for o in db.outlook) for i in range(len(report.months))])
                for db in report.databases
                if db.coming
            ],
        ),
    )
    return section


def _period_months(since: dt.date, today: dt.date) -> list[dt.date]:
    """The first day of every month from `since`'s to `today`'s."""
    months, month = [], since.replace(day=1)
    while month <= today:
        months.append(month)
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return months


def _warnings(report: Report) -> list[str]:
    warnings = [
        f"Database {db.name} could not be read: {db.unreadable}"
        for db in report.databases
        if db.unreadable
    ]
    trouble = [s for s in report.history.sweeps if s.status in TROUBLE]
    if trouble:
        warnings.append(
            f"{len(trouble)} sweep(s) of the period did not complete: see "
            "“Sweeps that need attention”."
        )
    lapsed = [
        h for db in report.databases for h in db.holds if h.status_on(report.today) == "lapsed"
    ]
    if lapsed:
        warnings.append(
            f"{len(lapsed)} legal hold(s) expired but were not released: see the databases' holds."
        )
    integrity = report.integrity
    if integrity.intact is False:
        warnings.append(f"The audit trail was altered: {integrity.problem}")
    elif integrity.intact is None:
        warnings.append(f"The audit trail was not fully checked: {integrity.problem}")
    return warnings


def _sweeps(report: Report) -> Section:
    section = Section("Sweeps in the period", 2, anchor="sweeps")
    sweeps = report.history.sweeps
    if not sweeps:
        return section.add("p", "No sweep (run or apply) in the period.")
    section.add(
        "table",
        table=Table(
            ["run", "as of", "command", "status", "rows changed", "ticket", "approved by"],
            [
                [
                    str(s.run_id),
                    s.as_of.isoformat(),
                    s.command,
                    s.status,
                    n(sum(s.done.values())),
                    s.ticket or "",
                    s.approved_by or "",
                ]
                for s in sweeps
            ],
            numeric=(0, 4),
        ),
    )
    trouble = [s for s in sweeps if s.status in TROUBLE]
    if trouble:
        section.add("p", "Sweeps that need attention — failed, stopped or refused, and why:")
        section.add(
            "table",
            table=Table(
                ["run", "as of", "status", "what it means", "reasons"],
                [
                    [
                        str(s.run_id),
                        s.as_of.isoformat(),
                        s.status,
                        TROUBLE[s.status],
                        "; ".join(s.reasons) or "(none recorded)",
                    ]
                    for s in trouble
                ],
                numeric=(0,),
            ),
        )
    else:
        section.add("ok", "Every sweep of the period completed.")
    last = sweeps[-1]
    left = sum(last.left.values())
    if last.status in ("refused", "failed", "interrupted"):
        section.add(
            "warn",
            f"Verification of the last sweep (run {last.run_id}, "
            f"{last.as_of.isoformat()}): not done — the run was {last.status}.",
        )
    elif left:
        detail = ", ".join(f"{rule} in {db}: {n(k)}" for (db, rule), k in last.left.items())
        section.add(
            "warn",
            f"Verification of the last sweep (run {last.run_id}, "
            f"{last.as_of.isoformat()}): {n(left)} row(s) still due after it ({detail}).",
        )
    else:
        section.add(
            "ok",
            f"Verification of the last sweep (run {last.run_id}, "
            f"{last.as_of.isoformat()}): after it, no row of any of its rules was "
            "still due.",
        )
    return section


def _requests(report: Report) -> Section:
    section = Section("Erasure and access requests", 2, anchor="requests", new_page=True)
    requests = report.history.requests
    if not requests:
        return section.add("p", "No erasure or access request in the period.")
    kinds = ["erasure", "access", "erasure replayed"]
    months: dict[str, dict[str, int]] = {}
    for r in requests:
        counts = months.setdefault(month_label(r.day), dict.fromkeys(kinds, 0))
        counts[r.kind] += 1
    section.add(
        "table",
        table=Table(
            ["month", "erasures", "access requests", "erasures replayed after a restore"],
            [[month, *(n(c[k]) for k in kinds)] for month, c in months.items()],
            numeric=(1, 2, 3),
        ),
    )
    section.add(
        "table",
        table=Table(
            ["run", "day", "request", "ticket", "status", "rows erased", "rows kept, why, until"],
            [
                [
                    str(r.run_id),
                    r.day.isoformat(),
                    r.kind,
                    r.ticket or "(none given)",
                    r.status + (f": {'; '.join(r.reasons)}" if r.reasons else ""),
                    _changed(r),
                    _kept(r),
                ]
                for r in requests
            ],
            numeric=(0,),
        ),
    )
    kept = sum(k.rows for r in requests for k in r.kept)
    section.add(
        "note",
        f"{n(kept)} row(s) were kept by an obligation, a legal hold or because "
        "another person's rows share them; a rule deletes them on the day given. "
        "The persons are never named: the audit trail holds only a keyed hash.",
    )
    return section


def _changed(r: RequestRecord) -> str:
    if r.kind == "access":
        return "(export: nothing changed)"
    return " · ".join(f"{db} {n(k)}" for db, k in r.changed.items()) or "0"


def _kept(r: RequestRecord) -> str:
    return "; ".join(
        f"{k.database}.{k.table} {n(k.rows)}: {k.basis}" + (f", until {k.until}" if k.until else "")
        for k in r.kept
    )


def _integrity(report: Report) -> Section:
    section = Section("Integrity of the audit trail", 2, anchor="integrity")
    i = report.integrity
    if i.intact:
        section.add(
            "ok",
            f"Intact: all {n(i.entries)} entries and every run verify (gdpr-sweep audit verify).",
        )
    elif i.intact is False:
        section.add("warn", f"ALTERED: {i.problem} ({n(i.entries)} entries before it verify).")
    else:
        section.add("warn", f"{'Not fully' if i.entries else 'Not'} checked: {i.problem}")
    section.add("facts", facts=[("Chain head", i.head or "(none)"), ("Checked at", i.checked_at)])
    section.add(
        "note",
        "Keep the head somewhere the state database's users cannot change "
        "(a ticket, a mail): gdpr-sweep audit verify --head HEAD later proves that "
        "nothing was cut off the trail since.",
    )
    return section


def _left_out() -> Section:
    section = Section("What this report does not show", 2, anchor="limits")
    section.add(
        "p",
        "Backups: deletions do not reach them; they expire on their own "
        "schedule. Rows a rule does not name (see Coverage). The content of any "
        "row: the report is built from counts.",
    )
    return section

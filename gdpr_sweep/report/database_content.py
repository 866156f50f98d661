"""The report's part about one database: its schedule, what was done, what is coming,
its legal holds and what `scan` found uncovered."""

from __future__ import annotations

import datetime as dt

from .document import Chart, Section, Table, month_label, n
from .gather import DatabaseReport, Report
from .history import SweepRecord

#: More runs than this in the period and the history is shown per month, not per run.
MAX_RUN_BARS = 36


def database_sections(report: Report, db: DatabaseReport) -> list[Section]:
    head = Section(
        f"Database {db.name} · {db.controller}", 2, anchor=f"db-{db.name}", new_page=True
    )
    if db.unreadable:
        head.add(
            "warn",
            f"Could not be read: {db.unreadable}. Its schedule, history and "
            "holds are shown from the config and the state database; rows due and "
            "coverage are not.",
        )
    return [
        head,
        _schedule(db),
        _done(report, db),
        _coming(report, db),
        _holds(report, db),
        _coverage(db),
    ]


def _schedule(db: DatabaseReport) -> Section:
    section = Section("Retention schedule (record of processing, Art. 30(1)(f))", 3)
    if not db.schedule:
        return section.add("p", "No rule applies to this database.")
    for rule in db.schedule:
        text = f"{rule.rule}: {rule.sentence} Legal basis: {rule.basis}."
        if rule.categories:
            text += f" Data categories: {rule.categories}."
        if rule.description:
            text += f" ({rule.description})"
        section.add("rule", text)
    section.add(
        "table",
        table=Table(
            [
                "rule",
                "table",
                "action",
                "period",
                "counted",
                "only",
                "exceptions",
                "deleted with them",
                "legal basis",
            ],
            [
                [
                    r.rule,
                    r.table,
                    r.action,
                    r.period,
                    r.clock,
                    r.only,
                    "; ".join(r.exceptions),
                    ", ".join(r.cascade_tables),
                    r.basis,
                ]
                for r in db.schedule
            ],
            wide=True,
        ),
    )
    return section


def _runs_or_months(
    report: Report, db: DatabaseReport
) -> tuple[bool, list[tuple[str, str, list[SweepRecord]]]]:
    """The history's bars (table label, chart label, sweeps): one per sweep of this
    database, or one per month when there are many; and whether they are per sweep."""
    sweeps = [s for s in report.history.sweeps if s.touches(db.name)]
    if len(sweeps) <= MAX_RUN_BARS:
        return True, [
            (f"run {s.run_id} · {s.as_of.isoformat()}", f"{s.as_of:%d %b} #{s.run_id}", [s])
            for s in sweeps
        ]
    months: dict[str, list[SweepRecord]] = {}
    for s in sweeps:
        months.setdefault(month_label(s.as_of), []).append(s)
    return False, [(month, month, runs) for month, runs in months.items()]


def _done(report: Report, db: DatabaseReport) -> Section:
    section = Section("What was done", 3)
    by_run, groups = _runs_or_months(report, db)
    if not groups:
        return section.add("p", "No sweep acted on this database in the period.")
    rules = [r.rule for r in db.schedule]
    per_rule = {
        rule: [sum(s.done.get((db.name, rule), 0) for s in runs) for _l, _c, runs in groups]
        for rule in rules
    }
    labels = [chart_label for _label, chart_label, _runs in groups]
    section.add(
        "chart",
        chart=Chart(
            f"Rows deleted or anonymised in {db.name}, per {'run' if by_run else 'month'}",
            labels,
            [(rule, per_rule[rule]) for rule in rules if any(per_rule[rule])],
        ),
    )
    rows = []
    for i, (label, _chart_label, runs) in enumerate(groups):
        breakdown = " · ".join(
            f"{rule} {n(per_rule[rule][i])}" for rule in rules if per_rule[rule][i]
        )
        statuses = ", ".join(sorted({s.status for s in runs}))
        rows.append([label, statuses, n(sum(per_rule[r][i] for r in rules)), breakdown])
    section.add(
        "table",
        table=Table(
            ["run" if by_run else "month", "status", "rows", "per rule"],
            rows,
            numeric=(2,),
        ),
    )
    actions = {r.rule: r.action for r in db.schedule}
    section.add(
        "table",
        table=Table(
            ["rule", "action", "rows in the period", "sweeps that acted"],
            [
                [
                    rule,
                    actions[rule],
                    n(sum(per_rule[rule])),
                    n(sum(1 for s in report.history.sweeps if s.done.get((db.name, rule)))),
                ]
                for rule in rules
            ],
            numeric=(2, 3),
        ),
    )
    return section


def _coming(report: Report, db: DatabaseReport) -> Section:
    section = Section("What is coming", 3)
    if db.unreadable:
        return section.add("p", "Not known: the database could not be read.")
    months = [month_label(day) for day in report.months]
    section.add(
        "chart",
        chart=Chart(
            f"Rows becoming due in {db.name}, per month",
            months,
            [(o.rule, o.months) for o in db.outlook if o.coming],
        ),
    )
    section.add(
        "table",
        table=Table(
            ["rule", "due now", "held now", *months, "next 12 months"],
            [
                [o.rule, n(o.due), _held(o.held, o.held_by), *(n(m) for m in o.months), n(o.coming)]
                for o in db.outlook
            ],
            numeric=(1, *range(3, len(months) + 4)),
            wide=True,
        ),
    )
    section.add(
        "note",
        f"Rows due now are what a sweep as of {report.today.isoformat()} "
        "would act on. A month counts the rows that become due during it (the "
        f"first from {report.today + dt.timedelta(days=1):%d %b}), under today's "
        "exceptions and legal holds, assuming no row is added or changed meanwhile; "
        "a consent or hold that ends earlier makes more rows due.",
    )
    return section


def _held(total: int, by: dict[str, int]) -> str:
    if not total:
        return "0"
    return n(total) + " (" + ", ".join(f"{reason}: {n(k)}" for reason, k in by.items()) + ")"


def _holds(report: Report, db: DatabaseReport) -> Section:
    section = Section("Legal holds", 3)
    if not db.holds:
        return section.add("p", "No legal hold on this database.")
    rows = []
    for h in db.holds:
        status = h.status_on(report.today)
        rows.append(
            [
                str(h.id),
                h.table,
                str(h.key),
                h.reason,
                h.created_by,
                h.created_at[:10],
                h.until.isoformat() if h.until else "",
                status,
                (h.released_at or "")[:10],
            ]
        )
    section.add(
        "table",
        table=Table(
            ["hold", "table", "row key", "reason", "by", "since", "until", "status", "released"],
            rows,
            numeric=(0,),
        ),
    )
    for h in db.holds:
        if h.status_on(report.today) == "lapsed":
            section.add(
                "warn",
                f"Hold {h.id} on {h.table} expired on {h.until} but was not "
                f"released: gdpr-sweep hold release {h.id}",
            )
    return section


def _coverage(db: DatabaseReport) -> Section:
    section = Section("Coverage: personal-looking data no rule covers", 3)
    if db.unreadable:
        return section.add("p", "Not known: the database could not be read.")
    if not db.coverage:
        return section.add("ok", "Every personal-looking column is covered by a rule.")
    section.add(
        "table",
        table=Table(
            ["table", "column", "finding"],
            [[f.table, f.column or "", f.message] for f in db.coverage],
        ),
    )
    return section

"""`gdpr-sweep report`, on every engine: a state database with sweeps over several
months (a refused apply, a partial run, an approved apply), holds (active, expired and
not released, released), erasures and an export with tickets — all through the real
CLI — then the report in Markdown and HTML, its content asserted: the schedule sentence
of every rule kind, the rows per run, the forecast against a computation in Python
over the rows' dates, holds, requests and the audit trail.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import shutil
from pathlib import Path

import sqlalchemy as sa
import time_machine

from tests.configs import rule_toml, since_latest
from tests.conftest import TargetDb, query_rows, run_cli, write_config

AS_OF = dt.date(2026, 11, 24)
TODAY = "2026-11-24"
RULES = (
    rule_toml("case-anonymise", "counselling_case", "anonymise", after="6 months",
              since="ended_on", only={"status": "closed"}, unless_after="consent_until",
              basis="GDPR art. 6(1)(c)", categories=["contact", "health"],
              columns={"name": "null", "email": "null", "birth_date": "year"})
    + rule_toml("cctv-delete", "recording", "delete", after="30 days", since="recorded_at",
                unless_true="under_investigation", basis="TV Surveillance Act")
    + rule_toml("customer-delete", "customer", "delete", after="1 year",
                since_latest=since_latest("engagement", "performed_at", "customer_id"),
                since="created_at", cascade=["engagement"], basis="GDPR art. 6(1)(b)")
    + rule_toml("invoice-delete", "invoice", "delete", after="2 years", since="invoice_date",
                from_fiscal_year_end=True, basis="Bookkeeping Act § 10")
)  # fmt: skip
SUBJECT = """
[subject]
root = "customer"
identifiers = { email = "email" }
[[subject.links]]
table = "invoice"
column = "customer_id"
references = "customer.id"
[subject.erase.invoice]
action = "keep"
rule = "invoice-delete"
"""
SENTENCES = {
    "case-anonymise": 'Rows of counselling_case where status is "closed" are anonymised 6 '
    "months after ended_on, unless consent_until is later than the day of the sweep; rows "
    "under a legal hold are kept. Columns: birth_date kept as year; email, name removed; "
    "the other columns stay. Legal basis: GDPR art. 6(1)(c). Data categories: contact, "
    "health.",
    "cctv-delete": "Rows of recording are deleted 30 days after recorded_at, unless "
    "under_investigation is true; rows under a legal hold are kept. Legal basis: TV "
    "Surveillance Act.",
    "customer-delete": "Rows of customer are deleted 1 year after the last performed_at in "
    "engagement (rows with none: after created_at), with their rows in engagement; rows "
    "under a legal hold are kept. Legal basis: GDPR art. 6(1)(b).",
    "invoice-delete": "Rows of invoice are deleted 2 years after the end of the financial "
    "year (ending 31 December) of invoice_date; rows under a legal hold are kept. Legal "
    "basis: Bookkeeping Act § 10.",
}


def schema() -> sa.MetaData:
    m = sa.MetaData()
    sa.Table(
        "counselling_case",
        m,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("status", sa.String(10)),
        sa.Column("ended_on", sa.Date),
        sa.Column("consent_until", sa.Date),
        sa.Column("name", sa.String(60)),
        sa.Column("email", sa.String(80)),
        sa.Column("birth_date", sa.Date),
    )
    sa.Table(
        "recording",
        m,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("recorded_at", sa.DateTime),
        sa.Column("under_investigation", sa.Boolean),
    )
    sa.Table(
        "customer",
        m,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(80)),
        sa.Column("created_at", sa.Date),
    )
    sa.Table(
        "engagement",
        m,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.Integer, sa.ForeignKey("customer.id"), index=True),
        sa.Column("performed_at", sa.Date),
    )
    sa.Table(
        "invoice",
        m,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.Integer, index=True),
        sa.Column("invoice_date", sa.Date),
    )
    return m  # fmt: skip


def seed() -> dict[str, list[dict]]:
    day = dt.date
    cases = [
        {
            "id": i,
            "status": "open" if i % 5 == 0 else "closed",
            "ended_on": day(2025, 6, 1) + dt.timedelta(days=9 * i),
            "consent_until": day(2027, 6, 1)
            if i % 7 == 0
            else (day(2026, 1, 1) if i % 2 else None),
            "name": f"case person {i}",
            "email": f"case{i}@example.org",
            "birth_date": day(1980, 3, 2) + dt.timedelta(days=i),
        }
        for i in range(1, 61)
    ]
    recordings = [
        {
            "id": i,
            "recorded_at": dt.datetime(2026, 5, 1, 14, 0) + dt.timedelta(days=4 * i),
            "under_investigation": i % 9 == 0,
        }
        for i in range(1, 61)
    ]
    customers = [
        {
            "id": i,
            "email": f"customer{i}@example.org",
            "created_at": day(2024, 9, 1) + dt.timedelta(days=20 * i),
        }
        for i in range(1, 31)
    ]
    engagements = []
    for c in customers:
        if c["id"] % 3 == 0:
            for offset in (60, 150) if c["id"] % 2 else (60, 150, 400):
                engagements.append(
                    {
                        "id": len(engagements) + 1,
                        "customer_id": c["id"],
                        "performed_at": c["created_at"] + dt.timedelta(days=offset),
                    }
                )
    invoices = [
        {"id": i, "customer_id": 30 - i % 6, "invoice_date": day(2023, 3, 1) + dt.timedelta(45 * i)}
        for i in range(1, 25)
    ]
    return {"counselling_case": cases, "recording": recordings, "customer": customers,
            "engagement": engagements, "invoice": invoices}  # fmt: skip


def ok(*args: str, code: int = 0) -> str:
    result = run_cli(*args)
    assert result.exit_code == code, (args, result.stdout, result.stderr)
    return result.stdout


def build_history(target_db: TargetDb, tmp_path: Path, monkeypatch) -> tuple[Path, dict]:
    """The scenario, through the real CLI; returns the config and what it recorded."""
    target_db.create(schema(), seed())
    branch = tmp_path / "branch.db"
    TargetDb("sqlite", f"sqlite:///{branch}").create(schema(), {})
    config = write_config(tmp_path, RULES + SUBJECT, target_db.url, monkeypatch,
                          extra_sweep="max_fraction = 1.0")  # fmt: skip
    text = config.read_text().replace(
        "[[rules]]",
        '[databases.branch]\nurl = "sqlite:///branch.db"\ncontroller = "Filial ApS"\n\n[[rules]]',
        1,
    )
    config.write_text(text)
    c = str(config)
    done: dict[str, int] = {}

    def sweep(as_of: str, *extra: str, code: int = 0) -> None:
        document = run_cli("run", "-c", c, "--as-of", as_of, "--json", *extra)
        assert document.exit_code == code, document.stdout + document.stderr
        done[as_of] = sum(i["done"] for i in document.json()["items"] if i["database"] == "main")

    sweep("2026-07-01", "--ticket", "OPS-1")
    ok("hold", "add", "-c", c, "-d", "main", "-t", "recording", "-k", "47", "--reason", "case 41")
    ok("hold", "add", "-c", c, "-d", "main", "-t", "recording", "-k", "48", "--reason", "case 42",
       "--until", "2026-10-01")  # fmt: skip
    ok("hold", "add", "-c", c, "-d", "main", "-t", "recording", "-k", "49", "--reason", "case 43")
    ok("hold", "release", "-c", c, "3")
    sweep("2026-08-01")
    # A reviewed plan gone stale: a recording from January arrived since. Refused.
    ok("plan", "-c", c, "--as-of", "2026-09-01", "--out", str(tmp_path / "p.json"))
    engine = target_db.engine()
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO recording VALUES (99, :at, :no)"),
                           {"at": dt.datetime(2026, 1, 2, 9, 0), "no": False})  # fmt: skip
    engine.dispose()
    ok("apply", str(tmp_path / "p.json"), "-c", c, "--yes", code=5)
    # The branch office's database is gone for a night: partial.
    shutil.move(branch, tmp_path / "away.db")
    sweep("2026-09-01", code=3)
    shutil.move(tmp_path / "away.db", branch)
    ok("plan", "-c", c, "--as-of", "2026-10-01", "--out", str(tmp_path / "p2.json"))
    applied = run_cli("apply", str(tmp_path / "p2.json"), "-c", c, "--yes", "--json",
                      "--approved-by", "dpo-17", "--ticket", "CHG-9")  # fmt: skip
    assert applied.exit_code == 0, applied.stdout + applied.stderr
    done["2026-10-01"] = sum(i["done"] for i in applied.json()["items"] if i["database"] == "main")
    # Requests: erasures and an access request, in September and October.
    for moment, args in (
        (dt.datetime(2026, 9, 15, 9), ("erase", "--subject", "email=customer28@example.org",
                                       "--ticket", "DSR-1")),
        (dt.datetime(2026, 9, 20, 9), ("export", "--subject", "email=customer27@example.org",
                                       "--out", str(tmp_path / "export.json"),
                                       "--ticket", "DSR-2")),
        (dt.datetime(2026, 10, 5, 9), ("erase", "--subject", "email=customer29@example.org",
                                       "--ticket", "DSR-3")),
    ):  # fmt: skip
        with time_machine.travel(moment.replace(tzinfo=dt.UTC), tick=False):
            ok(args[0], "-c", c, *args[1:])
    sweep("2026-11-01")
    return config, done


# --- the forecast, computed again in Python from the rows' dates ---------------------------


def add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def as_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def first_due_days(target_db: TargetDb, held: set[int]) -> dict[str, list[dt.date]]:
    """Per rule, the first day on which each row still there is due — rows kept by an
    exception or a hold today left out (SPEC: due when L + period < A)."""
    days: dict[str, list[dt.date]] = {rule: [] for rule in SENTENCES}
    for _id, status, ended, consent, name, email, born in query_rows(
        target_db,
        "SELECT id, status, ended_on, consent_until, name, email, birth_date FROM counselling_case",
    ):
        pending = (
            name is not None
            or email is not None
            or (as_date(born).month, as_date(born).day) != (1, 1)
        )
        kept = consent is not None and as_date(consent) >= AS_OF
        if status == "closed" and pending and not kept:
            days["case-anonymise"].append(add_months(as_date(ended), 6) + dt.timedelta(days=1))
    for key, at, investigated in query_rows(
        target_db, "SELECT id, recorded_at, under_investigation FROM recording"
    ):
        if not investigated and key not in held:
            days["cctv-delete"].append(as_date(at) + dt.timedelta(days=31))
    latest: dict[int, dt.date] = {}
    for customer, performed in query_rows(
        target_db, "SELECT customer_id, performed_at FROM engagement"
    ):
        latest[customer] = max(latest.get(customer, dt.date.min), as_date(performed))
    for key, created in query_rows(target_db, "SELECT id, created_at FROM customer"):
        clock = latest.get(key, as_date(created))
        days["customer-delete"].append(add_months(clock, 12) + dt.timedelta(days=1))
    for (invoiced,) in query_rows(target_db, "SELECT invoice_date FROM invoice"):
        year_end = dt.date(as_date(invoiced).year, 12, 31)
        days["invoice-delete"].append(add_months(year_end, 24) + dt.timedelta(days=1))
    return days  # fmt: skip


def expected_outlook(days: list[dt.date]) -> tuple[int, list[int]]:
    """Rows due now, and rows becoming due in each month from November 2026 on."""
    ends = [add_months(dt.date(2026, 11, 30), k) for k in range(12)]
    ends = [dt.date(e.year, e.month, calendar.monthrange(e.year, e.month)[1]) for e in ends]
    months, start = [], AS_OF
    for end in ends:
        months.append(sum(1 for d in days if start < d <= end))
        start = end
    return sum(1 for d in days if d <= AS_OF), months


def section(markdown: str, title: str, database: str = "main") -> str:
    """The text of one `### title` section of database `database`."""
    part = markdown.split(f"## Database {database} ·", 1)[1].split("\n## ", 1)[0]
    return part.split(f"### {title}", 1)[1].split("\n### ", 1)[0]


def row(text: str, first: str) -> list[str]:
    """The cells of the Markdown table row whose first cell is `first`."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in:\n{text}")


def number(cell: str) -> int:
    return int(cell.split(" ")[0].replace(",", ""))


def test_report_shows_the_schedule_history_forecast_holds_and_requests(
    target_db: TargetDb, tmp_path, monkeypatch
):
    config, done = build_history(target_db, tmp_path, monkeypatch)
    c = str(config)
    md_file, html_file = tmp_path / "report.md", tmp_path / "report.html"
    for out in (md_file, html_file):
        result = run_cli("report", "-c", c, "--as-of", TODAY, "--since", "2026-06-01",
                         "--out", str(out))  # fmt: skip
        assert result.exit_code == 0, result.stdout + result.stderr
    md = md_file.read_text()
    html = html_file.read_text()

    # The schedule: one sentence per rule kind, in Markdown and HTML alike.
    for rule, sentence in SENTENCES.items():
        assert f"- **`{rule}`**: {sentence}" in md
        escaped = sentence.replace('"', "&quot;")
        assert f"<b>{rule}</b>: {escaped}" in html

    # What was done: each run's rows in database main, as `run --json` reported them.
    done_md = section(md, "What was done")
    by_day = {}
    for line in done_md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0].startswith("run ") and " · " in cells[0]:
            by_day[cells[0].split(" · ")[1]] = cells  # the partial run after the refused one
    for day, rows in done.items():
        assert number(by_day[day][2]) == rows, (day, by_day)
    assert by_day["2026-09-01"][1] == "partial"
    first = by_day["2026-07-01"][3]
    assert "case-anonymise" in first and "cctv-delete" in first
    sweeps = md.split("## Sweeps in the period", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"\| 2026-09-01 \| apply \| refused \| 0 \|", sweeps), sweeps
    assert "stale plan: rule cctv-delete in database main" in sweeps
    assert "database branch: no SQLite file" in sweeps  # the partial run's reason
    approved = next(cells for line in sweeps.splitlines()
                    if "dpo-17" in line for cells in [line.split("|")])  # fmt: skip
    assert "CHG-9" in approved[6] and "apply" in approved[3]
    assert "OPS-1" in sweeps
    assert "Verification of the last sweep" in sweeps and "no row of any of its rules" in sweeps

    # What is coming: due now as `plan` counts, and every month against Python.
    coming = section(md, "What is coming")
    plan = {i["rule"]: i for i in run_cli("plan", "-c", c, "--as-of", TODAY, "--json",
                                          "-d", "main").json()["items"]}  # fmt: skip
    expected = first_due_days(target_db, held={47})
    for rule in SENTENCES:
        cells = row(coming, rule)
        due_now, months = expected_outlook(expected[rule])
        assert number(cells[1]) == plan[rule]["due"] == due_now, (rule, cells, due_now)
        assert [number(m) for m in cells[3:15]] == months, (rule, cells, months)
        assert number(cells[15]) == sum(months)
    assert sum(expected_outlook(expected["invoice-delete"])[1]) > 0  # January's year end
    assert sum(expected_outlook(expected["customer-delete"])[1]) > 0
    assert number(row(coming, "cctv-delete")[2]) == plan["cctv-delete"]["held"] > 0

    # Holds: the active one, the one that expired unreleased (a warning), the released one.
    holds = section(md, "Legal holds")
    assert row(holds, "1")[1:4] == ["recording", "47", "case 41"] and row(holds, "1")[7] == "active"
    assert row(holds, "2")[6:8] == ["2026-10-01", "lapsed"]
    assert row(holds, "3")[7] == "released"
    assert "Hold 2 on recording expired on 2026-10-01 but was not released" in holds
    assert "1 legal hold(s) expired but were not released" in md

    # Requests: per month, with tickets, rows erased and rows kept until when.
    requests = md.split("## Erasure and access requests", 1)[1].split("\n## ", 1)[0]
    assert row(requests, "Sep 2026")[1:3] == ["1", "1"]
    assert row(requests, "Oct 2026")[1:3] == ["1", "0"]
    erasure = next(line for line in requests.splitlines() if "DSR-1" in line)
    kept_invoices = target_db.scalar("SELECT COUNT(*) FROM invoice WHERE customer_id = 28")
    assert kept_invoices
    assert "erasure" in erasure and f"main.invoice {kept_invoices}: " in erasure
    assert "until 20" in erasure  # the invoice rule's last day
    assert "DSR-2" in requests and "(export: nothing changed)" in requests
    assert "DSR-3" in requests

    # Integrity: the head `audit verify` gives, and when it was checked.
    head = run_cli("audit", "verify", "-c", c, "--json").json()["head"]
    assert f"**Chain head:** {head}" in md and head in html
    assert "Intact: all" in md

    # The HTML: self-contained, charts inline, nothing to fetch.
    assert html.count('<svg class="chart"') == 6  # history and outlook: all, and per database
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert "Content-Security-Policy" in html and "@media print" in html
    assert "Database branch · Filial ApS" in md


def test_an_unreadable_database_is_in_the_report_and_exits_3(tmp_path, monkeypatch):
    target = TargetDb("sqlite", f"sqlite:///{tmp_path / 'main.db'}")
    target.create(schema(), seed())
    config = write_config(tmp_path, RULES, target.url, monkeypatch)
    config.write_text(config.read_text().replace(
        "[[rules]]", '[databases.gone]\nurl = "sqlite:///gone.db"\n\n[[rules]]', 1))  # fmt: skip
    result = run_cli("report", "-c", str(config), "--as-of", TODAY, "--format", "md")
    assert result.exit_code == 3, result.stderr
    assert "Database gone could not be read: database gone: no SQLite file" in result.stdout
    assert "| gone | (controller not configured) | 4 | 0 | unreadable | unreadable |" in (
        result.stdout
    )
    assert row(section(result.stdout, "What is coming"), "cctv-delete")  # main still read


def test_an_altered_trail_is_in_the_report_and_exits_5(tmp_path, monkeypatch):
    target = TargetDb("sqlite", f"sqlite:///{tmp_path / 'main.db'}")
    target.create(schema(), seed())
    config = write_config(tmp_path, RULES, target.url, monkeypatch, extra_sweep="max_fraction = 1")
    ok("run", "-c", str(config), "--as-of", "2026-07-01", "--quiet")
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE runs SET status = 'refused' WHERE id = 1"))
    engine.dispose()
    result = run_cli("report", "-c", str(config), "--as-of", TODAY, "--out", "r.md")
    assert result.exit_code == 5, result.stderr
    text = (tmp_path / "r.md").read_text()
    assert "**Attention:** ALTERED: run 1 was edited after it was recorded" in text


def test_without_the_key_the_trail_is_not_checked_and_the_rest_is_there(tmp_path, monkeypatch):
    target = TargetDb("sqlite", f"sqlite:///{tmp_path / 'main.db'}")
    target.create(schema(), seed())
    config = write_config(tmp_path, RULES, target.url, monkeypatch, extra_sweep="max_fraction = 1")
    ok("run", "-c", str(config), "--as-of", "2026-07-01", "--quiet")
    monkeypatch.delenv("GDPR_SWEEP_KEY")
    result = run_cli("report", "-c", str(config), "--as-of", TODAY, "--format", "md")
    assert result.exit_code == 0, result.stderr
    assert "> **Attention:** Not checked: sweep.hash_key_env: environment variable " in (
        result.stdout
    )
    assert row(section(result.stdout, "What is coming"), "cctv-delete")


def test_bad_arguments_are_exit_2_and_write_nothing(tmp_path, monkeypatch):
    target = TargetDb("sqlite", f"sqlite:///{tmp_path / 'main.db'}")
    target.create(schema(), {})
    config = str(write_config(tmp_path, RULES, target.url, monkeypatch))
    for args, message in (
        (["--format", "pdf"], "--format: use html or md"),
        (["--since", "June"], "--since: 'June' is not a date"),
        (["--since", "2027-01-01", "--as-of", TODAY], "--since: is after the as-of day"),
        (["--as-of", "tomorrow"], "--as-of:"),
        (["--out", str(tmp_path / "no" / "r.html")], "--out: no directory"),
    ):
        result = run_cli("report", "-c", config, *args)
        assert result.exit_code == 2, (args, result.stderr)
        assert message in result.stderr and result.stdout == ""
    assert not re.search(r"\.html$", " ".join(p.name for p in tmp_path.iterdir()))


def test_a_period_with_many_sweeps_is_shown_per_month():
    """Nightly runs for two months: the history's bars and rows are months, not runs."""
    import datetime as dt_

    from gdpr_sweep.report import render
    from gdpr_sweep.report.gather import DatabaseReport, Integrity, Report
    from gdpr_sweep.report.history import History, SweepRecord
    from gdpr_sweep.report.schedule import RuleSchedule

    start = dt_.date(2026, 9, 1)
    sweeps = [
        SweepRecord(i + 1, "run", start + dt_.timedelta(days=i), "completed",
                    done={("main", "cctv-delete"): i % 3})
        for i in range(61)
    ]  # fmt: skip
    rule = RuleSchedule("cctv-delete", "recording", "deleted", "30 days", "after recorded_at",
                        "", (), "", "", (), "basis", "", "", "sentence.")  # fmt: skip
    report = Report(
        as_of=dt_.datetime(2026, 11, 1, tzinfo=dt_.UTC), since=start, today=dt_.date(2026, 11, 1),
        timezone="UTC", config_digest="sha256:x", version="0", generated_at="2026-11-01T00:00",
        months=[dt_.date(2026, 11, 30)], databases=[DatabaseReport("main", "C", [rule])],
        history=History(sweeps=sweeps), integrity=Integrity("2026-11-01", True, 1, "1:x"),
    )  # fmt: skip
    md = render(report, "md")
    done = section(md, "What was done")
    assert "per month" in done
    done = done.split("| month | status |", 1)[1]  # the table, after the chart's numbers
    september = sum(i % 3 for i in range(30))
    assert row(done, "Sep 2026")[1:3] == ["completed", str(september)]
    assert row(done, "Oct 2026")[2] == str(sum(i % 3 for i in range(30, 61)))
    assert "run 1 ·" not in done

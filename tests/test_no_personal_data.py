"""No personal data in our own output: every command, every file we write, the state.

Databases are seeded with marker values in every personal column; then every command
runs (successes, refusals, errors, with --debug and debug-level JSON logs), and stdout,
stderr, plan files, receipts, metrics, the DPO's report (`report`, HTML and Markdown) and
every state-database table are scanned for the markers. Only the export file (personal
data by intent) may hold them.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

from gdpr_sweep.subject.reapply import NOT_THE_PERSON
from tests.configs import rule_toml, since_latest
from tests.conftest import CliResult, TargetDb, run_cli
from tests.test_erase import CPR, EMAIL, MARKERS, NAME, setup

REUSED_NAME, REUSED_EMAIL = "Rasmus Reused", "rasmus.reused@example.dk"

RULES = rule_toml(
    "note-delete",
    "case_note",
    "delete",
    after="1 day",
    since_latest=since_latest("meeting", "held_at", "id"),
) + rule_toml(
    "case-anonymise",
    "counselling_case",
    "anonymise",
    after="1 day",
    since="ended_on",
    columns={"health_notes": "redact"},
)


def test_markers_never_leave_except_in_the_export(target_db: TargetDb, tmp_path, monkeypatch):
    config = setup(target_db, tmp_path, monkeypatch)
    config.write_text(config.read_text().replace("[subject]", RULES + "\n[subject]", 1))
    engine = target_db.engine()
    with engine.begin() as connection:  # give the anonymise rule due rows
        connection.exec_driver_sql("UPDATE counselling_case SET ended_on = '2020-01-01'")
    engine.dispose()
    c = str(config)
    plan_file, receipt, export, metrics, report = (
        tmp_path / n for n in ("plan.json", "receipt.json", "export.json", "m.prom", "r.html")
    )
    logs = ["--log-format", "json", "--log-level", "debug"]
    invocations = [
        ["check", "-c", c, "--debug"],
        ["scan", "-c", c, "--json"],
        ["plan", "-c", c, "--json", "--debug"],
        ["plan", "-c", c, "--out", str(plan_file)],
        [*logs, "run", "-c", c, "--json", "--force", "--metrics-file", str(metrics)],
        ["run", "-c", c, "--force", "--debug"],
        ["run", "-c", c, "--verify-only"],
        ["apply", str(plan_file), "-c", c, "--yes", "--debug"],  # stale by now: refused
        ["erase", "-c", c, "--subject", f"email={EMAIL}", "--dry-run", "--debug"],
        ["export", "-c", c, "--subject", f"cpr={CPR}", "--out", str(export), "--debug"],
        [*logs, "erase", "-c", c, "--subject", f"cpr={CPR}", "--receipt", str(receipt)],
        ["erase", "-c", c, "--subject", f"cpr={CPR}", "--json", "--ticket", "DPO-17"],
        ["erase", "-c", c, "--subject", f"phone={CPR}"],  # unknown kind: an error
        ["erase", "-c", c, "--subject", f"email={EMAIL}'; DROP TABLE candidate; --", "--debug"],
        ["hold", "add", "-c", c, "-d", "crm", "-t", "invoice", "-k", "2", "--reason", "case 7"],
        ["hold", "add", "-c", c, "-d", "crm", "-t", "invoice", "-k", "999", "--reason", "x"],
        ["hold", "list", "-c", c, "--json"],
        ["hold", "release", "-c", c, "1"],
        ["audit", "list", "-c", c, "--json"],
        ["audit", "show", "3", "-c", c, "--json"],
        ["audit", "find", "-c", c, "--subject", f"cpr={CPR}", "--json"],
        ["audit", "verify", "-c", c],
        # The DPO's report, after sweeps, holds, erasures and an export: file and stdout.
        ["report", "-c", c, "--out", str(report), "--since", "2000-01-01"],
        ["report", "-c", c, "--format", "md", "--since", "2000-01-01", "--debug"],
        ["replay", "-c", c, "--since", "2000-01-01", "--json", "--debug"],
        ["export", "-c", c, "--subject", f"email={EMAIL}", "--out", "/nonexistent/x.json"],
        # Errors as JSON: a refused apply's JSON document and its JSON log record.
        [*logs, "apply", str(plan_file), "-c", c, "--yes", "--json"],
        [*logs, "erase", "-c", c, "--subject", f"phone={CPR}"],
    ]
    outputs = []
    codes = []

    def run_all(commands: list[list[str]]) -> list[CliResult]:
        results = []
        for args in commands:
            result = run_cli(*args)
            codes.append((args[0] if args[0] != "--log-format" else args[4], result.exit_code))
            outputs.extend([result.stdout, result.stderr])
            results.append(result)
        return results

    run_all(invocations)
    # Restored from a backup: replay erases the same person again; then the key is
    # reused by someone else, whom replay skips (issue 17) — neither is ever named.
    for name, email, cpr in ((NAME, EMAIL, CPR), (REUSED_NAME, REUSED_EMAIL, "111111-1111")):
        engine = target_db.engine()
        with engine.begin() as connection:
            connection.exec_driver_sql(
                f"UPDATE candidate SET name = '{name}', email = '{email}', cpr = '{cpr}' "
                "WHERE id = 1"
            )
        engine.dispose()
        _dry, replayed, _found = run_all([
            ["replay", "-c", c, "--since", "2000-01-01", "--dry-run"],
            [*logs, "replay", "-c", c, "--since", "2000-01-01", "--json", "--debug"],
            ["audit", "find", "-c", c, "--subject", f"email={email}", "--json"],
        ])  # fmt: skip
        document = json.loads(replayed.stdout)
        if name == NAME:  # the same person: anonymised again
            assert {t["table"] for t in document["tables"]} >= {"candidate"}, document
        else:  # someone else under the reused key: skipped, untouched
            skipped = {(s["database"], s["reason"]) for s in document["skipped"]}
            assert ("crm", NOT_THE_PERSON) in skipped, document
            assert not [t for t in document["tables"] if t["database"] == "crm"], document
    # A run stopped by a real SIGTERM (a separate process: the signal is its own).
    stopped = subprocess.run(
        [sys.executable, "-m", "gdpr_sweep", *logs, "run", "-c", c, "--json", "--force"],
        env={**os.environ, "GDPR_SWEEP_FAILPOINT": "after-evaluation:SIGTERM"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    codes.append(("run-sigterm", stopped.returncode))
    outputs += [stopped.stdout, stopped.stderr]
    assert export.exists() and any(m in export.read_text() for m in MARKERS)

    assert "Retention schedule" in report.read_text()  # the report is in the scan below
    written = [plan_file.read_text(), receipt.read_text(), metrics.read_text(), report.read_text()]
    with sqlite3.connect(tmp_path / "state.db") as connection:
        tables = [
            t for (t,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        state = json.dumps(
            {t: connection.execute(f'SELECT * FROM "{t}"').fetchall() for t in tables}
        )
    scanned = 0
    for marker in (*MARKERS, REUSED_NAME, REUSED_EMAIL):
        for text in [*outputs, *written, state]:
            assert marker not in text, (marker, text[:300])
            scanned += 1
    assert scanned == (len(MARKERS) + 2) * (len(outputs) + len(written) + 1)
    # The commands really ran: successes, refusals and errors alike.
    assert {code for _command, code in codes} >= {0, 2, 3, 5}
    assert ("run-sigterm", 3) in codes

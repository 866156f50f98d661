"""Messages that say what happened (issue 25): the real CLI on all three engines.

- `apply`, reviewing a plan on a terminal before it asks, says what applying would
  change; it never says "nothing was changed" until the answer is no (`plan` still
  says it: a plan changes nothing).
- `erase --dry-run` says "would delete / would anonymise / would keep", never
  "deleted" or "anonymised"; the real erasure's receipt says what it did.
- `audit find` lists the runs newest first, as its table's title says, in text and JSON.

`apply` asks only on a terminal, so it runs in a child process on a pseudo-terminal.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from tests import test_apply, test_erase
from tests.conftest import TEST_KEY, TargetDb, run_cli

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "Apply this plan?"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def on_terminal(args: list[str], answer: str, timeout: float = 60.0) -> tuple[int, str]:
    """Run the CLI on a pseudo-terminal, answer its question, return (exit code, output)."""
    master, slave = pty.openpty()
    env = {
        **os.environ,
        "GDPR_SWEEP_KEY": TEST_KEY,
        "COLUMNS": "200",
        "NO_COLOR": "1",
        "PYTHONPATH": str(ROOT),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gdpr_sweep", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    output, answered, deadline = b"", False, time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            if not answered and PROMPT.encode() in output:
                os.write(master, answer.encode() + b"\n")
                answered = True
            if process.poll() is not None and not ready:
                break
        text = ANSI.sub("", output.decode("utf-8", errors="replace"))
        return process.wait(timeout=timeout), text.replace("\r\n", "\n")
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)


def reviewed_plan(target_db: TargetDb, tmp_path: Path, monkeypatch) -> tuple[Path, Path, int]:
    """The seeded tables of test_apply, a plan file for them, and its rows due."""
    due = test_apply.seed(target_db)
    config = test_apply.config(tmp_path, target_db, monkeypatch)
    plan_file = tmp_path / "plan.json"
    made = run_cli("plan", "-c", str(config), "--as-of", test_apply.AS_OF, "--out", str(plan_file))
    assert made.exit_code == 0, made.stderr
    planned = run_cli("plan", "-c", str(config), "--as-of", test_apply.AS_OF)
    assert "; nothing was changed." in planned.stdout  # `plan` keeps saying it
    return config, plan_file, sum(len(ids) for ids in due.values())


def test_apply_reviews_what_it_would_change_then_asks(target_db, tmp_path, monkeypatch):
    config, plan_file, due = reviewed_plan(target_db, tmp_path, monkeypatch)
    before = target_db.checksum()

    code, output = on_terminal(["apply", str(plan_file), "-c", str(config)], "n")
    assert code == 0, output
    review, asked, after = output.partition(PROMPT)
    assert asked, output
    assert (
        f"Applying this plan would change {due:,} rows due under 2 rule(s) in 1 database(s)."
        in review
    ), review
    assert "nothing was changed" not in review.lower(), review
    assert "Nothing was changed." in after  # the answer was no: now it is the outcome
    assert target_db.checksum() == before

    code, output = on_terminal(["apply", str(plan_file), "-c", str(config)], "y")
    assert code == 0, output
    review, asked, after = output.partition(PROMPT)
    assert asked and "nothing was changed" not in output.lower(), output
    assert f"{due:,} rows done" in after
    assert target_db.checksum() != before


def test_erase_dry_run_says_what_it_would_do(target_db, tmp_path, monkeypatch):
    config = test_erase.setup(target_db, tmp_path, monkeypatch)
    subject = ["erase", "-c", str(config), "--subject", f"cpr={test_erase.CPR}"]

    dry = run_cli(*subject, "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert "  would delete 2 row(s) in case_note" in lines, dry.stdout
    assert "  would anonymise 1 row(s) in candidate (kept rows still refer to it)" in lines
    assert any(line.startswith("  would keep 1 row(s) in invoice until ") for line in lines)
    for done in ("deleted", "anonymised", "kept"):
        assert not any(line.startswith(f"  {done} ") for line in lines), dry.stdout
    assert run_cli(*subject, "--dry-run", "--json").json()["dry_run"] is True

    real = run_cli(*subject)
    assert real.exit_code == 0, real.stderr
    lines = real.stdout.splitlines()
    assert "  deleted 2 row(s) in case_note" in lines, real.stdout
    assert "  anonymised 1 row(s) in candidate (kept rows still refer to it)" in lines
    assert not any("would" in line for line in lines), real.stdout


def test_audit_find_lists_newest_first(target_db, tmp_path, monkeypatch):
    config = test_erase.setup(target_db, tmp_path, monkeypatch)
    c = ["-c", str(config)]
    by_email = ["--subject", f"email={test_erase.EMAIL}"]
    for command in (["export", *by_email, "--out", str(tmp_path / "a.json")],
                    ["export", *by_email, "--out", str(tmp_path / "b.json")],
                    ["erase", "--subject", f"cpr={test_erase.CPR}"]):  # fmt: skip
        assert run_cli(command[0], *c, *command[1:]).exit_code == 0

    found = run_cli("audit", "find", *c, *by_email, "--json")
    assert found.exit_code == 0, found.stderr
    runs = found.json()["runs"]
    assert [run["command"] for run in runs] == ["erase", "export", "export"]
    ids = [run["id"] for run in runs]
    assert ids == sorted(ids, reverse=True)
    # A run's summary is an object, as in `audit show --json` (not JSON text).
    assert all(isinstance(run["summary"], dict) for run in runs)

    text = run_cli("audit", "find", *c, *by_email)
    assert text.exit_code == 0, text.stderr
    assert "newest first" in text.stdout
    listed = [
        int(m.group(1))
        for line in text.stdout.splitlines()
        if (m := re.match(r"^\W*(\d+)\W+(?:erase|export)\b", line))
    ]
    assert listed == ids, text.stdout

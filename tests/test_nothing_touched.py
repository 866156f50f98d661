"""Exit 2 means nothing was touched: every output path is checked before any row changes.

`run --metrics-file`, `erase --receipt`, `export --out` and `plan --out` check their
path once the config, the databases and the lock are settled and before the first row
changes: a path that cannot be written is exit 2, one line naming the option, every
table as it was and nothing in the audit trail. A write that still fails afterwards
(`GDPR_SWEEP_FAILPOINT=before-...-write:ENOSPC`, gdpr_sweep/faults.py) is exit 3 when
rows were changed, saying so and naming the run that records them — and exit 2 for the
commands that change no row. A lock held stays 4 and a refused sweep 5, whatever the
path (`erase` has no refusal: nothing in it exits 5 today).

On all three engines: database `crm` is the engine under test, `archive` a SQLite file
with the same schema (tests/test_erase.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import CliResult, TargetDb, run_cli
from tests.test_erase import CPR, EMAIL, MARKERS, setup
from tests.test_outcomes import held_file_lock

#: Invoices (dated 2025-03-01, kept 5 years from the fiscal year's end) are due.
AS_OF = "2031-06-01"
OPTION = {"run": "--metrics-file", "erase": "--receipt", "export": "--out", "plan": "--out"}
POINT = {
    "run": "before-metrics-write",
    "erase": "before-receipt-write",
    "export": "before-export-write",
    "plan": "before-plan-write",
}


def command(name: str, config: Path, path: Path | str, *extra: str) -> list[str]:
    option = [OPTION[name], str(path), "-c", str(config), *extra]
    return {
        "run": ["run", "--as-of", AS_OF, "--force", *option],
        "erase": ["erase", "--subject", f"email={EMAIL}", *option],
        "export": ["export", "--subject", f"email={EMAIL}", *option],
        "plan": ["plan", "--as-of", AS_OF, *option],
    }[name]


def unwritable(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Paths no command can write, with the message each gives (after `OPTION: `)."""
    missing, directory, a_file = tmp_path / "no" / "such", tmp_path / "a-dir", tmp_path / "a-file"
    directory.mkdir()
    a_file.write_text("not a directory\n", encoding="utf-8")
    return {
        "missing": (missing / "out.json", f"no directory {str(missing)!r}"),
        "directory": (directory, f"{str(directory)!r} is a directory"),
        "under a file": (a_file / "out.json", f"no directory {str(a_file)!r}"),
    }


class World:
    """The two databases, their contents and the audit trail, as a test sees them."""

    def __init__(self, target_db: TargetDb, tmp_path: Path, monkeypatch) -> None:
        self.config = setup(target_db, tmp_path, monkeypatch)
        self.crm = target_db
        self.archive = TargetDb("sqlite", f"sqlite:///{tmp_path / 'archive.db'}")
        self.tmp_path = tmp_path

    def checksum(self) -> tuple[str, str]:
        return self.crm.checksum(), self.archive.checksum()

    def runs(self) -> list[dict]:
        listed = run_cli("audit", "list", "--json", "-c", str(self.config))
        assert listed.exit_code == 0, listed.stderr
        return listed.json()["runs"]

    def leftovers(self) -> list[str]:
        """Scratch files a failed write left behind (they may hold personal data)."""
        return sorted(p.name for p in self.tmp_path.rglob("*.tmp"))


def assert_no_personal_data(result: CliResult) -> None:
    output = result.stdout + result.stderr
    for marker in MARKERS:
        assert marker not in output, marker


def assert_one_line(result: CliResult, prefix: str) -> None:
    assert result.stderr.startswith(prefix), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("name", ["run", "erase", "export", "plan"])
def test_an_unwritable_path_is_refused_before_anything_changes(
    target_db: TargetDb, tmp_path, monkeypatch, name
):
    world = World(target_db, tmp_path, monkeypatch)
    before = world.checksum()
    for kind, (path, reason) in unwritable(tmp_path).items():
        result = run_cli(*command(name, world.config, path))
        assert result.exit_code == 2, (kind, result.stdout, result.stderr)
        assert result.stderr == f"error: {OPTION[name]}: {reason}\n", kind
        assert_no_personal_data(result)
        assert world.checksum() == before, kind
    assert world.runs() == []  # no erasure, no sweep, no export recorded
    assert world.leftovers() == []


def test_a_dry_run_with_an_unwritable_receipt_is_exit_2(target_db: TargetDb, tmp_path, monkeypatch):
    world = World(target_db, tmp_path, monkeypatch)
    before = world.checksum()
    path, reason = unwritable(tmp_path)["missing"]
    result = run_cli(*command("erase", world.config, path, "--dry-run"))
    assert result.exit_code == 2, result.stderr
    assert result.stderr == f"error: --receipt: {reason}\n"
    assert world.checksum() == before
    assert world.runs() == []


def test_a_bad_config_or_argument_keeps_its_own_message(tmp_path, monkeypatch):
    world = World(TargetDb("sqlite", f"sqlite:///{tmp_path / 'target.db'}"), tmp_path, monkeypatch)
    before = world.checksum()
    path, _ = unwritable(tmp_path)["missing"]
    for name in OPTION:
        unknown = run_cli(*command(name, world.config, path, "--database", "nosuch"))
        assert unknown.exit_code == 2, (name, unknown.stderr)
        # `run` writes its metrics file whatever the outcome: it says that it cannot first.
        *before_it, last = unknown.stderr.splitlines()
        assert last == "error: --database: no database 'nosuch' in the config", name
        assert [line.startswith("error: --metrics-file: ") for line in before_it] == (
            [True] if name == "run" else []
        )
    for name in ("erase", "export"):
        args = command(name, world.config, path)
        args[args.index(f"email={EMAIL}")] = "phone=+4512345678"
        kind = run_cli(*args)
        assert kind.exit_code == 2, (name, kind.stderr)
        assert kind.stderr.startswith("error: --subject: "), kind.stderr
        assert "+4512345678" not in kind.stdout + kind.stderr
    missing_key = run_cli(*command("erase", world.config, path), env={"GDPR_SWEEP_KEY": None})
    assert missing_key.exit_code == 2
    assert "GDPR_SWEEP_KEY" in missing_key.stderr and OPTION["erase"] not in missing_key.stderr
    assert world.checksum() == before
    assert world.runs() == []


def _run_id(message: str) -> int:
    found = re.search(
        r"recorded as run (\d+) in the audit trail \(gdpr-sweep audit show \1\)", message
    )
    assert found, message
    return int(found.group(1))


def test_a_receipt_that_fails_after_the_erasure_is_exit_3(
    target_db: TargetDb, tmp_path, monkeypatch
):
    world = World(target_db, tmp_path, monkeypatch)
    receipt = tmp_path / "receipt.json"
    monkeypatch.setenv("GDPR_SWEEP_FAILPOINT", "before-receipt-write:ENOSPC")
    result = run_cli(*command("erase", world.config, receipt, "--json"))
    assert result.exit_code == 3, result.stderr
    assert_one_line(
        result, f"error: --receipt: cannot write {str(receipt)!r} (No space left on device)"
    )
    assert "after the erasure; rows were changed: " in result.stderr
    assert_no_personal_data(result)
    # The rows are gone, and the run that erased them is in the audit trail.
    assert world.crm.scalar(f"SELECT count(*) FROM candidate WHERE cpr = '{CPR}'") == 0
    assert world.archive.scalar(f"SELECT count(*) FROM candidate WHERE cpr = '{CPR}'") == 0
    run_id = _run_id(result.stderr)
    (run,) = world.runs()
    assert (run["id"], run["command"], run["status"]) == (run_id, "erase", "completed")
    # The receipt was printed, since it could not be saved: the count it gives is the one said.
    printed = result.json()
    assert printed["run_id"] == run_id
    rows = sum(e["rows"] for e in printed["erased"])
    assert rows > 0 and f"rows were changed: {rows:,} row(s)" in result.stderr
    assert not receipt.exists() and world.leftovers() == []


def test_a_receipt_that_fails_when_nothing_was_erased_is_exit_2(tmp_path, monkeypatch):
    world = World(TargetDb("sqlite", f"sqlite:///{tmp_path / 'target.db'}"), tmp_path, monkeypatch)
    before = world.checksum()
    receipt = tmp_path / "receipt.json"
    monkeypatch.setenv("GDPR_SWEEP_FAILPOINT", "before-receipt-write:EIO")
    args = command("erase", world.config, receipt)
    args[args.index(f"email={EMAIL}")] = "email=nobody@example.dk"
    result = run_cli(*args)
    assert result.exit_code == 2, result.stderr
    assert_one_line(result, f"error: --receipt: cannot write {str(receipt)!r} (Input/output error)")
    assert "no rows were changed" in result.stderr and "nobody@" not in result.stderr
    assert world.checksum() == before


def test_a_receipt_that_fails_after_a_partial_erasure_keeps_exit_3(tmp_path, monkeypatch):
    world = World(TargetDb("sqlite", f"sqlite:///{tmp_path / 'target.db'}"), tmp_path, monkeypatch)
    (tmp_path / "archive.db").unlink()  # database `archive` fails; `crm` is erased
    receipt = tmp_path / "receipt.json"
    monkeypatch.setenv("GDPR_SWEEP_FAILPOINT", "before-receipt-write:ENOSPC")
    result = run_cli(*command("erase", world.config, receipt))
    assert result.exit_code == 3, result.stderr
    assert_one_line(result, "error: --receipt: cannot write ")
    assert "rows were changed" in result.stderr
    assert "Database archive" in result.stdout and "FAILED, nothing changed" in result.stdout
    assert world.crm.scalar(f"SELECT count(*) FROM candidate WHERE cpr = '{CPR}'") == 0
    assert [run["status"] for run in world.runs()] == ["partial"]


def test_metrics_that_fail_after_the_sweep_are_exit_3(target_db: TargetDb, tmp_path, monkeypatch):
    world = World(target_db, tmp_path, monkeypatch)
    metrics = tmp_path / "gdpr.prom"
    monkeypatch.setenv("GDPR_SWEEP_FAILPOINT", "before-metrics-write:ENOSPC")
    result = run_cli(*command("run", world.config, metrics, "--quiet"))
    assert result.exit_code == 3, result.stderr
    assert_one_line(
        result, f"error: --metrics-file: cannot write {str(metrics)!r} (No space left on device)"
    )
    # Two invoices in each database (their lines go with them, by cascade).
    assert "rows were changed: 4 row(s)" in result.stderr
    assert_no_personal_data(result)
    assert world.crm.scalar("SELECT count(*) FROM invoice") == 0
    assert world.archive.scalar("SELECT count(*) FROM invoice") == 0
    (run,) = world.runs()
    assert (run["id"], run["command"], run["status"]) == (
        _run_id(result.stderr),
        "run",
        "completed",
    )
    assert not metrics.exists() and world.leftovers() == []


def test_a_partial_run_keeps_exit_3_when_its_metrics_fail(tmp_path, monkeypatch):
    world = World(TargetDb("sqlite", f"sqlite:///{tmp_path / 'target.db'}"), tmp_path, monkeypatch)
    (tmp_path / "archive.db").unlink()  # database `archive` fails; `crm` is swept
    metrics = tmp_path / "gdpr.prom"
    monkeypatch.setenv("GDPR_SWEEP_FAILPOINT", "before-metrics-write:ENOSPC")
    nothing_due = run_cli(*command("run", world.config, metrics), "--as-of", "2026-06-01")
    assert nothing_due.exit_code == 3, nothing_due.stderr  # not 2: the run's own outcome
    assert "\nerror: --metrics-file: cannot write " in nothing_due.stderr
    assert "archive" in nothing_due.stdout + nothing_due.stderr
    swept = run_cli(*command("run", world.config, metrics))
    assert swept.exit_code == 3, swept.stderr
    assert "rows were changed: 2 row(s)" in swept.stderr
    assert world.crm.scalar("SELECT count(*) FROM invoice") == 0
    assert [run["status"] for run in world.runs()] == ["partial", "partial"]


@pytest.mark.parametrize("name", ["export", "plan"])
def test_a_late_failure_of_a_command_that_changes_nothing_is_exit_2(
    target_db: TargetDb, tmp_path, monkeypatch, name
):
    world = World(target_db, tmp_path, monkeypatch)
    before = world.checksum()
    out = tmp_path / "out.json"
    monkeypatch.setenv("GDPR_SWEEP_FAILPOINT", f"{POINT[name]}:ENOSPC")
    result = run_cli(*command(name, world.config, out))
    assert result.exit_code == 2, result.stderr
    assert_one_line(result, f"error: --out: cannot write {str(out)!r} (No space left on device)")
    assert_no_personal_data(result)
    assert world.checksum() == before
    # No file, no scratch copy of the person's rows, and no export in the audit trail.
    assert not out.exists() and world.leftovers() == []
    assert world.runs() == []


@pytest.mark.parametrize("name", ["run", "erase"])
def test_a_lock_held_is_exit_4_whatever_the_path(target_db: TargetDb, tmp_path, monkeypatch, name):
    world = World(target_db, tmp_path, monkeypatch)
    assert run_cli("migrate", "-c", str(world.config)).exit_code == 0
    before = world.checksum()
    path, _ = unwritable(tmp_path)["missing"]
    with held_file_lock(tmp_path / "state.db"):
        result = run_cli(*command(name, world.config, path))
    assert result.exit_code == 4, result.stderr
    assert "another gdpr-sweep is running" in result.stderr.splitlines()[-1]
    assert_no_personal_data(result)
    assert world.checksum() == before
    assert world.runs() == []


def test_a_refused_sweep_is_exit_5_whatever_the_path(target_db: TargetDb, tmp_path, monkeypatch):
    world = World(target_db, tmp_path, monkeypatch)
    before = world.checksum()
    path, _ = unwritable(tmp_path)["missing"]
    args = command("run", world.config, path)
    args.remove("--force")  # every invoice is due: more than sweep.max_fraction (0.5)
    result = run_cli(*args)
    assert result.exit_code == 5, result.stderr
    assert "--metrics-file: cannot write" in result.stderr
    assert "max_fraction" in result.stderr.splitlines()[-1]
    assert world.checksum() == before
    assert [run["status"] for run in world.runs()] == ["refused"]


def test_after_the_checks_a_good_path_is_written(target_db: TargetDb, tmp_path, monkeypatch):
    """The checks refuse nothing they should not: each command writes its file."""
    world = World(target_db, tmp_path, monkeypatch)
    for name in ("plan", "export", "erase", "run"):
        path = tmp_path / "out" / f"{name}.out"
        path.parent.mkdir(exist_ok=True)
        result = run_cli(*command(name, world.config, path))
        assert result.exit_code == 0, (name, result.stderr)
        assert path.is_file() and path.stat().st_size > 0, name
    # `plan --out` records its plan (a `planned` run: the review trail), newest last here.
    assert [run["command"] for run in world.runs()] == ["run", "erase", "export", "plan"]

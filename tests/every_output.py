"""Every command's real output, text and JSON, from one small scenario through the CLI.

`test_json_schemas` validates each JSON document against its schema; `test_time_offsets`
scans all of it for a time without its offset. A command that gains output belongs
here; a new JSON document needs a kind in `gdpr_sweep/formats.py` and a schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import TEST_KEY, TargetDb, run_cli, write_config
from tests.test_ticket import CONFIG, EMAIL, build

AS_OF = "2026-11-23"
OTHER = "o@example.dk"  # the other person of test_ticket.build
NEW_KEY = "rotated-secret-0123456789abcdef"


@dataclass
class Output:
    command: str  # what was run, for failure messages
    kind: str | None  # the kind of JSON document it is (formats.VERSIONS), None for text
    text: str
    stream: str = "stdout"  # or "stderr" (log lines), or "file"


class Scenario:
    """Runs commands in one config and keeps every output."""

    def __init__(self, config: Path) -> None:
        self.c = str(config)
        self.outputs: list[Output] = []

    def run(self, *args: str, kind: str | None = None, code: int | tuple[int, ...] = 0) -> str:
        result = run_cli(*args)
        codes = (code,) if isinstance(code, int) else code
        label = " ".join(args)
        assert result.exit_code in codes, (
            f"{label}: {result.exit_code}\n{result.stdout + result.stderr}"
        )
        self.outputs.append(Output(label, kind, result.stdout))
        if result.stderr:
            self.outputs.append(Output(label, None, result.stderr, "stderr"))
        return result.stdout

    def both(self, *args: str, kind: str, code: int = 0) -> dict:
        """The command as text and with --json; the JSON document."""
        self.run(*args, code=code)
        return json.loads(self.run(*args, "--json", kind=kind, code=code))

    def file(self, path: Path, kind: str) -> dict:
        text = path.read_text(encoding="utf-8")
        self.outputs.append(Output(str(path.name), kind, text, "file"))
        return json.loads(text)


def sweep_outputs(target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Scenario:
    """plan, apply, run, erase and export on `target_db`: the documents that read or change
    target databases."""
    build(target_db)
    s = Scenario(write_config(tmp_path, CONFIG, target_db.url, monkeypatch))
    c = s.c
    plan_file = tmp_path / "plan.json"
    s.both("plan", "-c", c, "--as-of", AS_OF, kind="plan")
    s.run("plan", "-c", c, "--as-of", AS_OF, "--out", str(plan_file))
    assert s.file(plan_file, "plan")["items"][0]["due"] == 1
    applied = json.loads(s.run("apply", str(plan_file), "-c", c, "--yes", "--json", kind="run"))
    assert applied["status"] == "completed" and applied["items"][0]["done"] == 1
    # The same plan again is stale now (its due row is gone): a refused run document.
    s.run("apply", str(plan_file), "-c", c, "--yes", "--json", kind="run", code=5)
    s.run("run", "-c", c, "--as-of", "2026-11-24", "--database", "nosuch", "--json",
          kind="run", code=2)  # fmt: skip
    s.both("run", "-c", c, "--as-of", "2026-11-24", kind="run")
    s.both("run", "-c", c, "--as-of", "2026-11-24T12:30:00", "--verify-only", kind="run")
    second = tmp_path / "plan-2.json"
    s.run("plan", "-c", c, "--as-of", "2026-11-24T12:30:00", "--out", str(second))
    s.run("apply", str(second), "-c", c, "--yes")
    s.run("--log-format", "json", "--log-level", "info", "run", "-c", c, "--as-of", "2026-11-25")
    s.both("erase", "-c", c, "--subject", f"email={EMAIL}", "--dry-run", kind="erase")
    receipt = tmp_path / "receipt.json"
    erased = json.loads(s.run("erase", "-c", c, "--subject", f"email={EMAIL}", "--json",
                              "--receipt", str(receipt), kind="erase"))  # fmt: skip
    assert erased["erased"] and s.file(receipt, "erase") == erased
    export = tmp_path / "export.json"
    s.run("export", "-c", c, "--subject", f"email={OTHER}", "--out", str(export))
    assert s.file(export, "export")["databases"][0]["tables"]
    return s


def every_output(target_db: TargetDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Scenario:
    """Every command with output, on `target_db` (the suite runs it on SQLite)."""
    s = sweep_outputs(target_db, tmp_path, monkeypatch)
    c = s.c
    s.both("check", "-c", c, kind="check")
    s.run("check", "-c", str(tmp_path / "missing.toml"), "--json", kind="check", code=2)
    s.both("scan", "-c", c, kind="scan")
    s.run("hold", "add", "-c", c, "--database", "main", "--table", "person", "--key", "2",
          "--reason", "court case 17", "--until", "2027-06-01")  # fmt: skip
    s.both("hold", "list", "-c", c, kind="hold list")
    s.both("replay", "-c", c, "--since", "2026-11-01", "--dry-run", kind="replay")
    s.both("replay", "-c", c, "--since", "2026-11-01", kind="replay")
    runs = s.both("audit", "list", "-c", c, kind="audit list")["runs"]
    assert {run["command"] for run in runs} >= {"apply", "run", "erase", "export", "hold-add"}
    for run in runs:
        s.both("audit", "show", str(run["id"]), "-c", c, kind="audit show")
    s.both("audit", "find", "-c", c, "--subject", f"email={EMAIL}", kind="audit find")
    s.both("audit", "verify", "-c", c, kind="audit verify")
    monkeypatch.setenv("GDPR_SWEEP_KEY", NEW_KEY)
    monkeypatch.setenv("GDPR_SWEEP_OLD_KEYS", TEST_KEY)
    rotated = json.loads(s.run("audit", "rotate-key", "-c", c, "--json", kind="audit rotate-key"))
    assert rotated["rotated"] is True
    s.both("audit", "rotate-key", "-c", c, kind="audit rotate-key")  # nothing to do now
    s.both("audit", "verify", "-c", c, kind="audit verify")
    s.both("demo", str(tmp_path / "demo"), "--as-of", AS_OF, kind="plan")
    failure_outputs(s, tmp_path, monkeypatch)
    return s


def failure_outputs(s: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The documents of commands where one database cannot be read (exit 3): each names
    it in its failures, the other database's work is there."""
    directory = tmp_path / "with-gone"
    directory.mkdir()
    gone = '[databases.gone]\nurl = "sqlite:///gone/missing.db"\ncontroller = "Gone"\n'
    c = str(write_config(directory, gone + CONFIG, f"sqlite:///{tmp_path / 'target.db'}",
                         monkeypatch))  # fmt: skip
    monkeypatch.setenv("GDPR_SWEEP_KEY", TEST_KEY)
    monkeypatch.delenv("GDPR_SWEEP_OLD_KEYS", raising=False)
    partial = (0, 3)
    assert s.both("plan", "-c", c, "--as-of", AS_OF, kind="plan", code=3)["failures"]
    assert s.both("check", "-c", c, kind="check", code=3)["failures"]
    assert s.both("scan", "-c", c, kind="scan", code=3)["unreachable"]
    assert s.both("run", "-c", c, "--as-of", AS_OF, kind="run", code=3)["failures"]
    erased = s.both("erase", "-c", c, "--subject", f"email={OTHER}", kind="erase", code=3)
    assert [db["error"] is not None for db in erased["databases"]] == [False, True]
    export = directory / "export.json"
    s.run("export", "-c", c, "--subject", f"email={OTHER}", "--out", str(export), code=partial)
    assert s.file(export, "export")["databases"][1]["error"]
    s.both("replay", "-c", c, "--since", "2026-11-01", kind="replay", code=partial)

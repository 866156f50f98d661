"""Post-run verification, --verify-only, the nightly window, and per-batch timeouts."""

from __future__ import annotations

import sqlalchemy as sa

from gdpr_sweep.config import load_config
from gdpr_sweep.periods import parse_as_of
from gdpr_sweep.sweep import run_sweep
from tests.conftest import TargetDb, run_cli
from tests.test_apply import AS_OF, OLD, config, seed


class InsertOldRowWhenRuleStarts:
    """A progress hook that inserts a due row behind the sweep's back."""

    def __init__(self, target_db: TargetDb, rule: str) -> None:
        self.target_db, self.rule, self.fired = target_db, rule, False

    def rule_started(self, database: str, rule: str, due: int) -> object:
        if rule == self.rule and not self.fired:
            self.fired = True
            engine = self.target_db.engine()
            with engine.begin() as connection:
                connection.execute(
                    sa.text("INSERT INTO counselling_case (id, name, course_ended_at, "
                            "under_investigation) VALUES (9999, 'Late Arrival', :t, :f)"),
                    {"t": OLD, "f": False},
                )  # fmt: skip
            engine.dispose()
        return None

    def advanced(self, token: object, rows: int) -> None:
        pass

    def rule_finished(self, token: object) -> None:
        pass


def test_verification_reports_a_row_inserted_during_the_run(target_db, tmp_path, monkeypatch):
    seed(target_db)
    cfg = load_config(config(tmp_path, target_db, monkeypatch))
    as_of = parse_as_of(AS_OF, cfg.sweep.tz)
    # counselling-anonymise runs first; while customer-delete runs, an old case arrives.
    hook = InsertOldRowWhenRuleStarts(target_db, "customer-delete")
    result = run_sweep(cfg, as_of, progress=hook)
    assert hook.fired
    assert result.exit_code == 3
    left = {item.rule: item.left for item in result.items}
    assert left == {"counselling-anonymise": 1, "customer-delete": 0}
    assert "1 row(s) still due after the run" in result.failures[0]["error"]
    entries = run_cli("audit", "show", str(result.run_id), "-c", str(cfg.path), "--json").json()
    failed = [(e["rule_id"], e["rows"]) for e in entries["entries"] if e["kind"] == "verify-failed"]
    assert failed == [("counselling-anonymise", 1)]

    verify = run_cli("run", "-c", str(cfg.path), "--as-of", AS_OF, "--verify-only", "--json")
    assert verify.exit_code == 3
    assert [i["left"] for i in verify.json()["items"]] == [1, 0]
    again = run_cli("run", "-c", str(cfg.path), "--as-of", AS_OF, "--json")
    assert again.exit_code == 0, again.stderr
    assert [i["done"] for i in again.json()["items"]] == [1, 0]
    before = target_db.checksum()
    verify = run_cli("run", "-c", str(cfg.path), "--as-of", AS_OF, "--verify-only")
    assert verify.exit_code == 0
    assert target_db.checksum() == before


def test_max_runtime_stops_between_batches_and_the_next_run_finishes(
    target_db, tmp_path, monkeypatch
):
    due = seed(target_db, cases=60, customers=3)
    cfg = config(tmp_path, target_db, monkeypatch, batch_size=2)
    metrics = tmp_path / "m.prom"
    first = run_cli("run", "-c", str(cfg), "--as-of", AS_OF, "--json", "--max-runtime", "1s",
                    "--pause-between-batches", "0.3", "--metrics-file", str(metrics))  # fmt: skip
    assert first.exit_code == 0, first.stderr
    summary = first.json()
    assert summary["status"] == "incomplete"
    done_first = {i["rule"]: i["done"] for i in summary["items"]}
    total_due = sum(len(keys) for keys in due.values())
    assert 0 < sum(done_first.values()) < total_due
    assert summary["rows_left"] == total_due - sum(done_first.values())
    assert "gdpr_sweep_incomplete 1" in metrics.read_text()
    text = run_cli("audit", "show", str(summary["run_id"]), "-c", str(cfg), "--json").json()
    assert "stopped" in [e["kind"] for e in text["entries"]]

    second = run_cli("run", "-c", str(cfg), "--as-of", AS_OF, "--json")
    assert second.exit_code == 0
    done_second = {i["rule"]: i["done"] for i in second.json()["items"]}
    for rule, keys in due.items():
        assert done_first[rule] + done_second[rule] == len(keys)
    assert second.json()["status"] == "completed" and second.json()["rows_left"] == 0


def test_timeouts_are_set_per_batch(target_db, tmp_path, monkeypatch):
    due = seed(target_db)
    cfg = config(tmp_path, target_db, monkeypatch)
    cfg.write_text(cfg.read_text().replace(
        "[sweep]", '[sweep]\nlock_timeout = "2s"\nstatement_timeout = "30s"', 1))  # fmt: skip
    result = run_cli("run", "-c", str(cfg), "--as-of", AS_OF, "--json")
    assert result.exit_code == 0, result.stderr
    assert sum(i["done"] for i in result.json()["items"]) == sum(map(len, due.values()))


def test_bad_window_arguments_are_exit_2(tmp_path, monkeypatch):
    target_db = TargetDb("sqlite", f"sqlite:///{tmp_path / 't.db'}")
    seed(target_db)
    cfg = config(tmp_path, target_db, monkeypatch)
    for args in (["--max-runtime", "soon"], ["--max-runtime", "0s"],
                 ["--pause-between-batches", "-1"]):  # fmt: skip
        result = run_cli("run", "-c", str(cfg), *args)
        assert result.exit_code == 2, (args, result.stderr)
        assert result.stderr.count("\n") == 1
    cfg.write_text(cfg.read_text().replace("[sweep]", '[sweep]\nlock_timeout = "forever"', 1))
    result = run_cli("run", "-c", str(cfg))
    assert result.exit_code == 2 and "sweep.lock_timeout" in result.stderr

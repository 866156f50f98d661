"""Output that tells the truth: exact metrics, masked URLs, a BOM'd config, --verify-only."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
import time_machine
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from gdpr_sweep.engines import describe_failure
from gdpr_sweep.metrics import render_metrics
from gdpr_sweep.run_result import RunItem, RunResult
from tests.conftest import TargetDb, run_cli, write_config
from tests.test_apply import AS_OF, config, seed

#: A real Unix time with microseconds (2026-11-29): `{:g}` made it 1.796e+09.
NOW = 1796000000.123456
BIG = 1_234_567


def samples(text: str) -> dict[str, list]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_metrics_are_exact_counts_and_timestamps():
    item = RunItem(
        database="aarhus", rule="r", table="t", action="delete", cutoff="2026-01-01",
        due=BIG + 2, held=BIG + 1, done=BIG, batches=1235, longest_batch_seconds=0.123456789,
        left=2,
    )  # fmt: skip
    result = RunResult(1, dt.datetime(2026, 6, 1, tzinfo=dt.UTC), "sha256:x", "completed", [item])
    text = render_metrics(result, "completed", 3723.000125, NOW - 86400.5, ["aarhus"], now=NOW)
    assert "e+" not in text and "e-" not in text
    parsed = samples(text)
    value = {name: found[0].value for name, found in parsed.items()}
    assert value["gdpr_sweep_rows_done"] == BIG
    assert value["gdpr_sweep_rows_due"] == BIG + 2
    assert value["gdpr_sweep_rows_held"] == BIG + 1
    assert value["gdpr_sweep_rows_left"] == 2
    assert value["gdpr_sweep_last_run_timestamp_seconds"] == NOW
    assert value["gdpr_sweep_last_success_timestamp_seconds"] == NOW - 86400.5
    assert value["gdpr_sweep_run_duration_seconds"] == 3723.000125
    assert value["gdpr_sweep_longest_batch_seconds"] == 0.123456789
    assert value["gdpr_sweep_last_run_success"] == 1
    assert value["gdpr_sweep_failures"] == 0
    # Counts and flags are written as integers, not floats.
    assert f"gdpr_sweep_rows_done{{{_labels(item)}}} {BIG}\n" in text
    assert "gdpr_sweep_last_run_success 1\n" in text
    assert 'gdpr_sweep_database_failed{database="aarhus"} 0\n' in text


def _labels(item: RunItem) -> str:
    return (
        f'database="{item.database}",rule="{item.rule}",table="{item.table}",action="{item.action}"'
    )


def test_metrics_special_values_follow_the_text_format():
    text = render_metrics(None, "failed", float("inf"), None, [], now=float("nan"))
    assert "gdpr_sweep_run_duration_seconds +Inf\n" in text
    assert "gdpr_sweep_last_run_timestamp_seconds NaN\n" in text
    samples(text)  # the reference parser accepts it


def test_metrics_file_of_a_real_run_has_exact_timestamps(tmp_path, monkeypatch):
    target_db = TargetDb("sqlite", f"sqlite:///{tmp_path / 'target.db'}")
    seed(target_db)
    cfg = config(tmp_path, target_db, monkeypatch)
    metrics = tmp_path / "gdpr-sweep.prom"
    with time_machine.travel(NOW, tick=False):
        result = run_cli("run", "-c", str(cfg), "--as-of", AS_OF, "--quiet",
                         "--metrics-file", str(metrics))  # fmt: skip
    assert result.exit_code == 0, result.stderr
    parsed = samples(metrics.read_text())
    for name in (
        "gdpr_sweep_last_run_timestamp_seconds",
        "gdpr_sweep_last_success_timestamp_seconds",
    ):
        assert abs(parsed[name][0].value - NOW) < 1e-6, name
    done = {s.labels["rule"]: s.value for s in parsed["gdpr_sweep_rows_done"]}
    assert done == {"counselling-anonymise": 14, "customer-delete": 9}
    assert oct(metrics.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


# --- credentials in driver messages ----------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://u:s3cret@127.0.0.1:1/main",
        "mysql+pymysql://u:s3cret@127.0.0.1:1/main",
    ],
)
def test_a_short_user_does_not_garble_connection_refused(tmp_path, monkeypatch, url):
    cfg = write_config(tmp_path, "", url, monkeypatch)
    result = run_cli("check", "-c", str(cfg))
    output = result.stdout + result.stderr
    assert result.exit_code != 0
    assert "Connection refused" in output, output
    assert "***" not in output
    assert "s3cret" not in output
    assert "Traceback" not in output


def _driver_error(message: str) -> sa.exc.OperationalError:
    return sa.exc.OperationalError("connect", {}, Exception(message))


def test_a_password_echoed_by_the_driver_is_masked():
    url = make_url("postgresql+psycopg://u:s3cret@db.example:5432/main")
    echoed = _driver_error(
        "could not connect to postgresql+psycopg://u:s3cret@db.example:5432/main "
        "(password=s3cret, conninfo 'u:s3cret@db.example'); Connection refused for u"
    )
    text = describe_failure(echoed, url)
    assert "s3cret" not in text
    assert "postgresql+psycopg://u:***@db.example:5432/main" in text
    assert "password=***" in text and "'u:***@db.example'" in text
    assert text.endswith("Connection refused for u")


def test_a_password_with_special_characters_is_masked_in_every_spelling():
    url = sa.engine.URL.create(
        "postgresql+psycopg", username="u", password="p@ss w/rd", host="db", database="main"
    )
    rendered = url.render_as_string(hide_password=False)
    text = describe_failure(_driver_error(f"{rendered} | p%40ss%20w%2Frd | 'p@ss w/rd'"), url)
    assert "p@ss" not in text and "p%40ss" not in text and "rd'" not in text, text
    assert text.startswith(url.render_as_string(hide_password=True))


def test_a_password_inside_a_word_is_not_masked():
    url = make_url("postgresql+psycopg://admin:fuse@db/main")
    text = describe_failure(_driver_error("Connection refused: fuse box, refused"), url)
    assert text == "Connection refused: *** box, refused"
    user_only = make_url("postgresql+psycopg://u@db/main")
    assert describe_failure(_driver_error("Connection refused"), user_only) == "Connection refused"


# --- a config file with a byte-order mark ---------------------------------------------


def test_a_config_starting_with_a_bom_is_read(tmp_path, monkeypatch):
    target_db = TargetDb("sqlite", f"sqlite:///{tmp_path / 'target.db'}")
    seed(target_db)
    cfg = config(tmp_path, target_db, monkeypatch)
    plain = run_cli("check", "-c", str(cfg))
    cfg.write_bytes(b"\xef\xbb\xbf" + cfg.read_bytes())
    with_bom = run_cli("check", "-c", str(cfg))
    assert with_bom.exit_code == plain.exit_code == 0, with_bom.stderr
    assert with_bom.stdout == plain.stdout


# --- run --verify-only -----------------------------------------------------------------


def test_verify_only_never_prints_none(tmp_path, monkeypatch):
    target_db = TargetDb("sqlite", f"sqlite:///{tmp_path / 'target.db'}")
    seed(target_db)
    cfg = str(config(tmp_path, target_db, monkeypatch))
    before = target_db.checksum()

    due = run_cli("run", "-c", cfg, "--as-of", AS_OF, "--verify-only")
    assert due.exit_code == 3, due.stderr
    assert "None" not in due.stdout + due.stderr
    assert "verify only, nothing changed: 23 row(s) still due" in due.stdout
    assert "rule counselling-anonymise: 14 row(s) due" in due.stdout
    assert target_db.checksum() == before

    assert run_cli("run", "-c", cfg, "--as-of", AS_OF, "--quiet").exit_code == 0
    clean = run_cli("run", "-c", cfg, "--as-of", AS_OF, "--verify-only")
    assert clean.exit_code == 0, clean.stderr
    assert "None" not in clean.stdout + clean.stderr
    assert "verify only, nothing changed: nothing due" in clean.stdout

    quiet = run_cli("run", "-c", cfg, "--as-of", AS_OF, "--verify-only", "--quiet")
    assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (0, "", "")


def test_verify_only_with_an_unreachable_database_says_so(tmp_path, monkeypatch):
    cfg = write_config(tmp_path, "", "postgresql+psycopg://u:s3cret@127.0.0.1:1/main", monkeypatch)
    result = run_cli("run", "-c", str(cfg), "--as-of", AS_OF, "--verify-only")
    output = result.stdout + result.stderr
    assert result.exit_code == 3, output
    assert "None" not in output and "s3cret" not in output
    assert "not every database could be counted" in output
    assert "Connection refused" in output

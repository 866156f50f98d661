"""`make bench`'s one table and issue 22's goals, from made-up samples (no database).

The benchmark itself is slow by nature and runs only under `make bench`; these check
what it prints from the measurements: one row per engine x operation x N, pt-archiver
on MariaDB's delete rows only, the ratios, the goals' limits (1.1x below 10M rows,
1.0x from 10M), RSS flat from 1M to 10M, start-up; and the arguments it takes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import ptarchiver
import summary

import bench


def measured(engine, rows, group, kind, seconds, rss_mb=50, longest=None, loop=None, work=None):
    m = bench.Measurement(engine, rows, group, f"{group} {kind}", kind)
    for wall in seconds:
        m.samples.append(
            bench.Sample(wall, work, int(rss_mb * 1024), 0, longest_batch=longest, loop=loop)
        )
    return m


def measurements():
    result = []
    for engine in ("sqlite", "mariadb"):
        for rows, tool_s, rss in ((1_000_000, 1.05, 60), (10_000_000, 10.5, 70)):
            for action in ("delete", "anonymise"):
                result += [
                    measured(
                        engine,
                        rows,
                        action,
                        "tool",
                        [tool_s, tool_s + 1, tool_s - 0.01],
                        rss_mb=rss,
                        longest=0.4,
                    ),
                    measured(engine, rows, action, "baseline", [tool_s / 1.05] * 3, rss_mb=20),
                    measured(engine, rows, action, "one", [tool_s / 2] * 3, rss_mb=20),
                ]
            if engine == "mariadb":
                result += [
                    measured(engine, rows, "delete", "pt-archiver", [tool_s * 4] * 3),
                    measured(engine, rows, "delete", "pt-archiver-bulk", [tool_s * 1.25] * 3),
                ]
    result.append(measured("-", 0, "start-up", "startup", [0.15, 0.25, 0.18]))
    return result


def test_one_row_per_engine_operation_and_size_with_pt_archiver_only_for_mariadb_delete():
    lines = summary.render_table(measurements()).splitlines()
    assert lines[0].split()[:4] == ["engine", "operation", "N", "runs"]
    rows = [line.split() for line in lines[2:]]
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (e, a, n)
        for e in ("sqlite", "mariadb")
        for n in ("1,000,000", "10,000,000")
        for a in ("delete", "anonymise")
    ]
    by = {(r[0], r[1], r[2]): r for r in rows}
    sqlite_delete = by["sqlite", "delete", "1,000,000"]
    # gdpr-sweep, loop, pt-archiver, --bulk-delete, one statement, x(b), x(pt best)
    assert sqlite_delete[4:11] == ["1.05", "1.00", "n/a", "n/a", "0.53", "1.05", "-"]
    maria_delete = by["mariadb", "delete", "10,000,000"]
    assert maria_delete[4:11] == ["10.50", "10.00", "42.00", "13.12", "5.25", "1.05", "0.80"]
    assert by["mariadb", "anonymise", "1,000,000"][6:8] == ["n/a", "n/a"]
    assert by["mariadb", "anonymise", "1,000,000"][10] == "-"
    # runs, peak RSS, longest batch, start-up (the median of --version)
    assert maria_delete[3] == "3" and maria_delete[11:] == ["70", "0.400", "0.180"]


def test_goals_use_the_limit_of_each_size_and_compare_rss_from_1m_to_10m():
    result = {(g.engine, g.rows, g.goal): g for g in summary.goals(measurements())}
    at_1m = result["sqlite", 1_000_000, "delete: run <= 1.1x loop (b)"]
    at_10m = result["sqlite", 10_000_000, "delete: run <= 1x loop (b)"]
    assert at_1m.passed and at_1m.value == pytest.approx(1.05)
    assert not at_10m.passed and at_10m.value == pytest.approx(1.05)
    pt = result["mariadb", 1_000_000, "delete: run <= 1x pt-archiver's best"]
    assert pt.passed and pt.value == pytest.approx(0.8)
    assert ("sqlite", 1_000_000, "delete: run <= 1x pt-archiver's best") not in result
    flat = result["mariadb", None, "peak RSS flat: 10,000,000 rows <= 1.1x 1,000,000 rows"]
    assert flat.value == pytest.approx(70 / 60) and not flat.passed
    assert result["mariadb", 10_000_000, "peak RSS <= 150 MB"].passed
    assert result["sqlite", 1_000_000, "longest batch <= 1 s"].passed
    startup = result["-", None, "start-up (gdpr-sweep --version) <= 0.2 s"]
    assert startup.passed and startup.value == pytest.approx(0.18)
    printed = summary.render_goals(list(result.values()))
    assert "FAIL  sqlite      10,000,000  delete: run <= 1x loop (b)" in printed


def test_pt_archiver_not_run_is_a_goal_without_a_value():
    without = [m for m in measurements() if not m.kind.startswith("pt-archiver")]
    table = summary.render_table(without)
    assert "skipped" in table.splitlines()[-2]  # mariadb delete at 10M
    goal = next(g for g in summary.goals(without) if "pt-archiver" in g.goal)
    assert goal.value is None and not goal.passed


def test_arguments_several_sizes_batch_size_auto_and_fixed_baselines():
    args = bench.parse_args(["--rows", "10_000_000,1000000", "--batch-size", "auto"])
    assert args.rows == [1_000_000, 10_000_000]
    assert args.batch_size == "auto" and args.baseline_batch_size == 5000
    assert [bench.repeat_for(args, n) for n in args.rows] == [3, 1]
    assert bench.toml_batch_size("auto") == '"auto"' and bench.toml_batch_size(800) == "800"
    assert bench.parse_args(["--batch-size", "800"]).batch_size == 800
    for bad in (["--rows", "1000,x"], ["--rows", "50"], ["--batch-size", "0"]):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="'auto' or a positive integer"):
        bench.parse_batch_size("fast")


def test_pt_archiver_command_is_the_issues_and_its_count_is_read_from_statistics():
    params = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": "", "database": "b"}
    argv = ptarchiver.argv(params, "2024-07-01", 5000, bulk=True)
    assert argv[:3] == [
        "pt-archiver",
        "--source",
        "h=127.0.0.1,P=3306,u=root,A=utf8mb4,D=b,t=candidate",
    ]
    assert argv[3:] == [
        "--where",
        "course_ended_at < '2024-07-01 00:00:00'",
        "--purge",
        "--limit",
        "5000",
        "--commit-each",
        "--statistics",
        "--bulk-delete",
    ]
    assert "--bulk-delete" not in ptarchiver.argv(params, "2024-07-01", 5000, bulk=False)
    assert ptarchiver.deleted("Source: ...\nSELECT 400000\nINSERT 0\nDELETE 400000\n") == 400000
    assert ptarchiver.deleted("nothing") is None

"""A package people can install: `pipx install .` and `uv tool install .` on a fresh copy,
then `gdpr-sweep demo` and `migrate` (after pipx, the demo's tour too) from the
installed command alone (the source copy deleted first: nothing may come from the
checkout), and the wheel's contents.

pipx and uv are installed from PyPI into a throwaway venv; their homes and bin folders
are in the test's tmp directory. pipx and uv run at the same time (each takes tens of
seconds, mostly waiting on package downloads from the caches).
"""

from __future__ import annotations

import concurrent.futures
import shutil
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

from tests.fresh_copy import ROOT, check_run, copy_repository, newcomer_environment, skip_slow
from tests.test_demo_tour import printed_tour

REPOSITORY = "https://github.com/gdpr-sweep/gdpr-sweep"


def test_the_package_says_what_it_is_and_who_made_it():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert project["authors"] and project["classifiers"]
    assert "Programming Language :: Python :: 3.11" in project["classifiers"]
    urls = project["urls"]
    assert {"Homepage", "Repository", "Issues", "Changelog"} <= set(urls)
    assert all(url.startswith(REPOSITORY) for url in urls.values()), urls


@pytest.fixture(scope="module")
def tools(tmp_path_factory) -> Path:
    """A throwaway venv with pipx, uv and build from PyPI (pip's cache)."""
    home = tmp_path_factory.mktemp("tools")
    venv.create(home, with_pip=True)
    check_run(
        [str(home / "bin" / "python"), "-m", "pip", "install", "--quiet", "pipx", "uv"],
        home,
        newcomer_environment(PIP_DISABLE_PIP_VERSION_CHECK="1"),
        timeout=600,
    )
    return home / "bin"


def run_the_installed_demo(program: Path, work: Path, env: dict[str, str], with_tour: bool) -> str:
    """`gdpr-sweep demo` and `migrate` from the installed command (and the tour the demo
    prints: its `run` creates the state database from the package's migrations)."""
    work.mkdir()
    demo = check_run([str(program), "demo"], work, env, timeout=300)
    tour = printed_tour(demo.stdout)
    assert tour and tour[0].startswith("export GDPR_SWEEP_KEY=")
    if with_tour:
        check_run(["bash", "-c", "set -eu\n" + "\n".join(tour)], work, env, timeout=600)
        assert (work / "gdpr-sweep-demo" / "export.json").is_file()
    migrate = check_run(
        [str(program), "migrate", "-c", "gdpr-sweep-demo/gdpr-sweep.toml"], work, env, timeout=300
    )
    assert "state database at revision" in migrate.stdout
    return demo.stdout


def pipx_install(tools: Path, base: Path) -> str:
    source = copy_repository(base / "source")
    env = newcomer_environment(
        PIPX_HOME=str(base / "pipx-home"),
        PIPX_BIN_DIR=str(base / "pipx-bin"),
        PIPX_MAN_DIR=str(base / "pipx-man"),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    check_run([str(tools / "pipx"), "install", "."], source, env, timeout=600)
    shutil.rmtree(source)
    # pipx's bin folder on PATH: the tour names the command by its bare name.
    env["PATH"] = f"{base / 'pipx-bin'}:{env['PATH']}"
    return run_the_installed_demo(base / "pipx-bin" / "gdpr-sweep", base / "work", env, True)


def uv_tool_install(tools: Path, base: Path) -> str:
    source = copy_repository(base / "source")
    env = newcomer_environment(
        UV_TOOL_DIR=str(base / "uv-tools"),
        UV_TOOL_BIN_DIR=str(base / "uv-bin"),
        UV_PYTHON_DOWNLOADS="never",
    )
    check_run(
        [str(tools / "uv"), "tool", "install", "--python", sys.executable, "."],
        source,
        env,
        timeout=600,
    )
    shutil.rmtree(source)
    return run_the_installed_demo(base / "uv-bin" / "gdpr-sweep", base / "work", env, False)


@pytest.mark.slow
@skip_slow
def test_pipx_and_uv_tool_install_then_the_demo_runs_from_the_installed_command(tools, tmp_path):
    (tmp_path / "pipx").mkdir()
    (tmp_path / "uv").mkdir()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        by_pipx = pool.submit(pipx_install, tools, tmp_path / "pipx")
        by_uv = pool.submit(uv_tool_install, tools, tmp_path / "uv")
        pipx_demo, uv_demo = by_pipx.result(), by_uv.result()
    assert "rows due under" in pipx_demo and "rows due under" in uv_demo
    # On PATH: the bare name. Not on PATH: the installed command's path.
    assert "\n  gdpr-sweep run -c gdpr-sweep-demo/gdpr-sweep.toml" in pipx_demo
    assert f"\n  {tmp_path / 'uv' / 'uv-bin' / 'gdpr-sweep'} run -c" in uv_demo


@pytest.mark.slow
@skip_slow
def test_the_wheel_carries_the_demo_config_migrations_and_licence(tools, tmp_path):
    source = copy_repository(tmp_path / "source")
    check_run(
        [str(tools / "uv"), "build", "--wheel", "--out-dir", str(tmp_path / "dist")],
        source,
        newcomer_environment(UV_PYTHON_DOWNLOADS="never", UV_PYTHON=sys.executable),
        timeout=600,
    )
    (wheel,) = (tmp_path / "dist").glob("gdpr_sweep-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = archive.read(metadata_name).decode("utf-8")
    migrations = sorted(p.name for p in (ROOT / "migrations" / "versions").glob("*.py"))
    assert migrations
    expected = {
        "gdpr_sweep/demo/config.toml",
        "gdpr_sweep/migrations/env.py",
        "gdpr_sweep/migrations/script.py.mako",
        *(f"gdpr_sweep/migrations/versions/{name}" for name in migrations),
    }
    assert expected <= names, expected - names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), sorted(names)
    assert not any(n.startswith(("tests/", "bench/")) for n in names)
    assert "License-Expression: MIT" in metadata
    assert f"Project-URL: Repository, {REPOSITORY}" in metadata
    assert "Classifier: Programming Language :: Python :: 3.11" in metadata

"""The HTML report in a real browser: Debian's chromium, headless, driven by Playwright
(its own browser download is not used: `executable_path` points at the system's).

The demo's report, after two sweeps, must render with no console error and no network
request (every request is recorded; only the file:// document itself is allowed), its
charts must be there with a size, a screenshot is written, and print-to-PDF works.
Without chromium or Playwright the test skips on a laptop and fails under CI=true
(`.ci/start-databases` installs chromium).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import IN_CI, run_cli

CHROMIUM = os.environ.get("GDPR_SWEEP_TEST_CHROMIUM", "/usr/bin/chromium")
#: As root chromium needs --no-sandbox; --disable-background-networking keeps its own
#: update and safe-browsing requests out of the network check.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu"]


def _browser_or_skip() -> None:
    reasons = []
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        reasons.append(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reasons.append("Playwright for Python is not installed (pip install -e '.[dev]')")
    if reasons:
        if IN_CI:
            pytest.fail("CI=true but " + "; ".join(reasons))
        pytest.skip("; ".join(reasons))


def demo_report(tmp_path: Path) -> Path:
    """The demo, two sweeps a month apart, and its report as HTML."""
    demo = tmp_path / "demo"
    config = str(demo / "gdpr-sweep.toml")
    assert run_cli("demo", str(demo), "--as-of", "2026-06-01").exit_code == 0
    for day in ("2026-06-01", "2026-07-01"):
        result = run_cli("run", "-c", config, "--as-of", day, "--force", "--quiet")
        assert result.exit_code == 0, result.stderr
    out = tmp_path / "report.html"
    result = run_cli("report", "-c", config, "--as-of", "2026-07-15", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    return out


def test_the_html_report_renders_offline_in_chromium_and_prints(tmp_path):
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    report = demo_report(tmp_path)
    document = report.resolve().as_uri()
    requests: list[str] = []
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1200, "height": 900})
            page = context.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.on(
                "console",
                lambda message: (
                    problems.append(f"console {message.type}: {message.text}")
                    if message.type in ("error", "warning")
                    else None
                ),
            )
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
            page.goto(document, wait_until="load")
            page.wait_for_load_state("networkidle")

            charts = page.query_selector_all("svg.chart")
            sizes = [chart.bounding_box() for chart in charts]
            # At a glance (2) and the demo database (2): history and outlook.
            assert len(charts) == 4, len(charts)
            for size in sizes:
                assert size is not None and size["width"] > 100 and size["height"] > 100, sizes
            bars = page.locator("svg.chart rect[height]").count()
            assert bars > 20, bars
            assert page.title() == "Retention and erasure report"
            assert page.locator("h2", has_text="At a glance").is_visible()

            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

            pdf = tmp_path / "report.pdf"
            page.emulate_media(media="print")
            assert page.locator("nav").is_hidden()  # the print stylesheet applies
            page.pdf(path=str(pdf), format="A4", print_background=True)
            data = pdf.read_bytes()
            assert data[:5] == b"%PDF-" and data.count(b"/Type /Page") > 2
        finally:
            browser.close()
    assert requests == [document], requests
    assert problems == [], problems

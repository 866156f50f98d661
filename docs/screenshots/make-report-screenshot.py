#!/usr/bin/env python3
"""Make docs/report-demo.png, the README's picture of `gdpr-sweep report`.

In a temporary directory: `gdpr-sweep demo` (built for a fixed day), three monthly
sweeps at fixed --as-of dates (so the report has history), `gdpr-sweep report`, then
a screenshot of the report's first screenful with headless chromium. Nothing is drawn
by hand; run it again after changing the report (`make screenshot`).

    .venv/bin/python docs/screenshots/make-report-screenshot.py [--chromium PATH]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "report-demo.png"
DEMO_KEY = "demo-only-key-not-a-secret-0123456789"  # the demo's throwaway audit key


def gdpr_sweep(*args: str, check_codes: tuple[int, ...] = (0,)) -> None:
    env = {**os.environ, "GDPR_SWEEP_KEY": DEMO_KEY, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "gdpr_sweep", *args], env=env, capture_output=True, text=True
    )
    if done.returncode not in check_codes:
        sys.exit(f"gdpr-sweep {' '.join(args)}: exit {done.returncode}\n{done.stderr}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=OUT)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        demo = Path(tmp) / "demo"
        config = str(demo / "gdpr-sweep.toml")
        gdpr_sweep("demo", str(demo), "--as-of", "2026-07-01")
        for day, extra in (
            ("2026-07-01", ["--ticket", "OPS-2026-07"]),
            ("2026-08-01", []),
            ("2026-09-01", []),
        ):
            gdpr_sweep("run", "-c", config, "--as-of", day, "--force", "--quiet", *extra)
        report = Path(tmp) / "report.html"
        gdpr_sweep(
            "report", "-c", config, "--as-of", "2026-09-15", "--since", "2026-06-01",
            "--out", str(report),
        )  # fmt: skip
        subprocess.run(
            [
                options.chromium, "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--hide-scrollbars",
                "--window-size=1100,1560", f"--screenshot={options.out}",
                report.as_uri(),
            ],
            check=True, capture_output=True,
        )  # fmt: skip
    print(f"{options.out}: {options.out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()

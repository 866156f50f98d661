"""The tour `gdpr-sweep demo` ends with: shell lines that work when pasted, in order.

The README's "Start here" shows the same lines (a test keeps them equal). They name
`TOUR_PERSON`, one of the demo's made-up people, on purpose: the identifier is fake
data of the demo, shown so that a newcomer has someone to export and erase. No other
output of gdpr-sweep names a person.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

#: Candidate 1 of demo.db, whatever day it is built for (`rows.DemoData`): made up,
#: with rows in several tables (a case, mails, an attachment, an invoice that is kept).
TOUR_PERSON = "jens.larsen@example.com"
#: Where the tour writes its plan and the export, in the demo's directory.
PLAN_NAME = "plan.json"
EXPORT_NAME = "export.json"
REPORT_NAME = "report.html"


def tour_lines(
    program: Sequence[str], config_file: Path, key_file: Path, key_env: str
) -> list[str]:
    """The tour's shell lines: set the demo key, then plan, sweep, verify, export, erase,
    and the DPO's report.

    `program` is the command as it was invoked (`.venv/bin/gdpr-sweep`, `gdpr-sweep`);
    files are named as `demo` was given them (relative stays relative).
    """
    cli = " ".join(shlex.quote(word) for word in program)
    folder = config_file.parent
    config = shlex.quote(str(config_file))
    plan = shlex.quote(str(folder / PLAN_NAME))
    export = shlex.quote(str(folder / EXPORT_NAME))
    report = shlex.quote(str(folder / REPORT_NAME))
    person = f"email={TOUR_PERSON}"
    return [
        f'export {key_env}="$(cat {shlex.quote(str(key_file))})"',
        f"{cli} check -c {config}",
        f"{cli} plan -c {config} --out {plan}",
        f"{cli} run -c {config}",
        f"{cli} audit verify -c {config}",
        f"{cli} export -c {config} --subject {person} --out {export}",
        f"{cli} erase -c {config} --subject {person}",
        f"{cli} report -c {config} --out {report}",
        # A new command joins the tour with one line here (and the same line in the
        # README's "Start here").
    ]

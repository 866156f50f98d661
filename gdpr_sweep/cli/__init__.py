"""The command line: parse options, call one core function, render, choose the exit code.

`app` (the Typer app) and `main` (the console script `gdpr_sweep.cli:main`) are what
may be imported from here: by `gdpr_sweep.__main__`, the entry point and tests. The
core never imports the CLI. Inside: `app` registers the commands of `sweep`,
`sweep_run`, `subject`, `hold` and `audit`; those share `options` and the one error
handler in `errors` (plus `files` and `signals`), and print through `gdpr_sweep.render`.

Errors are turned into one line on stderr and the exit code SPEC gives them, in one
place (`errors.errors_to_exit_codes`); `--debug` shows the traceback of internal
errors. Usage errors from Click are reduced to one line as well (`OneLineErrors`).

Modules only some commands need (erasure, export, replay, scan, metrics, migrations,
Rich) are imported by those commands: the nightly `run --quiet` starts without them.
"""

from .app import app, main

__all__ = ["app", "main"]

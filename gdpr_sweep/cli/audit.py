"""`audit`: the hash-chained audit trail (list, show, find a person, verify, rotate the key)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..config import Config, load_config
from ..errors import ConfigError, Refused, UsageError
from ..formats import with_format
from ..keys import OLD_KEYS_ENV, keyring
from ..render.audit import (
    print_audit_run,
    print_audit_runs,
    rotation_summary,
    run_document,
    runs_document,
    verification_document,
    verification_summary,
)
from ..render.console import dumps, make_console
from ..state.chain import parse_head
from ..state.chain_verify import ChainVerification
from ..state.store import StateStore
from ..sweep_options import StopRequest
from .errors import Commands
from .options import (
    ConfigOption,
    JsonOption,
    JsonResultOption,
    SubjectOption,
    WaitLockOption,
    duration,
)
from .root import OneLineErrors
from .signals import stop_on_signals

audit_app = Commands(
    cls=OneLineErrors,
    no_args_is_help=True,
    help="The audit trail: every run and batch, hash-chained.\n\nExample:\n\n"
    "    gdpr-sweep audit list; gdpr-sweep audit show 42; gdpr-sweep audit verify",
)


@audit_app.command("list")
def audit_list(
    config_path: ConfigOption = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", metavar="N", help="How many runs.", min=1)
    ] = 50,
    as_json: JsonOption = False,
) -> None:
    """List the most recent runs, newest first.

    Example:

        gdpr-sweep audit list -n 10
    """
    config = load_config(config_path)
    with StateStore(config, None) as store:
        runs = store.runs(limit)
        approvals = store.approvals([run["id"] for run in runs])
    if as_json:
        typer.echo(dumps(runs_document(runs, config.sweep.tz, approvals)))
    else:
        print_audit_runs(make_console(), runs, config.sweep.tz, approvals)


@audit_app.command("show")
def audit_show(
    run_id: Annotated[int, typer.Argument(metavar="RUN", help="A run id from `audit list`.")],
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one run and every audit entry it wrote.

    Example:

        gdpr-sweep audit show 42
    """
    config = load_config(config_path)
    with StateStore(config, None) as store:
        run, entries = store.run(run_id)
        approval = store.approvals([run_id]).get(run_id)
    if run is None:
        raise UsageError(f"RUN: no run {run_id}")
    if as_json:
        typer.echo(dumps(run_document(run, entries, config.sweep.tz, approval)))
    else:
        print_audit_run(make_console(), run, entries, config.sweep.tz, approval)


@audit_app.command("find")
def audit_find(
    subject: SubjectOption,
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Answer "was this person erased?" by hashing the identifier again.

    The trail stores only a keyed hash of each erased or exported subject; this hashes
    KIND=VALUE with the same key and lists the runs that name it, newest first (with the
    old keys in GDPR_SWEEP_OLD_KEYS too: runs from before a key rotation).

    Example:

        gdpr-sweep audit find --subject email=person@example.com
    """
    from ..subject import parse_subject, subject_hash

    config = load_config(config_path)
    kind, _column, value = parse_subject(subject, config)
    ring = keyring(config)
    hashed = subject_hash(ring[0], kind, value)
    with StateStore(config, ring[0], ring) as store:
        runs = store.runs_for_subject([subject_hash(k, kind, value) for k in ring])
        approvals = store.approvals([run["id"] for run in runs])
    if as_json:
        found = {"subject": hashed, **runs_document(runs, config.sweep.tz, approvals)}
        typer.echo(dumps(with_format("audit find", found)))
    elif not runs:
        typer.echo(f"No run names subject {hashed[:24]}…")
    else:
        print_audit_runs(make_console(), runs, config.sweep.tz, approvals)


@audit_app.command("verify")
def audit_verify(
    config_path: ConfigOption = None,
    head: Annotated[
        str | None,
        typer.Option(
            "--head",
            metavar="HEAD",
            help="A head printed earlier (N:digest): exit 5 if the chain no longer holds it.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonResultOption = False,
) -> None:
    """Check the audit trail's hash chain; exit 5 if any entry or run was edited or removed.

    The runs table is sealed into the chain too. `--json` prints the chain's head;
    kept elsewhere (a log line per run), `--head HEAD` later proves that nothing was
    cut off the end since. Entries written before a key rotation are checked with the
    old keys in GDPR_SWEEP_OLD_KEYS; a segment whose key is not there is named, not
    checked (exit 2).

    Example:

        gdpr-sweep audit verify || echo "audit trail altered" | mail -s gdpr-sweep dpo
    """
    if head is not None:
        try:
            parse_head(head)
        except ValueError as exc:
            raise UsageError(f"--head: {exc}") from None
    config = load_config(config_path)
    ring = keyring(config)
    with StateStore(config, ring[0], ring) as store:
        verification = store.verify_chain(head=head)
        current = store.head()
    if as_json:
        typer.echo(dumps(verification_document(verification, current, head)))
    _refuse_unless_intact(verification, config, head)
    if not as_json:
        typer.echo(verification_summary(verification, current))


def _refuse_unless_intact(
    verification: ChainVerification, config: Config, head: str | None
) -> None:
    """Exit 5 for an altered trail; exit 2 for entries or a head no key at hand checks."""
    checked, broken, unchecked = (
        verification.checked,
        verification.broken,
        verification.unchecked,
    )
    if broken is not None:
        where = f"entry {broken.entry_id} " if broken.entry_id is not None else ""
        raise Refused(
            f"audit trail altered: {where}{broken.reason} ({checked} entries before it verify)"
        )
    name = config.sweep.hash_key_env
    if unchecked:
        raise ConfigError(
            f"{OLD_KEYS_ENV}: "
            + "; ".join(s.describe(name) for s in unchecked)
            + f"; the other {checked} entries verify"
        )
    if verification.head_unchecked:
        raise ConfigError(
            f"{OLD_KEYS_ENV}: the head {head} lies in entries written with a key not in "
            f"{OLD_KEYS_ENV}: not checked; the {checked} entries verify"
        )


@audit_app.command("rotate-key")
def audit_rotate_key(
    wait_lock: WaitLockOption = None,
    config_path: ConfigOption = None,
    as_json: JsonResultOption = False,
) -> None:
    """Make GDPR_SWEEP_KEY (the new key) the state database's key.

    The key it was written with must be in GDPR_SWEEP_OLD_KEYS (comma-separated; exit 2
    and nothing written otherwise). Under the sweep lock, once the whole chain verifies
    (exit 5 if not), one transaction re-seals every hold's and erased subject's key
    under the new key and appends a `key-rotated` entry. Keep the old key in
    GDPR_SWEEP_OLD_KEYS: it still verifies the entries it wrote and matches `audit find`
    and `replay` records made before. Again with the same keys: nothing to do.

    Example:

        GDPR_SWEEP_KEY=$NEW GDPR_SWEEP_OLD_KEYS=$OLD gdpr-sweep audit rotate-key
    """
    from ..state.rotation import rotate_key

    config = load_config(config_path)
    stop = StopRequest()
    with stop_on_signals(stop):
        result = rotate_key(config, wait=duration("--wait-lock", wait_lock), stop=stop)
    name = config.sweep.hash_key_env
    if as_json:
        typer.echo(dumps(result.to_json()))
    else:
        typer.echo(rotation_summary(result, name, OLD_KEYS_ENV))
    for segment in result.unchecked:
        typer.echo(f"note: {segment.describe(name)}", err=True)

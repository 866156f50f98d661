"""Tables of the state database (the Alembic migrations create exactly these)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("command", sa.String(20), nullable=False),  # run | apply | erase
    # ISO 8601 UTC (earlier versions: some rows in local time with offset; times.py)
    sa.Column("as_of", sa.String(40), nullable=False),
    sa.Column("config_digest", sa.String(80), nullable=False),
    sa.Column("plan_digest", sa.String(80)),
    sa.Column("user_name", sa.String(120), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("tool_version", sa.String(40), nullable=False),
    sa.Column("started_at", sa.String(40), nullable=False),  # ISO 8601 UTC
    sa.Column("finished_at", sa.String(40)),
    # running | completed | partial | failed | refused | interrupted
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("summary", sa.Text),  # JSON: counts per database and rule, failures
    sa.Column("subject_hash", sa.String(100)),  # erase/export: keyed hash, never the value
    sa.Index("ix_runs_subject_hash", "subject_hash"),
)

audit_entries = sa.Table(
    "audit_entries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("recorded_at", sa.String(40), nullable=False),  # ISO 8601 UTC
    # run-start | batch-start | batch | rule-done | run-end | recovered | ...
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("database_name", sa.String(64)),
    sa.Column("rule_id", sa.String(100)),
    sa.Column("table_name", sa.String(257)),
    sa.Column("action", sa.String(20)),
    sa.Column("rows", sa.BigInteger),
    sa.Column("key_from", sa.String(128)),  # batch key range (exclusive lower bound)
    sa.Column("key_to", sa.String(128)),  # ... inclusive upper bound
    sa.Column("details", sa.Text),  # JSON, no personal values
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("entry_hash", sa.String(64), nullable=False, unique=True),
    sa.Index("ix_audit_entries_run_id", "run_id"),
    sa.Index("ix_audit_entries_kind", "kind", "database_name"),
)

holds = sa.Table(
    "holds",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("database_name", sa.String(64), nullable=False),
    sa.Column("table_name", sa.String(257), nullable=False),
    # A single integer key, in clear (it is not personal). Any other key (text, UUID,
    # composite) may be personal: it is only in `row_key_sealed`, AES-GCM under a key
    # derived from the hash key (holds/sealing.py), and shown as `row_key_label`.
    sa.Column("row_key", sa.BigInteger),
    sa.Column("row_key_sealed", sa.Text),
    # How the key may be shown (hold list, audit): the integers, or the keyed-hash label.
    sa.Column("row_key_label", sa.String(128)),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(255), nullable=False),  # user@host
    sa.Column("created_at", sa.String(40), nullable=False),  # ISO 8601 UTC
    sa.Column("until", sa.Date),  # the hold lapses after this local date
    sa.Column("released_at", sa.String(40)),
    sa.Column("released_by", sa.String(255)),
    sa.Index("ix_holds_target", "database_name", "table_name"),
)

erased_rows = sa.Table(
    "erased_rows",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("database_name", sa.String(64), nullable=False),
    sa.Column("table_name", sa.String(257), nullable=False),
    sa.Column("action", sa.String(20), nullable=False),  # deleted | anonymised
    # JSON list of the primary-key values; a key that is not made of integers may be
    # personal, so it is stored as a keyed hash and cannot be replayed.
    sa.Column("row_key", sa.Text, nullable=False),
    sa.Column("replayable", sa.Boolean, nullable=False),
    sa.Column("strategies", sa.Text),  # JSON [[column, strategy], ...] for anonymised rows
    sa.Index("ix_erased_rows_run", "run_id"),
)

erased_subjects = sa.Table(
    "erased_subjects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("database_name", sa.String(64), nullable=False),
    sa.Column("table_name", sa.String(257), nullable=False),  # the subject root
    # The root row's key, sealed (it may be personal), and a keyed fingerprint of its
    # identifier values: replay acts only on the same person, never on a reused key.
    sa.Column("row_key_sealed", sa.Text, nullable=False),
    sa.Column("fingerprint", sa.String(80), nullable=False),
    # A root row anonymised (not deleted): the fingerprint of what it was left with, so
    # a replay without a restore in between knows it as already erased.
    sa.Column("anonymised_fingerprint", sa.String(80)),
    sa.Index("ix_erased_subjects_run", "run_id"),
)

run_subjects = sa.Table(
    "run_subjects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False),
    # The keyed hash of each identifier of the erased person (erased by CPR, found by
    # e-mail), as `runs.subject_hash` holds the one given.
    sa.Column("subject_hash", sa.String(100), nullable=False),
    sa.Index("ix_run_subjects_hash", "subject_hash"),
)

state_meta = sa.Table(
    "state_meta",
    metadata,
    # `key_check`: a keyed digest of a fixed label (never the key), so a command given
    # another key is refused before it writes anything.
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
)

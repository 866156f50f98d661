"""Erased persons in the state database: the root rows an erasure removed or
anonymised (sealed key, fingerprint), the keyed hash of each identifier they had, and
the runs that name a subject (`audit find`, `replay`, `export`).

Nothing here is a personal value: keys are sealed, identifiers keyed hashes.
`StateStore` has them as a mixin.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .models import erased_rows, erased_subjects, run_subjects, runs

if TYPE_CHECKING:
    from ..config import Config


class ErasedSubjects:
    """`StateStore`'s erased persons: a mixin, `self` is the store (see `store.py`)."""

    # What StateStore (store.py) provides.
    config: Config
    engine: sa.Engine
    hmac_key: bytes | None
    _write_lock: threading.Lock

    def erased_since(self, since: str) -> list[dict[str, Any]]:
        """Row keys recorded by erasures of versions before 0.2 (no fingerprint; never
        replayed, only counted) that started at or after `since` (ISO), oldest first."""
        return self._recorded_since(erased_rows, since)

    def record_erased_subjects(
        self,
        run_id: int,
        database: str,
        roots: list[dict[str, Any]],
        identifier_hashes: list[str],
    ) -> None:
        """Record, once an erasure committed, its root rows (sealed key, fingerprint) and
        the keyed hash of every identifier they had."""
        with self._write_lock, self.engine.begin() as connection:
            if roots:
                connection.execute(
                    erased_subjects.insert(),
                    [{"run_id": run_id, "database_name": database, **root} for root in roots],
                )
            known = set(
                connection.execute(
                    sa.select(run_subjects.c.subject_hash).where(run_subjects.c.run_id == run_id)
                ).scalars()
            )
            fresh = sorted(set(identifier_hashes) - known)
            if fresh:
                connection.execute(
                    run_subjects.insert(),
                    [{"run_id": run_id, "subject_hash": h} for h in fresh],
                )

    def erased_subjects_since(self, since: str) -> list[dict[str, Any]]:
        """Root rows recorded by erasures started at or after `since` (ISO), oldest first."""
        return self._recorded_since(erased_subjects, since)

    def _recorded_since(self, recorded: sa.Table, since: str) -> list[dict[str, Any]]:
        """The rows of `recorded` written by erasures started at or after `since`."""
        with self.engine.connect() as connection:
            result = connection.execute(
                sa.select(recorded, runs.c.started_at)
                .join(runs, runs.c.id == recorded.c.run_id)
                .where(runs.c.command == "erase", runs.c.started_at >= since)
                .order_by(recorded.c.id)
            ).mappings()
            return [dict(row) for row in result]

    def runs_for_subject(self, subject_hash: str | list[str]) -> list[dict[str, Any]]:
        """Runs that name the subject, newest first: by the identifier given, or by any
        identifier the erased person's row had. Several hashes: the subject hashed with
        each key of the keyring (runs from before a rotation recorded it under an older
        key)."""
        hashes = [subject_hash] if isinstance(subject_hash, str) else list(subject_hash)
        with self.engine.connect() as connection:
            by_identifier = sa.select(run_subjects.c.run_id).where(
                run_subjects.c.subject_hash.in_(hashes)
            )
            rows = connection.execute(
                sa.select(runs)
                .where(sa.or_(runs.c.subject_hash.in_(hashes), runs.c.id.in_(by_identifier)))
                .order_by(runs.c.id.desc())
            ).mappings()
            return [dict(row) for row in rows]

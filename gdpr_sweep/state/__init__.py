"""The tool's own state database: runs, the audit trail, holds' rows, erased persons,
key rotation and the lock.

Alembic-migrated (SQLite by default, PostgreSQL supported); migrations run on first
use. Nothing in it is a personal value: counts, keys, rule ids and keyed hashes only.

- `store.py`: `StateStore`, the object callers use (a context manager): it opens and
  migrates the state database, checks the key, appends to the audit trail, and
  delegates to the modules below;
- `runs.py`: runs (start, finish, interrupted, their unconfirmed batches, reading);
- `erased.py`: erased persons' root rows and identifier hashes, runs by subject;
- `chain.py`: the hash chain's primitives (entry hash, run seal, head, key check);
- `chain_verify.py`: verifying the chain (segments, heads, sealed runs);
- `rotation.py`: `audit rotate-key`;
- `engine.py`: the state engine and one-line failures; `stamps.py`: who and when;
- `models.py` (the tables), `migrate.py` (Alembic, under a migration lock), `lock.py`
  (the state lock: shared by sweeps, exclusive for a key rotation), `tenant_lock.py`
  (the lock per tenant, per live process, and for migrating).

Anything in gdpr_sweep may import from here (most only `store.StateStore`,
`lock.sweep_lock` and `models`); nothing in state/ imports the modules that use it,
except `rotation.py`, which reseals holds' keys with the holds package's sealing
(imported inside the function).
"""

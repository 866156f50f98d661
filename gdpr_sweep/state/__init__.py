"""The tool's own state database: runs, the audit trail, and the lock.

Alembic-migrated (SQLite by default, PostgreSQL supported); migrations run on first
use. Nothing in it is a personal value: counts, keys, rule ids and keyed hashes only.
"""

"""Render plain result objects for people: Rich tables on a terminal, plain text otherwise.

The only package besides `gdpr_sweep.cli` that knows about Rich and Typer; only the CLI
imports it (from its modules: `console`, `sweep`, `audit`, `subject`). Nothing rendered
here holds a value read from a row: plans and findings carry counts, names of tables,
columns and rules, and dates computed from the config; a person only as a keyed hash.
"""

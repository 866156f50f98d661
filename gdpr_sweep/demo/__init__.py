"""Build the demo: a SQLite database modelled on the seeds and a config that sweeps it.

The schema follows seeds 000 (a career/recruitment consultancy: candidates, counselling
and outplacement cases, consultant mail, CVs, recruitment, invoices) and 002 (a
management consultancy: customers, contact persons, engagements, projects, CCTV,
newsletter sign-ups). Every person in it is made up: random Danish first and last
names, e-mails at example.dk/example.com, phone numbers "+45 0000 NNNN", CPR numbers
with a 9 serial and addresses on streets that do not exist.

The data is deterministic (`random.Random(2024)`) and relative to `today`: whatever the
day, every rule has rows that are due, rows that are not, and (where the rule has an
exception or an `only` filter) rows that would be due but are kept by it. No rule is
due for more than about 45% of its table, so `gdpr-sweep run` passes the default
`max_fraction = 0.5` guard on the demo without `--force`.

The package: `vocabulary` (the fake names and texts), `tables` (the schema),
`rows` (the deterministic rows), `config.toml` with `config` (the config that sweeps
it) and `build` (the files `gdpr-sweep demo` writes). The CLI's `demo` command,
the tests and the benchmarks import these submodules; this package exports nothing.
"""

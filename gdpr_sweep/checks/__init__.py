"""`check`'s findings: the config against a reflected database, one idea per module.

- `findings`: `Finding` and `raise_findings` (plan, erase, export and scan stop on the
  first error finding; render prints them);
- `rule_checks`: one `[[rules]]` entry (`check_rule`);
- `strategy_checks`: one strategy into one column (`strategy_problems`);
- `subject_checks`: `[subject]` (`check_subject`) and the subject graph's warnings;
- `clock_checks`: clock values that cannot be read as a point in time;
- `check_config`: `gdpr-sweep check` over every selected database (`check_config`,
  `check_database`, `CheckResult`).

Any module may import these submodules; this package itself exports nothing.
"""

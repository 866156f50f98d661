"""`gdpr-sweep init`: a first config drafted from a live schema, one idea per module.

- `facts`: each table's personal-looking columns (with their data category), clock
  columns and keys, and the counts a draft may read (NULLs in a sample, values that
  are keys of another table) — never a value;
- `subject`: the likely `[subject]` root, its links, references and parents;
- `rules`: a rule stub per personal table: clock, action, a strategy per column;
- `toml_text`: the TOML, every choice commented (values encoded by tomli-w);
- `build`: `--url` / `--url-env` (`draft_source`) and the whole draft (`draft_config`).

The CLI imports the names below.
"""

from .build import Draft, DraftSource, draft_config, draft_source

__all__ = ["Draft", "DraftSource", "draft_config", "draft_source"]

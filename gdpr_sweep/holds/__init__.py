"""Legal holds: single rows that no rule and no erasure may touch while the hold lasts.

A hold names a database, a table and one row by its whole primary key, with who, why,
since when and (optionally) until when; a hold with `until` lapses by itself after that
local date. Holds live in the state database. The sweep and erasure read the active
holds once, at their as-of, and exclude the held keys in SQL (`held_predicate`),
reporting them as held. Four things make a hold hold:

- **The table's name is the one the rules use.** Rules and erasure look holds up by
  `hold_name()` of the reflected table: `cctv`, not `public.cctv` (PostgreSQL),
  `main.cctv` (SQLite) or `<database>.cctv` (MariaDB). `hold add` turns a name
  qualified with the default schema into the bare name, keeps any other schema, and
  refuses (exit 2) a name it cannot find — a hold stored under another spelling would
  be silently ignored and the row swept.
- **It is written under the sweep lock.** A sweep reads the holds once, when it starts;
  a hold written while it runs would only count from the next run. So `hold add` (and
  `hold release`) take the sweep lock too: exit 4 while a sweep runs, or wait for it
  with `--wait-lock`. The row's existence is checked again under the lock.
- **The key matches exactly.** Any key type (integer, text, UUID, date, composite) is
  converted to the column's type and bound as a parameter, and compared with
  `matching.equals`, so `'Anna@x'` never holds (or is found as) `'anna@x'` under a
  case-insensitive MariaDB or SQLite collation.
- **A key that may be personal is never stored readable.** A single integer key is
  stored in clear (`row_key`), as before. Any other key (an e-mail address, a UUID, a
  composite) is sealed: AES-256-GCM under a key derived from the hash key (HKDF-SHA256
  with its own label, so it is never the HMAC key itself), a random 96-bit nonce per
  hold, and the database and table as associated data (a sealed key copied onto
  another hold does not open). It is opened only to bind it; `hold list` and the audit
  trail show it only as its keyed-hash label (`keys.key_label`), the same label the
  sweep's batch entries use. A bare hash would not do: the sweep must bind the value
  itself, and a hash of a guessable key (an e-mail address) is only as secret as the key.

The package, by idea:

- `store.py`: holds in the state database: `add_hold`, `release_hold`, `list_holds`,
  and `active_holds` (the keys held on a day, opened, for the sweep, plans, erasure);
- `rows.py`: the rows a hold names: `held_predicate` (the SQL that excludes them),
  `hold_name` and `resolve_table` (the table's name), finding the row to hold;
- `keys.py`: a hold's key as given on the command line, typed to its columns;
- `sealing.py`: sealing a key that may be personal (AES-GCM under a key derived from
  the hash key), also used for erased persons' root keys.

Anything in gdpr_sweep may import from here (rules, plans, erasure, replay, the CLI,
key rotation); `rows.py`, `keys.py` and `sealing.py` import nothing of the state
database, so rules can use `held_predicate` without it.
"""

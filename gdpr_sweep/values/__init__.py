"""Column values as JSON for `export`: one documented, exact encoding per column type.

Each column is read through a `ColumnReader`: the SQL expressions to select for it and
the function turning what the driver returns into a JSON value from which the stored
value is recovered exactly (the table in the README's export paragraph):

- integers, booleans, text, ENUM: as they are; finite floats as JSON numbers (the
  shortest text that reads back as the same double), NaN and ±infinity as the strings
  "NaN", "Infinity", "-Infinity";
- DECIMAL / NUMERIC: exact decimal text ("1234.50", "NaN");
- dates, times, timestamps: ISO 8601 text (`date.isoformat()` and friends); a
  PostgreSQL value Python cannot hold (infinity, -infinity, BC, year 10000+,
  24:00:00) as PostgreSQL writes it;
- PostgreSQL interval: ISO 8601 duration as PostgreSQL writes it in `IntervalStyle
  iso_8601` ("P1M2DT-3H", months and days kept apart: a month is not 30 days);
- MariaDB TIME: the signed duration "[-]HH:MM:SS[.ffffff]" (hours may pass 23:
  "30:00:00", "-01:30:00.250000");
- binary (bytea, BLOB, VARBINARY): {"base64": "..."};
- json, jsonb, MariaDB JSON, SQLite JSON: the JSON value itself, its text copied
  unchanged (a SQL NULL and a JSON `null` both export as null);
- uuid, inet, cidr, macaddr, money and any type without a JSON form: the engine's text;
- arrays: JSON lists (nested for several dimensions) of their elements' encodings;
- ranges: {"lower": ..., "upper": ..., "bounds": "[)"} with the bounds in their
  subtype's encoding (null = unbounded), or {"empty": true}; multiranges: lists of them;
- MariaDB SET: the list of its members, in the column's order; BIT(n): the unsigned
  integer; YEAR: the integer.

The package, by idea:

- `encoding.py`: a value as the driver returns it, as JSON (`encode_value`), and a
  row as a JSON object (`RowEncoder`);
- `columns.py`: how each column is selected and decoded on each engine
  (`ColumnReader`, `column_reader`, `type_name`);
- `tables.py`: per database and table: the session's text forms (`prepare_session`),
  every column's reader (`readers`), and the order rows are read in (`row_order`).

Only `export` (a person's rows as JSON) imports it; it imports nothing of gdpr_sweep.
"""

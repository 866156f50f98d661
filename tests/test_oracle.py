"""Randomised oracle test: `run` changes exactly the rows an independent computation says are due.

On each engine and for each table shape (a pytest parameter, so a failure names its
shape), hypothesis builds a table with random keys and clocks around the cutoff, writes
a config with one random rule, and runs the real CLI:

- `plan --as-of A --json` must report `due` equal to the oracle's count;
- `run --as-of A --force --json` must change exactly the oracle's rows: delete them
  (delete rules) or set `note` to NULL (anonymise, `columns = { note = "null" }`), and
  leave every other row, and every other column, exactly as it was.

The oracle (`tests/oracle.py`) is written from SPEC, not from gdpr_sweep's code. Each row
carries a `rid` column the rule never names, so rows are compared by `rid` whatever the
primary key looks like; on SQLite each value is compared through `quote()`, so a change
of storage class (`1` vs `'1'`) counts as a change.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from tests.conftest import TargetDb, run_cli, write_config
from tests.oracle import (
    UNITS,
    Period,
    RuleSpec,
    add_period,
    as_of_local_date,
    clock_date,
    due_rows,
)

TZ_NAME = "Europe/Copenhagen"
TZ = ZoneInfo(TZ_NAME)
TABLE = "item"
RULE_ID = "oracle"
#: Shrinking re-runs the CLI hundreds of times (minutes per failing shape); the failure
#: message lists the offending rows, so it is off unless ORACLE_SHRINK=1.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate]
if os.environ.get("ORACLE_SHRINK") == "1":
    PHASES.append(Phase.shrink)
EXAMPLES = settings(
    max_examples=int(os.environ.get("ORACLE_EXAMPLES", "15")),
    deadline=None,
    database=None,
    phases=PHASES,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# --- shapes -------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """One table shape; each is its own pytest parameter so failures are attributable."""

    name: str
    engines: tuple[str, ...]
    key: str  # int | text | text_ci | uuid | int_text | int_ts
    clock: str = "std"  # std | sqlite_text | sqlite_datetime_mixed | unixepoch | zero_date
    #: status near misses that only a collation hides ('closed ', and a
    #: case/accent-insensitive collation on the status column)
    collation_near_misses: bool = False


ALL = ("sqlite", "postgresql", "mariadb")
SHAPES = [
    # Key shapes: clock DATE or naive DATETIME, status in the database's default collation.
    Shape("key_int", ALL, "int"),
    Shape("key_text", ALL, "text"),
    # Text key in a collation whose order differs from Python's: SQLite NOCASE,
    # MariaDB utf8mb4_general_ci (keys unique case- and accent-insensitively),
    # PostgreSQL "en-x-icu" ('a' < 'B').
    Shape("key_text_collated", ALL, "text_ci"),
    Shape("key_uuid", ALL, "uuid"),
    Shape("key_int_text", ALL, "int_text"),
    Shape("key_int_timestamp", ALL, "int_ts"),
    # Clock shapes (integer key).
    Shape("clock_sqlite_text", ("sqlite",), "int", clock="sqlite_text"),
    Shape("clock_sqlite_datetime_mixed", ("sqlite",), "int", clock="sqlite_datetime_mixed"),
    Shape("clock_sqlite_unixepoch", ("sqlite",), "int", clock="unixepoch"),
    Shape("clock_mariadb_zero_date", ("mariadb",), "int", clock="zero_date"),
    # `only` on a case-insensitive column (MariaDB utf8mb4_general_ci, SQLite NOCASE
    # sometimes, PostgreSQL a nondeterministic ICU collation sometimes) and trailing
    # spaces (MariaDB compares PAD SPACE even in utf8mb4_bin).
    Shape("only_collation", ALL, "int", collation_near_misses=True),
]
CASES = [
    pytest.param(engine, shape, id=f"{engine}-{shape.name}")
    for shape in SHAPES
    for engine in shape.engines
]

KEY_ALPHABET = ["a", "b", "A", "B", "aa", "ö", "Ö", "o", "z", "é", "e", "1", "_", "-"]
STATUS_BASE = ["closed", "closed", "done", "CLOSED", "Closed", "clösed", "open", "Done", None]
STATUS_COLLATION = ["closed ", "done ", "CLOSED ", " closed", "DONE", "dóne"]
PG_CI_COLLATION = "oracle_ci"


def fold(text: str) -> str:
    """Case- and accent-insensitive, like utf8mb4_general_ci (and stricter than NOCASE)."""
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


# --- scenarios ----------------------------------------------------------------------


@dataclass
class Scenario:
    engine: str
    shape: str
    key_kind: str
    rule: RuleSpec
    only_toml: str | None  # the `only` value as written in TOML
    as_of: str
    batch_size: int
    key_types: list[str]  # per key column: int32 | int64 | text | uuid | ts
    key_collation: str | None
    since_type: str  # date | datetime | text | integer
    status_collation: str | None
    rows: list[dict] = field(default_factory=list)

    @property
    def key_names(self) -> list[str]:
        return [f"k{i + 1}" for i in range(len(self.key_types))]

    @property
    def columns(self) -> list[str]:
        return [*self.key_names, "rid", "since", "status", "held", "note"]


def periods() -> st.SearchStrategy[Period]:
    limits = {"days": 40, "weeks": 12, "months": 30, "years": 12}
    return st.sampled_from(UNITS).flatmap(
        lambda unit: st.builds(Period, st.integers(1, limits[unit]), st.just(unit))
    )


TRICKY_DAYS = [
    dt.date(2024, 2, 29),
    dt.date(2024, 3, 1),
    dt.date(2025, 3, 1),
    dt.date(2026, 3, 1),
    dt.date(2026, 3, 29),  # DST starts
    dt.date(2026, 3, 31),
    dt.date(2026, 10, 25),  # DST ends
    dt.date(2026, 11, 23),
    dt.date(2027, 1, 1),
    dt.date(2028, 3, 1),
]


def as_of_texts(day: dt.date) -> st.SearchStrategy[str]:
    return st.sampled_from(
        [
            day.isoformat(),  # local midnight
            f"{day}T00:00:00",
            f"{day}T12:34:56",
            f"{day}T23:59:59",
            f"{day}T23:30:00+00:00",  # already the next local day
            f"{day}T00:30:00+05:00",  # still the previous local day
        ]
    )


def candidate_days(anchor: dt.date) -> list[dt.date]:
    """Days either side of the cutoff, month ends (for the clamp), and far ones."""
    days = [anchor + dt.timedelta(days=k) for k in range(-4, 5)]
    first = anchor.replace(day=1)
    for month_start in (first, (first - dt.timedelta(days=1)).replace(day=1)):
        nxt = (month_start + dt.timedelta(days=32)).replace(day=1)
        days += [nxt - dt.timedelta(days=k) for k in range(1, 5)]
    days += [anchor - dt.timedelta(days=d) for d in (30, 400, 1900)]
    days.append(anchor + dt.timedelta(days=400))
    return sorted(set(days))


def local_instant(day: dt.date, time: dt.time) -> dt.datetime:
    return dt.datetime.combine(day, time, tzinfo=TZ)


def as_of_instant(text: str) -> dt.datetime:
    if len(text) == 10:
        return local_instant(dt.date.fromisoformat(text), dt.time(0))
    parsed = dt.datetime.fromisoformat(text)
    return parsed.replace(tzinfo=TZ) if parsed.tzinfo is None else parsed


CLOCK_TIMES = [dt.time(0), dt.time(0, 0, 1), dt.time(2, 30), dt.time(12), dt.time(23, 59, 59)]


@st.composite
def clock_values(draw, scenario: Scenario, days: st.SearchStrategy, instant: dt.datetime):
    """One `since` value of the scenario's clock kind (as inserted)."""
    engine, clock = scenario.engine, scenario.since_type
    day = draw(days)
    if draw(st.integers(0, 9)) == 0:
        return None
    if clock == "date":
        if scenario.shape == "clock_mariadb_zero_date" and draw(st.booleans()):
            # the zero date, and partial ones (day or month zero)
            partial = [f"{day.year}-{day.month:02d}-00", f"{day.year}-00-{day.day:02d}"]
            return draw(st.sampled_from(["0000-00-00", "0000-00-00", *partial]))
        return day
    if clock == "datetime" and scenario.shape != "clock_sqlite_datetime_mixed":
        times = [*CLOCK_TIMES]
        if engine != "mariadb":
            times.append(dt.time(23, 59, 59, 999999))
        time = draw(st.one_of(st.sampled_from(times), st.times()))
        if engine == "mariadb":
            time = time.replace(microsecond=0)
        return dt.datetime.combine(day, time)
    if clock == "integer":  # unixepoch
        choice = draw(st.integers(0, 5))
        if choice == 0:
            return draw(st.sampled_from(["", "n/a", day.isoformat(), "15.11.2026"]))
        if choice == 1:
            return int(instant.timestamp()) - 3600 * draw(st.integers(0, 72))
        time = draw(st.sampled_from([*CLOCK_TIMES, dt.time(23, 0), dt.time(1, 0)]))
        return int(local_instant(day, time).timestamp()) + draw(st.sampled_from([0, -1, 1]))
    # SQLite text or DATETIME column holding anything.
    choice = draw(st.integers(0, 9))
    time = draw(st.sampled_from(CLOCK_TIMES))
    epoch = int(local_instant(day, time).timestamp())
    if choice <= 1:
        return day.isoformat()
    if choice == 2:
        sep = draw(st.sampled_from([" ", "T"]))
        frac = draw(st.sampled_from(["", ".000000", ".5"]))
        return f"{day}{sep}{time.isoformat()}{frac}"
    if choice == 3:
        return f"{day}T{time.strftime('%H:%M')}"
    if choice == 4:  # epoch seconds: fixed, of a clock day, or hours before the as-of
        return draw(
            st.sampled_from(
                [1700000000, epoch, int(instant.timestamp()) - 3600 * draw(st.integers(0, 48))]
            )
        )
    if choice == 5:  # julian day numbers and other floats
        return draw(st.sampled_from([2460000.5, 2440587.5 + epoch / 86400, epoch + 0.25]))
    if choice == 6:
        return draw(st.sampled_from(["15.11.2026", "", "unknown", day.strftime("%d/%m/%Y")]))
    if choice == 7:  # ISO-looking, but not a valid date
        return draw(st.sampled_from([f"{day.year}-02-30", f"{day.year}-13-01", "2026-04-31"]))
    return day.isoformat()


def key_values(scenario: Scenario, n: int) -> st.SearchStrategy[list[tuple]]:
    engine = scenario.engine
    ci = scenario.key_collation is not None and engine != "postgresql"

    def text_key(max_size: int = 3) -> st.SearchStrategy[str]:
        return st.lists(st.sampled_from(KEY_ALPHABET), max_size=max_size).map("".join)

    def by(text: str) -> str:
        return fold(text) if ci else text

    kind = scenario.key_kind
    if kind == "int":
        bits = 63 if scenario.key_types[0] == "int64" else 31
        low, high = -(2**bits), 2**bits - 1
        edges = (low, high, low + 1, high - 1, 0, -1, 2**31, -(2**31) - 1)
        ints = st.one_of(
            st.integers(-40, 40),
            st.integers(low, high),
            st.sampled_from([v for v in edges if low <= v <= high]),
        )
        return st.lists(ints.map(lambda v: (v,)), min_size=n, max_size=n, unique=True)
    if kind in ("text", "text_ci"):
        return st.lists(
            text_key(4).map(lambda s: (s,)),
            min_size=n,
            max_size=n,
            unique_by=lambda k: by(k[0]),
        )
    if kind == "uuid":
        return st.lists(st.uuids().map(lambda u: (u,)), min_size=n, max_size=n, unique=True)
    if kind == "int_text":
        return st.lists(
            st.tuples(st.integers(-3, 3), text_key()),
            min_size=n,
            max_size=n,
            unique_by=lambda k: (k[0], by(k[1])),
        )
    assert kind == "int_ts"
    base = dt.datetime(2026, 3, 29, 1, 59, 59)
    micro = [0] if engine == "mariadb" else [0, 1, 999999]
    stamps = st.builds(
        lambda s, us: base + dt.timedelta(seconds=s, microseconds=us),
        st.integers(-2, 3700),
        st.sampled_from(micro),
    )
    return st.lists(
        st.tuples(st.integers(-2, 2), st.one_of(st.sampled_from([base]), stamps)),
        min_size=n,
        max_size=n,
        unique=True,
    )


@st.composite
def scenarios(draw, engine: str, shape: Shape) -> Scenario:
    period = draw(periods())
    day = draw(st.one_of(st.dates(dt.date(2021, 1, 1), dt.date(2030, 12, 31)),
                         st.sampled_from(TRICKY_DAYS)))  # fmt: skip
    as_of = draw(as_of_texts(day))
    a_local = as_of_local_date(as_of, TZ)
    days = candidate_days(add_period(a_local, period, -1))
    # Days whose deadline L + period falls on A - 1, A or A + 1 (one side due, the
    # other not), drawn half the time so every example probes the boundary.
    edge = [d for d in days if abs((add_period(d, period) - a_local).days) <= 1]
    day_values = st.sampled_from(days)
    if edge:
        day_values = st.one_of(st.sampled_from(edge), day_values)

    key_types = {
        "int": [draw(st.sampled_from(["int32", "int64"]))],
        "text": ["text"],
        "text_ci": ["text"],
        "uuid": ["uuid"],
        "int_text": ["int32", "text"],
        "int_ts": ["int32", "ts"],
    }[shape.key]
    key_collation = None
    if shape.key == "text_ci":
        key_collation = {"sqlite": "NOCASE", "mariadb": "utf8mb4_general_ci"}.get(
            engine, "en-x-icu"
        )
    since_type, reading = {
        "std": (draw(st.sampled_from(["date", "datetime"])), "native"),
        "sqlite_text": ("text", "sqlite-text"),
        "sqlite_datetime_mixed": ("datetime", "sqlite-text"),
        "unixepoch": ("integer", "unixepoch"),
        "zero_date": ("date", "native"),
    }[shape.clock]
    status_collation = None
    statuses = list(STATUS_BASE)
    if shape.collation_near_misses:
        statuses += STATUS_COLLATION
        status_collation = {
            "mariadb": "utf8mb4_general_ci",
            "sqlite": draw(st.sampled_from([None, "NOCASE"])),
            "postgresql": draw(st.sampled_from([None, PG_CI_COLLATION])),
        }[engine]

    only_toml, only = draw(
        st.sampled_from(
            [
                (None, None),
                ('"closed"', ("closed",)),
                ('["closed"]', ("closed",)),
                ('["closed", "done"]', ("closed", "done")),
            ]
        )
    )
    rule = RuleSpec(
        action=draw(st.sampled_from(["delete", "anonymise"])),
        period=period,
        only=only,
        unless_true=draw(st.booleans()),
        reading=reading,
    )
    scenario = Scenario(
        engine=engine,
        shape=shape.name,
        key_kind=shape.key,
        rule=rule,
        only_toml=only_toml,
        as_of=as_of,
        batch_size=draw(st.integers(1, 4)),
        key_types=key_types,
        key_collation=key_collation,
        since_type=since_type,
        status_collation=status_collation,
    )
    n = draw(st.integers(0, 24))
    keys = draw(key_values(scenario, n))
    instant = as_of_instant(as_of)
    for rid, key in enumerate(keys, start=1):
        row = dict(zip(scenario.key_names, key, strict=True))
        if shape.key == "uuid" and engine != "postgresql":
            row["k1"] = str(row["k1"])
        row.update(
            rid=rid,
            since=draw(clock_values(scenario, day_values, instant)),
            status=draw(st.one_of(st.just("closed"), st.sampled_from(statuses))),
            held=draw(st.sampled_from([None, True, False])),
            note=draw(st.sampled_from([None, "n", "", "a note of some length"])),
        )
        scenario.rows.append(row)
    return scenario


# --- the database -------------------------------------------------------------------


def key_type(kind: str, engine: str, collation: str | None) -> sa.types.TypeEngine:
    if kind == "int32":
        return sa.Integer()
    if kind == "int64":
        return sa.BigInteger()
    if kind == "text":
        return sa.String(20, collation=collation)
    if kind == "uuid":
        return sa.Uuid() if engine == "postgresql" else sa.CHAR(36)
    assert kind == "ts"
    return sa.DateTime()


SINCE_TYPES = {"date": sa.Date, "datetime": sa.DateTime, "text": sa.Text, "integer": sa.Integer}


def build(engine: sa.Engine, scenario: Scenario) -> None:
    metadata = sa.MetaData()
    table = sa.Table(
        TABLE,
        metadata,
        *(
            sa.Column(
                name,
                key_type(kind, scenario.engine, scenario.key_collation),
                primary_key=True,
                autoincrement=False,
            )
            for name, kind in zip(scenario.key_names, scenario.key_types, strict=True)
        ),
        sa.Column("rid", sa.Integer, nullable=False),
        sa.Column("since", SINCE_TYPES[scenario.since_type]()),
        sa.Column("status", sa.String(20, collation=scenario.status_collation)),
        sa.Column("held", sa.Boolean),
        sa.Column("note", sa.String(100)),
    )
    raw = scenario.shape.startswith("clock_")
    with engine.begin() as connection:
        if scenario.engine != "sqlite":
            connection.exec_driver_sql(f"DROP TABLE IF EXISTS {TABLE}")
        if scenario.status_collation == PG_CI_COLLATION:
            connection.exec_driver_sql(
                f"CREATE COLLATION IF NOT EXISTS {PG_CI_COLLATION} "
                "(provider = icu, locale = 'und-u-ks-level2', deterministic = false)"
            )
        if scenario.shape == "clock_mariadb_zero_date":
            connection.exec_driver_sql("SET SESSION sql_mode = ''")  # accept 0000-00-00
        metadata.create_all(connection)
        if not scenario.rows:
            return
        if not raw:
            connection.execute(table.insert(), scenario.rows)
            return
        # Values exactly as given (epoch integers, floats, zero dates), past SQLAlchemy.
        mark = "?" if scenario.engine == "sqlite" else "%s"
        names = scenario.columns
        sql = f"INSERT INTO {TABLE} ({', '.join(names)}) VALUES ({', '.join([mark] * len(names))})"

        def plain(value: object) -> object:
            if scenario.engine == "sqlite" and isinstance(value, bool):
                return int(value)
            if scenario.engine == "sqlite" and isinstance(value, dt.date):
                return value.isoformat()
            return value

        connection.exec_driver_sql(
            sql, [tuple(plain(row[name]) for name in names) for row in scenario.rows]
        )


def snapshot(engine: sa.Engine, scenario: Scenario) -> dict[int, tuple]:
    """Every row by rid: raw driver values (SQLite: `quote()` of each, storage class too)."""
    names = scenario.columns
    if scenario.engine == "sqlite":
        select = ", ".join(f"quote({name})" for name in names)
    else:
        select = ", ".join(names)
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(f"SELECT rid, {select} FROM {TABLE}").all()
    return {row[0]: tuple(row[1:]) for row in rows}


# --- the test -----------------------------------------------------------------------


def config_body(scenario: Scenario) -> str:
    rule = scenario.rule
    lines = [
        "[[rules]]",
        f'id = "{RULE_ID}"',
        f'table = "{TABLE}"',
        f'action = "{rule.action}"',
        f'after = "{rule.period.text()}"',
        'since = "since"',
        'basis = "oracle test"',
    ]
    if rule.reading == "unixepoch":
        lines.append('since_format = "unixepoch"')
    if scenario.only_toml is not None:
        lines.append(f"only = {{ status = {scenario.only_toml} }}")
    if rule.unless_true:
        lines.append('unless_true = "held"')
    if rule.action == "anonymise":
        lines.append('columns = { note = "null" }')
    return "\n".join(lines) + "\n"


def first_line(text: str) -> str:
    return next((line for line in text.splitlines() if line.strip()), "").strip()


def describe(scenario: Scenario, rids: set[int], a_local: dt.date) -> str:
    out = []
    for row in scenario.rows:
        if row["rid"] in rids:
            day = clock_date(row["since"], scenario.rule.reading, TZ)
            deadline = add_period(day, scenario.rule.period) if day else None
            key = tuple(row[name] for name in scenario.key_names)
            out.append(
                f"  rid={row['rid']} key={key!r} since={row['since']!r} (L={day}, "
                f"L+period={deadline}, A={a_local}) status={row['status']!r} "
                f"held={row['held']!r} note={row['note']!r}"
            )
    return "\n".join(out)


_counter = itertools.count()


@pytest.mark.engines
@pytest.mark.parametrize(("target_db", "shape"), CASES, indirect=["target_db"])
@EXAMPLES
@given(data=st.data())
def test_run_changes_exactly_the_rows_the_oracle_says_are_due(
    target_db: TargetDb, shape: Shape, tmp_path: Path, monkeypatch, data
):
    scenario = data.draw(scenarios(target_db.engine_name, shape), label="scenario")
    directory = tmp_path / f"example-{next(_counter)}"
    directory.mkdir()
    url = target_db.url
    if target_db.engine_name == "sqlite":
        url = f"sqlite:///{directory / 'target.db'}"
    engine = sa.create_engine(url)
    try:
        build(engine, scenario)
        before = snapshot(engine, scenario)
        a_local = as_of_local_date(scenario.as_of, TZ)
        due = due_rows(scenario.rule, a_local, TZ, scenario.rows)
        share = "none" if not due else "all" if len(due) == len(before) else "some"
        event(f"{scenario.rule.action}, {share} of the rows due")
        where = f"{shape.name} on {target_db.engine_name}"

        config = write_config(
            directory,
            config_body(scenario),
            url,
            monkeypatch,
            timezone=TZ_NAME,
            extra_sweep=f"batch_size = {scenario.batch_size}",
        )
        plan = run_cli("plan", "-c", str(config), "--as-of", scenario.as_of, "--json")
        assert plan.exit_code == 0, (
            f"{where}: plan exit {plan.exit_code}: {first_line(plan.stderr or plan.stdout)}"
        )
        items = [i for i in plan.json()["items"] if i["rule"] == RULE_ID]
        assert len(items) == 1, f"{where}: plan has {len(items)} items for the rule"
        planned = items[0]["due"]

        run = run_cli("run", "-c", str(config), "--as-of", scenario.as_of, "--force", "--json")
        after = snapshot(engine, scenario)

        note = scenario.columns.index("note")
        null = "NULL" if target_db.engine_name == "sqlite" else None
        expected: dict[int, tuple] = {}
        for rid, row in before.items():
            if rid not in due:
                expected[rid] = row
            elif scenario.rule.action == "anonymise":
                expected[rid] = (*row[:note], null, *row[note + 1 :])
        changed = {rid for rid in before if after.get(rid) != before[rid]}
        missed, extra = due - changed, changed - due
        wrong = {rid for rid in due & changed if after.get(rid) != expected.get(rid)}

        problems = []
        if planned != len(due):
            problems.append(f"plan due {planned} != oracle {len(due)}")
        if missed:
            problems.append(f"{len(missed)} due row(s) not changed")
        if extra:
            problems.append(f"{len(extra)} row(s) changed that were not due")
        if wrong:
            problems.append(f"{len(wrong)} due row(s) changed wrongly")
        if set(after) - set(before):
            problems.append("rows appeared")
        if run.exit_code != 0:
            problems.append(f"run exit {run.exit_code}: {first_line(run.stderr or run.stdout)}")
        else:
            done = [i.get("done") for i in run.json()["items"] if i["rule"] == RULE_ID]
            if done != [len(due)]:
                problems.append(f"run done {done} != oracle [{len(due)}]")
        assert not problems, (
            f"{where}: {'; '.join(problems)}\n"
            f"rule: {config_body(scenario)}as-of {scenario.as_of} (A = {a_local}), "
            f"batch_size {scenario.batch_size}\n"
            + (f"missed:\n{describe(scenario, missed, a_local)}\n" if missed else "")
            + (f"extra:\n{describe(scenario, extra, a_local)}\n" if extra else "")
            + (f"wrong:\n{describe(scenario, wrong, a_local)}\n" if wrong else "")
        )
    finally:
        engine.dispose()


# --- the oracle itself, on SPEC's and README's worked examples ----------------------


def test_oracle_calendar_matches_the_spec_examples():
    months6 = Period(6, "months")
    assert add_period(dt.date(2025, 8, 31), months6) == dt.date(2026, 2, 28)
    assert add_period(dt.date(2023, 8, 31), months6) == dt.date(2024, 2, 29)
    assert add_period(dt.date(2024, 2, 29), Period(1, "years")) == dt.date(2025, 2, 28)
    assert add_period(dt.date(2026, 2, 28), Period(1, "months"), -1) == dt.date(2026, 1, 28)
    # An invoice in fiscal year 2020 (ending 31 Dec): kept through 31 Dec 2025.
    rule = RuleSpec("delete", Period(5, "years"), None, False, "native")
    end_2020 = dt.date(2020, 12, 31)
    assert not due_rows(rule, dt.date(2025, 12, 31), TZ, [row(1, end_2020)])
    assert due_rows(rule, dt.date(2026, 1, 1), TZ, [row(1, end_2020)]) == {1}
    # CCTV at 14:00 on 1 Mar, 5 days: due from 7 Mar.
    rule = RuleSpec("delete", Period(5, "days"), None, False, "native")
    cctv = dt.datetime(2026, 3, 1, 14)
    assert not due_rows(rule, dt.date(2026, 3, 6), TZ, [row(1, cctv)])
    assert due_rows(rule, dt.date(2026, 3, 7), TZ, [row(1, cctv)]) == {1}
    # Epoch seconds are read in the time zone: 23:30 UTC on 28 Feb is 1 Mar in Copenhagen.
    epoch = int(dt.datetime(2026, 2, 28, 23, 30, tzinfo=dt.UTC).timestamp())
    assert clock_date(epoch, "unixepoch", TZ) == dt.date(2026, 3, 1)
    assert clock_date("2026-02-30", "sqlite-text", TZ) is None
    assert clock_date(1700000000, "sqlite-text", TZ) is None
    assert clock_date("2026-03-01T10:00", "sqlite-text", TZ) == dt.date(2026, 3, 1)
    assert as_of_local_date("2026-03-01T23:30:00+00:00", TZ) == dt.date(2026, 3, 2)
    # Filters.
    rule = RuleSpec("anonymise", Period(1, "days"), ("closed",), True, "native")
    old = dt.date(2020, 1, 1)
    rows = [
        row(1, old, status="closed"),
        row(2, old, status="CLOSED"),
        row(3, old, status="closed "),
        row(4, old, status=None),
        row(5, old, status="closed", held=True),
        row(6, old, status="closed", note=None),
        row(7, old, status="closed", held=False),
    ]
    assert due_rows(rule, dt.date(2026, 1, 1), TZ, rows) == {1, 7}


def row(rid: int, since: object, status: object = "closed", held=None, note="x") -> dict:
    return {"rid": rid, "since": since, "status": status, "held": held, "note": note}

"""Key rotation without losing the past (issue 18 point 4), SQLite and PostgreSQL state.

Before the rotation: a hold on a text key, erasures (which record fingerprints and
identifier hashes), sweeps. `audit rotate-key` (new key in GDPR_SWEEP_KEY, the old one
in GDPR_SWEEP_OLD_KEYS) re-seals the hold keys and erased root keys and appends a
`key-rotated` entry. Then `audit verify` checks both segments, `audit find` finds the
erasure made under the old key, the hold still holds, and replay after a restore still
erases the same person and skips a reused key. A second rotation works with both old
keys; dropping an old key makes verify name the segment it cannot check (exit 2);
tampering with the old segment, or with a rotation entry, is exit 5; a wrong old key
is refused (exit 2) with the state database unchanged.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from gdpr_sweep.keys import key_label
from gdpr_sweep.state.chain import key_check_value
from gdpr_sweep.subject.reapply import NOT_THE_PERSON
from tests.conftest import (
    TEST_KEY,
    TargetDb,
    postgresql_state_url,
    run_cli,
)

KEY1 = TEST_KEY
KEY2 = "second-secret-0123456789abcdef"
KEY3 = "third-secret-0123456789abcdef!"
WRONG = "not-the-key-0123456789abcdef"
AS_OF = "2026-06-01"
EMAIL, CPR = "rikke.rotation@example.dk", "010190-1234"
OTTO_EMAIL, OTTO_CPR = "otto.rotation@example.dk", "020202-0202"
NEW_EMAIL = "nina.new@example.dk"
MARKERS = (EMAIL, CPR, OTTO_EMAIL, OTTO_CPR, NEW_EMAIL, "Rikke", "Otto", "Nina", "V-0002")
STATE_TABLES = ("runs", "audit_entries", "holds", "erased_subjects", "run_subjects", "state_meta")


def schema() -> sa.MetaData:
    m = sa.MetaData()
    sa.Table("person", m, sa.Column("id", sa.String(20), primary_key=True),
             sa.Column("email", sa.String(100)), sa.Column("cpr", sa.String(11)),
             sa.Column("name", sa.String(100)))  # fmt: skip
    sa.Table("note", m, sa.Column("note_id", sa.Integer, primary_key=True, autoincrement=False),
             sa.Column("person_id", sa.String(20), sa.ForeignKey("person.id")),
             sa.Column("body", sa.String(100)))  # fmt: skip
    sa.Table("visit", m, sa.Column("id", sa.String(20), primary_key=True),
             sa.Column("visited_at", sa.DateTime))  # fmt: skip
    return m


BACKUP = {
    "person": [
        {"id": "P-0001", "email": EMAIL, "cpr": CPR, "name": "Rikke"},
        {"id": "P-0002", "email": "o@example.dk", "cpr": "x", "name": "Other"},
        {"id": "P-0003", "email": OTTO_EMAIL, "cpr": OTTO_CPR, "name": "Otto"},
    ],
    "note": [
        {"note_id": 1, "person_id": "P-0001", "body": "rikke-note"},
        {"note_id": 2, "person_id": "P-0002", "body": "other-note"},
        {"note_id": 3, "person_id": "P-0003", "body": "otto-note"},
    ],
    "visit": [{"id": f"V-000{i}", "visited_at": dt.datetime(2026, 5, 1, 12)} for i in (1, 2, 3)],
}

BODY = """
[subject]
root = "person"
identifiers = { email = "email", cpr = "cpr" }

[[rules]]
id = "visits"
table = "visit"
action = "delete"
after = "5 days"
since = "visited_at"
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def setup(request, tmp_path, monkeypatch):
    """(config path, state URL, target) with the target's rows in place."""
    target = TargetDb("sqlite", f"sqlite:///{tmp_path / 'target.db'}")
    target.create(schema(), BACKUP)
    if request.param == "sqlite":
        state, url = 'state_url = "sqlite:///state.db"', f"sqlite:///{tmp_path / 'state.db'}"
    else:
        url = postgresql_state_url(monkeypatch)
        state = 'state_url_env = "STATE_URL"'
    path = tmp_path / "gdpr-sweep.toml"
    path.write_text(
        f'[sweep]\n{state}\ntimezone = "Europe/Copenhagen"\nmax_fraction = 1.0\n\n'
        f'[databases.main]\nurl = "{target.url}"\ncontroller = "Testkommune"\n{BODY}',
        encoding="utf-8",
    )
    return path, url, target


def cli(*args: str, code: int = 0):
    result = run_cli(*args)
    assert result.exit_code == code, (args, result.stdout, result.stderr)
    for marker in MARKERS:
        assert marker not in result.stdout + result.stderr, marker
    return result


def keys(current: str, *old: str, monkeypatch) -> None:
    monkeypatch.setenv("GDPR_SWEEP_KEY", current)
    if old:
        monkeypatch.setenv("GDPR_SWEEP_OLD_KEYS", ",".join(old))
    else:
        monkeypatch.delenv("GDPR_SWEEP_OLD_KEYS", raising=False)


def state_rows(url: str) -> dict[str, list[tuple]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            metadata = sa.MetaData()
            metadata.reflect(connection, only=STATE_TABLES)
            return {
                name: [tuple(r) for r in connection.execute(sa.select(t).order_by(*t.primary_key))]
                for name, t in sorted(metadata.tables.items())
            }
    finally:
        engine.dispose()


def sql(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.exec_driver_sql(statement)
    finally:
        engine.dispose()


def target_rows(target: TargetDb) -> dict[str, list[tuple]]:
    engine = target.engine()
    try:
        with engine.connect() as connection:
            metadata = sa.MetaData()
            metadata.reflect(connection)
            return {
                name: sorted(tuple(r) for r in connection.execute(sa.select(t)))
                for name, t in sorted(metadata.tables.items())
            }
    finally:
        engine.dispose()


def restore(target: TargetDb, person_3: dict) -> None:
    """The backup put back, except that key P-0003 now belongs to someone new."""
    metadata = schema()
    engine = target.engine()
    try:
        with engine.begin() as connection:
            for table in reversed(metadata.sorted_tables):
                connection.execute(table.delete())
            people = [p for p in BACKUP["person"] if p["id"] != "P-0003"] + [person_3]
            connection.execute(metadata.tables["person"].insert(), people)
            notes = [n for n in BACKUP["note"] if n["person_id"] != "P-0003"]
            connection.execute(metadata.tables["note"].insert(), notes)
            connection.execute(metadata.tables["visit"].insert(), BACKUP["visit"])
    finally:
        engine.dispose()


def before_rotation(path: Path) -> None:
    """A hold on a text key, two erasures, a sweep with nothing due: all under KEY1."""
    c = str(path)
    cli("hold", "add", "-c", c, "-d", "main", "-t", "visit", "-k", "V-0002", "--reason", "case 7")
    cli("run", "-c", c, "--as-of", "2026-01-01")
    cli("erase", "-c", c, "--subject", f"cpr={CPR}", "--json")
    cli("erase", "-c", c, "--subject", f"email={OTTO_EMAIL}", "--json")


def rotate(path: Path, code: int = 0, *extra: str):
    return cli("audit", "rotate-key", "-c", str(path), *extra, code=code)


def verify(path: Path, code: int = 0, *extra: str):
    return cli("audit", "verify", "-c", str(path), "--json", *extra, code=code)


def found(path: Path, subject: str) -> list[str]:
    result = cli("audit", "find", "-c", str(path), "--subject", subject, "--json")
    return [run["command"] for run in result.json()["runs"]]


def sealed_keys(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return [r[0] for r in connection.exec_driver_sql(
                "SELECT row_key_sealed FROM holds UNION ALL "
                "SELECT row_key_sealed FROM erased_subjects")]  # fmt: skip
    finally:
        engine.dispose()


def entry_count(url: str) -> int:
    return len(state_rows(url)["audit_entries"])


def test_everything_keyed_keeps_working_across_rotations(setup, monkeypatch, tmp_path):
    path, url, target = setup
    c = str(path)
    before_rotation(path)
    after_erasures = target_rows(target)
    assert [p[0] for p in after_erasures["person"]] == ["P-0002"]
    old_head = verify(path).json()["head"]
    [old_hold] = cli("hold", "list", "-c", c, "--json").json()["holds"]
    sealed_before = sealed_keys(url)
    last_old = entry_count(url)

    # The new key set, the rotation not yet run: writing is refused with the hint, plan
    # (which only reads) opens the hold with the old key.
    keys(KEY2, KEY1, monkeypatch=monkeypatch)
    refused = cli("run", "-c", c, "--as-of", AS_OF, code=2)
    assert "run gdpr-sweep audit rotate-key" in refused.stderr
    [item] = cli("plan", "-c", c, "--as-of", AS_OF, "--json").json()["items"]
    assert (item["due"], item["held"]) == (2, 1)

    rotated = rotate(path, 0, "--json").json()
    assert rotated["rotated"] and rotated["entry"] == last_old + 2  # run-start, then it
    assert rotated["previous_key_check"] == key_check_value(KEY1.encode())
    assert rotated["key_check"] == key_check_value(KEY2.encode())
    assert rotated["resealed"] == {"holds": 1, "erased_subjects": 2}
    assert rotated["unchecked"] == []
    assert KEY1 not in json.dumps(state_rows(url), default=str)
    assert KEY2 not in json.dumps(state_rows(url), default=str)
    # Again with the same keys: nothing to do, nothing written.
    rows = state_rows(url)
    assert "nothing to do" in rotate(path).stdout
    assert state_rows(url) == rows

    # The whole chain verifies, both segments; the head kept from before still does.
    document = verify(path).json()
    assert document["intact"] and document["unchecked"] == []
    assert [(s["first"], s["last"], s["checked"]) for s in document["segments"]] == [
        (1, rotated["entry"] - 1, True),
        (rotated["entry"], document["entries"], True),
    ]
    assert document["head"] == rotated["head"]
    verify(path, 0, "--head", old_head)
    verify(path, 0, "--head", rotated["head"])

    # audit find: the erasures made under KEY1, by either identifier.
    assert found(path, f"email={EMAIL}") == ["erase"]
    assert found(path, f"cpr={CPR}") == ["erase"]
    assert found(path, f"cpr={OTTO_CPR}") == ["erase"]
    assert found(path, "email=o@example.dk") == []

    # The hold: re-sealed under KEY2, its label the new key's, and it still holds.
    [hold] = cli("hold", "list", "-c", c, "--json").json()["holds"]
    assert hold["key"] == key_label(KEY2.encode(), "V-0002", True) != old_hold["key"]
    sealed_after = sealed_keys(url)
    assert len(sealed_after) == 3 and not set(sealed_after) & set(sealed_before)
    [item] = cli("plan", "-c", c, "--as-of", AS_OF, "--json").json()["items"]
    assert (item["due"], item["held"]) == (2, 1)
    swept = cli("run", "-c", c, "--as-of", AS_OF, "--json").json()
    assert swept["head"].startswith(f"{entry_count(url)}:")
    assert [v[0] for v in target_rows(target)["visit"]] == ["V-0002"]

    # Replay after a restore: Rikke (erased under KEY1) again; P-0003 is someone new now.
    nina = {"id": "P-0003", "email": NEW_EMAIL, "cpr": "030303-3333", "name": "Nina"}
    restore(target, nina)
    restored = target_rows(target)
    replayed = cli("replay", "-c", c, "--since", "2000-01-01", "--json").json()
    assert {(t["table"], t["action"], t["rows"]) for t in replayed["tables"]} == {
        ("note", "deleted", 1),
        ("person", "deleted", 1),
    }
    assert {s["reason"]: s["rows"] for s in replayed["skipped"]} == {NOT_THE_PERSON: 1}
    after = target_rows(target)
    assert after["person"] == [p for p in restored["person"] if p[0] != "P-0001"]
    assert after["note"] == [n for n in restored["note"] if n[1] != "P-0001"]
    assert after["visit"] == restored["visit"]

    # A second rotation, to KEY3, with both old keys in the ring.
    keys(KEY3, KEY2, KEY1, monkeypatch=monkeypatch)
    second = rotate(path, 0, "--json").json()
    assert second["previous_key_check"] == rotated["key_check"]
    assert second["resealed"] == {"holds": 1, "erased_subjects": 2}
    document = verify(path).json()
    assert [s["first"] for s in document["segments"]] == [1, rotated["entry"], second["entry"]]
    assert all(s["checked"] for s in document["segments"])
    assert found(path, f"email={EMAIL}") == ["erase"]
    [item] = cli("plan", "-c", c, "--as-of", AS_OF, "--json").json()["items"]
    assert item["held"] == 1 and item["due"] == 2  # the restore brought V-0001 and V-0003

    # KEY1 dropped: its segment is named and not checked (exit 2), the rest verifies.
    keys(KEY3, KEY2, monkeypatch=monkeypatch)
    dropped = verify(path, 2)
    assert f"entries 1-{rotated['entry'] - 1} were written with a key not in " \
        f"GDPR_SWEEP_OLD_KEYS (rotated at entry {rotated['entry']}): not checked" \
        in dropped.stderr  # fmt: skip
    document = dropped.json()
    assert not document["intact"] and document["broken"] is None
    [unchecked] = document["unchecked"]
    assert (unchecked["first"], unchecked["last"]) == (1, rotated["entry"] - 1)
    assert unchecked["key_check"] == rotated["previous_key_check"]
    assert unchecked["runs_not_checked"]  # the run rows sealed there
    assert document["entries"] == entry_count(url) - (rotated["entry"] - 1)
    assert "not checked" in verify(path, 2, "--head", old_head).stderr
    # Only KEY3: both older segments named.
    keys(KEY3, monkeypatch=monkeypatch)
    only = verify(path, 2).json()
    assert [(s["first"], s["rotated_at"]) for s in only["unchecked"]] == [
        (1, rotated["entry"]),
        (rotated["entry"], second["entry"]),
    ]
    if url.startswith("sqlite"):
        state = (tmp_path / "state.db").read_bytes()
        for marker in MARKERS:
            assert marker.encode() not in state


def rotated_once(path: Path, monkeypatch) -> int:
    before_rotation(path)
    keys(KEY2, KEY1, monkeypatch=monkeypatch)
    return int(rotate(path, 0, "--json").json()["entry"])


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entries SET rows = 999 WHERE id = 3",
        "UPDATE runs SET status = 'failed' WHERE id = 1",
    ],
)
def test_tampering_with_the_old_segment_is_detected_with_the_old_key(setup, monkeypatch, statement):
    path, url, _target = setup
    rotated_once(path, monkeypatch)
    verify(path)
    sql(url, statement)
    result = verify(path, 5)
    assert "audit trail altered" in result.stderr
    assert ("entry 3 its content was altered" in result.stderr) or (
        "run 1 was edited after it was recorded" in result.stderr
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # The rotation's details edited: its hash no longer verifies with the new key.
        ("REPLACE(details, '\"resealed\"', '\"resealed2\"')", "its content was altered"),
        # Naming another new key: the entries after it are the real new key's.
        (None, "was written with the key of another segment"),
        # Naming another old key: the entries before it are the real old key's.
        ("previous", "was written with the key of another segment"),
    ],
)
def test_an_edited_or_forged_rotation_entry_is_tampering(setup, monkeypatch, change, expected):
    path, url, _target = setup
    entry = rotated_once(path, monkeypatch)
    if change is None:
        details = json.dumps(
            {"key_check": key_check_value(WRONG.encode()),
             "previous_key_check": key_check_value(KEY1.encode())}, sort_keys=True)  # fmt: skip
        change = f"'{details}'"
        expected_entry = entry + 1
    elif change == "previous":
        details = json.dumps(
            {"key_check": key_check_value(KEY2.encode()),
             "previous_key_check": key_check_value(WRONG.encode())}, sort_keys=True)  # fmt: skip
        change = f"'{details}'"
        expected_entry = 1
    else:
        expected_entry = entry
    sql(url, f"UPDATE audit_entries SET details = {change} WHERE id = {entry}")
    result = verify(path, 5)
    assert f"entry {expected_entry} {expected}" in result.stderr, result.stderr


def test_a_forged_rotation_hashed_with_a_key_not_the_next_segments_is_tampering(setup, monkeypatch):
    """An entry turned into a rotation to a key the attacker holds: its hash under the
    key it names verifies, but the next entries were written with the real key."""
    from gdpr_sweep.state.chain import entry_hash

    path, url, _target = setup
    before_rotation(path)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            last = connection.exec_driver_sql("SELECT max(id) FROM audit_entries").scalar()
            row = connection.exec_driver_sql(
                f"SELECT * FROM audit_entries WHERE id = {last - 1}"
            ).mappings().one()  # fmt: skip
            forged = dict(row)
            forged["kind"] = "key-rotated"
            forged["details"] = json.dumps(
                {"key_check": key_check_value(WRONG.encode()),
                 "previous_key_check": key_check_value(KEY1.encode())}, sort_keys=True)  # fmt: skip
            digest = entry_hash(WRONG.encode(), forged)
            connection.execute(
                sa.text("UPDATE audit_entries SET kind = :k, details = :d, entry_hash = :h "
                        "WHERE id = :i"),
                {"k": "key-rotated", "d": forged["details"], "h": digest, "i": last - 1},
            )  # fmt: skip
            connection.execute(
                sa.text("UPDATE audit_entries SET prev_hash = :h WHERE id = :i"),
                {"h": digest, "i": last},
            )
    finally:
        engine.dispose()
    keys(KEY1, WRONG, monkeypatch=monkeypatch)  # even with the forger's key in the ring
    result = verify(path, 5)
    assert "audit trail altered" in result.stderr


def test_a_wrong_or_missing_old_key_is_refused_and_nothing_changes(setup, monkeypatch):
    path, url, target = setup
    before_rotation(path)
    rows, data = state_rows(url), target_rows(target)
    for old in ((), (WRONG,)):
        keys(KEY2, *old, monkeypatch=monkeypatch)
        result = rotate(path, 2)
        assert result.stderr.startswith("error: GDPR_SWEEP_OLD_KEYS: "), result.stderr
        assert result.stderr.count("\n") == 1
        assert state_rows(url) == rows
    keys(KEY2, "short", monkeypatch=monkeypatch)
    assert "GDPR_SWEEP_OLD_KEYS: key 1 is shorter" in rotate(path, 2).stderr
    assert state_rows(url) == rows
    # An altered chain is not rotated (exit 5), and nothing is written.
    sql(url, "UPDATE audit_entries SET rows = 999 WHERE id = 3")
    rows = state_rows(url)
    keys(KEY2, WRONG, KEY1, monkeypatch=monkeypatch)
    assert "the key was not rotated" in rotate(path, 5).stderr
    assert state_rows(url) == rows and target_rows(target) == data


def test_a_plan_file_from_before_a_rotation_is_refused_by_apply(setup, monkeypatch, tmp_path):
    """Plan files carry keyed digests of the due keys: made under the old key, they no
    longer match (exit 5, make a new plan); nothing is swept."""
    path, _url, target = setup
    c, plan = str(path), tmp_path / "plan.json"
    cli("run", "-c", c, "--as-of", "2026-01-01")  # nothing due yet; the key is recorded
    cli("plan", "-c", c, "--as-of", AS_OF, "--out", str(plan))
    keys(KEY2, KEY1, monkeypatch=monkeypatch)
    assert rotate(path, 0, "--json").json()["rotated"]
    data = target_rows(target)
    assert "make a new plan" in cli("apply", "-c", c, str(plan), "--yes", code=5).stderr
    assert target_rows(target) == data
    cli("plan", "-c", c, "--as-of", AS_OF, "--out", str(plan))
    cli("apply", "-c", c, str(plan), "--yes")
    assert target_rows(target)["visit"] == []


def test_a_process_that_started_before_the_rotation_cannot_append_after_it(setup, monkeypatch):
    """A command that checked the old key (an export running beside the rotation, which
    takes no sweep lock) is refused at its next append, not allowed to append entries
    hashed with the old key into the new segment."""
    from gdpr_sweep.config import load_config
    from gdpr_sweep.errors import ConfigError
    from gdpr_sweep.state.store import StateStore

    path, url, _target = setup
    before_rotation(path)
    config = load_config(path)
    early = StateStore(config, KEY1.encode())
    try:
        early.check_key()
        run_id = early.start_run("export", dt.datetime.now(dt.UTC))
        keys(KEY2, KEY1, monkeypatch=monkeypatch)
        rotate(path)
        rows = state_rows(url)
        with pytest.raises(ConfigError, match="its key was rotated meanwhile"):
            early.append(run_id, "export", details={"rows": 1})
        with pytest.raises(ConfigError, match="its key was rotated meanwhile"):
            early.finish_run(run_id, "completed", {})
        assert state_rows(url) == rows
    finally:
        early.close()
    # The run it left is marked interrupted by the next sweep, under the new key.
    cli("run", "-c", str(path), "--as-of", "2026-01-01")
    assert verify(path).json()["intact"]

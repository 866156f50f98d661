"""`[tenants] file = "tenants.csv"`: many same-schema databases, one row each.

Every command treats a row exactly as the written-out `[databases.NAME]` entry with the
same keys: the same plan, the same digest, the same checks. A bad file is exit 2 with
one line naming the file and the line, and nothing touched.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gdpr_sweep.config import load_config
from tests.conftest import TargetDb, run_cli
from tests.test_apply import AS_OF, RULES, seed
from tests.test_tenants import anonymised

SWEEP = '[sweep]\nstate_url = "sqlite:///state.db"\nbatch_size = 4\nmax_fraction = 0.9\n'
SUBJECT = '\n[subject]\nroot = "counselling_case"\nidentifiers = { email = "email" }\n'
REPO = Path(__file__).resolve().parent.parent


def csv_text(header: list[str], rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[row.get(column, "") for column in header] for row in rows])
    return out.getvalue()


def tenants_config(directory: Path, rows: list[dict[str, str]], defaults: str = "",
                   header: list[str] | None = None, written_out: str = "") -> Path:  # fmt: skip
    """A config whose databases are the rows of tenants.csv (beside it)."""
    directory.mkdir(parents=True, exist_ok=True)
    header = header or ["name", "controller", "url_env", "url"]
    (directory / "tenants.csv").write_text(csv_text(header, rows), encoding="utf-8")
    path = directory / "gdpr-sweep.toml"
    path.write_text(
        f'{SWEEP}{written_out}\n[tenants]\nfile = "tenants.csv"\n{defaults}\n{RULES}{SUBJECT}',
        encoding="utf-8",
    )
    return path


def written_out_config(directory: Path, rows: list[dict[str, str]],
                       default_controller: str | None = None) -> Path:  # fmt: skip
    """The same databases as `tenants_config`, written out as [databases.NAME] tables."""
    directory.mkdir(parents=True, exist_ok=True)
    databases = {}
    for row in rows:
        entry = {key: row[key] for key in ("url", "url_env", "controller") if row.get(key)}
        if "controller" not in entry and default_controller is not None:
            entry["controller"] = default_controller
        databases[row["name"]] = entry
    path = directory / "gdpr-sweep.toml"
    path.write_text(
        SWEEP + tomli_w.dumps({"databases": databases}) + RULES + SUBJECT, encoding="utf-8"
    )
    return path


def sqlite_tenants(directory: Path, names: list[str]) -> list[dict[str, str]]:
    """Seed one SQLite database per name; rows naming them by absolute url."""
    rows = []
    for name in names:
        path = directory / f"{name}.db"
        seed(TargetDb("sqlite", f"sqlite:///{path}"))
        rows.append({"name": name, "controller": f"{name.title()} Kommune",
                     "url": f"sqlite:///{path}"})  # fmt: skip
    return rows


def without_timings(document: dict) -> dict:
    """A plan document without its measured times (`count_seconds`): what it says."""
    items = [{k: v for k, v in i.items() if not k.endswith("_seconds")} for i in document["items"]]
    return {**document, "items": items}


def test_a_tenants_file_is_the_written_out_config_for_every_command(tmp_path, monkeypatch):
    rows = sqlite_tenants(tmp_path, ["aarhus", "odense", "vejle"])
    # One tenant by url_env, as an operator with passwords would write it.
    monkeypatch.setenv("VEJLE_URL", rows[2].pop("url"))
    rows[2]["url_env"] = "VEJLE_URL"
    written = written_out_config(tmp_path / "written", rows)
    tenants = tenants_config(tmp_path / "tenants", rows)

    plans = [run_cli("plan", "-c", str(c), "--as-of", AS_OF, "--json") for c in (written, tenants)]
    assert [p.exit_code for p in plans] == [0, 0], plans[1].stderr
    assert without_timings(plans[0].json()) == without_timings(plans[1].json())  # digest too
    assert {i["database"] for i in plans[1].json()["items"]} == {"aarhus", "odense", "vejle"}
    assert run_cli("check", "-c", str(tenants)).exit_code == 0

    # --database picks a tenant by its row's name.
    one = run_cli("run", "-c", str(tenants), "--as-of", AS_OF, "-d", "odense", "--json")
    assert one.exit_code == 0, one.stderr
    assert {i["database"] for i in one.json()["items"]} == {"odense"}
    assert anonymised(rows[0]["url"]) == 0
    result = run_cli("run", "-c", str(tenants), "--as-of", AS_OF, "--jobs", "2", "--json")
    assert result.exit_code == 0, result.stderr
    done = {i["database"] for i in result.json()["items"] if i["done"]}
    assert done == {"aarhus", "vejle"}  # odense was swept already
    urls = [rows[0]["url"], rows[1]["url"], os.environ["VEJLE_URL"]]
    assert len({anonymised(url) for url in urls}) == 1 and anonymised(urls[0]) > 0
    assert run_cli("audit", "verify", "-c", str(tenants)).exit_code == 0

    # erase and export reach every tenant.
    erase = run_cli("erase", "-c", str(tenants), "--subject", "email=p3@example.dk",
                    "--dry-run", "--json")  # fmt: skip
    assert erase.exit_code == 0, erase.stderr
    assert {e["database"] for e in erase.json()["erased"]} == {"aarhus", "odense", "vejle"}
    out = tmp_path / "export.json"
    export = run_cli("export", "-c", str(tenants), "--subject", "email=p3@example.dk",
                     "--out", str(out))  # fmt: skip
    assert export.exit_code == 0, export.stderr
    assert "aarhus" in out.read_text() and "vejle" in out.read_text()


def test_a_rule_names_tenants_in_its_databases(tmp_path):
    rows = sqlite_tenants(tmp_path, ["aarhus", "odense"])
    config = tenants_config(tmp_path, rows)
    only_odense = '\n[[rules]]\nid = "odense-only"\ntable = "customer"\naction = "delete"\n' \
        'after = "10 years"\nsince = "created_at"\ndatabases = ["odense"]\n'  # fmt: skip
    config.write_text(config.read_text() + only_odense)
    plan = run_cli("plan", "-c", str(config), "--as-of", AS_OF, "--json")
    assert plan.exit_code == 0, plan.stderr
    assert {i["database"] for i in plan.json()["items"] if i["rule"] == "odense-only"} == {"odense"}
    config.write_text(config.read_text().replace('["odense"]', '["odence"]'))
    result = run_cli("plan", "-c", str(config), "--as-of", AS_OF)
    assert result.exit_code == 2
    assert "no database 'odence' (did you mean 'odense'?)" in result.stderr


def test_a_server_tenant_beside_sqlite_tenants(target_db, tmp_path, monkeypatch):
    seed(target_db)
    rows = sqlite_tenants(tmp_path, ["odense"])
    monkeypatch.setenv("AARHUS_URL", target_db.url)
    rows.append({"name": "aarhus", "controller": "Aarhus Kommune", "url_env": "AARHUS_URL"})
    config = tenants_config(tmp_path, rows)
    assert run_cli("check", "-c", str(config)).exit_code == 0
    result = run_cli("run", "-c", str(config), "--as-of", AS_OF, "--json")
    assert result.exit_code == 0, result.stderr
    done = {i["database"]: i["done"] for i in result.json()["items"]}
    assert set(done) == {"aarhus", "odense"}
    assert anonymised(target_db.url) == anonymised(rows[0]["url"]) > 0
    assert target_db.scalar("SELECT count(*) FROM customer") == 17 - 9  # the odd ids were due


GOOD_ROW = "odense,Odense Kommune,,sqlite:///odense.db\n"
HEADER = "name,controller,url_env,url\n"
MALFORMED = [
    # (file bytes, line named, what the message says)
    (b"name,controller\nodense,Odense Kommune\n", 1, "no column 'url_env'"),
    (b"name,controler,url\n", 1, "did you mean 'controller'?"),
    (b"name,url,url\n", 1, "there twice"),
    (b"controller,url\nOdense Kommune,sqlite:///o.db\n", 1, "no column 'name'"),
    (b"name;controller;url\nodense;Odense;sqlite:///o.db\n", 1, "separated by ';'"),
    (b"", 1, "empty"),
    (HEADER.encode(), 0, "no tenants"),
    ((HEADER + GOOD_ROW + "vejle,Vejle Kommune\n").encode(), 3, "2 cells, the header has 4"),
    ((HEADER + GOOD_ROW + ",Ingen,,sqlite:///x.db\n").encode(), 3, "the name is empty"),
    ((HEADER + GOOD_ROW + "vejle kommune,,,sqlite:///x.db\n").encode(), 3, "not a database name"),
    ((HEADER + GOOD_ROW + "vejle,,VEJLE_URL,sqlite:///x.db\n").encode(), 3, "exactly one of"),
    ((HEADER + GOOD_ROW + "vejle,,,\n").encode(), 3, "exactly one of"),
    ((HEADER + GOOD_ROW + "\n" + GOOD_ROW).encode(), 4, "already the name on line 2"),
    ((HEADER + GOOD_ROW + "main,,,sqlite:///x.db\n").encode(), 3, "also a [databases.main]"),
    ((HEADER + GOOD_ROW + "vejle,,BAD VAR,\n").encode(), 3, "not an environment variable"),
    ((HEADER + GOOD_ROW + "vejle,,TODO,\n").encode(), 3, 'still "TODO"'),
    ((HEADER + GOOD_ROW + "vejle,,,not a url\n").encode(), 3, "not a database URL"),
    ((HEADER + GOOD_ROW + 'vejle,"Vejle\n').encode(), 3, "not valid CSV"),
    ((HEADER + GOOD_ROW + "vej\x00le,Vejle,VEJLE_URL,\n").encode(), 3, "'vej\\x00le' is"),
    ((HEADER + GOOD_ROW + "vejle,Vejle \x01,VEJLE_URL,\n").encode(), 3, "control characters"),
    ((HEADER + GOOD_ROW).encode() + b"vejle,Vejle Kommune \xf8,VEJLE_URL,\n", 3, "not UTF-8"),
    (("\ufeff" + HEADER + GOOD_ROW + "\ufeffvejle,,VEJLE_URL,\n").encode(), 3, "not a database"),
    ((HEADER + GOOD_ROW).encode("utf-16"), 1, "UTF-16"),
]  # fmt: skip


@pytest.mark.parametrize(("content", "line", "message"), MALFORMED)
@pytest.mark.parametrize("command", ["run", "check"])
def test_a_malformed_tenants_file_is_exit_2_naming_file_and_line(
    tmp_path, monkeypatch, command, content, line, message
):
    target = TargetDb("sqlite", f"sqlite:///{tmp_path / 'main.db'}")
    seed(target)
    before = target.checksum()
    config = tenants_config(tmp_path, [], written_out=f'[databases.main]\nurl = "{target.url}"\n')
    (tmp_path / "tenants.csv").write_bytes(content)
    args = ["--as-of", AS_OF] if command == "run" else []
    result = run_cli(command, "-c", str(config), *args)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    where = f"{tmp_path / 'tenants.csv'} line {line}:" if line else f"{tmp_path / 'tenants.csv'}:"
    assert result.stderr.startswith(f"error: {where}"), result.stderr
    assert message in result.stderr
    assert target.checksum() == before
    assert not (tmp_path / "state.db").exists()


@pytest.mark.parametrize(
    ("file_line", "problem", "message"),
    [
        ('file = "missing.csv"', None, "tenants.file: '{dir}/missing.csv' not found"),
        ('file = "."', None, "tenants.file: '{dir}': Is a directory"),
        ('file = "tenants.csv"\nurl_env = "X"', None, "tenants.url_env: unknown key"),
        ('file = "tenants.csv"\ncontroler = "X"', None, "did you mean 'controller'?"),
        ('file = "tenants.csv"\ncontroller = 7', None, "tenants.controller: must be a string"),
        ("", None, "tenants.file: is required"),
    ],
)
def test_a_bad_tenants_table_is_exit_2_naming_the_key(tmp_path, file_line, problem, message):
    config = tenants_config(tmp_path, [{"name": "odense", "url": "sqlite:///o.db"}])
    config.write_text(config.read_text().replace('file = "tenants.csv"', file_line))
    result = run_cli("plan", "-c", str(config), "--as-of", AS_OF)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert message.format(dir=tmp_path.resolve()) in result.stderr, result.stderr


def test_a_password_in_a_url_cell_is_refused_and_never_shown(tmp_path, monkeypatch):
    rows = [{"name": "odense", "url": "postgresql+psycopg://sweeper:Hemmelig-42@db.local/odense"}]
    config = tenants_config(tmp_path, rows)
    for command in (["check"], ["run", "--as-of", AS_OF], ["plan", "--json"]):
        result = run_cli(command[0], "-c", str(config), *command[1:])
        assert result.exit_code == 2
        assert "Hemmelig-42" not in result.stdout + result.stderr
        assert "line 2: 'odense': url: holds a password" in result.stderr
    # Through url_env (the way to pass a password): a server that is down is named,
    # the password masked.
    monkeypatch.setenv("ODENSE_URL", "postgresql+psycopg://sweeper:Hemmelig-42@127.0.0.1:1/x")
    config = tenants_config(tmp_path, [{"name": "odense", "url_env": "ODENSE_URL"}])
    result = run_cli("run", "-c", str(config), "--as-of", AS_OF)
    assert result.exit_code in (2, 3)
    assert "Hemmelig-42" not in result.stdout + result.stderr
    assert "odense" in result.stdout + result.stderr
    # A variable that is not set is named with the file and line of its row.
    monkeypatch.delenv("ODENSE_URL")
    result = run_cli("check", "-c", str(config))
    assert f"{tmp_path / 'tenants.csv'} line 2: url_env: environment variable ODENSE_URL" in (
        result.stdout + result.stderr
    )


def test_a_plan_made_before_the_file_changed_is_stale(tmp_path):
    rows = sqlite_tenants(tmp_path, ["aarhus", "odense"])
    config = tenants_config(tmp_path, rows)
    plan_file = tmp_path / "plan.json"
    made = run_cli("plan", "-c", str(config), "--as-of", AS_OF, "--out", str(plan_file), "--json")
    assert made.exit_code == 0, made.stderr
    original = (tmp_path / "tenants.csv").read_text()
    checksums = [TargetDb("sqlite", row["url"]).checksum() for row in rows]

    # Rows in another order, CRLF line endings, every cell quoted: the same entries, as
    # for tables reordered in the TOML, so the same digest.
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow(["url", "name", "controller"])
    writer.writerows([[r["url"], r["name"], r["controller"]] for r in reversed(rows)])
    (tmp_path / "tenants.csv").write_text(out.getvalue(), newline="")
    same = run_cli("plan", "-c", str(config), "--as-of", AS_OF, "--json")
    assert same.json()["config_digest"] == made.json()["config_digest"]

    # A controller changed, a tenant added: the plan is stale, nothing touched.
    for changed in (
        original.replace("Odense Kommune", "Odense Kommune (ny)"),
        original + f"vejle,,,sqlite:///{tmp_path / 'vejle.db'}\n",
        original.replace("sqlite:///", "sqlite:////", 1),
    ):
        (tmp_path / "tenants.csv").write_text(changed)
        result = run_cli("apply", str(plan_file), "-c", str(config), "--yes")
        assert result.exit_code == 5, result.stderr
        assert "config" in result.stderr
        assert [TargetDb("sqlite", row["url"]).checksum() for row in rows] == checksums
    (tmp_path / "tenants.csv").write_text(original)
    result = run_cli("apply", str(plan_file), "-c", str(config), "--yes")
    assert result.exit_code == 0, result.stderr
    assert anonymised(rows[0]["url"]) > 0


# A row: (name, controller or None, by url_env?). Controllers have commas, quotes,
# non-ASCII, spaces at the ends: what CSV must quote and the TOML must escape.
NAMES = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,12}", fullmatch=True)
CONTROLLERS = st.text(
    st.characters(blacklist_categories=["Cs"], min_codepoint=32), min_size=1, max_size=20
).filter(lambda v: v.strip() and v.strip().upper() != "TODO")
TENANTS = st.lists(
    st.tuples(NAMES, st.none() | CONTROLLERS, st.booleans()),
    min_size=1,
    max_size=6,
    unique_by=lambda t: t[0],
)


def _rows(tenants: list[tuple[str, str | None, bool]], directory: Path) -> list[dict[str, str]]:
    rows = []
    for i, (name, controller, by_env) in enumerate(tenants):
        row = {"name": name, "controller": controller or ""}
        if by_env:
            row["url_env"] = f"TENANT_{i}_URL"
        else:
            row["url"] = f"sqlite:///{directory / f'tenant{i}.db'}"
        rows.append(row)
    return rows


def _digests(rows: list[dict[str, str]], default: str | None) -> tuple[str, str]:
    with tempfile.TemporaryDirectory() as directory:
        defaults = f"controller = {tomli_w.dumps({'c': default})[4:]}" if default else ""
        written = written_out_config(Path(directory) / "w", rows, default)
        tenants = tenants_config(Path(directory) / "t", rows, defaults)
        a, b = load_config(written), load_config(tenants)
        assert a.databases == b.databases
        return a.digest, b.digest


@settings(max_examples=150, deadline=None)
@given(TENANTS, st.none() | CONTROLLERS, st.data())
def test_property_tenants_file_and_written_out_config_have_one_digest(tenants, default, data):
    rows = _rows(tenants, Path("/srv"))
    written, from_file = _digests(rows, default)
    assert written == from_file
    # Any change to the entries changes both digests alike (and only a change does).
    i = data.draw(st.integers(0, len(rows) - 1))
    changed = [dict(row) for row in rows]
    how = data.draw(st.sampled_from(["controller", "url", "drop", "same"]))
    if how == "controller":
        changed[i]["controller"] = data.draw(CONTROLLERS)
    elif how == "url":
        if "url" in changed[i]:
            changed[i] = {**changed[i], "url": changed[i]["url"] + "x"}
        else:
            changed[i] = {**changed[i], "url_env": changed[i]["url_env"] + "_X"}
    elif how == "drop" and len(changed) > 1:
        del changed[i]
    changed_written, changed_from_file = _digests(changed, default)
    assert changed_written == changed_from_file
    same_entries = _entries(changed, default) == _entries(rows, default)
    assert (changed_from_file == from_file) == same_entries


def _entries(rows: list[dict[str, str]], default: str | None) -> set[tuple]:
    return {(r["name"], r.get("url"), r.get("url_env"), r["controller"] or default) for r in rows}


@pytest.fixture(scope="module")
def template_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "tenant.db"
    seed(TargetDb("sqlite", f"sqlite:///{path}"))
    return path


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(TENANTS, st.none() | CONTROLLERS)
def test_property_tenants_file_and_written_out_config_plan_alike(template_db, tenants, default):
    with tempfile.TemporaryDirectory() as directory:
        base = Path(directory)
        rows = _rows(tenants, base)
        environment = {}
        for i, row in enumerate(rows):
            shutil.copy(template_db, base / f"tenant{i}.db")
            if "url_env" in row:
                environment[row["url_env"]] = f"sqlite:///{base / f'tenant{i}.db'}"
        defaults = f"controller = {tomli_w.dumps({'c': default})[4:]}" if default else ""
        written = written_out_config(base / "w", rows, default)
        from_file = tenants_config(base / "t", rows, defaults)
        plans = [
            run_cli("plan", "-c", str(c), "--as-of", AS_OF, "--json", env=environment)
            for c in (written, from_file)
        ]
        assert [p.exit_code for p in plans] == [0, 0], plans[1].stderr
        assert without_timings(plans[0].json()) == without_timings(plans[1].json())
        assert {i["database"] for i in plans[1].json()["items"]} == {r["name"] for r in rows}


def test_the_98_municipalities_example_sweeps_98_databases(template_db, tmp_path, monkeypatch):
    """docs/deploy/: the config and tenants.csv an operator of 98 municipalities writes."""
    for name in ("gdpr-sweep.toml", "tenants.csv"):
        shutil.copy(REPO / "docs" / "deploy" / name, tmp_path / name)
    config = load_config(tmp_path / "gdpr-sweep.toml")
    assert len(config.databases) == 98
    assert all(db.url_env and db.url is None and db.controller for db in config.databases)
    assert len({db.url_env for db in config.databases}) == 98
    names = {db.name for db in config.databases}
    assert {"aarhus", "koebenhavn", "aeroe", "hoeje-taastrup", "laesoe"} <= names
    assert config.database("koebenhavn").controller == "Københavns Kommune"

    monkeypatch.setenv("GDPR_SWEEP_STATE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    for db in config.databases:
        assert db.url_env is not None
        shutil.copy(template_db, tmp_path / f"{db.name}.db")
        monkeypatch.setenv(db.url_env, f"sqlite:///{tmp_path / f'{db.name}.db'}")
    path = str(tmp_path / "gdpr-sweep.toml")
    assert run_cli("check", "-c", path).exit_code == 0
    # --force: the test's small tables are mostly due (the max_fraction guard).
    result = run_cli("run", "-c", path, "--as-of", AS_OF, "--jobs", "4", "--json", "--force")
    assert result.exit_code == 0, result.stderr
    swept = {i["database"] for i in result.json()["items"] if i["done"]}
    assert swept == names
    assert {anonymised(f"sqlite:///{tmp_path / 'aeroe.db'}")} == {
        anonymised(f"sqlite:///{tmp_path / 'aarhus.db'}")
    }
    assert run_cli("audit", "verify", "-c", path).exit_code == 0

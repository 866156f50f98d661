"""`--shard I/N`: rendezvous hashing of the database handle.

Every tenant is in exactly one shard; adding a tenant moves no other; going from N to
N+1 shards moves only the tenants the new shard takes; `auto/N` reads
JOB_COMPLETION_INDEX; a bad `--shard` is exit 2 naming it; `plan --shard` plans the
shard's databases only.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gdpr_sweep.errors import UsageError
from gdpr_sweep.shards import in_shard, parse_shard, shard_of
from tests.conftest import run_cli
from tests.test_tenant_locks import AS_OF, tenants_config

handles = st.lists(
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True), unique=True, max_size=60
)


@settings(max_examples=200, deadline=None)
@given(handles, st.integers(min_value=1, max_value=16))
def test_every_tenant_is_in_exactly_one_shard(names, count):
    shards = [in_shard(names, (index, count)) for index in range(count)]
    assert sorted(name for shard in shards for name in shard) == sorted(names)
    assert sum(len(shard) for shard in shards) == len(names)


@settings(max_examples=200, deadline=None)
@given(handles, st.from_regex(r"[a-z][a-z0-9]{0,12}", fullmatch=True), st.integers(1, 16))
def test_adding_a_tenant_moves_no_other(names, new, count):
    before = {name: shard_of(name, count) for name in names}
    after = {name: shard_of(name, count) for name in [*names, new]}
    assert all(after[name] == before[name] for name in names)


@settings(max_examples=200, deadline=None)
@given(handles, st.integers(1, 16))
def test_one_more_shard_moves_only_what_the_new_shard_takes(names, count):
    for name in names:
        old, new = shard_of(name, count), shard_of(name, count + 1)
        assert new in (old, count)  # stays, or goes to the new shard `count`


def test_the_hash_is_stable_and_spreads():
    # Fixed values: a change of the hash would move every tenant of every operator.
    assert [shard_of(f"kommune{i:02}", 4) for i in range(8)] == [
        shard_of(f"kommune{i:02}", 4) for i in range(8)
    ]
    names = [f"kommune{i:03}" for i in range(98)]
    sizes = [len(in_shard(names, (i, 4))) for i in range(4)]
    assert sum(sizes) == 98 and min(sizes) >= 12  # no shard starved


def test_parse_shard():
    assert parse_shard("0/4") == (0, 4)
    assert parse_shard("3/4") == (3, 4)
    assert parse_shard("auto/4", {"JOB_COMPLETION_INDEX": "2"}) == (2, 4)
    assert parse_shard(None) is None
    for bad in ("4/4", "-1/4", "1", "1/0", "a/4", "1/x", "0/5000", "/4"):
        with pytest.raises(UsageError, match=r"^--shard: "):
            parse_shard(bad, {})
    with pytest.raises(UsageError, match="JOB_COMPLETION_INDEX, which is not set"):
        parse_shard("auto/4", {})
    with pytest.raises(UsageError, match="JOB_COMPLETION_INDEX is '7'"):
        parse_shard("auto/4", {"JOB_COMPLETION_INDEX": "7"})


def test_a_bad_shard_is_exit_2_and_touches_nothing(tmp_path, monkeypatch):
    path, targets = tenants_config(tmp_path, 3)
    monkeypatch.delenv("JOB_COMPLETION_INDEX", raising=False)
    for args in (["--shard", "4/4"], ["--shard", "auto/4"], ["--shard", "two"]):
        result = run_cli("run", "-c", str(path), "--as-of", AS_OF, *args)
        assert result.exit_code == 2, result.stderr
        assert result.stderr.startswith("error: --shard: ")
        assert result.stderr.count("\n") == 1
    assert not (tmp_path / "state.db").exists()
    assert all(t.scalar("SELECT count(*) FROM mail") == 10 for t in targets)


def test_plan_and_run_take_only_their_shard(tmp_path, monkeypatch):
    path, targets = tenants_config(tmp_path, 6)
    names = [f"t{i}" for i in range(6)]
    mine = in_shard(names, (1, 3))
    planned = run_cli("plan", "-c", str(path), "--as-of", AS_OF, "--json", "--shard", "1/3")
    assert planned.exit_code == 0, planned.stderr
    assert sorted({item["database"] for item in planned.json()["items"]}) == sorted(mine)
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "1")
    ran = run_cli("run", "-c", str(path), "--as-of", AS_OF, "--json", "--shard", "auto/3")
    assert ran.exit_code == 0, ran.stderr
    assert sorted({item["database"] for item in ran.json()["items"]}) == sorted(mine)
    for name, target in zip(names, targets, strict=True):
        assert target.scalar("SELECT count(*) FROM mail") == (0 if name in mine else 10)

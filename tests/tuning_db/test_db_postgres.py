"""The store on a real PostgreSQL server, as machines share it: two processes on one database lose nothing
and repeat nothing, a killed one's claims are taken over, and a database we cannot use is left alone.

Each test gets a fresh database from pytest-postgresql's `postgresql_noproc` (a server that is already
running: `.ci/run` starts one and sets NPU_TEST_POSTGRES to its URL). Without a server the tests skip,
saying so, unless NPU_REQUIRE_POSTGRES=1, when they fail.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from db_worker import config_cycles, evaluations, finish, spawn, start_together
from pytest_postgresql import factories
from sqlalchemy import URL, make_url

from tuning_db import TuningDBError, TuningKey, open_store
from tuning_db.records import canonical_json

SERVER = make_url(os.environ.get("NPU_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
REQUIRED = os.environ.get("NPU_REQUIRE_POSTGRES") == "1"
CONFIGS = 40
KEY = TuningKey(kernel="kernels.conv2d", source_hash="s1", key={"N": 8, "C": 64, "H": 56, "W": 56},
                dtypes=("float16", "float16", "float32"), machine="fp", compiler_version="c1")

postgresql_server = factories.postgresql_noproc(host=SERVER.host, port=SERVER.port, user=SERVER.username,
                                                password=SERVER.password)
postgresql_fresh = factories.postgresql("postgresql_server")


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    """A SQLAlchemy URL of a fresh, empty database on the test server (dropped after the test)."""
    try:
        psycopg.connect(host=SERVER.host, port=SERVER.port, user=SERVER.username, password=SERVER.password,
                        dbname=SERVER.database or "postgres", connect_timeout=5).close()
    except psycopg.OperationalError as e:
        reason = (f"no PostgreSQL server at {SERVER.host}:{SERVER.port} ({str(e).strip().splitlines()[0]}); "
                  "`.ci/run` starts one and sets NPU_TEST_POSTGRES to its URL")
        if REQUIRED:
            pytest.fail(f"{reason}, and NPU_REQUIRE_POSTGRES=1 makes this test required")
        pytest.skip(reason)
    info = request.getfixturevalue("postgresql_fresh").info
    return URL.create("postgresql+psycopg", username=info.user, password=info.password or None, host=info.host,
                      port=info.port, database=info.dbname).render_as_string(hide_password=False)


def test_the_contract_round_trips_on_postgresql(pg_url: str):
    with open_store(pg_url) as store:
        store.register_machine("m", "fp", '{"cores": 4}')
        with open_store(pg_url) as other:
            assert store.claim(KEY, {"BM": 64}) and not other.claim(KEY, {"BM": 64})
        done = store.record_trial(KEY, {"BM": 64}, cycles=5000, wall_seconds=1.5)
        store.record_trial(KEY, {"BM": 999}, cycles=None, failure="ResourceError: UB")
        assert store.trials(KEY) == [done, store.trials(KEY)[1]] and store.trials(KEY)[1].state == "failed"
        assert store.save_best(KEY, {"BM": 64}, 5000).trials == 2
        near = TuningKey(**{**KEY.to_json(), "key": {"N": 8, "C": 64, "H": 28, "W": 28}})
        store.save_best(near, {"BM": 32}, 1200)
        assert [r.key for r in store.nearest_best(KEY)] == [near]
    with open_store(pg_url) as again:  # an existing database opens at its version
        assert again.best(KEY).config == {"BM": 64}


def test_two_processes_on_one_postgresql_database_lose_and_repeat_nothing(pg_url: str, tmp_path: Path):
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    workers = [spawn(pg_url, log, seed, KEY, CONFIGS, go=tmp_path / "go") for seed, log in enumerate(logs)]
    start_together(workers, tmp_path / "go")  # (both raced to create the tables)
    for w in workers:
        finish(w)
    holder = spawn(pg_url, tmp_path / "holder.log", 3, TuningKey(**{**KEY.to_json(), "machine": "fp2"}),
                   CONFIGS, hang_after=3)
    assert holder.stdout.readline() == "holding\n"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    finish(spawn(pg_url, tmp_path / "rerun.log", 4, TuningKey(**{**KEY.to_json(), "machine": "fp2"}), CONFIGS))
    for machine, names in (("fp", ["a.log", "b.log"]), ("fp2", ["holder.log", "rerun.log"])):
        started, finished = evaluations([tmp_path / n for n in names])
        assert len(started) == CONFIGS and set(started.values()) == {1} and finished == started, machine
        key = TuningKey(**{**KEY.to_json(), "machine": machine})
        with open_store(pg_url) as store:
            trials = store.trials(key)
            assert len(trials) == CONFIGS and all(t.cycles == config_cycles(dict(t.config)) for t in trials)
            assert store.best(key).cycles == min(t.cycles for t in trials)
    assert all(log.read_text() for log in logs)  # both shared the work


def test_our_tables_live_beside_others_but_an_unknown_version_is_refused(pg_url: str):
    with psycopg.connect(make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as raw:
        raw.execute("CREATE TABLE trials (trial_id serial PRIMARY KEY)")  # e.g. an Optuna study's table
        with open_store(pg_url) as store:
            store.record_trial(KEY, {"BM": 1}, cycles=10)
        raw.execute("UPDATE npu_schema_version SET version = 7")
        with pytest.raises(TuningDBError, match=r"schema version 7, newer than this npulang reads") as info:
            open_store(pg_url)
        assert f"{SERVER.host}:{SERVER.port}/{make_url(pg_url).database}" in str(info.value)
        assert raw.execute("SELECT version FROM npu_schema_version").fetchone() == (7,)
        assert json.loads(raw.execute("SELECT config_json FROM npu_trials").fetchone()[0]) == {"BM": 1}


NPU_TUNE = str(Path(sys.executable).parent / "npu-tune")
TUNE_ARGS = ["relu", "--sampler", "grid", "--no-verify", "--json", "--dtype", "fp16"]  # 15 configs a shape


def npu_tune(db: str, shapes: str) -> subprocess.Popen[str]:
    return subprocess.Popen([NPU_TUNE, *TUNE_ARGS, "--shapes", shapes, "--db", db], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def reported(proc: subprocess.Popen[str]) -> dict[str, int]:
    """Simulations this npu-tune run made, by shape, from its --json lines."""
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return {r["shape"]: r["evaluated"] for r in map(json.loads, out.splitlines())}


def owners(pg_url: str) -> dict[tuple[str, int], list[str]]:
    """(the relu kernel's key json, owner pid) -> the states of the trials that process recorded."""
    out: dict[tuple[str, int], list[str]] = {}
    with psycopg.connect(make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)) as raw:
        for key, pid, state in raw.execute("SELECT k.key_json, t.owner_pid, t.state FROM npu_trials t "
                                           "JOIN npu_tuning_keys k ON t.key_id = k.id"):
            out.setdefault((key, pid), []).append(state)
    return out


def test_npu_tune_processes_sharing_postgresql_lose_and_repeat_nothing_when_one_is_killed(pg_url, tmp_path):
    """Two npu-tune runs tune overlapping shapes at once; one is SIGKILLed mid-run and re-run. Every config of
    every shape is then simulated exactly once, and the best records equal a single-process run's."""
    first, second = "1500000,2000000", "2000000,2500000"  # both tune 2000000
    killed, survivor = npu_tune(pg_url, first), npu_tune(pg_url, second)
    deadline = time.monotonic() + 300
    while killed.poll() is None and time.monotonic() < deadline:  # until it has recorded a few simulations
        time.sleep(0.05)
        try:
            if sum(len(s) for (_, pid), s in owners(pg_url).items() if pid == killed.pid) >= 3:
                break
        except psycopg.errors.UndefinedTable:  # (the store's tables are not made yet)
            continue
    assert killed.poll() is None, "the run to kill finished before it could be killed: make its shapes larger"
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    rerun = npu_tune(pg_url, first)
    runs = {survivor.pid: reported(survivor), rerun.pid: reported(rerun)}
    reference = str(tmp_path / "one.db")
    solo = subprocess.run([NPU_TUNE, *TUNE_ARGS, "--shapes", "1500000,2000000,2500000", "--db", reference],
                          capture_output=True, text=True, timeout=600)
    assert solo.returncode == 0, solo.stderr
    by_owner = owners(pg_url)
    assert any(pid == killed.pid for _, pid in by_owner)  # the killed run's finished simulations were kept
    with open_store(pg_url) as shared, open_store(reference) as alone:
        expected = {canonical_json(r.key.key): r for r in alone.all_best()}
        assert len(expected) == 3
        for record in shared.all_best():
            key = canonical_json(record.key.key)
            trials = shared.trials(record.key)
            assert sorted(t.state for t in trials) == ["done"] * 15  # every config, once (no claim left behind)
            assert {canonical_json(t.config): t.cycles for t in trials} == {
                canonical_json(t.config): t.cycles for t in alone.trials(expected[key].key)}
            assert (record.config, record.cycles, record.trials) == (
                expected[key].config, expected[key].cycles, expected[key].trials)
            shape = str(record.key.key["n"])
            for pid, counts in runs.items():  # what a finished run says it simulated, it alone recorded
                assert counts.get(shape, 0) == len(by_owner.get((key, pid), [])), (shape, pid)
        assert sorted(canonical_json(r.key.key) for r in shared.all_best()) == sorted(expected)

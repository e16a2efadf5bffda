"""Whatever the database holds, the caller gets validated records or a TuningDBError naming the file,
and a file that is not ours (or not of a version we know) is left exactly as it was."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, inspect, select

from tuning_db import BestRecord, Trial, TuningDBError, TuningKey, connection, open_store, schema

KEY = TuningKey(kernel="kernels.matmul", source_hash="s0", key={"M": 256, "N": 256},
                dtypes=("float16", "float32"), machine="fp", compiler_version="c1")
NEAR = TuningKey(**{**KEY.to_json(), "key": {"M": 512, "N": 256}})
FILES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def populated(path: Path) -> Path:
    with open_store(str(path)) as store:
        store.register_machine("m", "fp", '{"cores": 4}')
        for bm in (32, 64, 128):
            store.record_trial(KEY, {"BM": bm, "layout": "nt", "split": bm > 32}, cycles=1000 - bm)
        store.record_trial(KEY, {"BM": 512}, cycles=None, failure="ResourceError: L0A")
        store.claim(KEY, {"BM": 256})
        store.save_best(KEY, {"BM": 128, "layout": "nt", "split": True}, 872)
        store.save_best(NEAR, {"BM": 64}, 2000)
    return path


def read_everything(url: str) -> list[object]:
    """Every read the tuner and npu-db make, each result checked to be a validated record."""
    with open_store(url) as store:
        out: list[object] = [*store.trials(KEY), store.best(KEY), *store.nearest_best(KEY),
                             *store.similar_machine_best(KEY), *store.all_best(), *store.keys(), *store.machines()]
    for item in out:
        if isinstance(item, (Trial, BestRecord)):
            assert all(isinstance(n, str) and n.isidentifier() for n in item.config)
            assert all(isinstance(v, (int, float, str)) for v in item.config.values())
    return out


def refused(path: Path, *words: str) -> TuningDBError:
    """Opening `path` raises a TuningDBError naming it, and leaves it (and its directory) as they were."""
    before, files = digest(path), sorted(path.parent.iterdir())
    with pytest.raises(TuningDBError) as info:
        read_everything(str(path))
    assert str(path) in str(info.value) and all(w in str(info.value) for w in words), str(info.value)
    assert digest(path) == before and sorted(path.parent.iterdir()) == files
    return info.value


def test_a_foreign_sqlite_file_is_refused_untouched(tmp_path: Path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE trials (id INTEGER PRIMARY KEY, value REAL)")  # e.g. an Optuna study
    refused(path, "another application", "trials")


def test_a_newer_schema_version_is_refused_untouched(tmp_path: Path):
    path = populated(tmp_path / "t.db")
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE npu_schema_version SET version = 99")
    raw.close()
    refused(path, "schema version 99", "up to 1")


def test_another_applications_version_table_is_refused(tmp_path: Path):
    path = populated(tmp_path / "t.db")
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE npu_schema_version SET application = 'someone-else'")
    refused(path, "not npulang-tuning's")


@FILES
@given(data=st.binary(min_size=1, max_size=3000), sqlite_header=st.booleans())
def test_random_bytes_are_refused_untouched(tmp_path_factory, data: bytes, sqlite_header: bool):
    path = tmp_path_factory.mktemp("rand") / "t.db"
    path.write_bytes((b"SQLite format 3\x00" if sqlite_header else b"") + data)
    refused(path)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> bytes:
    """The bytes of a populated store, made once (its WAL checkpointed into the file on close)."""
    return populated(tmp_path_factory.mktemp("template") / "t.db").read_bytes()


@FILES
@given(fraction=st.floats(min_value=0.0, max_value=1.0, exclude_max=True))
def test_a_truncated_store_reads_validated_or_is_refused_untouched(tmp_path_factory, template: bytes,
                                                                   fraction: float):
    path = tmp_path_factory.mktemp("trunc") / "t.db"
    path.write_bytes(template[:max(1, int(len(template) * fraction))])
    before = digest(path)
    try:
        read_everything(str(path))
    except TuningDBError as e:
        assert str(path) in str(e)
    assert digest(path) == before  # reading, or refusing, writes nothing


def json_values():
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)


COLUMNS = [("npu_trials", "config_json"), ("npu_best", "config_json"), ("npu_tuning_keys", "key_json"),
           ("npu_tuning_keys", "dtypes_json"), ("npu_machines", "spec_json"), ("npu_trials", "cycles"),
           ("npu_trials", "state"), ("npu_trials", "created"), ("npu_best", "cycles"), ("npu_best", "trials"),
           ("npu_trials", "wall_seconds"), ("npu_trials", "failure"), ("npu_best", "updated")]


@FILES
@given(column=st.sampled_from(COLUMNS),
       value=json_values().map(json.dumps) | st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1)
       | st.floats() | st.text(max_size=20) | st.binary(max_size=8))
def test_whatever_a_column_holds_the_caller_gets_a_validated_record_or_an_error(tmp_path_factory, template: bytes,
                                                                               column, value):
    path = tmp_path_factory.mktemp("cols") / "t.db"
    path.write_bytes(template)
    table, name = column
    try:
        with sqlite3.connect(path) as raw:  # SQLite stores any type in any column: the worst a file can hold
            raw.execute(f"UPDATE {table} SET {name} = ? WHERE rowid = (SELECT MIN(rowid) FROM {table})", (value,))
    except sqlite3.IntegrityError:
        reject()  # NULL in a NOT NULL column, a duplicate of a unique one: SQLite itself refuses it
    raw.close()
    try:
        read_everything(str(path))
    except TuningDBError as e:
        assert str(path) in str(e)


def add_note(ops) -> None:
    """A version 1 -> 2 step, as a real one would be written."""
    ops.add_column("npu_trials", Column("note", Integer))


def fails(ops) -> None:
    ops.add_column("npu_best", Column("extra", Integer))
    raise RuntimeError("no space left")


def test_a_migration_step_runs_in_the_open_transaction(tmp_path: Path):
    path = populated(tmp_path / "t.db")
    engine = connection.make_engine(connection.resolve(str(path)))  # ours: sqlite3 must not COMMIT before DDL

    with pytest.raises(schema.MigrationFailed, match=r"version 2 -> 3 \(fails\) failed: no space left"), \
            engine.begin() as conn:  # a failing step leaves version 1, no column
        schema.migrate(conn, 1, steps=(add_note, fails))
    with engine.connect() as conn:
        assert schema.found_version(conn) == 1
        assert "note" not in {c["name"] for c in inspect(conn).get_columns("npu_trials")}
    with engine.begin() as conn:
        assert schema.migrate(conn, 1, steps=(add_note,)) == 2
    with engine.connect() as conn:
        assert conn.scalar(select(schema.SchemaVersion.version)) == 2
        assert "note" in {c["name"] for c in inspect(conn).get_columns("npu_trials")}
        with pytest.raises(schema.NotOurs, match="newer than this npulang reads"):
            schema.check_version(2)
    engine.dispose()


def test_opening_an_older_store_migrates_it_or_leaves_it_as_it_was(tmp_path: Path, monkeypatch):
    path = populated(tmp_path / "t.db")
    before = digest(path)
    monkeypatch.setattr(schema, "MIGRATIONS", (fails,))
    with pytest.raises(TuningDBError, match=r"migrating the schema failed, nothing was changed: version 1 -> 2 "
                                            r"\(fails\) failed: no space left"):
        open_store(str(path))
    assert digest(path) == before
    monkeypatch.setattr(schema, "MIGRATIONS", (add_note,))
    assert [t.cycles for t in read_everything(str(path)) if isinstance(t, Trial)][:3] == [968, 936, 872]
    with open_store(str(path)) as store, store._engine.connect() as conn:
        assert schema.found_version(conn) == 2
        assert "note" in {c["name"] for c in inspect(conn).get_columns("npu_trials")}
    monkeypatch.setattr(schema, "MIGRATIONS", ())  # an older npulang opening the migrated file: refused
    refused(path, "schema version 2, newer than this npulang reads (up to 1)")


def test_an_empty_file_becomes_a_new_store(tmp_path: Path):
    path = tmp_path / "t.db"
    path.touch()  # SQLite's own view: an empty file is an empty database
    with open_store(str(path)) as store:
        store.record_trial(KEY, {"BM": 1}, cycles=5)
        assert [t.cycles for t in store.trials(KEY)] == [5]

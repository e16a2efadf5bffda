"""Where the store lives, how SQLite is set up, and waiting for (or retrying past) another writer."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from tuning_db import TuningDBError, TuningKey, connection, open_store

KEY = TuningKey(kernel="k", source_hash="s", key={"M": 1024}, dtypes=("float16",), machine="fp",
                compiler_version="c")


def test_the_default_store_is_in_the_user_cache_dir(tmp_path: Path, monkeypatch):
    monkeypatch.delenv(connection.ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with open_store() as store:
        assert store.where == str(tmp_path / "cache" / "npulang" / "tuning.db")
        store.record_trial(KEY, {"BM": 1}, cycles=3)
    monkeypatch.setenv(connection.ENV, f"sqlite:///{tmp_path / 'env.db'}")
    with open_store() as store:
        assert store.where == str(tmp_path / "env.db") and store.trials(KEY) == []
    with open_store(str(tmp_path / "cache" / "npulang" / "tuning.db")) as store:  # the argument wins
        assert [t.cycles for t in store.trials(KEY)] == [3]


def test_sqlite_connections_are_set_up_for_several_processes(tmp_path: Path):
    with open_store(str(tmp_path / "t.db")) as store:
        with store._engine.connect() as conn:
            pragma = {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                      for name in ("journal_mode", "busy_timeout", "synchronous", "foreign_keys")}
    assert pragma == {"journal_mode": "wal", "busy_timeout": connection.BUSY_TIMEOUT_MS, "synchronous": 1,
                      "foreign_keys": 1}  # synchronous 1 = NORMAL


def hold_write_lock(path: Path, seconds: float, begin: str = "BEGIN IMMEDIATE") -> threading.Thread:
    """Another writer holding SQLite's write lock (`BEGIN EXCLUSIVE`: readers too) for `seconds`."""
    raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    raw.execute(begin)

    def release() -> None:
        time.sleep(seconds)
        raw.execute("COMMIT")
        raw.close()
    thread = threading.Thread(target=release)
    thread.start()
    return thread


@pytest.mark.parametrize("busy_timeout_ms", [connection.BUSY_TIMEOUT_MS, 0])
def test_a_writer_waits_for_another_or_retries_when_locked(tmp_path: Path, monkeypatch, busy_timeout_ms: int):
    """busy_timeout makes SQLite wait; with none, 'database is locked' comes back and the whole
    transaction is retried until the lock is free."""
    monkeypatch.setattr(connection, "BUSY_TIMEOUT_MS", busy_timeout_ms)
    with open_store(str(tmp_path / "t.db")) as store:
        thread = hold_write_lock(tmp_path / "t.db", 0.3)
        start = time.monotonic()
        store.record_trial(KEY, {"BM": 1}, cycles=3)
        assert time.monotonic() - start >= 0.25
        thread.join()
        assert [t.cycles for t in store.trials(KEY)] == [3]


def test_opening_waits_for_a_writer_that_locks_out_readers(tmp_path: Path):
    """The read-only look at an existing file waits (busy timeout) instead of calling a busy file unreadable."""
    path = tmp_path / "t.db"
    with open_store(str(path)) as store:
        store.record_trial(KEY, {"BM": 1}, cycles=3)
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA journal_mode = DELETE")  # a rollback journal: an exclusive writer blocks readers
    raw.close()
    thread = hold_write_lock(path, 0.3, "BEGIN EXCLUSIVE")
    with open_store(str(path)) as store:
        assert [t.cycles for t in store.trials(KEY)] == [3]
    thread.join()


def test_a_key_is_what_the_store_matches():
    same = TuningKey(**KEY.to_json())
    assert same == KEY and hash(same) == hash(KEY) and len({KEY, same}) == 1
    as_float = TuningKey(**{**KEY.to_json(), "key": {"M": 1024.0}})
    assert as_float != KEY  # the store keeps {"M": 1024.0} apart from {"M": 1024}


def test_plain_paths_and_urls_resolve_to_the_same_file(tmp_path: Path):
    assert connection.resolve(str(tmp_path / "a.db")) == connection.resolve(f"sqlite:///{tmp_path / 'a.db'}")
    pg = connection.resolve("postgresql+psycopg://me:secret@db.example:5433/tuning")
    assert connection.sqlite_file(pg) is None and connection.describe(pg) == \
        "postgresql+psycopg://me:***@db.example:5433/tuning"


def test_a_store_that_cannot_be_opened_is_a_tuning_db_error(tmp_path: Path):
    (tmp_path / "file").write_text("")
    cases = {str(tmp_path): "Is a directory", "nosuch://x": "not a database URL we can open",
             str(tmp_path / "file" / "t.db"): f"File exists ({tmp_path / 'file'})",  # its directory cannot be made
             "postgresql+psycopg://me@127.0.0.1:1/x": "Connection refused",
             "mysql://me@127.0.0.1/x": "needs the MySQLdb driver"}  # not one of our dependencies
    for url, words in cases.items():
        with pytest.raises(TuningDBError) as info:
            open_store(url)
        assert str(info.value).startswith(url) and words in str(info.value), str(info.value)


def test_a_server_that_never_answers_is_an_error_in_seconds_not_a_hang(monkeypatch):
    monkeypatch.setattr(connection, "CONNECT_TIMEOUT_S", 1)
    with socket.socket() as silent:  # accepts connections (the kernel does) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        start = time.monotonic()
        with pytest.raises(TuningDBError, match="timeout"):
            open_store(f"postgresql+psycopg://me@127.0.0.1:{silent.getsockname()[1]}/x")
        assert time.monotonic() - start < 10

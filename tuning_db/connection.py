"""Where the store lives and how we connect to it.

`NPU_TUNING_DB` (or the url argument, `--db`) takes any SQLAlchemy URL or a plain file path; the
default is an SQLite file in the user's cache directory. SQLite connections get WAL (readers never wait
for the writer), `busy_timeout` (a writer waits for another instead of failing) and `synchronous=NORMAL`
(safe with WAL: a power cut can lose the last commits, never corrupt the file) from a connect-event
listener, and every writing transaction starts with `BEGIN IMMEDIATE`, so two writers queue on the lock
rather than deadlock upgrading a read lock. These PRAGMAs and BEGINs (and `quick_check`, which looks at
a file before we trust it) are the only SQL text in tuning_db: SQLAlchemy has no construct for them.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

import platformdirs
from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

ENV = "NPU_TUNING_DB"
BUSY_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_S = 10
WRITE = "tuning_db_write"  # execution option: this transaction will write


def default_path() -> Path:
    """`tuning.db` in the user cache dir: ~/.cache/npulang on Linux, or $XDG_CACHE_HOME/npulang."""
    return Path(platformdirs.user_cache_dir("npulang", appauthor=False)) / "tuning.db"


def resolve(url: str | None) -> URL:
    """The argument, else $NPU_TUNING_DB, else the default file; a plain path means an SQLite file."""
    text = url or os.environ.get(ENV) or str(default_path())
    if "://" not in text:
        return URL.create("sqlite", database=str(Path(text).expanduser().absolute()))
    return make_url(text)


def sqlite_file(url: URL) -> Path | None:
    """The file of an SQLite URL, None for other backends and in-memory databases."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    if url.database.startswith("file:") or url.query.get("mode") == "memory":
        return None  # a URI filename: the caller manages it
    return Path(url.database).absolute()


def describe(url: URL) -> str:
    """How messages name the store: the file, or the URL without its password."""
    path = sqlite_file(url)
    return str(path) if path is not None else url.render_as_string(hide_password=True)


def make_engine(url: URL) -> Engine:
    """A SQLAlchemy engine for `url`: SQLite with WAL and busy timeouts, PostgreSQL with a connect timeout."""
    if url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
        # libpq waits forever for a host that drops packets: fail in seconds instead (the URL may override)
        return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def read_only_engine(path: Path) -> Engine:
    """An SQLite connection that cannot write the file: for looking at a file before we trust it."""
    return create_engine(f"sqlite:///file:{quote(str(path))}?mode=ro&uri=true", poolclass=NullPool,
                         connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})  # wait out a writer creating it


def quick_check(conn: Connection) -> list[str]:
    """SQLite's own consistency check of a whole file (pages, indexes, lengths); [] when it is sound.
    Milliseconds for a tuning database of thousands of rows."""
    found = [" ".join(str(row[0]).split()) for row in conn.exec_driver_sql("PRAGMA quick_check").all()]
    return [] if found == ["ok"] else found


def _sqlite_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    # sqlite3 must not open transactions on its own (it would COMMIT before DDL and could not BEGIN
    # IMMEDIATE): isolation_level None, and `_sqlite_begin` begins them. Python 3.12's `autocommit`
    # attribute, which SQLAlchemy's documented recipe toggles, must stay in its legacy mode for that to
    # hold; Python 3.11's sqlite3 has no such attribute.
    legacy = getattr(sqlite3, "LEGACY_TRANSACTION_CONTROL", None)
    if legacy is not None and getattr(dbapi_connection, "autocommit", legacy) != legacy:
        dbapi_connection.autocommit = legacy
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE) else "BEGIN")


def transient(error: BaseException) -> bool:
    """A failure that a retry of the whole transaction can cure: SQLite's lock time-outs, PostgreSQL's
    serialisation failures and deadlocks, and a unique-key race (two PostgreSQL sessions inserting one row;
    SQLite's writers are serialised by BEGIN IMMEDIATE, so there a unique violation is a real error)."""
    text = str(getattr(error, "orig", error)).lower()
    if "database is locked" in text or "database table is locked" in text or "database is busy" in text:
        return True
    return getattr(getattr(error, "orig", None), "sqlstate", None) in ("40001", "40P01", "23505")

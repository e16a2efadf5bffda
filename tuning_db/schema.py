"""The tables, the schema version and how a database is recognised, created and migrated.

Every table is prefixed `npu_`, so our store can share a PostgreSQL database (or an SQLite file) with an
Optuna study, whose tables are named `trials`, `studies`, ... and whose own Alembic history lives in
`alembic_version`. Our schema version is one integer in `npu_schema_version`; a database whose version
is newer than this code knows is refused untouched, an older one is brought forward by the steps in
`MIGRATIONS`, all in one transaction (DDL is transactional in SQLite and PostgreSQL alike).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from typing import TYPE_CHECKING

from sqlalchemy import (BigInteger, Connection, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint,
                        func, inspect, select)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

if TYPE_CHECKING:
    from alembic.operations import Operations

APPLICATION = "npulang-tuning"


class Base(DeclarativeBase):
    """The declarative base of the tuning database's tables (all named `npu_*`)."""
    pass


class SchemaVersion(Base):
    """One row: which application's tables these are, and at which version."""

    __tablename__ = "npu_schema_version"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)


class KernelRow(Base):
    """A kernel's identity: its qualified name and the hash of its source and callees."""

    __tablename__ = "npu_kernels"
    __table_args__ = (UniqueConstraint("name", "source_hash"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(512))
    source_hash: Mapped[str] = mapped_column(String(128))


class MachineRow(Base):
    """A machine description by fingerprint (`MachineSpec.fingerprint`), with its name and spec JSON."""

    __tablename__ = "npu_machines"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str] = mapped_column(String(256))
    spec_json: Mapped[str] = mapped_column(Text)
    registered: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class KeyRow(Base):
    """A tuning problem: kernel, key values, dtypes, machine fingerprint, compiler version."""

    __tablename__ = "npu_tuning_keys"
    __table_args__ = (UniqueConstraint("kernel_id", "key_json", "dtypes_json", "machine", "compiler_version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kernel_id: Mapped[int] = mapped_column(ForeignKey("npu_kernels.id", ondelete="CASCADE"), index=True)
    key_json: Mapped[str] = mapped_column(Text)
    dtypes_json: Mapped[str] = mapped_column(Text)
    machine: Mapped[str] = mapped_column(String(128), index=True)
    compiler_version: Mapped[str] = mapped_column(String(128))


class TrialRow(Base):
    """One config of one key: claimed ("running", with its owner and heartbeat), "done" or "failed"."""

    __tablename__ = "npu_trials"
    __table_args__ = (UniqueConstraint("key_id", "config_json"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("npu_tuning_keys.id", ondelete="CASCADE"), index=True)
    config_json: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    cycles: Mapped[int | None] = mapped_column(BigInteger)
    failure: Mapped[str | None] = mapped_column(Text)
    wall_seconds: Mapped[float | None] = mapped_column(Float)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    heartbeat: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    owner_host: Mapped[str] = mapped_column(String(255))
    owner_pid: Mapped[int] = mapped_column(Integer)
    owner_start: Mapped[str] = mapped_column(String(32))  # the owner's start time, so a reused pid is not it
    owner_token: Mapped[str] = mapped_column(String(32))  # which TuningStore object claimed it


class BestRow(Base):
    """The best config of a key and the number of evaluations behind it."""

    __tablename__ = "npu_best"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("npu_tuning_keys.id", ondelete="CASCADE"), unique=True)
    config_json: Mapped[str] = mapped_column(Text)
    cycles: Mapped[int] = mapped_column(BigInteger)
    trials: Mapped[int] = mapped_column(Integer)
    updated: Mapped[datetime] = mapped_column(DateTime(timezone=True))


OUR_TABLES = frozenset(Base.metadata.tables)

# MIGRATIONS[v - 1] brings a database from version v to v + 1, through Alembic's operations (which
# rebuild SQLite tables in batch mode where SQLite has no ALTER). Version 1 is the first: none yet.
Migration = Callable[["Operations"], None]
MIGRATIONS: tuple[Migration, ...] = ()


class NotOurs(Exception):
    """The database holds something other than our tables; the text says what (the caller adds where)."""


class MigrationFailed(Exception):
    """A migration step raised; the text names the step (the caller adds where)."""


def found_version(conn: Connection) -> int | None:
    """Our schema version in this database, None when it has none of our tables; NotOurs when it holds
    tables of another application (in an SQLite file, any table) or a half-made or damaged set of ours."""
    tables = set(inspect(conn).get_table_names())
    if SchemaVersion.__tablename__ not in tables:
        ours = sorted(tables & OUR_TABLES)
        if ours:
            raise NotOurs(f"has tables {', '.join(ours)} but no {SchemaVersion.__tablename__}")
        if tables and conn.dialect.name == "sqlite":
            raise NotOurs(f"is an SQLite database of another application (tables: {', '.join(sorted(tables))})")
        return None
    rows = conn.execute(select(SchemaVersion.application, SchemaVersion.version)).all()
    if len(rows) != 1 or rows[0].application != APPLICATION:
        raise NotOurs(f"has a {SchemaVersion.__tablename__} table that is not {APPLICATION}'s: {rows[:3]!r}")
    version = rows[0].version
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise NotOurs(f"has a damaged schema version {version!r}")
    return version


def newest_version(steps: Sequence[Migration] | None = None) -> int:
    """The schema version this code writes: 1 plus one per migration step."""
    return 1 + len(MIGRATIONS if steps is None else steps)


def check_version(version: int, steps: Sequence[Migration] | None = None) -> None:
    """Raise NotOurs for a database of a schema version newer than this code knows."""
    newest = newest_version(steps)
    if version > newest:
        raise NotOurs(f"has schema version {version}, newer than this npulang reads (up to {newest}): "
                      "upgrade npulang, or set NPU_TUNING_DB to another database")


def create(conn: Connection) -> None:
    """Our tables at the current version (inside the caller's transaction)."""
    Base.metadata.create_all(conn)
    conn.execute(SchemaVersion.__table__.insert().values(id=1, application=APPLICATION, version=newest_version()))


def migrate(conn: Connection, version: int, steps: Sequence[Migration] | None = None) -> int:
    """Apply the steps (default: MIGRATIONS) from `version` on inside the caller's transaction; returns the
    new version. A step that fails raises MigrationFailed, and the caller's rollback undoes them all."""
    steps = MIGRATIONS if steps is None else steps
    check_version(version, steps)
    newest = newest_version(steps)
    if version == newest:
        return version
    from alembic.migration import MigrationContext  # only when there is something to migrate: 0.4 s to import
    from alembic.operations import Operations

    ops = Operations(MigrationContext.configure(conn))
    for number, step in enumerate(steps[version - 1:], start=version):
        try:
            step(ops)
        except DBAPIError:
            raise  # the database's own failure: the store's retry and error handling apply
        except Exception as e:
            raise MigrationFailed(f"version {number} -> {number + 1} ({step.__name__}) failed: {e}") from e
    conn.execute(SchemaVersion.__table__.update().values(version=newest))
    return newest


def lock_for_setup(conn: Connection) -> None:
    """Serialise first-time setup between processes. SQLite: the writer's BEGIN IMMEDIATE already does;
    PostgreSQL: a transaction-scoped advisory lock (two CREATE TABLEs at once would collide)."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(0x6E70755F74756E65)))  # "npu_tune"

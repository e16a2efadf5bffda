"""`TuningStore`: trials, claims and best records of tuning keys, over any SQLAlchemy database.

Each public method is one transaction, retried whole when the database reports a transient conflict
(a lock time-out, a unique-key race between two processes, a PostgreSQL serialisation failure). The
unique constraints do the coordination: one trial row per (key, config), one best row per key, so
several processes, on one machine through one SQLite file or on several through one PostgreSQL server,
never store or evaluate a config twice.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import delete, func, select
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session

from tuning_db import connection, schema
from tuning_db.owners import Owner, alive
from tuning_db.records import (BestRecord, Machine, Scalar, Trial, TuningDBError, TuningKey, canonical_json,
                               check_scalars, parse_json_object)
from tuning_db.schema import BestRow, KernelRow, KeyRow, MachineRow, TrialRow

T = TypeVar("T")
_SHAPE = re.compile(r"\d+(x\d+)*")
ATTEMPTS = 12
DEFAULT_CLAIM_TIMEOUT = 3600.0  # seconds without a heartbeat after which another host's claim is stale


def open_store(url: str | None = None, *, claim_timeout: float = DEFAULT_CLAIM_TIMEOUT) -> TuningStore:
    """The tuning store at `url` (any SQLAlchemy URL or a file path), else at $NPU_TUNING_DB, else the
    SQLite file `tuning.db` in the user cache dir. Creates our tables in a new or empty database;
    raises TuningDBError, leaving the file untouched, for one that is not ours or of an unknown version."""
    return TuningStore(url, claim_timeout=claim_timeout)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class TuningStore:
    """One open tuning database. Not shared between threads; open one per thread or process."""

    def __init__(self, url: str | None = None, *, claim_timeout: float = DEFAULT_CLAIM_TIMEOUT) -> None:
        self.where = url or "the tuning database"
        try:
            parsed = connection.resolve(url)
            self.url = parsed.render_as_string(hide_password=False)
            self.where = connection.describe(parsed)
            path = connection.sqlite_file(parsed)
            if path is not None and path.exists():
                self._inspect_read_only(path)  # before our connections set WAL mode, which writes the file
            self._engine = connection.make_engine(parsed)
        except (ArgumentError, NoSuchModuleError) as e:
            raise TuningDBError(f"{self.where}: not a database URL we can open ({e})") from None
        except ImportError as e:  # the URL's driver is not installed
            raise TuningDBError(f"{self.where}: needs the {e.name} driver (for PostgreSQL: "
                                "pip install 'npulang[postgresql]')") from None
        except OSError as e:
            on = f" ({e.filename})" if e.filename and str(e.filename) != self.where else ""
            raise TuningDBError(f"{self.where}: {e.strerror or e}{on}") from None
        self.claim_timeout = timedelta(seconds=claim_timeout)
        self._owner = Owner.this_process()
        self._writer = self._engine.execution_options(**{connection.WRITE: True})
        try:
            self._run(self._set_up)
        except BaseException:
            self._engine.dispose()
            raise

    # -- setup -----------------------------------------------------------------------------------

    def _inspect_read_only(self, path: Path) -> None:
        with open(path, "rb") as f:
            head = f.read(16)
        if head and head != b"SQLite format 3\x00":
            raise TuningDBError(f"{self.where}: not a tuning database (not an SQLite file: it starts {head[:8]!r})")
        engine = connection.read_only_engine(path)
        leftovers = [p for p in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
                     if not p.exists()]
        try:
            with engine.connect() as conn:
                problems = connection.quick_check(conn)
                if problems:
                    raise TuningDBError(f"{self.where}: the SQLite file is damaged ({'; '.join(problems[:3])})")
                version = schema.found_version(conn)
                if version is not None:
                    schema.check_version(version)
        except schema.NotOurs as e:
            _remove(leftovers)
            raise TuningDBError(f"{self.where}: not a tuning database we can use: it {e}") from None
        except DBAPIError as e:
            if not connection.transient(e):  # a locked file is in use: its -wal/-shm may be another's now
                _remove(leftovers)
            raise TuningDBError(f"{self.where}: cannot be read as an SQLite database ({e.orig})") from None
        except TuningDBError:
            _remove(leftovers)
            raise
        finally:
            engine.dispose()

    def _set_up(self, session: Session) -> None:
        conn = session.connection()
        schema.lock_for_setup(conn)
        try:
            version = schema.found_version(conn)
            if version is None:
                schema.create(conn)
            else:
                schema.migrate(conn, version)
        except schema.NotOurs as e:
            raise TuningDBError(f"{self.where}: not a tuning database we can use: it {e}") from None
        except schema.MigrationFailed as e:
            raise TuningDBError(f"{self.where}: migrating the schema failed, nothing was changed: {e}") from e

    # -- transactions ----------------------------------------------------------------------------

    def _run(self, work: Callable[[Session], T], *, write: bool = True) -> T:
        """`work` in one transaction, retried on transient conflicts; database failures and stored values
        that do not read back become TuningDBError naming the store."""
        for attempt in range(ATTEMPTS):
            try:
                with Session(self._writer if write else self._engine, expire_on_commit=False) as session:
                    with session.begin():
                        return work(session)
            except (OperationalError, IntegrityError) as e:
                if attempt + 1 < ATTEMPTS and connection.transient(e):
                    time.sleep(min(0.01 * 2 ** attempt, 1.0))
                    continue
                raise TuningDBError(f"{self.where}: {e.orig}") from e
            except DBAPIError as e:
                raise TuningDBError(f"{self.where}: {e.orig}") from e
            except (ValueError, TypeError, OverflowError) as e:  # callers' input is checked before _run
                raise TuningDBError(f"{self.where}: a stored value does not read back: {e}") from e
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Release this store's claims (their evaluations did not finish) and disconnect."""
        try:
            self._run(lambda session: _delete(session, TrialRow.id, session.scalars(select(TrialRow.id).where(
                TrialRow.state == "running", TrialRow.owner_token == self._owner.token))))
        finally:
            self._engine.dispose()

    def __enter__(self) -> TuningStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        try:
            self.close()
        except TuningDBError:
            if exc_type is None:  # otherwise the error that ended the block is the one to see
                raise

    # -- rows <-> records ------------------------------------------------------------------------

    def _key_row(self, session: Session, key: TuningKey, *, create: bool) -> KeyRow | None:
        kernel = session.scalar(select(KernelRow).where(KernelRow.name == key.kernel,
                                                        KernelRow.source_hash == key.source_hash))
        if kernel is None:
            if not create:
                return None
            kernel = KernelRow(name=key.kernel, source_hash=key.source_hash)
            session.add(kernel)
            session.flush()
        fields = dict(key_json=canonical_json(key.key), dtypes_json=canonical_json(list(key.dtypes)),
                      machine=key.machine, compiler_version=key.compiler_version)
        row = session.scalar(select(KeyRow).filter_by(kernel_id=kernel.id, **fields))
        if row is None and create:
            row = KeyRow(kernel_id=kernel.id, **fields)
            session.add(row)
            session.flush()
        return row

    def _key_of(self, row: KeyRow, kernel: KernelRow) -> TuningKey:
        try:
            return TuningKey(kernel=kernel.name, source_hash=kernel.source_hash,
                             key=parse_json_object(row.key_json, "key values"),
                             dtypes=parse_json_object(row.dtypes_json, "dtypes"),
                             machine=row.machine, compiler_version=row.compiler_version)
        except (ValueError, TypeError) as e:
            raise TuningDBError(f"{self.where}: tuning key row {row.id} does not validate: {e}") from None

    def _trial_of(self, row: TrialRow) -> Trial:
        try:
            return Trial(config=parse_json_object(row.config_json, "config"), cycles=row.cycles,
                         failure=row.failure, state=row.state, wall_seconds=row.wall_seconds, created=row.created)
        except (ValueError, TypeError) as e:
            raise TuningDBError(f"{self.where}: trial row {row.id} does not validate: {e}") from None

    def _best_of(self, key: TuningKey, row: BestRow) -> BestRecord:
        try:
            return BestRecord(key=key, config=parse_json_object(row.config_json, "config"), cycles=row.cycles,
                              trials=row.trials, updated=row.updated)
        except (ValueError, TypeError) as e:
            raise TuningDBError(f"{self.where}: best record row {row.id} does not validate: {e}") from None

    def _locked_trial(self, session: Session, key: TuningKey, config_json: str) -> tuple[int, TrialRow | None]:
        """The key's id (made if new) and its trial row of this config, locked until the transaction ends
        (PostgreSQL: FOR UPDATE; SQLite: the writer's BEGIN IMMEDIATE already locks the file)."""
        key_id = self._key_row(session, key, create=True).id
        return key_id, session.scalar(select(TrialRow).where(TrialRow.key_id == key_id,
                                                             TrialRow.config_json == config_json).with_for_update())

    def _stale(self, row: TrialRow, now: datetime) -> bool:
        if row.owner_token == self._owner.token:
            return True  # our own claim: claiming again is fine
        live = alive(row.owner_host, row.owner_pid, row.owner_start)
        if live is not None:
            return not live
        heartbeat = row.heartbeat if row.heartbeat.tzinfo else row.heartbeat.replace(tzinfo=timezone.utc)
        return now - heartbeat > self.claim_timeout

    def _own(self, row: TrialRow, now: datetime) -> None:
        row.owner_host, row.owner_pid = self._owner.host, self._owner.pid
        row.owner_start, row.owner_token = self._owner.start, self._owner.token
        row.heartbeat = now

    # -- the contract ----------------------------------------------------------------------------

    def register_machine(self, name: str, fingerprint: str, spec_json: str) -> None:
        """Remember which machine a fingerprint stands for (its name and spec), for people and for
        ranking similar machines. The same fingerprint with another spec is refused."""
        spec = parse_json_object(spec_json, f"machine {name!r} spec")
        if not isinstance(spec, dict):
            raise ValueError(f"machine {name!r} spec must be a JSON object")
        Machine(name=name, fingerprint=fingerprint, spec=spec, registered=_now())  # validates
        text = canonical_json(spec)

        def work(session: Session) -> None:
            row = session.scalar(select(MachineRow).where(MachineRow.fingerprint == fingerprint))
            if row is None:
                session.add(MachineRow(fingerprint=fingerprint, name=name, spec_json=text, registered=_now()))
            elif canonical_json(parse_json_object(row.spec_json, "machine spec")) != text:
                raise _Refused(f"machine fingerprint {fingerprint} is registered with another spec")
            else:
                row.name = name
        _unwrap(self._run, work)

    def trials(self, key: TuningKey) -> list[Trial]:
        """Every stored evaluation of `key` (running, done and failed), oldest first."""
        def work(session: Session) -> list[Trial]:
            row = self._key_row(session, key, create=False)
            if row is None:
                return []
            rows = session.scalars(select(TrialRow).where(TrialRow.key_id == row.id).order_by(TrialRow.id))
            return [self._trial_of(r) for r in rows]
        return self._run(work, write=False)

    def claim(self, key: TuningKey, config: Mapping[str, Scalar]) -> bool:
        """True when this process should evaluate `config` now: a "running" row owned by this store exists.
        False when it is done or failed already, or being evaluated by a live process elsewhere. A stale
        claim (its process dead on this host, or from another host silent for `claim_timeout`) is taken."""
        text = canonical_json(check_scalars(config, "config"))

        def work(session: Session) -> bool:
            key_id, row = self._locked_trial(session, key, text)
            now = _now()
            if row is None:
                row = TrialRow(key_id=key_id, config_json=text, state="running", created=now)
                self._own(row, now)
                session.add(row)
                return True
            if row.state != "running" or not self._stale(row, now):
                return False
            self._own(row, now)
            return True
        return self._run(work)

    def release(self, key: TuningKey, config: Mapping[str, Scalar]) -> bool:
        """Give up this store's claim on `config` (its evaluation was interrupted), so that another
        process, or a later run in this one, evaluates it. False when there was no such claim."""
        text = canonical_json(check_scalars(config, "config"))

        def work(session: Session) -> bool:
            row = self._key_row(session, key, create=False)
            return row is not None and _delete(session, TrialRow.id, session.scalars(select(TrialRow.id).where(
                TrialRow.key_id == row.id, TrialRow.config_json == text, TrialRow.state == "running",
                TrialRow.owner_token == self._owner.token))) == 1
        return self._run(work)

    def heartbeat(self) -> int:
        """Refresh every claim this store holds (call it during long evaluations when other hosts share
        the database); returns how many."""
        def work(session: Session) -> int:
            rows = session.scalars(select(TrialRow).where(TrialRow.state == "running",
                                                          TrialRow.owner_token == self._owner.token)).all()
            for row in rows:
                row.heartbeat = _now()
            return len(rows)
        return self._run(work)

    def record_trial(self, key: TuningKey, config: Mapping[str, Scalar], *, cycles: int | None,
                     failure: str | None = None, wall_seconds: float | None = None) -> Trial:
        """Store an evaluation: `cycles` when it ran, `failure` (the reason) when it could not. Completes
        a claim or inserts a new row; a config already done or failed keeps its first result, which is
        returned."""
        state = "failed" if failure is not None else "done"
        trial = Trial(config=config, cycles=cycles, failure=failure, state=state, wall_seconds=wall_seconds,
                      created=_now())
        text = canonical_json(trial.config)

        def work(session: Session) -> Trial:
            key_id, row = self._locked_trial(session, key, text)
            now = _now()
            if row is None:
                row = TrialRow(key_id=key_id, config_json=text, created=now)
                session.add(row)
            elif row.state != "running":
                return self._trial_of(row)
            row.state, row.cycles, row.failure, row.wall_seconds = state, cycles, failure, wall_seconds
            self._own(row, now)
            session.flush()
            return self._trial_of(row)
        return self._run(work)

    def best(self, key: TuningKey) -> BestRecord | None:
        """The best record of exactly this key (machine and compiler version included), validated."""
        def work(session: Session) -> BestRecord | None:
            row = self._key_row(session, key, create=False)
            best = None if row is None else session.scalar(select(BestRow).where(BestRow.key_id == row.id))
            return None if best is None else self._best_of(key, best)
        return self._run(work, write=False)

    def save_best(self, key: TuningKey, config: Mapping[str, Scalar], cycles: int) -> BestRecord:
        """Keep `config` as the key's best unless a stored one is at least as good (fewer cycles; on a tie
        the smaller canonical config, so racing processes agree). Returns the record now stored."""
        BestRecord(key=key, config=config, cycles=cycles, trials=0, updated=_now())  # validates
        text = canonical_json(check_scalars(config, "config"))

        def work(session: Session) -> BestRecord:
            key_id = self._key_row(session, key, create=True).id
            evaluated = session.scalar(select(func.count()).select_from(TrialRow).where(
                TrialRow.key_id == key_id, TrialRow.state != "running"))
            row = session.scalar(select(BestRow).where(BestRow.key_id == key_id).with_for_update())
            now = _now()
            if row is None:
                row = BestRow(key_id=key_id, config_json=text, cycles=cycles, trials=evaluated, updated=now)
                session.add(row)
            else:
                current = self._best_of(key, row)
                if (cycles, text) < (current.cycles, row.config_json):
                    row.config_json, row.cycles = text, cycles
                row.trials, row.updated = max(current.trials, evaluated), now
            session.flush()
            return self._best_of(key, row)
        return self._run(work)

    def nearest_best(self, key: TuningKey, limit: int = 4) -> list[BestRecord]:
        """Best records of the same kernel, source, dtypes, machine and compiler for other key values with
        the same names, nearest first (log-distance over numbers, and over the dimensions of shapes
        written like "1024x512"; another string or bool counts as far). For warm starts."""
        def same(q: Any) -> Any:
            return q.where(KeyRow.machine == key.machine)
        ranked = [(_key_distance(key.key, r.key.key), r) for r in self._related(key, same)
                  if set(r.key.key) == set(key.key) and r.key.key != key.key]
        return [r for _, r in sorted(ranked, key=_rank)[:limit]]

    def similar_machine_best(self, key: TuningKey, limit: int = 4) -> list[BestRecord]:
        """Best records of the same kernel, source, key values, dtypes and compiler on other machines, the
        most similar machine spec first (registered machines only are ranked; the rest follow). For warm
        starts only: never this machine's record."""
        def same(q: Any) -> Any:
            return q.where(KeyRow.machine != key.machine, KeyRow.key_json == canonical_json(key.key))
        specs = {m.fingerprint: m.spec for m in self.machines()}
        mine = specs.get(key.machine)
        ranked = [(_spec_distance(mine, specs.get(r.key.machine)), r) for r in self._related(key, same)]
        return [r for _, r in sorted(ranked, key=_rank)[:limit]]

    def _related(self, key: TuningKey, narrow: Callable[[Any], Any]) -> list[BestRecord]:
        """Best records of keys sharing kernel, source hash, dtypes and compiler version, narrowed."""
        def work(session: Session) -> list[BestRecord]:
            query = (select(KeyRow, KernelRow, BestRow).join(KernelRow, KeyRow.kernel_id == KernelRow.id)
                     .join(BestRow, BestRow.key_id == KeyRow.id)
                     .where(KernelRow.name == key.kernel, KernelRow.source_hash == key.source_hash,
                            KeyRow.dtypes_json == canonical_json(list(key.dtypes)),
                            KeyRow.compiler_version == key.compiler_version))
            return [self._best_of(self._key_of(k, kern), b) for k, kern, b in session.execute(narrow(query))]
        return self._run(work, write=False)

    # -- beyond the contract: for npu-db ---------------------------------------------------------

    def machines(self) -> list[Machine]:
        """Every registered machine, by name."""
        def work(session: Session) -> list[Machine]:
            out = []
            for row in session.scalars(select(MachineRow).order_by(MachineRow.name, MachineRow.fingerprint)):
                try:
                    out.append(Machine(name=row.name, fingerprint=row.fingerprint,
                                       spec=parse_json_object(row.spec_json, "spec"), registered=row.registered))
                except (ValueError, TypeError) as e:
                    raise TuningDBError(f"{self.where}: machine row {row.id} does not validate: {e}") from None
            return out
        return self._run(work, write=False)

    def keys(self, kernel: str | None = None) -> list[TuningKey]:
        """Every stored tuning key (of one kernel name when given)."""
        def work(session: Session) -> list[TuningKey]:
            query = select(KeyRow, KernelRow).join(KernelRow, KeyRow.kernel_id == KernelRow.id)
            if kernel is not None:
                query = query.where(KernelRow.name == kernel)
            return [self._key_of(k, kern) for k, kern in session.execute(query.order_by(KernelRow.name, KeyRow.id))]
        return self._run(work, write=False)

    def all_best(self, kernel: str | None = None) -> list[BestRecord]:
        """Every best record (of one kernel name when given), by kernel name then age."""
        def work(session: Session) -> list[BestRecord]:
            query = (select(KeyRow, KernelRow, BestRow).join(KernelRow, KeyRow.kernel_id == KernelRow.id)
                     .join(BestRow, BestRow.key_id == KeyRow.id))
            if kernel is not None:
                query = query.where(KernelRow.name == kernel)
            rows = session.execute(query.order_by(KernelRow.name, KeyRow.id))
            return [self._best_of(self._key_of(k, kern), b) for k, kern, b in rows]
        return self._run(work, write=False)

    def prune(self, *, kernel: str | None = None, machine: str | None = None,
              compiler_version: str | None = None, stale_claims: bool = False) -> int:
        """Delete the keys (with their trials and best records) matching every filter given; with
        `stale_claims` only the stale "running" trials instead. Returns how many rows went."""
        if not stale_claims and kernel is None and machine is None and compiler_version is None:
            raise ValueError("prune needs a filter (kernel, machine, compiler version) or stale_claims")

        def work(session: Session) -> int:
            query = select(KeyRow.id).join(KernelRow, KeyRow.kernel_id == KernelRow.id)
            for column, value in ((KernelRow.name, kernel), (KeyRow.machine, machine),
                                  (KeyRow.compiler_version, compiler_version)):
                if value is not None:
                    query = query.where(column == value)
            ids = list(session.scalars(query))
            if stale_claims:
                now = _now()
                stale = [r.id for r in session.scalars(select(TrialRow).where(
                    TrialRow.state == "running", TrialRow.key_id.in_(ids))) if self._stale(r, now)
                    and r.owner_token != self._owner.token]
                return _delete(session, TrialRow.id, stale)
            gone = _delete(session, TrialRow.key_id, ids) + _delete(session, BestRow.key_id, ids)
            gone += _delete(session, KeyRow.id, ids)
            unused = select(KernelRow.id).where(~select(KeyRow.id).where(KeyRow.kernel_id == KernelRow.id).exists())
            return gone + _delete(session, KernelRow.id, list(session.scalars(unused)))
        return self._run(work)


def _remove(created: list[Path]) -> None:
    """The -wal/-shm files SQLite made beside a file we then refused: they were not there before."""
    for path in created:
        path.unlink(missing_ok=True)


class _Refused(Exception):
    """A caller's request the stored state refuses (raised inside a transaction, re-raised as ValueError)."""


def _unwrap(run: Callable[[Callable[[Session], T]], T], work: Callable[[Session], T]) -> T:
    try:
        return run(work)
    except _Refused as e:
        raise ValueError(str(e)) from None


def _delete(session: Session, column: Any, ids: Iterable[int]) -> int:
    ids = list(ids)
    if not ids:
        return 0
    return session.execute(delete(column.class_).where(column.in_(ids))).rowcount


def _rank(item: tuple[float, BestRecord]) -> tuple[float, int, str, str, str]:
    """Nearest first; ties by fewer cycles, then by text, so every process gets the same order."""
    distance, record = item
    return distance, record.cycles, canonical_json(record.config), canonical_json(record.key.key), record.key.machine


def _signed_log(x: float) -> float:
    return math.copysign(math.log1p(abs(x)), x)


FAR = 1000.0  # a differing string or bool: farther than any difference in size


def _dims(value: Scalar) -> tuple[float, ...] | None:
    """A key value as numbers: a number itself, an array shape written "1024x512" dimension by dimension."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return (value,)
    if _SHAPE.fullmatch(value):
        return tuple(int(d) for d in value.split("x"))
    return None


def _key_distance(a: Mapping[str, Scalar], b: Mapping[str, Scalar]) -> float:
    """Sum of |log x - log y| over numeric values and shape dimensions; other differences count FAR."""
    total = 0.0
    for name, x in a.items():
        dx, dy = _dims(x), _dims(b[name])
        if dx is not None and dy is not None and len(dx) == len(dy):
            total += sum(abs(_signed_log(p) - _signed_log(q)) for p, q in zip(dx, dy))
        elif x != b[name]:
            total += FAR
    return total


def _numbers(value: Any, prefix: str = "") -> dict[str, float]:
    """The numeric leaves of a JSON value, by path."""
    if isinstance(value, dict):
        return {k: v for name, item in value.items() for k, v in _numbers(item, f"{prefix}/{name}").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in _numbers(item, f"{prefix}/{i}").items()}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {prefix: float(value)}
    return {}


def _spec_distance(mine: Any, other: Any) -> float:
    """Log-distance over the numeric fields two machine specs share (a field one lacks counts 1);
    infinite when either machine is not registered."""
    if mine is None or other is None:
        return math.inf
    a, b = _numbers(mine), _numbers(other)
    return (sum(abs(_signed_log(a[k]) - _signed_log(b[k])) for k in a.keys() & b.keys())
            + len(a.keys() ^ b.keys()))

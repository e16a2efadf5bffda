"""What the store hands out: plain, validated, JSON-able records.

Everything read back from a database passes through here before a caller sees it, so a row that a bug,
a foreign tool or a damaged file left behind is a `TuningDBError`, never a config handed to the compiler.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

Scalar = int | float | str | bool
STATES = ("running", "done", "failed")
_DTYPE = re.compile(r"[a-z][a-z0-9_]*\Z")


class TuningDBError(Exception):
    """The database cannot be used as a tuning store: not ours, damaged, of an unknown schema version,
    or holding a row that does not validate. The message names the file (or URL)."""


def canonical_json(value: Any) -> str:
    """One text per value (sorted keys, no spaces, no NaN), so equal configs are equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def check_scalars(mapping: Any, what: str) -> dict[str, Scalar]:
    """`mapping` as a plain dict of identifier -> int/float/str/bool, or ValueError saying what is wrong."""
    if not isinstance(mapping, Mapping):
        raise ValueError(f"{what} must be a mapping of names to values, not {type(mapping).__name__}")
    out: dict[str, Scalar] = {}
    for name, value in mapping.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"{what}: {name!r} is not a valid name (a Python identifier)")
        if not isinstance(value, (int, float, str)):  # bool is an int
            raise ValueError(f"{what}: {name}={value!r} is a {type(value).__name__}; "
                             "only int, float, str and bool are stored")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{what}: {name}={value!r} is not a finite number")
        out[name] = value
    return out


def check_dtypes(dtypes: Any, what: str) -> tuple[str, ...]:
    """`dtypes` as a tuple of dtype names; ValueError naming `what` otherwise."""
    if isinstance(dtypes, str) or not isinstance(dtypes, (list, tuple)):
        raise ValueError(f"{what}: dtypes must be a sequence of dtype names, not {dtypes!r}")
    for d in dtypes:
        if not isinstance(d, str) or not _DTYPE.match(d):
            raise ValueError(f"{what}: {d!r} is not a dtype name (like 'float16')")
    return tuple(dtypes)


def _check_text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, not {value!r}")
    return value


def utc(moment: Any, what: str) -> datetime:
    """A stored time as an aware UTC datetime (SQLite gives them back naive)."""
    if not isinstance(moment, datetime):
        raise ValueError(f"{what} is not a time: {moment!r}")
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


@dataclass(frozen=True)
class TuningKey:
    """What a record is about. Two keys are the same record only when every field is equal: a record of
    another machine, source or compiler version is never used as this one's."""

    kernel: str
    source_hash: str
    key: Mapping[str, Scalar]
    dtypes: tuple[str, ...]
    machine: str
    compiler_version: str

    def __post_init__(self) -> None:
        for field in ("kernel", "source_hash", "machine", "compiler_version"):
            _check_text(getattr(self, field), f"TuningKey.{field}")
        object.__setattr__(self, "key", check_scalars(self.key, "TuningKey.key"))
        object.__setattr__(self, "dtypes", check_dtypes(self.dtypes, "TuningKey.dtypes"))

    def _identity(self) -> tuple[str, ...]:
        """What the store matches on: {"M": 1024} and {"M": 1024.0} (or True and 1) are different keys
        there, so they are here too (a dict's == would call them equal)."""
        return (self.kernel, self.source_hash, canonical_json(self.key), *self.dtypes, self.machine,
                self.compiler_version)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TuningKey) and self._identity() == other._identity()

    def __hash__(self) -> int:  # hashable although `key` is a dict, so keys can index memos
        return hash(self._identity())

    def to_json(self) -> dict[str, Any]:
        """The key as plain JSON data (`from_json` reads it back)."""
        return {"kernel": self.kernel, "source_hash": self.source_hash, "key": dict(self.key),
                "dtypes": list(self.dtypes), "machine": self.machine, "compiler_version": self.compiler_version}

    @staticmethod
    def from_json(data: Any) -> TuningKey:
        """A TuningKey from its `to_json` form, validated; ValueError on anything else."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a tuning key must be an object, not {data!r}")
        fields = ("kernel", "source_hash", "key", "dtypes", "machine", "compiler_version")
        if set(data) != set(fields):
            raise ValueError(f"a tuning key has the fields {', '.join(fields)}; got {', '.join(sorted(data))}")
        return TuningKey(**{f: data[f] for f in fields})


@dataclass(frozen=True)
class Trial:
    """One stored evaluation of a config: "running" (claimed), "done" (cycles) or "failed" (reason)."""

    config: Mapping[str, Scalar]
    cycles: int | None
    failure: str | None
    state: str
    wall_seconds: float | None
    created: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", check_scalars(self.config, "trial config"))
        if self.state not in STATES:
            raise ValueError(f"trial state {self.state!r} is not one of {', '.join(STATES)}")
        if self.state == "done" and not _is_cycles(self.cycles):
            raise ValueError(f"a done trial needs a cycle count >= 0, not {self.cycles!r}")
        if self.state != "done" and self.cycles is not None:
            raise ValueError(f"a {self.state} trial has no cycle count (got {self.cycles!r})")
        if (self.state == "failed") != isinstance(self.failure, str):
            raise ValueError(f"a {self.state} trial {'needs' if self.state == 'failed' else 'has no'} "
                             f"failure reason (got {self.failure!r})")
        if self.wall_seconds is not None and (isinstance(self.wall_seconds, bool) or not isinstance(
                self.wall_seconds, (int, float)) or not math.isfinite(self.wall_seconds) or self.wall_seconds < 0):
            raise ValueError(f"wall_seconds must be a number >= 0, not {self.wall_seconds!r}")
        object.__setattr__(self, "created", utc(self.created, "trial created"))

    def to_json(self) -> dict[str, Any]:
        """The trial as plain JSON data, as `npu-db export` writes it."""
        return {"config": dict(self.config), "cycles": self.cycles, "failure": self.failure, "state": self.state,
                "wall_seconds": self.wall_seconds, "created": self.created.isoformat()}


@dataclass(frozen=True)
class BestRecord:
    """The best config found for a key, with the number of evaluations behind it."""

    key: TuningKey
    config: Mapping[str, Scalar]
    cycles: int
    trials: int
    updated: datetime

    def __post_init__(self) -> None:
        if not isinstance(self.key, TuningKey):
            raise ValueError(f"BestRecord.key must be a TuningKey, not {self.key!r}")
        object.__setattr__(self, "config", check_scalars(self.config, "best config"))
        if not _is_cycles(self.cycles):
            raise ValueError(f"a best record needs a cycle count >= 0, not {self.cycles!r}")
        if not _is_cycles(self.trials):
            raise ValueError(f"a best record's trial count must be an int >= 0, not {self.trials!r}")
        object.__setattr__(self, "updated", utc(self.updated, "best record updated"))

    def to_json(self) -> dict[str, Any]:
        """The best record, with its key, as plain JSON data, as `npu-db export` writes it."""
        return {**self.key.to_json(), "config": dict(self.config), "cycles": self.cycles, "trials": self.trials,
                "updated": self.updated.isoformat()}


def _is_cycles(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def parse_json_object(text: Any, what: str) -> Any:
    """A stored JSON column back as a value, or ValueError (the caller adds the file and row)."""
    if not isinstance(text, str):
        raise ValueError(f"{what} is not JSON text: {text!r}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{what} is not valid JSON ({e.msg} at {e.pos})") from None


@dataclass(frozen=True)
class Machine:
    """A registered machine: the name people know it by, its fingerprint and its spec (a JSON object)."""

    name: str
    fingerprint: str
    spec: Mapping[str, Any]
    registered: datetime

    def __post_init__(self) -> None:
        _check_text(self.name, "machine name")
        _check_text(self.fingerprint, "machine fingerprint")
        if not isinstance(self.spec, Mapping):
            raise ValueError(f"machine {self.name!r}: its spec must be a JSON object")
        object.__setattr__(self, "registered", utc(self.registered, "machine registered"))

    def to_json(self) -> dict[str, Any]:
        """The machine as plain JSON data, as `npu-db export` writes it."""
        return {"name": self.name, "fingerprint": self.fingerprint, "spec": dict(self.spec),
                "registered": self.registered.isoformat()}

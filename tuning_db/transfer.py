"""Moving records between stores as one JSON document (`npu-db export` / `npu-db import`).

Import merges, through the store's own rules: a trial already stored keeps its first result, a best
record stays the one with fewer cycles. Claims ("running" trials) are not exported: they belong to a
process. The whole document is validated before anything is written, so a bad file writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from tuning_db.records import BestRecord, Machine, Trial, TuningKey, canonical_json
from tuning_db.store import TuningStore

FORMAT = "npulang-tuning-export"
VERSION = 1


def export_document(store: TuningStore, kernel: str | None = None) -> dict[str, Any]:
    """Machines, keys, their finished trials and best records, as plain JSON data."""
    best = {r.key: r for r in store.all_best(kernel)}
    entries = []
    for key in store.keys(kernel):
        record = best.get(key)
        entries.append({"key": key.to_json(),
                        "best": None if record is None else {"config": dict(record.config), "cycles": record.cycles},
                        "trials": [t.to_json() for t in store.trials(key) if t.state != "running"]})
    return {"format": FORMAT, "version": VERSION, "machines": [m.to_json() for m in store.machines()],
            "entries": entries}


@dataclass(frozen=True)
class Imported:
    """How many machines, keys, trials and best records an `npu-db import` added."""
    machines: int
    keys: int
    trials: int
    best: int


def import_document(store: TuningStore, document: Any) -> Imported:
    """Merge an exported document into `store`; ValueError (naming the entry) when it does not validate."""
    machines, entries = _validated(document)
    for name, fingerprint, spec in machines:
        store.register_machine(name, fingerprint, spec)
    trials = best = 0
    for key, finished, winner in entries:
        for t in finished:
            store.record_trial(key, t.config, cycles=t.cycles, failure=t.failure, wall_seconds=t.wall_seconds)
        trials += len(finished)
        if winner is not None:
            store.save_best(key, winner[0], winner[1])
            best += 1
    return Imported(len(machines), len(entries), trials, best)


def _validated(document: Any) -> tuple[list[tuple[str, str, str]], list[tuple[TuningKey, list[Trial], Any]]]:
    if not isinstance(document, Mapping) or document.get("format") != FORMAT:
        raise ValueError(f"not a tuning export (no \"format\": \"{FORMAT}\")")
    if document.get("version") != VERSION:
        raise ValueError(f"export version {document.get('version')!r}; this npulang reads version {VERSION}")
    machines = []
    for i, m in enumerate(_list(document, "machines")):
        try:
            machine = Machine(name=m["name"], fingerprint=m["fingerprint"], spec=m["spec"], registered=_time(m))
        except (ValueError, TypeError, KeyError) as err:
            raise ValueError(f"machines[{i}]: {err}") from None
        machines.append((machine.name, machine.fingerprint, canonical_json(machine.spec)))
    entries = []
    for i, e in enumerate(_list(document, "entries")):
        try:
            key = TuningKey.from_json(e.get("key") if isinstance(e, Mapping) else None)
            finished = [Trial(config=t["config"], cycles=t["cycles"], failure=t["failure"], state=t["state"],
                              wall_seconds=t["wall_seconds"], created=_time(t, "created"))
                        for t in _list(e, "trials")]
            if any(t.state == "running" for t in finished):
                raise ValueError("a running trial (a claim) cannot be imported")
            winner = e.get("best")
            if winner is not None:
                record = BestRecord(key=key, config=winner["config"], cycles=winner["cycles"], trials=0,
                                    updated=datetime.now(timezone.utc))
                winner = (record.config, record.cycles)
        except (ValueError, TypeError, KeyError) as err:
            raise ValueError(f"entries[{i}]: {err}") from None
        entries.append((key, finished, winner))
    return machines, entries


def _list(document: Mapping[str, Any], field: str) -> list[Any]:
    value = document.get(field, [])
    if not isinstance(value, list):
        raise ValueError(f"{field} must be a list")
    return value


def _time(item: Mapping[str, Any], field: str = "registered") -> datetime:
    text = item[field]
    if not isinstance(text, str):
        raise ValueError(f"{field} must be an ISO time, not {text!r}")
    return datetime.fromisoformat(text)

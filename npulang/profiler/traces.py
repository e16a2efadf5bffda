"""One Chrome trace for every launch of a profile, laid end to end in launch order."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from npulang import errors
from npulang.runtime.record import RunRecord

PID_STRIDE = 1000  # process ids of launch i are i * PID_STRIDE + core: no machine has that many cores


def write_profile_trace(launches: list[RunRecord], path: str | Path) -> Path:
    """Write the traces of `launches` (each recorded with trace=True or inside `npu.profile()`) into one
    Chrome trace-event JSON: launch i's cores become processes `kernel #i core c`, starting where launch
    i-1 ended; flow ids stay unique. Perfetto opens it."""
    timed = [r for r in launches if r.cycles is not None]
    if not timed:
        raise errors.NpuError("no simulated launch to trace (the profile is empty or every launch was interpreted)")
    events: list[dict[str, Any]] = []
    offset = flows = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, run in enumerate(timed):
            part = run.write_trace(Path(tmp) / f"{i}.json")
            ids: set[int] = set()
            for e in json.loads(part.read_text())["traceEvents"]:
                e["pid"] += i * PID_STRIDE
                if "ts" in e:
                    e["ts"] += offset
                if "id" in e:
                    ids.add(e["id"])
                    e["id"] += flows
                if e["name"] == "process_name":
                    e["args"]["name"] = f"{run.kernel} #{i} {e['args']['name']}"
                elif e["name"] == "process_sort_index":
                    e["args"]["sort_index"] += i * PID_STRIDE
                events.append(e)
            offset += run.cycles or 0
            flows += max(ids, default=-1) + 1
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"traceEvents": events, "displayTimeUnit": "ns", "otherData": {"time_unit": "cycles"}}))
    return path

"""Chrome trace-event JSON for a launch: one process per core, one thread per pipe; Perfetto opens it.

Timestamps and durations are in cycles (the viewer shows them as microseconds).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from isa import Instr
from simulator.errors import instr_text
from simulator.ops import PIPE_NAMES


def trace_events(events: Sequence[tuple[int, int, int, int, int, tuple[int, int, int]]],
                 instrs: Sequence[Instr]) -> list[dict[str, Any]]:
    """Complete ("X") events plus metadata naming each core's process and each pipe's thread."""
    texts: dict[int, str] = {}
    out: list[dict[str, Any]] = []
    cores = sorted({e[0] for e in events})
    for core in cores:
        out.append({"ph": "M", "name": "process_name", "pid": core, "tid": 0, "args": {"name": f"core {core}"}})
        out.append({"ph": "M", "name": "process_sort_index", "pid": core, "tid": 0, "args": {"sort_index": core}})
        for tid, name in enumerate(PIPE_NAMES):
            out.append({"ph": "M", "name": "thread_name", "pid": core, "tid": tid, "args": {"name": name}})
            out.append({"ph": "M", "name": "thread_sort_index", "pid": core, "tid": tid, "args": {"sort_index": tid}})
    for core, pipe, start, dur, index, pid in events:
        instr = instrs[index]
        if index not in texts:
            texts[index] = instr_text(instr)
        args: dict[str, Any] = {"instr": texts[index], "program": list(pid)}
        if instr.loc is not None:
            args["loc"] = str(instr.loc)
        out.append({"ph": "X", "name": instr.op, "pid": core, "tid": pipe, "ts": start, "dur": dur, "args": args})
    return out


def write_trace(path: str | Path, events: Sequence[tuple[int, int, int, int, int, tuple[int, int, int]]],
                instrs: Sequence[Instr]) -> None:
    data = {"traceEvents": trace_events(events, instrs), "displayTimeUnit": "ns",
            "otherData": {"time_unit": "cycles"}}
    Path(path).write_text(json.dumps(data))

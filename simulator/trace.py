"""Chrome trace-event JSON for a launch: one process per core, one thread per pipe; Perfetto opens it.

Timestamps and durations are in cycles (the viewer shows them as microseconds). Each wait_flag is
joined to the set_flag that released it by a flow event (an arrow between the two pipes' tracks):
within one program on one core the k-th set of a flag releases its k-th wait, since the simulator
raises and consumes a flag's tokens first in, first out, in the order the trace records them.
Stalls besides flag waits (a full issue queue, a barrier, GM bandwidth) are slices named `stall: ...`.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from pathlib import Path
from typing import Any, NamedTuple, Sequence

from isa import Instr
from simulator.errors import instr_text
from simulator.ops import PIPE_NAMES

Event = tuple[int, int, int, int, int, tuple[int, int, int]]  # core, pipe, start, cycles, instr index, program
Stall = tuple[int, int, int, int, str, int, tuple[int, int, int]]  # core, pipe, start, cycles, reason, index, program


class StallRecord(NamedTuple):
    """One stall: `pipe` waited `cycles` from `start` for `reason` ("flag", "queue full", "barrier",
    "bandwidth"); `source` is the flag's producing pipe, the pipe whose queue was full, or "GM"; `flag`
    names a waited flag (`MTE2->M #0`); `index` is the waiting (or queued) instruction."""

    core: int
    pipe: str
    start: int
    cycles: int
    reason: str
    source: str
    flag: str
    index: int


def flag_name(instr: Instr) -> str:
    """A flag instruction's flag as traces and stall reports name it: `mte2->v #0`."""
    src, dst, event = instr.args[:3]
    return f"{src}->{dst} #{event}"


def flag_pairs(events: Sequence[Event], instrs: Sequence[Instr]) -> list[tuple[Event, Event]]:
    """(set_flag event, wait_flag event) for every wait, matched first in, first out per program and flag."""
    sets: dict[tuple, deque[Event]] = defaultdict(deque)
    waits: dict[tuple, deque[Event]] = defaultdict(deque)
    for e in events:
        instr = instrs[e[4]]
        if instr.op in ("set_flag", "wait_flag"):
            key = (e[0], e[5], tuple(str(a) for a in instr.args[:3]))
            (sets if instr.op == "set_flag" else waits)[key].append(e)
    return [(s, w) for key, ws in waits.items() for s, w in zip(sets[key], ws)]


def stall_records(events: Sequence[Event], stalls: Sequence[Stall], instrs: Sequence[Instr]) -> list[StallRecord]:
    """Every stall of a traced launch with its reason, flag waits first."""
    out = []
    for core, pipe, start, cycles, index, _ in events:
        instr = instrs[index]
        if cycles and instr.op == "wait_flag":
            out.append(StallRecord(core, PIPE_NAMES[pipe], start, cycles, "flag", str(instr.args[0]),
                                   flag_name(instr), index))
    for core, pipe, start, cycles, reason, index, _ in stalls:
        source = "GM" if reason == "bandwidth" else instrs[index].pipe.value if reason == "queue full" else "all"
        out.append(StallRecord(core, PIPE_NAMES[pipe], start, cycles, reason, source, "", index))
    return out


def op_totals(events: Sequence[Event], instrs: Sequence[Instr]) -> dict[str, dict[str, tuple[int, int]]]:
    """Per pipe, per opcode: (instructions, busy cycles) over the trace (flag waits' stalls left out)."""
    out: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for _, pipe, _, cycles, index, _ in events:
        op = instrs[index].op
        n, c = out[PIPE_NAMES[pipe]].get(op, (0, 0))
        out[PIPE_NAMES[pipe]][op] = (n + 1, c + (0 if op == "wait_flag" else cycles))
    return dict(out)


def busy_timeline(events: Sequence[Event], instrs: Sequence[Instr], end: int, bins: int) -> dict[str, list[int]]:
    """Busy cycles per pipe (summed over cores) in each of `bins` equal slices of [0, end)."""
    width = max(1, -(-end // bins))
    out = {name: [0] * bins for name in PIPE_NAMES}
    for _, pipe, start, cycles, index, _ in events:
        if not cycles or instrs[index].op == "wait_flag":
            continue
        row, t, stop = out[PIPE_NAMES[pipe]], start, start + cycles
        while t < stop:  # split the slice at bin edges
            b = min(t // width, bins - 1)
            edge = min(stop, (b + 1) * width) if b < bins - 1 else stop
            row[b] += edge - t
            t = edge
    return out


def trace_events(events: Sequence[Event], instrs: Sequence[Instr],
                 stalls: Sequence[Stall] = ()) -> list[dict[str, Any]]:
    """Complete ("X") events, metadata naming each core's process and each pipe's thread, flag flows
    ("s"/"f" pairs with one id each) and stall slices."""
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
    for core, pipe, start, dur, reason, index, pid in stalls:
        out.append({"ph": "X", "name": f"stall: {reason}", "cat": "stall", "pid": core, "tid": pipe, "ts": start,
                    "dur": dur, "args": {"instr": instr_text(instrs[index]), "program": list(pid)}})
    for n, (s, w) in enumerate(flag_pairs(events, instrs)):
        name = flag_name(instrs[s[4]])
        # the arrow ends inside the wait's slice: where the wait started, or where the set did if later
        out.append({"ph": "s", "id": n, "name": name, "cat": "flag", "pid": s[0], "tid": s[1], "ts": s[2]})
        out.append({"ph": "f", "bp": "e", "id": n, "name": name, "cat": "flag", "pid": w[0], "tid": w[1],
                    "ts": min(max(w[2], s[2]), w[2] + w[3])})
    return out


def write_trace(path: str | Path, events: Sequence[Event], instrs: Sequence[Instr],
                stalls: Sequence[Stall] = ()) -> None:
    """Write a run's events, flag flows and stalls as Chrome trace-event JSON (Perfetto opens it)."""
    data = {"traceEvents": trace_events(events, instrs, stalls), "displayTimeUnit": "ns",
            "otherData": {"time_unit": "cycles"}}
    Path(path).write_text(json.dumps(data))

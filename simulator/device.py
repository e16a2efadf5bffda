"""The multi-core device: argument checking, dispatch of the grid's programs to cores, results.

Programs are dispatched in grid order (axis 0 fastest, like Triton's program ids) to the earliest
free core (ties: lowest core id), each starting when its core is free. The cores' programs run
interleaved, in simulated time order of their GM transfers: each program is a generator that stops
before a bundle whose GM transfer would start after the earliest time another core is waiting at
(simulator.core), and the device always resumes the core with the earliest such time (ties: lowest
core id). So L2 hits and misses and the shares of the bandwidth calendar (simulator.gm) follow
simulated time, not the order of the grid. The order is that of each transfer's start as known
when its bundle issues; a transfer queued behind a wait_flag is booked when the flag resolves.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generator, Sequence

import numpy as np

from isa import DTYPES, Instr, MachineSpec, Program, SourceLoc, from_numpy
from simulator import trace as chrome_trace
from simulator.core import CoreStats, Launch, run_program
from simulator.errors import SimError
from simulator.gm import GlobalMemory
from simulator.memory import CoreMemory, GmArgs, GmRegion
from simulator.ops import PIPE_NAMES
from simulator.options import SimOptions
from simulator.prepare import UNBOUNDED, Prepared, prepare

_PREPARED_CACHE = 64  # compiled programs kept per device


@dataclass
class RunResult:
    """What a launch produced besides the outputs written into the argument arrays.

    Attributes:
        cycles: the device makespan.
        per_core: each core's busy/stall cycles per pipe and the programs it ran.
        pipe_busy, pipe_stall: the same summed over cores, by pipe name.
        line_cycles: busy cycles attributed to each kernel source line (instructions with a loc).
        instructions: dynamic instruction count.
        prints: device_print output, in simulation order (cores interleaved, see the module docstring).
        gm_bytes, hbm_bytes: bytes moved on GM ports (burst-rounded) and moved to or from HBM (L2 misses,
            every stored burst).
    """

    cycles: int
    per_core: list[CoreStats]
    pipe_busy: dict[str, int]
    pipe_stall: dict[str, int]
    line_cycles: dict[SourceLoc, int]
    instructions: int
    prints: list[str]
    gm_bytes: int = 0
    hbm_bytes: int = 0
    _trace: list | None = field(default=None, repr=False)
    _instrs: Sequence[Instr] = field(default=(), repr=False)
    _stalls: list | None = field(default=None, repr=False)

    @property
    def traced(self) -> bool:
        """True if the run recorded a trace (`SimOptions(trace=True)`)."""
        return self._trace is not None

    def stall_reasons(self) -> list[chrome_trace.StallRecord]:
        """Every stall of a traced run with its reason: flag waits (which flag, from which pipe), full
        issue queues, barriers and GM bandwidth (empty if no trace was recorded)."""
        if self._trace is None:
            return []
        return chrome_trace.stall_records(self._trace, self._stalls or [], self._instrs)

    def op_totals(self) -> dict[str, dict[str, tuple[int, int]]]:
        """Per pipe, per opcode: (instructions, busy cycles) of a traced run (empty if no trace)."""
        return {} if self._trace is None else chrome_trace.op_totals(self._trace, self._instrs)

    def busy_timeline(self, bins: int = 64) -> dict[str, list[int]]:
        """Busy cycles per pipe (summed over cores) in `bins` equal slices of the run (empty if no trace)."""
        return {} if self._trace is None else chrome_trace.busy_timeline(self._trace, self._instrs, self.cycles, bins)

    def write_trace(self, path: str | Path) -> None:
        """Write a Chrome trace-event JSON file (one track per core x pipe) that Perfetto opens."""
        if self._trace is None:
            raise SimError("no trace was recorded for this run: pass options=SimOptions(trace=True) to Device.run")
        chrome_trace.write_trace(path, self._trace, self._instrs, self._stalls or [])


class Device:
    """A simulated NPU. Keeps L2 contents across launches, as the hardware would."""

    def __init__(self, spec: MachineSpec | None = None) -> None:
        self.spec = spec if spec is not None else MachineSpec.load("davinci")
        self.gm = GlobalMemory(self.spec)
        self._prepared: OrderedDict[int, tuple[Program, Prepared]] = OrderedDict()

    def flush_l2(self) -> None:
        """Forget L2 contents, for cold-cache measurements. Stores are write-through (simulator.gm): no line
        is dirty, so there is nothing to write back and nothing a launch leaves uncounted."""
        self.gm.flush()

    def run(self, program: Program, grid: Sequence[int] | int, args: Sequence[Any],
            options: SimOptions | None = None) -> RunResult:
        """Run `program` over `grid` with `args` (numpy arrays by pointer, Python numbers as scalars).

        Outputs are written into the argument arrays in place (functional mode); timing-only mode leaves
        the arrays as they were.
        """
        # float math gives inf/NaN as the hardware does, never a warning: entered once per launch, not per
        # vector instruction
        with np.errstate(all="ignore"):
            return self._run(program, grid, args, options)

    def _run(self, program: Program, grid: Sequence[int] | int, args: Sequence[Any],
             options: SimOptions | None) -> RunResult:
        options = options if options is not None else SimOptions()
        prepared = self._prepare(program)
        grid3 = _grid(grid)
        regions, values = _arguments(program, args)
        self.gm.new_launch(regions)
        gm_args = GmArgs(regions)
        # timing-only mode still runs the effects of a program with a gather or scatter, whose lanes' indices
        # are data, so its lanes are bounds-checked exactly as in functional mode; its GM writes are undone
        undo = [] if prepared.lanes and not options.functional else None
        launch = Launch(self.spec, options, prepared, self.gm, gm_args, values, grid3,
                        instr_cycles=[0] * len(prepared.instrs), plans=[{} for _ in prepared.instrs],
                        regions=[None] * len(prepared.instrs), trace=[] if options.trace else None,
                        stalls=[] if options.trace else None, undo=undo)
        moved0, hbm0 = self.gm.bytes_moved, self.gm.hbm_bytes
        stats = [CoreStats(c) for c in range(self.spec.cores)]
        try:
            makespan = self._schedule(launch, stats, options.functional or undo is not None)
        finally:
            for data, saved in reversed(undo or ()):  # newest first: each puts back what its write replaced
                data[...] = saved
        return self._result(launch, stats, makespan, self.gm.bytes_moved - moved0, self.gm.hbm_bytes - hbm0)

    def _schedule(self, launch: Launch, stats: list[CoreStats], execute: bool) -> int:
        """Run the grid's programs on the cores, in simulated time order of their GM transfers (see the
        module docstring), with their effects if `execute`; return the makespan."""
        grid3, gm_args = launch.grid, launch.gm_args
        ncores = self.spec.cores
        memories: dict[int, CoreMemory] = {}
        pids = itertools.product(range(grid3[2]), range(grid3[1]), range(grid3[0]))
        running: list[Generator[int, None, int] | None] = [None] * ncores
        events = [(0, c) for c in range(ncores)]  # a heap of (time, core): free, or waiting to book GM then
        sync = launch.sync
        makespan = 0
        while events:
            at, core = events[0]
            program_run = running[core]
            if program_run is None:  # the core is free: the next program of the grid starts on it
                pid = next(pids, None)
                if pid is None:
                    heapq.heappop(events)
                    continue
                memory = None
                if execute:
                    memory = memories.get(core)
                    if memory is None:
                        memory = memories[core] = CoreMemory(self.spec, gm_args)
                program_run = running[core] = run_program(launch, core, pid[::-1], at, stats[core], memory)
            # the horizon: the earliest other event, a child of the heap's root
            n = len(events)
            horizon = events[1][0] if n > 1 else UNBOUNDED
            if n > 2 and events[2][0] < horizon:
                horizon = events[2][0]
            sync[0] = horizon
            try:
                heapq.heapreplace(events, (next(program_run), core))
            except StopIteration as stop:
                running[core] = None
                makespan = max(makespan, stop.value)
                heapq.heapreplace(events, (stop.value, core))
        return makespan

    def _prepare(self, program: Program) -> Prepared:
        key = id(program)
        hit = self._prepared.get(key)
        if hit is not None and hit[0] is program:
            self._prepared.move_to_end(key)
            return hit[1]
        prepared = prepare(program, self.spec)
        self._prepared[key] = (program, prepared)
        if len(self._prepared) > _PREPARED_CACHE:
            self._prepared.popitem(last=False)
        return prepared

    def _result(self, launch: Launch, stats: list[CoreStats], makespan: int, moved: int, hbm: int) -> RunResult:
        busy = {name: sum(s.busy[name] for s in stats) for name in PIPE_NAMES}
        stall = {name: sum(s.stall[name] for s in stats) for name in PIPE_NAMES}
        lines: dict[SourceLoc, int] = {}
        for instr, cyc in zip(launch.prepared.instrs, launch.instr_cycles):
            if instr.loc is not None and cyc:
                lines[instr.loc] = lines.get(instr.loc, 0) + cyc
        return RunResult(makespan, stats, busy, stall, lines, launch.instructions, launch.prints, moved, hbm,
                         launch.trace, launch.prepared.instrs, launch.stalls)


def _grid(grid: Sequence[int] | int) -> tuple[int, int, int]:
    dims = (grid,) if isinstance(grid, (int, np.integer)) else tuple(grid)
    if not 1 <= len(dims) <= 3 or not all(isinstance(d, (int, np.integer)) and d >= 0 for d in dims):
        raise SimError(f"grid must be 1 to 3 non-negative integers, got {grid!r}")
    return tuple(int(d) for d in dims) + (1,) * (3 - len(dims))  # type: ignore[return-value]


def _owner(array: np.ndarray) -> np.ndarray:
    """The array at the root of `array`'s view chain: the one whose memory it is."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def _arguments(program: Program, args: Sequence[Any]) -> tuple[list[GmRegion], list[Any]]:
    """Check args against the kernel's signature; pointers become GM regions at their host address."""
    specs = program.args
    if len(args) != len(specs):
        names = ", ".join(a.name for a in specs)
        raise SimError(f"kernel {program.name} takes {len(specs)} arguments ({names}), got {len(args)}")
    regions: list[GmRegion] = []
    values: list[Any] = []
    for i, (spec, value) in enumerate(zip(specs, args)):
        what = f"kernel {program.name} argument {i} ({spec.name}, {spec.kind} {spec.dtype})"
        if spec.kind == "ptr":
            if not isinstance(value, np.ndarray):
                raise SimError(f"{what}: expected a numpy array, got {type(value).__name__}")
            try:
                got = from_numpy(value.dtype).name
            except ValueError:
                got = str(value.dtype)
            if got != spec.dtype:
                raise SimError(f"{what}: expected an array of {spec.dtype} ({DTYPES[spec.dtype].np}), "
                               f"got {value.dtype}")
            if not (value.flags.c_contiguous or value.flags.f_contiguous):
                raise SimError(f"{what}: the array must be contiguous (outputs are written in place; "
                               f"pass np.ascontiguousarray(...) and read results from that copy)")
            address = value.ctypes.data
            data = value.reshape(-1, order="A").view(np.uint8)
            regions.append(GmRegion(spec.name, i, address, address + value.nbytes, data, value.flags.writeable,
                                    _owner(value)))
            values.append(address)
        else:
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise SimError(f"{what}: expected a Python number, got {type(value).__name__}")
            if DTYPES[spec.dtype].is_float:
                values.append(float(value))
            else:
                if float(value) != int(value):
                    raise SimError(f"{what}: expected an integer, got {value!r}")
                values.append(int(value))
    return regions, values

"""An analytic cost model read off a compiled program: ranks configs in milliseconds, before any simulation.

The model walks one program's instruction stream the way a core issues it (the scalar unit runs the
address arithmetic and the branches with the launch's real scalar arguments; one bundle per cycle), and
times every non-scalar instruction on its pipe in order: DMA commands cost their set-up plus their bytes
at the pipe's rate, `mmad` its fractals (or systolic folds) at the input dtype's rate, vector work its
repeats, and `wait_flag` holds a pipe until the matching `set_flag`'s pipe has finished. It walks the
one-program-per-grid-point form, two programs back to back on one core, so the per-program figure has
the overlap of consecutive programs (which the persistent loop a launch runs for large grids pipelines
further), and spreads the grid's programs over the cores in waves. The device figure
is that, or the roofline of the shared memory system (all cores' GM reads at L2 bandwidth, their distinct
bytes and every stored byte at HBM bandwidth) when that is longer.

Every rate and latency comes from the `MachineSpec`. The model ignores bandwidth contention below the
roofline, L2 misses inside a transfer and queue-depth stalls, so it is a ranking, not a cycle count: the
simulator is the objective. It is deliberately cheap: a few milliseconds per config.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

import isa
from isa.dtypes import DTYPES
from isa.instructions import Mem, Pipe, Reg

_MAX_BUNDLES = 2_000_000  # a walk longer than this is a kernel the model will not rank (None)
_PTR_SPACING = 1 << 36  # fake GM base addresses, far apart: the model never reads memory


@dataclass(frozen=True)
class CostEstimate:
    """The model's figure for one launch, with what bounds it."""

    cycles: int
    bound: str  # "core" (the per-core pipes), "l2" or "hbm" (the shared memory roofline)
    core_cycles: int  # programs in waves over the cores, pipes overlapped as issued
    pipe_busy: dict[str, int] = field(default_factory=dict)  # one program's occupancy per pipe
    programs: int = 1


class _Core:
    """One core's issue clock, per-pipe clocks and flags while walking programs."""

    def __init__(self, spec: isa.MachineSpec) -> None:
        self.spec = spec
        self.issue = 0
        self.free: dict[Pipe, int] = defaultdict(int)  # when each pipe can start its next instruction
        self.done: dict[Pipe, int] = defaultdict(int)  # when everything issued to the pipe has completed
        self.flags: dict[tuple[str, str, int], deque[int]] = defaultdict(deque)
        self.busy: dict[str, int] = defaultdict(int)
        self.gm_read = 0
        self.gm_write = 0
        self.read_args: set[int] = set()  # pointer arguments a load or gather read from

    def end(self) -> int:
        return max([self.issue, *self.done.values()])


def _itemsize(dtype: str) -> int:
    return DTYPES[dtype].itemsize


def _bursts(rows: int, cols: int, itemsize: int, burst: int) -> int:
    """GM bytes a 2-D transfer moves: every row rounded out to whole bursts."""
    if rows <= 0 or cols <= 0:
        return 0
    return rows * math.ceil(cols * itemsize / burst) * burst


def _dma(command: int, onchip: int, rate: float) -> int:
    return command + math.ceil(onchip / rate)


class _Walker:
    """Executes a program's scalar code and times its other instructions (see the module docstring)."""

    def __init__(self, program: isa.Program, spec: isa.MachineSpec, args: Sequence[Any],
                 grid: tuple[int, int, int]) -> None:
        self.program, self.spec, self.grid = program, spec, grid
        self.args = [(i + 1) * _PTR_SPACING if isinstance(a, np.ndarray) else a for i, a in enumerate(args)]
        self.labels = dict(program.labels)

    def run(self, core: _Core, pid: tuple[int, int, int]) -> None:
        regs: list[Any] = [0] * self.spec.scalar.registers
        bundles = self.program.bundles
        pc, steps = 0, 0
        penalty = self.spec.scalar.branch_penalty
        while pc < len(bundles):
            steps += 1
            if steps > _MAX_BUNDLES:
                raise _TooLong
            jump = None
            for ins in bundles[pc].instrs:
                if ins.pipe is Pipe.S:
                    jump = self._scalar(ins, regs, core, pid) or jump
                else:
                    self._timed(ins, regs, core)
            core.issue += 1
            if jump is not None:
                core.issue += penalty
                pc = self.labels[jump]
            else:
                pc += 1

    # -- scalar --------------------------------------------------------------------------------------
    def _scalar(self, ins: isa.Instr, regs: list[Any], core: _Core, pid: tuple[int, int, int]) -> str | None:
        op, a = ins.op, ins.args

        def val(x: Any) -> Any:
            return regs[x.index] if isinstance(x, Reg) else x

        if op in _BINARY:
            regs[a[0].index] = _BINARY[op](val(a[1]), val(a[2]))
        elif op == "mov":
            regs[a[0].index] = val(a[1])
        elif op == "sel":
            regs[a[0].index] = val(a[2]) if val(a[1]) else val(a[3])
        elif op == "cvt":
            regs[a[0].index] = int(val(a[1])) if a[2] == "i32" else float(val(a[1]))
        elif op == "pid":
            regs[a[0].index] = pid[a[1]]
        elif op == "npid":
            regs[a[0].index] = self.grid[a[1]]
        elif op == "arg":
            regs[a[0].index] = self.args[a[1]]
        elif op == "jmp":
            return a[0].name
        elif op == "bnz":
            return a[1].name if val(a[0]) else None
        elif op == "bz":
            return a[1].name if not val(a[0]) else None
        elif op == "barrier":
            core.issue = core.end()
        return None  # nop, print

    # -- timed pipes ---------------------------------------------------------------------------------
    def _timed(self, ins: isa.Instr, regs: list[Any], core: _Core) -> None:
        pipe, op = ins.pipe, ins.op
        start = max(core.free[pipe], core.issue)
        if op == "wait_flag":
            queue = core.flags[(ins.args[0], ins.args[1], ins.args[2])]
            core.free[pipe] = max(start, queue.popleft()) if queue else start
            return
        if op == "set_flag":
            core.flags[(ins.args[0], ins.args[1], ins.args[2])].append(max(start, core.done[pipe]))
            return
        occ, latency = self._cost(ins, regs, core)
        core.free[pipe] = start + occ
        core.done[pipe] = max(core.done[pipe], start + occ + latency)
        core.busy[pipe.value] += occ

    def _cost(self, ins: isa.Instr, regs: list[Any], core: _Core) -> tuple[int, int]:
        """(occupancy, latency) of one non-scalar instruction, from the spec."""
        spec, op = self.spec, ins.op

        def get(name: str, default: Any = None) -> Any:
            v = ins.get(name)
            v = regs[v.index] if isinstance(v, Reg) else v
            return default if v is None else v

        if op in ("load", "gather"):
            src: Mem = ins.get("src")
            address = (regs[src.base.index] if src.base is not None else 0) + src.offset
            core.read_args.add(int(address) // _PTR_SPACING - 1)
        if op == "load":
            e, rows, cols = _itemsize(get("dtype")), get("rows"), get("cols")
            vr, vc = min(get("valid_rows", rows), rows), min(get("valid_cols", cols), cols)
            gm = _bursts(vr, vc, e, spec.gm.burst_bytes)
            core.gm_read += gm
            return _dma(spec.mte2.command_cycles, max(rows * cols * e, gm), spec.mte2.bytes_per_cycle), \
                spec.mte2.latency
        if op in ("gather", "scatter"):
            n, e = get("n"), _itemsize(get("dtype"))
            dma = spec.mte2 if op == "gather" else spec.mte3
            if op == "gather":
                core.gm_read += n * spec.gm.burst_bytes
            else:
                core.gm_write += n * spec.gm.burst_bytes
            return _dma(dma.command_cycles, n * max(e, spec.gm.burst_bytes), dma.bytes_per_cycle), dma.latency
        if op in ("move", "img2col"):
            dst: Mem = ins.get("dst")
            rate = spec.mte1.l0a_bytes_per_cycle if dst.space == "l0a" else spec.mte1.l0b_bytes_per_cycle
            nbytes = get("rows") * get("cols") * _itemsize(get("dtype"))
            return _dma(spec.mte1.command_cycles, nbytes, rate), spec.mte1.latency
        if op == "mmad":
            return self._mmad(get("dtype"), get("m"), get("n"), get("k")), spec.cube.latency
        if op == "fixpipe":
            rows, cols = get("rows"), get("cols")
            vr, vc = min(get("valid_rows", rows), rows), min(get("valid_cols", cols), cols)
            e = max(_itemsize(get("src_dtype")), _itemsize(get("dtype")))
            if ins.get("dst").space == "gm":
                core.gm_write += _bursts(vr, vc, _itemsize(get("dtype")), spec.gm.burst_bytes)
            return _dma(spec.fix.command_cycles, vr * vc * e, spec.fix.bytes_per_cycle), spec.fix.latency
        if op == "store":
            rows, cols = get("rows"), get("cols")
            vr, vc = min(get("valid_rows", rows), rows), min(get("valid_cols", cols), cols)
            e = _itemsize(get("dtype"))
            if ins.get("dst").space == "gm":
                core.gm_write += _bursts(vr, vc, e, spec.gm.burst_bytes)
            return _dma(spec.mte3.command_cycles, vr * vc * e, spec.mte3.bytes_per_cycle), spec.mte3.latency
        # vector: one repeat per cycle, a repeat moves bytes_per_cycle of each operand (contiguous at best)
        rows, cols = get("rows", 1), get("cols", 1)
        e = _itemsize(get("dtype", "f32"))
        row_bytes = math.ceil(cols * e / spec.vector.block_bytes) * spec.vector.block_bytes
        return max(1, math.ceil(rows * row_bytes / spec.vector.bytes_per_cycle)), spec.vector.latency

    def _mmad(self, dtype: str, m: int, n: int, k: int) -> int:
        cube, spec = self.spec.cube, self.spec
        fill = math.ceil(m * n * 4 / cube.l0c_bytes_per_cycle)  # the accumulator write bounds every mmad
        if k <= 0:
            return fill
        if cube.model == "systolic":
            slots = math.ceil(k / spec.cube_rate(dtype))
            if cube.dataflow == "os":
                folds, per = math.ceil(m / cube.rows) * math.ceil(n / cube.cols), slots + cube.rows + cube.cols - 2
            else:
                folds, per = math.ceil(slots / cube.rows) * math.ceil(n / cube.cols), m + 2 * cube.rows + cube.cols - 2
            return max(fill, folds * per)
        steps = math.ceil(m / cube.m) * math.ceil(n / cube.n) * math.ceil(k / spec.cube_k(dtype))
        return max(fill, steps)


class _TooLong(Exception):
    pass


def _c_div(a: Any, b: Any) -> Any:
    if isinstance(a, float) or isinstance(b, float):
        return a / b if b else 0.0
    return int(a / b) if b else 0


def _c_rem(a: Any, b: Any) -> Any:
    if isinstance(a, float) or isinstance(b, float):
        return math.fmod(a, b) if b else 0.0
    return a - b * int(a / b) if b else 0


_BINARY = {
    "add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y, "div": _c_div,
    "rem": _c_rem, "fdiv": lambda x, y: x / y if y else 0.0, "min": min, "max": max,
    "and": lambda x, y: int(x) & int(y), "or": lambda x, y: int(x) | int(y), "xor": lambda x, y: int(x) ^ int(y),
    "shl": lambda x, y: int(x) << int(y), "shr": lambda x, y: int(x) >> int(y),
    "lt": lambda x, y: int(x < y), "le": lambda x, y: int(x <= y), "gt": lambda x, y: int(x > y),
    "ge": lambda x, y: int(x >= y), "eq": lambda x, y: int(x == y), "ne": lambda x, y: int(x != y),
}


def _pid(index: int, grid: tuple[int, int, int]) -> tuple[int, int, int]:
    """The program ids of the `index`-th program dispatched (axis 0 fastest)."""
    return index % grid[0], (index // grid[0]) % grid[1], index // (grid[0] * grid[1])


def estimate(program: isa.Program, spec: isa.MachineSpec, args: Sequence[Any],
             grid: tuple[int, int, int]) -> CostEstimate | None:
    """The model's cycles for launching `program` over `grid` with these device arguments (numpy arrays
    for pointers, numbers for scalars), or None when the walk is too long to be worth ranking."""
    programs = grid[0] * grid[1] * grid[2]
    if programs == 0:
        return CostEstimate(0, "core", 0, {}, 0)
    walker = _Walker(program, spec, args, grid)
    first, pair = _Core(spec), _Core(spec)
    last = programs - 1
    try:
        walker.run(first, _pid(0, grid))
        walker.run(pair, _pid(0, grid))
        walker.run(pair, _pid(min(spec.cores, last), grid))  # the next program on the same core
        edge = _Core(spec)
        walker.run(edge, _pid(last, grid))  # a ragged edge program reads and writes less
    except _TooLong:
        return None
    t1 = first.end()
    steady = max(pair.end() - t1, 1)
    waves = math.ceil(programs / spec.cores)
    core = t1 + (waves - 1) * steady
    reads = first.gm_read * (programs - 1) + edge.gm_read
    writes = first.gm_write * (programs - 1) + edge.gm_write
    read = first.read_args | edge.read_args  # an output that is only written is not read from HBM
    distinct = min(reads, sum(a.nbytes for i, a in enumerate(args) if isinstance(a, np.ndarray) and i in read))
    l2 = math.ceil(reads / spec.l2_bytes_per_cycle)
    hbm = math.ceil((distinct + writes) / spec.hbm_bytes_per_cycle)
    cycles, bound = max((core, "core"), (l2, "l2"), (hbm, "hbm"))
    return CostEstimate(int(cycles), bound, int(core), dict(first.busy), programs)

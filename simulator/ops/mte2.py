"""MTE2 pipe: GM -> L1/L0A/L0B/UB transfers (strided 2-D load with zero padding, gather)."""

from __future__ import annotations

import numpy as np

from isa import DTYPES, Instr
from simulator.errors import OutOfBounds
from simulator.gm import GmXfer
from simulator.memory import CoreMemory, span
from simulator.ops.base import (
    Env, Plan, PipeOp, active_lanes, check_shape, clamp, command_cycles, convert, fields, lane_accesses,
    make_resolver, rule,
)


@rule("load")
def _load(instr: Instr, env: Env) -> PipeOp:
    space = instr.get("dst").space
    dt = DTYPES[instr.get("dtype")].np
    e = dt.itemsize
    DST, SRC, ROWS, COLS, SRS, SCS, DRS, VR, VC, PAD = fields(
        instr, "dst", "src", "rows", "cols", "src_rs", "src_cs", "dst_rs", "valid_rows", "valid_cols", "pad")
    latency, port, command = env.spec.mte2.latency, env.spec.mte2.bytes_per_cycle, env.spec.mte2.command_cycles

    def shape(a: tuple, check: bool = True) -> tuple[int, int, int, int, int]:
        """`check=False` for `execute`: its plan has checked the same operands."""
        rows, cols = a[ROWS], a[COLS]
        if check:
            check_shape(rows=rows, cols=cols)
        drs = cols if a[DRS] is None else a[DRS]
        return rows, cols, drs, clamp(a[VR], rows), clamp(a[VC], cols)

    def plan(a: tuple) -> Plan:
        rows, cols, drs, vr, vc = shape(a)
        src, srs, scs = a[SRC], a[SRS], a[SCS]
        dlo, dhi = span(a[DST], rows, cols, drs, 1, e)
        glo, ghi = span(src, vr, vc, srs, scs, e)
        # on chip every element of the tile is written, the padding at the pipe's rate like the data
        return Plan(((space, dlo, dhi, True), ("gm", glo, ghi, False)), command_cycles(command, rows * cols * e, port),
                    latency, GmXfer(src, vr, vc, srs * e, scs * e, e, False), port)

    def execute(a: tuple, mem: CoreMemory) -> None:
        rows, cols, drs, vr, vc = shape(a, False)
        dst = mem.tile(space, a[DST], rows, cols, drs, 1, dt)
        if vr < rows or vc < cols:
            dst[...] = convert(a[PAD], dt)
            dst = dst[:vr, :vc]
        dst[...] = mem.tile("gm", a[SRC], vr, vc, a[SRS], a[SCS], dt)

    return PipeOp(make_resolver(instr), plan, execute, command)


@rule("gather")
def _gather(instr: Instr, env: Env) -> PipeOp:
    space = instr.get("dst").space
    dt = DTYPES[instr.get("dtype")].np
    e = dt.itemsize
    has_mask = instr.get("mask") is not None
    DST, SRC, IDX, N, MASK, PAD = fields(instr, "dst", "src", "idx", "n", "mask", "pad")
    latency, port, command = env.spec.mte2.latency, env.spec.mte2.bytes_per_cycle, env.spec.mte2.command_cycles

    def plan(a: tuple) -> Plan:
        n = a[N]
        check_shape(n=n)
        acc = [(space, a[DST], a[DST] + n * e, True), *lane_accesses(a, IDX, MASK, n, has_mask)]
        return Plan(tuple(acc), command_cycles(command, n * e, port), latency,
                    GmXfer(a[SRC], 1, n, 0, e, e, False, scattered=n), port)

    def execute(a: tuple, mem: CoreMemory) -> None:
        n = a[N]
        idx, lanes = active_lanes(mem, a, IDX, MASK, n, has_mask)
        out = np.full(n, convert(a[PAD], dt), dtype=dt)
        if lanes.size:
            data, offsets = gm_lanes(mem, a[SRC] + idx[lanes] * e, e, lanes, "reads")
            out[lanes] = data[offsets].view(dt).reshape(-1)
        mem.vector(space, a[DST], n, dt)[...] = out

    def spans(a: tuple, mem: CoreMemory) -> list[tuple[int, int]]:
        idx, lanes = active_lanes(mem, a, IDX, MASK, a[N], has_mask)
        return lane_spans(a[SRC] + idx[lanes] * e, e)

    return PipeOp(make_resolver(instr), plan, execute, command, gm_spans=spans)


def lane_spans(addrs: np.ndarray, e: int) -> list[tuple[int, int]]:
    """The GM byte ranges [lo, hi) that elements of `e` bytes at `addrs` cover, merged where they touch."""
    if not addrs.size:
        return []
    a = np.unique(addrs)
    cut = np.flatnonzero(np.diff(a) > e)
    starts = a[np.concatenate(([0], cut + 1))]
    ends = a[np.concatenate((cut, [a.size - 1]))] + e
    return list(zip(starts.tolist(), ends.tolist()))


def gm_lanes(mem: CoreMemory, addrs: np.ndarray, e: int, lanes: np.ndarray, verb: str) -> tuple[np.ndarray, np.ndarray]:
    """Check that every lane's element lies in the GM argument holding the first one; return that
    argument's bytes and a (lanes, e) array of byte offsets into it."""
    region = mem.gm.find(int(addrs[0]), int(addrs[0]) + e)
    if region is not None:
        bad = np.flatnonzero((addrs < region.start) | (addrs + e > region.end))
    if region is None or bad.size:
        i = 0 if region is None else int(bad[0])
        lo = int(addrs[i])
        raise OutOfBounds(f"lane {int(lanes[i])} {verb} {mem.gm.describe_miss(lo, lo + e)}")
    if verb == "writes" and not region.writable:
        raise OutOfBounds(f"writes argument {region.name}, a read-only array")
    offsets = (addrs - region.start)[:, None] + np.arange(e)
    return region.data, offsets

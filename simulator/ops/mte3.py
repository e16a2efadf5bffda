"""MTE3 pipe: UB -> GM/L1 (strided 2-D store of the valid part, scatter)."""

from __future__ import annotations

import numpy as np

from isa import DTYPES, Instr
from simulator.gm import GmXfer
from simulator.memory import CoreMemory, span
from simulator.ops.base import (
    Env, Plan, PipeOp, active_lanes, check_shape, command_cycles, copy_shape, fields, lane_accesses, make_resolver,
    rule,
)
from simulator.ops.mte2 import gm_lanes, lane_spans


@rule("store")
def _store(instr: Instr, env: Env) -> PipeOp:
    space = instr.get("dst").space
    dt = DTYPES[instr.get("dtype")].np
    e = dt.itemsize
    DST, SRC, ROWS, COLS, SRS, DRS, DCS, VR, VC = fields(
        instr, "dst", "src", "rows", "cols", "src_rs", "dst_rs", "dst_cs", "valid_rows", "valid_cols")
    rate, command, latency = env.spec.mte3.bytes_per_cycle, env.spec.mte3.command_cycles, env.spec.mte3.latency

    def shape(a: tuple, check: bool = True) -> tuple[int, int, int, int, int]:
        return copy_shape(a, ROWS, COLS, VR, VC, SRS, DRS, DCS, check)

    def plan(a: tuple) -> Plan:
        vr, vc, srs, drs, dcs = shape(a)
        slo, shi = span(a[SRC], vr, vc, srs, 1, e)
        dlo, dhi = span(a[DST], vr, vc, drs, dcs, e)
        acc = (("ub", slo, shi, False), (space, dlo, dhi, True))
        occ = command_cycles(command, vr * vc * e, rate)  # set-up, then the UB read
        if space == "gm":
            return Plan(acc, occ, latency, GmXfer(a[DST], vr, vc, drs * e, dcs * e, e, True), rate)
        return Plan(acc, occ, latency)

    def execute(a: tuple, mem: CoreMemory) -> None:
        vr, vc, srs, drs, dcs = shape(a, False)
        mem.tile(space, a[DST], vr, vc, drs, dcs, dt)[...] = mem.tile("ub", a[SRC], vr, vc, srs, 1, dt)

    return PipeOp(make_resolver(instr), plan, execute, command)


@rule("scatter")
def _scatter(instr: Instr, env: Env) -> PipeOp:
    dt = DTYPES[instr.get("dtype")].np
    e = dt.itemsize
    has_mask = instr.get("mask") is not None
    DST, SRC, IDX, N, MASK = fields(instr, "dst", "src", "idx", "n", "mask")
    latency, port, command = env.spec.mte3.latency, env.spec.mte3.bytes_per_cycle, env.spec.mte3.command_cycles

    def plan(a: tuple) -> Plan:
        n = a[N]
        check_shape(n=n)
        acc = [("ub", a[SRC], a[SRC] + n * e, False), *lane_accesses(a, IDX, MASK, n, has_mask)]
        return Plan(tuple(acc), command_cycles(command, n * e, port), latency,
                    GmXfer(a[DST], 1, n, 0, e, e, True, scattered=n), port)

    def execute(a: tuple, mem: CoreMemory) -> None:
        n = a[N]
        idx, lanes = active_lanes(mem, a, IDX, MASK, n, has_mask)
        if lanes.size:
            data, offsets = gm_lanes(mem, a[DST] + idx[lanes] * e, e, lanes, "writes")
            src = mem.vector("ub", a[SRC], n, dt)[lanes]
            data[offsets] = np.ascontiguousarray(src).view(np.uint8).reshape(-1, e)

    def spans(a: tuple, mem: CoreMemory) -> list[tuple[int, int]]:
        idx, lanes = active_lanes(mem, a, IDX, MASK, a[N], has_mask)
        return lane_spans(a[DST] + idx[lanes] * e, e)

    return PipeOp(make_resolver(instr), plan, execute, command, gm_spans=spans)

"""FIX pipe (fixpipe): L0C accumulator -> UB/GM/L1 with a cast and optional ReLU."""

from __future__ import annotations

import numpy as np

from isa import DTYPES, Instr
from simulator.gm import GmXfer
from simulator.memory import CoreMemory, span
from simulator.ops.base import Env, Plan, PipeOp, command_cycles, convert, copy_shape, fields, make_resolver, rule


@rule("fixpipe")
def _fixpipe(instr: Instr, env: Env) -> PipeOp:
    space = instr.get("dst").space
    sdt = DTYPES[instr.get("src_dtype")].np
    dt = DTYPES[instr.get("dtype")].np
    se, de = sdt.itemsize, dt.itemsize
    relu = bool(instr.get("relu"))
    DST, SRC, ROWS, COLS, SRS, DRS, DCS, VR, VC = fields(
        instr, "dst", "src", "rows", "cols", "src_rs", "dst_rs", "dst_cs", "valid_rows", "valid_cols")
    rate, command, latency = env.spec.fix.bytes_per_cycle, env.spec.fix.command_cycles, env.spec.fix.latency

    def shape(a: tuple, check: bool = True) -> tuple[int, int, int, int, int]:
        return copy_shape(a, ROWS, COLS, VR, VC, SRS, DRS, DCS, check)

    def plan(a: tuple) -> Plan:
        vr, vc, srs, drs, dcs = shape(a)
        slo, shi = span(a[SRC], vr, vc, srs, 1, se)
        dlo, dhi = span(a[DST], vr, vc, drs, dcs, de)
        occ = command_cycles(command, vr * vc * max(se, de), rate)  # set-up, then the wider of read and write
        if space == "gm":
            return Plan((("l0c", slo, shi, False), ("gm", dlo, dhi, True)), occ, latency,
                        GmXfer(a[DST], vr, vc, drs * de, dcs * de, de, True), rate)
        return Plan((("l0c", slo, shi, False), (space, dlo, dhi, True)), occ, latency)

    def execute(a: tuple, mem: CoreMemory) -> None:
        vr, vc, srs, drs, dcs = shape(a, False)
        x = mem.tile("l0c", a[SRC], vr, vc, srs, 1, sdt)
        if relu:
            x = np.maximum(x, 0)
        mem.tile(space, a[DST], vr, vc, drs, dcs, dt)[...] = convert(x, dt)

    return PipeOp(make_resolver(instr), plan, execute, command)

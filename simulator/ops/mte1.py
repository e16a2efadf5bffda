"""MTE1 pipe: L1 -> L0A/L0B tile moves (with transpose) and img2col (load3d) for convolutions."""

from __future__ import annotations

import numpy as np

from isa import DTYPES, Instr
from simulator.errors import SimError
from simulator.memory import CoreMemory, span
from simulator.ops.base import Env, Plan, PipeOp, check_shape, command_cycles, fields, make_resolver, rule


def _rate(env: Env, space: str) -> int:
    m = env.spec.mte1
    return m.l0a_bytes_per_cycle if space == "l0a" else m.l0b_bytes_per_cycle


@rule("move")
def _move(instr: Instr, env: Env) -> PipeOp:
    space = instr.get("dst").space
    dt = DTYPES[instr.get("dtype")].np
    e = dt.itemsize
    transpose = bool(instr.get("transpose"))
    DST, SRC, ROWS, COLS, SRS, DRS = fields(instr, "dst", "src", "rows", "cols", "src_rs", "dst_rs")
    rate, command, latency = _rate(env, space), env.spec.mte1.command_cycles, env.spec.mte1.latency

    def shape(a: tuple, check: bool = True) -> tuple[int, int, int, int, int, int]:
        """`check=False` for `execute`: its plan has checked the same operands."""
        rows, cols = a[ROWS], a[COLS]
        if check:
            check_shape(rows=rows, cols=cols)
        srows, scols = (cols, rows) if transpose else (rows, cols)  # the source tile's own shape
        srs = scols if a[SRS] is None else a[SRS]
        drs = cols if a[DRS] is None else a[DRS]
        return rows, cols, srows, scols, srs, drs

    def plan(a: tuple) -> Plan:
        rows, cols, srows, scols, srs, drs = shape(a)
        slo, shi = span(a[SRC], srows, scols, srs, 1, e)
        dlo, dhi = span(a[DST], rows, cols, drs, 1, e)
        return Plan((("l1", slo, shi, False), (space, dlo, dhi, True)), command_cycles(command, rows * cols * e, rate),
                    latency)

    def execute(a: tuple, mem: CoreMemory) -> None:
        rows, cols, srows, scols, srs, drs = shape(a, False)
        src = mem.tile("l1", a[SRC], srows, scols, srs, 1, dt)
        mem.tile(space, a[DST], rows, cols, drs, 1, dt)[...] = src.T if transpose else src

    return PipeOp(make_resolver(instr), plan, execute)


@rule("img2col")
def _img2col(instr: Instr, env: Env) -> PipeOp:
    space = instr.get("dst").space
    dt = DTYPES[instr.get("dtype")].np
    e = dt.itemsize
    names = ("dst", "src", "c", "h", "w", "kh", "kw", "stride_h", "stride_w", "pad_top", "pad_left",
             "dil_h", "dil_w", "ow", "pos", "rows", "k0", "cols")
    pos_of = dict(zip(names, fields(instr, *names)))
    rate, command, latency = _rate(env, space), env.spec.mte1.command_cycles, env.spec.mte1.latency

    def get(a: tuple) -> dict[str, int]:
        v = {n: a[i] for n, i in pos_of.items()}
        check_shape(c=v["c"], h=v["h"], w=v["w"], kh=v["kh"], kw=v["kw"], rows=v["rows"], cols=v["cols"])
        if v["ow"] <= 0:
            raise SimError(f"ow must be positive, got {v['ow']}")
        return v

    def plan(a: tuple) -> Plan:
        v = get(a)
        fmap = v["h"] * v["w"] * v["c"] * e
        out = v["rows"] * v["cols"] * e
        return Plan((("l1", v["src"], v["src"] + fmap, False), (space, v["dst"], v["dst"] + out, True)),
                    command_cycles(command, out, rate), latency)  # padding taps are written too

    def execute(a: tuple, mem: CoreMemory) -> None:
        v = get(a)
        c, h, w = v["c"], v["h"], v["w"]
        p = v["pos"] + np.arange(v["rows"])
        oy, ox = p // v["ow"], p % v["ow"]
        t = v["k0"] + np.arange(v["cols"])  # tap index in (kh, kw, c) order
        ci, kx, ky = t % c, (t // c) % v["kw"], t // (c * v["kw"])
        y = oy[:, None] * v["stride_h"] - v["pad_top"] + ky[None, :] * v["dil_h"]
        x = ox[:, None] * v["stride_w"] - v["pad_left"] + kx[None, :] * v["dil_w"]
        inside = (y >= 0) & (y < h) & (x >= 0) & (x < w) & (t < v["kh"] * v["kw"] * c)[None, :]
        fmap = mem.tile("l1", v["src"], h * w, c, c, 1, dt).reshape(h, w, c)
        out = np.zeros((v["rows"], v["cols"]), dt)
        cc = np.broadcast_to(ci[None, :], out.shape)
        out[inside] = fmap[y[inside], x[inside], cc[inside]]
        mem.tile(space, v["dst"], v["rows"], v["cols"], v["cols"], 1, dt)[...] = out

    return PipeOp(make_resolver(instr), plan, execute)

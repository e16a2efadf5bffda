"""V pipe: elementwise, select, cast, reduce, fill, iota, copy and print on UB tiles.

Tiles are rows x cols with element strides (None: rs = cols, cs = 1; 0 broadcasts). Math on f16/bf16
runs in f32 and rounds once (`vfma`'s a * b + c in f64, rounded once); integer math runs in int64 and
wraps to the dtype; casts follow `convert`. Occupancy is one cycle per repeat: the operand that touches
the most 32-byte blocks (`tile_blocks`: contiguous runs pack 8 blocks a repeat, strided elements take a
block each) sets it; `vfma` is charged so too, as a binary op is (one repeat per 256 B of its busiest
operand: the rate of Ascend's vmla).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from isa import DTYPES, Instr, Mem
from isa.instructions import COMPARISONS
from simulator.errors import SimError
from simulator.memory import CoreMemory, span
from simulator.ops.base import (Access, Env, Plan, PipeOp, check_shape, compute_dtype, convert, fields, is_int,
                                make_resolver, rule, run_blocks, scalar_operand, tile_blocks, vector_cycles)

BOOL = np.dtype(np.bool_)
I32 = np.dtype(np.int32)


class _Tile:
    """One tile operand of a vector instruction: its position, strides, and whether it is a scalar."""

    def __init__(self, instr: Instr, name: str, dt: np.dtype) -> None:
        index = instr.opdef.index
        self.pos = index[name]
        self.is_mem = isinstance(instr.args[self.pos], Mem)
        self.rs, self.cs = index.get(f"{name}_rs"), index.get(f"{name}_cs")
        self.dt = dt

    def strides(self, a: tuple, cols: int) -> tuple[int, int]:
        rs = a[self.rs] if self.rs is not None else None
        cs = a[self.cs] if self.cs is not None else None
        return (cols if rs is None else rs), (1 if cs is None else cs)

    def access(self, a: tuple, rows: int, cols: int, write: bool) -> Access:
        rs, cs = self.strides(a, cols)
        lo, hi = span(a[self.pos], rows, cols, rs, cs, self.dt.itemsize)
        return ("ub", lo, hi, write)

    def blocks(self, a: tuple, rows: int, cols: int, block: int) -> int:
        rs, cs = self.strides(a, cols)
        return tile_blocks(a[self.pos], rows, cols, rs, cs, self.dt.itemsize, block)

    def view(self, a: tuple, mem: CoreMemory, rows: int, cols: int) -> np.ndarray:
        if not self.is_mem:
            return scalar_operand(a[self.pos], self.dt)  # a broadcast scalar, in the instruction's dtype
        rs, cs = self.strides(a, cols)
        return mem.tile("ub", a[self.pos], rows, cols, rs, cs, self.dt)


def _vector_op(instr: Instr, env: Env, ins: list[_Tile], out: _Tile,
               compute: Callable[[list[np.ndarray]], np.ndarray]) -> PipeOp:
    """An elementwise instruction: reads `ins` (scalars allowed), writes `out`, all rows x cols."""
    ROWS, COLS = fields(instr, "rows", "cols")
    v = env.spec.vector
    rate, block, latency = v.bytes_per_cycle, v.block_bytes, v.latency
    mems = [t for t in ins if t.is_mem]
    tiles = [*mems, out]

    def plan(a: tuple) -> Plan:
        rows, cols = a[ROWS], a[COLS]
        check_shape(rows=rows, cols=cols)
        acc = [t.access(a, rows, cols, False) for t in mems]
        acc.append(out.access(a, rows, cols, True))
        blocks = max(t.blocks(a, rows, cols, block) for t in tiles)
        return Plan(tuple(acc), vector_cycles(blocks, rate, block), latency)

    scalars = [(i, t) for i, t in enumerate(ins) if not t.is_mem]

    def bind(key: tuple, a: tuple, mem: CoreMemory) -> tuple[list, np.ndarray]:
        rows, cols = a[ROWS], a[COLS]
        # scalar operands are converted at every execute: equal keys may hold 0.0 and -0.0
        values = [t.view(a, mem, rows, cols) if t.is_mem else None for t in ins]
        return mem.remember(key, (values, out.view(a, mem, rows, cols)))

    def execute(a: tuple, mem: CoreMemory) -> None:
        """The views of these operands are bound once per core (`CoreMemory.views`); floating-point
        warnings are silenced for the whole launch (simulator.device)."""
        key = (execute, a)
        bound = mem.views.get(key)
        values, dst = bound if bound is not None else bind(key, a, mem)
        if scalars:
            values = list(values)
            for i, t in scalars:
                values[i] = scalar_operand(a[t.pos], t.dt)
        dst[...] = compute(values)

    return PipeOp(make_resolver(instr), plan, execute)


# -- binary ---------------------------------------------------------------------------------------
def _int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """C division (truncate toward zero); x / 0 gives 0."""
    safe = np.where(b == 0, 1, b)
    q = (a - np.fmod(a, safe)) // safe
    return np.where(b == 0, 0, q)


def _int_rem(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    safe = np.where(b == 0, 1, b)
    return np.where(b == 0, 0, np.fmod(a, safe))


_UFUNCS: dict[str, Callable[..., Any]] = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "min": np.minimum, "max": np.maximum,
    "and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor,
    "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal, "eq": np.equal,
    "ne": np.not_equal, "fdiv": np.true_divide, "pow": np.power, "div": np.true_divide, "rem": np.fmod,
    # shifts: counts clamped to the register width; >> on signed ints is arithmetic
    "shl": lambda x, y: np.left_shift(x, np.clip(y, 0, 63)), "shr": lambda x, y: np.right_shift(x, np.clip(y, 0, 63)),
}


@rule("vbin")
def _vbin(instr: Instr, env: Env) -> PipeOp:
    op = instr.get("op")
    dt = DTYPES[instr.get("dtype")].np
    cd = compute_dtype(dt)
    integer = is_int(dt) or dt == BOOL
    if op in ("and", "or", "xor", "shl", "shr") and not integer:
        raise SimError(f"vbin {op} needs an integer or i1 dtype, not {instr.get('dtype')}")
    fn = _UFUNCS[op]
    if integer and op == "div":
        fn = _int_div
    elif integer and op == "rem":
        fn = _int_rem
    elif integer and op in ("fdiv", "pow"):
        def fn(x: np.ndarray, y: np.ndarray, f: Any = _UFUNCS[op]) -> np.ndarray:
            return f(x.astype(np.float64), y.astype(np.float64))
    compare = op in COMPARISONS
    out_dt = BOOL if compare else dt

    def compute(v: list[np.ndarray]) -> np.ndarray:
        # views already in the compute dtype are used as they are: the result is a new array anyway
        r = fn(np.asarray(v[0], dtype=cd), np.asarray(v[1], dtype=cd))
        if compare:
            return r
        # integer results wrap (int64 -> dtype), except true-division results, which convert
        return r.astype(dt, copy=False) if r.dtype.kind != "f" or not integer else convert(r, dt)

    return _vector_op(instr, env, [_Tile(instr, "a", dt), _Tile(instr, "b", dt)], _Tile(instr, "dst", out_dt),
                      compute)


# -- unary ----------------------------------------------------------------------------------------
_erf = np.vectorize(math.erf, otypes=[np.float64])

_UNARY_FLOAT: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "exp": np.exp, "exp2": np.exp2, "log": np.log, "log2": np.log2, "sqrt": np.sqrt,
    "rsqrt": lambda x: 1 / np.sqrt(x), "recip": lambda x: 1 / x, "erf": lambda x: _erf(x).astype(x.dtype),
    "tanh": np.tanh, "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "floor": np.floor, "ceil": np.ceil,
    "sin": np.sin, "cos": np.cos,
}
_UNARY_ANY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "neg": np.negative, "abs": np.abs, "relu": lambda x: np.maximum(x, 0),
}


@rule("vun")
def _vun(instr: Instr, env: Env) -> PipeOp:
    op = instr.get("op")
    dt = DTYPES[instr.get("dtype")].np
    cd = compute_dtype(dt)
    integer = is_int(dt) or dt == BOOL
    if dt == BOOL and op != "not":
        raise SimError(f"vun {op} is not defined on i1 (only not is)")
    if op == "not":
        if not integer:
            raise SimError(f"vun not needs an integer or i1 dtype, not {instr.get('dtype')}")
        fn: Callable[[np.ndarray], np.ndarray] = np.logical_not if dt == BOOL else np.invert
    elif op in _UNARY_ANY:
        fn = _UNARY_ANY[op]
    elif integer:  # float math on integers: compute in f64, truncate back
        fn = lambda x, f=_UNARY_FLOAT[op]: convert(f(x.astype(np.float64)), dt)  # noqa: E731
    else:
        fn = _UNARY_FLOAT[op]

    def compute(v: list[np.ndarray]) -> np.ndarray:
        return fn(np.asarray(v[0], dtype=cd)).astype(dt, copy=False)

    return _vector_op(instr, env, [_Tile(instr, "a", dt)], _Tile(instr, "dst", dt), compute)


# -- fused multiply-add -----------------------------------------------------------------------------
def fma(a: np.ndarray, b: np.ndarray, c: np.ndarray, dt: np.dtype) -> np.ndarray:
    """a * b + c rounded once to `dt`: the product of two f32 (or narrower) values is exact in f64, and the
    sum is rounded to f64 and then to `dt`, as the IR interpreter's `fma` rule does."""
    wide = np.float64
    return (np.asarray(a, dtype=wide) * np.asarray(b, dtype=wide) + np.asarray(c, dtype=wide)).astype(dt)


@rule("vfma")
def _vfma(instr: Instr, env: Env) -> PipeOp:
    dt = DTYPES[instr.get("dtype")].np
    if is_int(dt) or dt == BOOL:
        raise SimError(f"vfma needs a float dtype, not {instr.get('dtype')}")
    ins = [_Tile(instr, "a", dt), _Tile(instr, "b", dt), _Tile(instr, "c", dt)]
    return _vector_op(instr, env, ins, _Tile(instr, "dst", dt), lambda v: fma(v[0], v[1], v[2], dt))


# -- select, cast, copy, fill, iota -----------------------------------------------------------------
@rule("vsel")
def _vsel(instr: Instr, env: Env) -> PipeOp:
    dt = DTYPES[instr.get("dtype")].np
    ins = [_Tile(instr, "c", BOOL), _Tile(instr, "a", dt), _Tile(instr, "b", dt)]
    return _vector_op(instr, env, ins, _Tile(instr, "dst", dt), lambda v: np.where(v[0], v[1], v[2]))


@rule("vcast")
def _vcast(instr: Instr, env: Env) -> PipeOp:
    src = DTYPES[instr.get("from_dtype")].np
    dt = DTYPES[instr.get("dtype")].np
    return _vector_op(instr, env, [_Tile(instr, "a", src)], _Tile(instr, "dst", dt), lambda v: convert(v[0], dt))


@rule("vcopy")
def _vcopy(instr: Instr, env: Env) -> PipeOp:
    dt = DTYPES[instr.get("dtype")].np
    return _vector_op(instr, env, [_Tile(instr, "a", dt)], _Tile(instr, "dst", dt), lambda v: v[0].copy())


@rule("vdup")
def _vdup(instr: Instr, env: Env) -> PipeOp:
    dt = DTYPES[instr.get("dtype")].np
    return _vector_op(instr, env, [_Tile(instr, "value", dt)], _Tile(instr, "dst", dt), lambda v: v[0])


@rule("viota")
def _viota(instr: Instr, env: Env) -> PipeOp:
    dt = DTYPES[instr.get("dtype")].np
    wide = np.int64 if is_int(dt) else np.float64
    ROWS, COLS, START, RSTEP, CSTEP = fields(instr, "rows", "cols", "start", "row_step", "col_step")
    out = _Tile(instr, "dst", dt)
    op = _vector_op(instr, env, [], out, lambda v: None)

    def execute(a: tuple, mem: CoreMemory) -> None:
        rows, cols = a[ROWS], a[COLS]
        r = np.arange(rows, dtype=wide)[:, None] * a[RSTEP]
        c = np.arange(cols, dtype=wide)[None, :] * a[CSTEP]
        if is_int(dt):  # integer lanes wrap, as integer arithmetic does (a start past int32 keeps its low bits)
            start = scalar_operand(a[START], np.dtype(np.int64))
            out.view(a, mem, rows, cols)[...] = (start + r + c).astype(dt)
        else:
            out.view(a, mem, rows, cols)[...] = convert(a[START] + r + c, dt)

    return PipeOp(op.resolve, op.plan, execute)


# -- reductions ----------------------------------------------------------------------------------
@rule("vred")
def _vred(instr: Instr, env: Env) -> PipeOp:
    op = instr.get("op")
    dt = DTYPES[instr.get("dtype")].np
    cd = compute_dtype(dt)
    axis = instr.get("axis")
    if axis not in (0, 1):
        raise SimError(f"vred axis must be 0 or 1, got {axis}")
    arg = op in ("argmax", "argmin")
    out_dt = I32 if arg else dt
    src = _Tile(instr, "a", dt)
    DST, ROWS, COLS = fields(instr, "dst", "rows", "cols")
    v = env.spec.vector
    rate, block, latency = v.bytes_per_cycle, v.block_bytes, v.latency
    # the ufuncs' own reduce: what np.sum/np.max/np.min call, without their wrappers' overhead
    reduce = {"sum": np.add.reduce, "max": np.maximum.reduce, "min": np.minimum.reduce, "argmax": np.argmax,
              "argmin": np.argmin}[op]

    def shape(a: tuple) -> tuple[int, int, int]:
        rows, cols = a[ROWS], a[COLS]
        check_shape(rows=rows, cols=cols)
        if op != "sum" and (rows == 0 or cols == 0):
            raise SimError(f"vred {op} of an empty tile ({rows} x {cols})")
        return rows, cols, rows if axis == 1 else cols

    def plan(a: tuple) -> Plan:
        rows, cols, n = shape(a)
        out = ("ub", a[DST], a[DST] + n * out_dt.itemsize, True)
        blocks = max(src.blocks(a, rows, cols, block), run_blocks(a[DST], n * out_dt.itemsize, block) if n else 0)
        return Plan((src.access(a, rows, cols, False), out), vector_cycles(blocks, rate, block), latency)

    def execute(a: tuple, mem: CoreMemory) -> None:
        rows, cols = a[ROWS], a[COLS]  # checked by the plan
        n = rows if axis == 1 else cols
        x = np.asarray(src.view(a, mem, rows, cols), dtype=cd)
        mem.vector("ub", a[DST], n, out_dt)[...] = reduce(x, axis=axis)

    return PipeOp(make_resolver(instr), plan, execute)


# -- print ------------------------------------------------------------------------------------------
@rule("vprint")
def _vprint(instr: Instr, env: Env) -> PipeOp:
    dt = DTYPES[instr.get("dtype")].np
    src = _Tile(instr, "a", dt)
    FMT, ROWS, COLS = fields(instr, "fmt", "rows", "cols")
    v = env.spec.vector
    rate, block, latency = v.bytes_per_cycle, v.block_bytes, v.latency

    def plan(a: tuple) -> Plan:
        rows, cols = a[ROWS], a[COLS]
        check_shape(rows=rows, cols=cols)
        blocks = src.blocks(a, rows, cols, block)
        return Plan((src.access(a, rows, cols, False),), vector_cycles(blocks, rate, block), latency)

    def execute(a: tuple, mem: CoreMemory) -> None:
        tile = src.view(a, mem, a[ROWS], a[COLS])
        mem.print(a[FMT], np.array2string(np.asarray(tile), separator=", "))

    return PipeOp(make_resolver(instr), plan, execute)

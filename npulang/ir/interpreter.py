"""The reference semantics of the block IR: a numpy interpreter, one rule per op.

Every lowering and simulator result is compared against this. Values keep their IR dtype
(fp16/bf16 tiles are fp16/bf16 arrays); arithmetic on them is computed in fp32 and rounded once,
integer arithmetic wraps like the hardware's, integer `//` and `%` truncate toward zero (C), and
float-to-int casts truncate and saturate (NaN gives 0). `dot` accumulates fp16/bf16 in fp32 and
int8 in int32; `sum` of fp16/bf16 accumulates in fp32. Pointers are (argument, element offsets)
pairs; an unmasked access outside its array raises `OutOfBoundsError` naming the kernel line,
and masked-off lanes never touch memory (loads give `other`, or 0).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from isa.dtypes import dtype as isa_dtype
from npulang import ir
from npulang.errors import NpuRuntimeError, OutOfBoundsError
from npulang.ir import Block, Function, Op, OpKind
from npulang.ir.conv import ConvGeometry

_F32 = np.dtype(np.float32)


@dataclass(frozen=True)
class Ptr:
    """A pointer or a tile of pointers: argument index `buf` plus element offsets."""

    buf: int
    offsets: np.ndarray  # int64, the tile's shape (0-d for a scalar pointer)


@dataclass(frozen=True)
class Desc:
    """A tensor descriptor: a strided view of argument `buf` starting at element `base`."""

    buf: int
    base: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    block_shape: tuple[int, ...]


Rule = Callable[["Program", Op, list[Any]], tuple[Any, ...]]
RULES: dict[OpKind, Rule] = {}
READ_ONLY_HINT = "pass a writeable array for every output (np.array(x) is a writeable copy)"
# Ops with no rule: `Program.run_block` ends a block at them and hands back their operands.
TERMINATORS = (OpKind.YIELD, OpKind.RETURN)


def rule(kind: OpKind) -> Callable[[Rule], Rule]:
    """Register the decorated function as the interpreter's rule for ops of `kind`."""
    def register(fn: Rule) -> Rule:
        RULES[kind] = fn
        return fn

    return register


def np_dtype(t: ir.Type) -> np.dtype:
    """The numpy dtype of a scalar or tile type's elements."""
    e = ir.elem_type(t)
    assert isinstance(e, ir.ScalarType)
    return isa_dtype(e.dtype).np


def _array(x: Any, t: ir.Type) -> np.ndarray:
    return np.asarray(x, dtype=np_dtype(t))


class Program:
    """One program of the grid: its ids, the launch's arrays, and the values computed so far."""

    def __init__(self, fn: Function, memory: list[np.ndarray], names: list[str],
                 pid: tuple[int, int, int], grid: tuple[int, int, int], prints: list[str]) -> None:
        self.fn = fn
        self.memory = memory
        self.names = names
        self.pid = pid
        self.grid = grid
        self.prints = prints
        self.env: dict[int, Any] = {}

    def run_block(self, block: Block) -> list[Any]:
        """Run `block`'s ops; return the operands of its terminator (yield)."""
        for op in block.ops:
            args = [self.env[v.id] for v in op.operands]
            if op.kind in TERMINATORS:
                return args
            try:
                results = RULES[op.kind](self, op, args)
            except NpuRuntimeError:
                raise
            except Exception as exc:  # a bug in a rule, reported where it happened
                raise NpuRuntimeError(f"kernel '{self.fn.name}' at {op.loc}: interpreting {op.kind.value} "
                                      f"failed: {type(exc).__name__}: {exc}") from exc
            for v, r in zip(op.results, results):
                self.env[v.id] = r
        return []

    def out_of_bounds(self, op: Op, what: str, buf: int, offsets: np.ndarray) -> OutOfBoundsError:
        size = self.memory[buf].size
        bad = offsets[(offsets < 0) | (offsets >= size)]
        return OutOfBoundsError(
            f"kernel '{self.fn.name}' at {op.loc} (program {self.pid}): {what} '{self.names[buf]}' at "
            f"element offset {int(bad.min()) if bad.min() < 0 else int(bad.max())}, outside its {size} "
            f"elements ({bad.size} lanes out of bounds)\n  hint: mask the access, e.g. mask=offs < n")


def interpret(fn: Function, grid: tuple[int, int, int], args: Sequence[Any]) -> list[str]:
    """Run `fn` over `grid` on `args` (numpy arrays are written in place); return printed lines."""
    memory: list[np.ndarray] = []
    names: list[str] = []
    bindings: list[Any] = []
    for param, value in zip(fn.args, args):
        if isinstance(param.type, ir.PtrType):
            memory.append(value.reshape(-1))  # a view: stores write the caller's array
            names.append(param.name or "?")
            bindings.append(Ptr(len(memory) - 1, np.asarray(0, dtype=np.int64)))
        else:
            bindings.append(_array(value, param.type))
    prints: list[str] = []
    with np.errstate(all="ignore"):
        for z, y, x in itertools.product(range(grid[2]), range(grid[1]), range(grid[0])):
            prog = Program(fn, memory, names, (x, y, z), grid, prints)
            for param, value in zip(fn.args, bindings):
                prog.env[param.id] = value
            prog.run_block(fn.body)
    return prints


# -- values from nowhere -------------------------------------------------------------------------


@rule(OpKind.CONSTANT)
def _constant(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    t = op.results[0].type
    return (np.full(ir.shape_of(t), op.attrs["value"], dtype=np_dtype(t)),)


@rule(OpKind.PROGRAM_ID)
def _program_id(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    return (np.asarray(p.pid[op.attrs["axis"]], dtype=np.int32),)


@rule(OpKind.NUM_PROGRAMS)
def _num_programs(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    return (np.asarray(p.grid[op.attrs["axis"]], dtype=np.int32),)


@rule(OpKind.ARANGE)
def _arange(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    return (np.arange(op.attrs["start"], op.attrs["end"], dtype=np.int32),)


# -- shapes (pointers reshape their offsets) -----------------------------------------------------


def _on_data(x: Any, f: Callable[[np.ndarray], np.ndarray]) -> Any:
    return Ptr(x.buf, f(x.offsets)) if isinstance(x, Ptr) else f(x)


@rule(OpKind.SPLAT)
def _splat(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    return (_on_data(a[0], lambda x: np.broadcast_to(x, op.attrs["shape"])),)


@rule(OpKind.BROADCAST)
def _broadcast(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    return (_on_data(a[0], lambda x: np.broadcast_to(x, op.attrs["shape"])),)


@rule(OpKind.EXPAND_DIMS)
def _expand_dims(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    return (_on_data(a[0], lambda x: np.expand_dims(x, op.attrs["axis"])),)


@rule(OpKind.RESHAPE)
def _reshape(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    return (_on_data(a[0], lambda x: np.reshape(x, op.attrs["shape"])),)


@rule(OpKind.TRANS)
def _trans(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    return (_on_data(a[0], lambda x: np.transpose(x, op.attrs["perm"])),)


# -- elementwise ---------------------------------------------------------------------------------


def _wrap_int(x: np.ndarray, dt: np.dtype) -> np.ndarray:
    """Integer results computed in int64, wrapped to `dt` as two's-complement hardware does."""
    if dt == np.bool_:
        return np.asarray(x != 0)
    return np.asarray(x).astype(np.int64).astype(dt)


def _int_div(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """C division: quotient truncated toward zero, remainder with the dividend's sign (0 if b == 0)."""
    safe = np.where(b == 0, 1, b)
    q = np.abs(a) // np.abs(safe) * np.sign(a) * np.sign(safe)
    r = a - q * safe
    return np.where(b == 0, 0, q), np.where(b == 0, 0, r)


_FLOAT_BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
    "floordiv": lambda a, b: np.floor(a / b), "mod": np.fmod, "min": np.minimum, "max": np.maximum,
    "pow": np.power,
}
_INT_BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "min": np.minimum, "max": np.maximum,
    "and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor,
    "shl": lambda a, b: np.left_shift(a, np.clip(b, 0, 63)),
    "shr": lambda a, b: np.right_shift(a, np.clip(b, 0, 63)),
    "floordiv": lambda a, b: _int_div(a, b)[0], "mod": lambda a, b: _int_div(a, b)[1],
}


@rule(OpKind.BINARY)
def _binary(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    t = op.results[0].type
    dt = np_dtype(t)
    name = op.attrs["op"]
    if ir.elem_type(t).is_float:
        out = _FLOAT_BINARY[name](a[0].astype(_F32), a[1].astype(_F32))
        return (np.asarray(out).astype(dt),)
    if dt == np.bool_ and name in ("and", "or", "xor", "min", "max"):
        return (np.asarray(_INT_BINARY[name](a[0], a[1])),)
    out = _INT_BINARY[name](a[0].astype(np.int64), a[1].astype(np.int64))
    return (_wrap_int(out, dt),)


_CMP = {"lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal, "eq": np.equal,
        "ne": np.not_equal}


@rule(OpKind.CMP)
def _cmp(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    x, y = a
    if ir.elem_type(op.operands[0].type).is_float:
        x, y = x.astype(_F32), y.astype(_F32)
    return (np.asarray(_CMP[op.attrs["pred"]](x, y)),)


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x)


_FLOAT_UNARY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "neg": np.negative, "abs": np.abs, "exp": np.exp, "exp2": np.exp2, "log": np.log, "log2": np.log2,
    "sqrt": np.sqrt, "rsqrt": lambda x: 1 / np.sqrt(x), "erf": _erf, "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "floor": np.floor, "ceil": np.ceil, "sin": np.sin,
    "cos": np.cos,
}


@rule(OpKind.UNARY)
def _unary(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    t = op.results[0].type
    dt = np_dtype(t)
    name = op.attrs["op"]
    x = a[0]
    if ir.elem_type(t).is_float:
        return (np.asarray(_FLOAT_UNARY[name](x.astype(_F32))).astype(dt),)
    if name == "not":
        return (np.logical_not(x) if dt == np.bool_ else np.invert(x),)
    x64 = x.astype(np.int64)
    return (_wrap_int(-x64 if name == "neg" else np.abs(x64), dt),)


@rule(OpKind.CAST)
def _cast(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    src = ir.elem_type(op.operands[0].type)
    dst = ir.elem_type(op.results[0].type)
    dt = np_dtype(op.results[0].type)
    x = a[0]
    if dst.dtype == "i1":
        return (np.asarray(x != 0),)
    if dst.is_float:
        return (np.asarray(x.astype(_F32) if src.dtype != "i32" else x).astype(dt),)
    if src.is_float:  # truncate toward zero, saturate, NaN -> 0
        info = np.iinfo(dt)
        f = np.nan_to_num(np.trunc(x.astype(np.float64)), nan=0.0)
        return (np.clip(f, info.min, info.max).astype(dt),)
    return (_wrap_int(x, dt),)


@rule(OpKind.FMA)
def _fma(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    """a * b + c rounded once: the product of two f32 (or narrower) values is exact in f64, then the sum
    rounds to f64 and to the result dtype, bit for bit as the simulator's `vfma` computes it."""
    x, y, z = (np.asarray(v, dtype=np.float64) for v in a)
    return (np.asarray(x * y + z).astype(np_dtype(op.result.type)),)


@rule(OpKind.WHERE)
def _where(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    c, x, y = a
    if isinstance(x, Ptr):
        if x.buf != y.buf:
            raise NpuRuntimeError(f"kernel '{p.fn.name}' at {op.loc}: where() mixes pointers into different "
                                  f"arrays ('{p.names[x.buf]}' and '{p.names[y.buf]}')")
        return (Ptr(x.buf, np.where(c, x.offsets, y.offsets)),)
    return (np.asarray(np.where(c, x, y)).astype(np_dtype(op.results[0].type)),)


# -- memory --------------------------------------------------------------------------------------


@rule(OpKind.ADDPTR)
def _addptr(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    ptr, off = a
    return (Ptr(ptr.buf, ptr.offsets + off.astype(np.int64)),)


def _lanes(p: Program, op: Op, what: str, ptr: Ptr, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The active lanes' mask and offsets, after checking they are inside the array."""
    offsets = np.broadcast_to(ptr.offsets, ptr.offsets.shape)
    active = np.ones(offsets.shape, dtype=bool) if mask is None else np.broadcast_to(mask, offsets.shape)
    used = offsets[active]
    size = p.memory[ptr.buf].size
    if used.size and (used.min() < 0 or used.max() >= size):
        raise p.out_of_bounds(op, what, ptr.buf, used)
    return active, used


@rule(OpKind.LOAD)
def _load(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    ptr, mask = a[0], (a[1] if len(a) > 1 else None)
    t = op.results[0].type
    active, used = _lanes(p, op, "load from", ptr, mask)
    out = np.array(a[2], dtype=np_dtype(t)) if len(a) > 2 else np.zeros(ir.shape_of(t), np_dtype(t))
    out = np.array(np.broadcast_to(out, ir.shape_of(t)))
    out[active] = p.memory[ptr.buf][used]
    return (out,)


@rule(OpKind.STORE)
def _store(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    ptr, value, mask = a[0], a[1], (a[2] if len(a) > 2 else None)
    active, used = _lanes(p, op, "store to", ptr, mask)
    if used.size and not p.memory[ptr.buf].flags.writeable:
        raise NpuRuntimeError(f"kernel '{p.fn.name}' at {op.loc}: stores to '{p.names[ptr.buf]}', a read-only "
                              f"array\n  hint: {READ_ONLY_HINT}")
    p.memory[ptr.buf][used] = np.broadcast_to(value, active.shape)[active]
    return ()


@rule(OpKind.MAKE_DESC)
def _make_desc(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    base: Ptr = a[0]
    n = len(op.attrs["block_shape"])
    shape = tuple(int(x) for x in a[1:1 + n])
    strides = tuple(int(x) for x in a[1 + n:])
    return (Desc(base.buf, int(base.offsets), shape, strides, tuple(op.attrs["block_shape"])),)


def _desc_lanes(d: Desc, offsets: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Element offsets of a block and which of its elements lie inside the described tensor."""
    grids = np.meshgrid(*[int(o) + np.arange(b) for o, b in zip(offsets, d.block_shape)], indexing="ij")
    inside = np.ones(d.block_shape, dtype=bool)
    addr = np.full(d.block_shape, d.base, dtype=np.int64)
    for g, size, stride in zip(grids, d.shape, d.strides):
        inside &= (g >= 0) & (g < size)
        addr += g.astype(np.int64) * stride
    return inside, addr


@rule(OpKind.DESC_LOAD)
def _desc_load(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    d: Desc = a[0]
    inside, addr = _desc_lanes(d, a[1:])
    return (_load(p, op, [Ptr(d.buf, addr), inside])[0],)


@rule(OpKind.DESC_STORE)
def _desc_store(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    d: Desc = a[0]
    inside, addr = _desc_lanes(d, a[1:-1])
    return _store(p, op, [Ptr(d.buf, addr), a[-1], inside])


@dataclass(frozen=True)
class ConvDesc:
    """A convolution descriptor: the feature map at element `base` of argument `buf`, and its geometry."""

    buf: int
    base: int
    geometry: ConvGeometry


@rule(OpKind.MAKE_CONV_DESC)
def _make_conv_desc(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    return (ConvDesc(a[0].buf, int(a[0].offsets), ConvGeometry.from_attrs(op.attrs)),)


@rule(OpKind.CONV_LOAD)
def _conv_load(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    """The [BM, BK] block of the im2col matrix at (m, k); see `npulang.ir.conv` for its layout."""
    d: ConvDesc = a[0]
    g = d.geometry
    m, k = int(a[1]), int(a[2])
    bm, bk = g.block_shape
    if m < 0 or k < 0 or k % bk:
        raise NpuRuntimeError(f"kernel '{p.fn.name}' at {op.loc}: conv descriptor load at [{m}, {k}]: offsets "
                              f"must be >= 0 and k a multiple of the block's K ({bk})")
    n_, c_, h_, w_ = g.shape
    (r_, s_), (oh, ow), cb = g.kernel, g.out_hw, g.channel_block
    pos = (m + np.arange(bm, dtype=np.int64))[:, None]
    tap = (k + np.arange(bk, dtype=np.int64))[None, :]
    n, oy, ox = pos // (oh * ow), pos // ow % oh, pos % ow
    group, r, s, c0 = tap // g.group_taps, tap // (s_ * cb) % r_, tap // cb % s_, tap % cb
    c = group * cb + c0
    y = oy * g.stride[0] - g.padding[0] + r * g.dilation[0]
    x = ox * g.stride[1] - g.padding[1] + s * g.dilation[1]
    inside = (n < n_) & (c < c_) & (y >= 0) & (y < h_) & (x >= 0) & (x < w_)
    if g.layout == "NHWC":
        addr = ((n * h_ + y) * w_ + x) * c_ + c
    elif g.layout == "NC1HWC0":
        addr = (((n * g.groups + group) * h_ + y) * w_ + x) * cb + c0
    else:
        addr = ((n * c_ + c) * h_ + y) * w_ + x
    return (_load(p, op, [Ptr(d.buf, d.base + np.where(inside, addr, 0)), inside])[0],)


# -- compute -------------------------------------------------------------------------------------


@rule(OpKind.DOT)
def _dot(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    x, y = a[0], a[1]
    dt = np_dtype(op.results[0].type)
    if ir.elem_type(op.operands[0].type).is_int:
        out = x.astype(np.int64) @ y.astype(np.int64)
        if len(a) > 2:
            out = out + a[2].astype(np.int64)
        return (_wrap_int(out, dt),)
    out = x.astype(_F32) @ y.astype(_F32)
    if len(a) > 2:
        out = out + a[2].astype(_F32)
    return (out.astype(dt),)


@rule(OpKind.REDUCE)
def _reduce(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    x = a[0]
    name, axis = op.attrs["op"], op.attrs["axis"]
    dt = np_dtype(op.results[0].type)
    if name == "sum":
        if ir.elem_type(op.operands[0].type).is_float:
            return (np.asarray(np.sum(x.astype(_F32), axis=axis, dtype=_F32)).astype(dt),)
        return (_wrap_int(np.sum(x.astype(np.int64), axis=axis), dt),)
    if name in ("max", "min"):
        return (np.asarray(np.max(x, axis=axis) if name == "max" else np.min(x, axis=axis)).astype(dt),)
    f = np.argmax if name == "argmax" else np.argmin
    return (np.asarray(f(x, axis=axis)).astype(np.int32),)


@rule(OpKind.SCAN)
def _scan(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    """Inclusive prefix sums in log2(n) steps: each element adds the partial sum s = 1, 2, 4, ... places
    back (ahead, reversed). The compiled code adds in the same order, so both round alike."""
    dt = np_dtype(op.results[0].type)
    y = np.moveaxis(np.array(a[0]), op.attrs["axis"], -1).copy()
    n, s = y.shape[-1], 1
    while s < n:
        prev = y.copy()
        near, far = (slice(None, -s), slice(s, None)) if op.attrs["reverse"] else (slice(s, None), slice(None, -s))
        if ir.elem_type(op.results[0].type).is_float:
            y[..., near] = (prev[..., near].astype(_F32) + prev[..., far].astype(_F32)).astype(dt)
        else:
            y[..., near] = _wrap_int(prev[..., near].astype(np.int64) + prev[..., far].astype(np.int64), dt)
        s *= 2
    return (np.moveaxis(y, -1, op.attrs["axis"]),)


# -- control flow --------------------------------------------------------------------------------


@rule(OpKind.FOR)
def _for(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    lb, ub, step = (int(x) for x in a[:3])
    if step == 0:
        raise NpuRuntimeError(f"kernel '{p.fn.name}' at {op.loc}: range step is zero")
    values = list(a[3:])
    body = op.regions[0]
    for i in range(lb, ub, step):
        p.env[body.args[0].id] = np.asarray(i, dtype=np.int32)
        for arg, v in zip(body.args[1:], values):
            p.env[arg.id] = v
        values = p.run_block(body)
    return tuple(values)


WHILE_LIMIT = 10_000_000  # iterations of one while loop before the interpreter calls it runaway


@rule(OpKind.WHILE)
def _while(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    values = list(a)
    cond, body = op.regions
    for _ in range(WHILE_LIMIT):
        for arg, v in zip(cond.args, values):
            p.env[arg.id] = v
        if not bool(p.run_block(cond)[0]):
            return tuple(values)
        for arg, v in zip(body.args, values):
            p.env[arg.id] = v
        values = p.run_block(body)
    raise NpuRuntimeError(f"kernel '{p.fn.name}' at {op.loc}: the while loop ran {WHILE_LIMIT:,} iterations "
                          "without its condition becoming false (a runaway loop?)")


@rule(OpKind.IF)
def _if(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    return tuple(p.run_block(op.regions[0] if bool(a[0]) else op.regions[1]))


@rule(OpKind.PRINT)
def _print(p: Program, op: Op, a: list[Any]) -> tuple[Any, ...]:
    parts = [str(x.tolist()) if isinstance(x,
                                           np.ndarray) else f"<pointer {p.names[x.buf]}+{x.offsets.tolist()}>"
             for x in a]
    line = f"pid ({p.pid[0]}, {p.pid[1]}, {p.pid[2]}) {op.attrs.get('prefix', '')}{' '.join(parts)}"
    p.prints.append(line)
    print(line)
    return ()

"""Lowering rules for values from nowhere (constants, program ids, aranges) and shape changes
(splat, broadcast, expand_dims, reshape, trans): most stay symbolic index tiles or buffer views."""

from __future__ import annotations

from typing import Callable

from npulang import ir
from npulang.backend import access
from npulang.backend.lowering.core import Lowering, rule
from npulang.backend.mir import VReg
from npulang.backend.values import Affine, Mask, Ptr, PtrTile, Scalar, TileView, Uniform, Wrapped, dense_strides

K = ir.OpKind


# -- values from nowhere ---------------------------------------------------------------------------
@rule(K.CONSTANT)
def _constant(lowering: Lowering, op: ir.Op) -> None:
    t, value = op.result.type, op.attrs["value"]
    dt = ir.elem_type(t).dtype
    value = float(value) if ir.elem_type(t).is_float else int(value)
    if isinstance(t, ir.TileType):
        lowering.vals[op.result.id] = Affine(value, (0,) * len(t.shape), t.shape) if dt == "i32" else \
            Uniform(value, t.shape, dt)
    else:
        lowering.vals[op.result.id] = Scalar(value, dt)


@rule(K.PROGRAM_ID)
@rule(K.NUM_PROGRAMS)
def _program_id(lowering: Lowering, op: ir.Op) -> None:
    d = VReg("pid" if op.kind is K.PROGRAM_ID else "npid")
    lowering.emit("pid" if op.kind is K.PROGRAM_ID else "npid", d=d, axis=op.attrs["axis"])
    lowering.vals[op.result.id] = Scalar(d, "i32")


@rule(K.ARANGE)
def _arange(lowering: Lowering, op: ir.Op) -> None:
    lowering.vals[op.result.id] = Affine(op.attrs["start"], (1,), op.result.type.shape)


# -- shapes ------------------------------------------------------------------------------------------
@rule(K.SPLAT)
def _splat(lowering: Lowering, op: ir.Op) -> None:
    x, shape = lowering.get(op.operands[0]), tuple(op.attrs["shape"])
    zeros = (0,) * len(shape)
    if isinstance(x, Ptr):
        out = PtrTile(x, Affine(0, zeros, shape))
    elif isinstance(x, Scalar) and x.dtype == "i32":
        out = Affine(x.value, zeros, shape)
    elif isinstance(x, Scalar):
        out = Uniform(x.value, shape, x.dtype)
    elif isinstance(x, TileView):  # a reduction result (0-d tile in UB)
        out = TileView(x.buffer, x.offset, shape, zeros, x.dtype)
    else:
        raise lowering.error("cannot splat this value")
    lowering.vals[op.result.id] = out


def _reshaped(lowering: Lowering, x: object, on_affine: Callable[[Affine], Affine | None],
              on_mask: Callable[[Mask], Mask | None], on_view: Callable[[TileView], TileView],
              shape: tuple[int, ...], on_dim: Callable[[int], int]) -> object:
    """`x` after one shape change, given how it maps an affine tile, a mask, a buffer view and a dim index
    (None where the symbolic form cannot follow the change)."""
    if isinstance(x, Affine):
        return on_affine(x)
    if isinstance(x, Wrapped):
        inner = on_affine(x.affine)
        return None if inner is None else Wrapped(inner, on_dim(x.dim), x.plan)
    if isinstance(x, PtrTile):
        if isinstance(x.offsets, TileView):
            return PtrTile(x.ptr, on_view(x.offsets))
        offsets = _reshaped(lowering, x.offsets, on_affine, on_mask, on_view, shape, on_dim)
        return None if offsets is None else PtrTile(x.ptr, offsets)  # type: ignore[arg-type]
    if isinstance(x, Uniform):
        return Uniform(x.value, shape, x.dtype)
    if isinstance(x, Mask):
        return on_mask(x)
    if isinstance(x, TileView):
        return on_view(x)
    raise lowering.error(f"cannot reshape a {type(x).__name__}")


@rule(K.BROADCAST)
def _broadcast(lowering: Lowering, op: ir.Op) -> None:
    shape = tuple(op.attrs["shape"])
    old = op.operands[0].type.shape

    def view(v: TileView) -> TileView:
        strides = tuple(0 if n == 1 and m != 1 else s for s, n, m in zip(v.strides, old, shape))
        return TileView(v.buffer, v.offset, shape, strides, v.dtype, v.cast_to)
    lowering.vals[op.result.id] = _reshaped(lowering, lowering.get(op.operands[0]),
                                            lambda a: access.broadcast_affine(a, shape),
                                            lambda m: access.broadcast_mask(m, shape, lowering.sop), view, shape,
                                            lambda d: d)


@rule(K.EXPAND_DIMS)
def _expand_dims(lowering: Lowering, op: ir.Op) -> None:
    axis, shape = op.attrs["axis"], op.result.type.shape

    def view(v: TileView) -> TileView:
        strides = v.strides[:axis] + (0,) + v.strides[axis:]
        return TileView(v.buffer, v.offset, shape, strides, v.dtype, v.cast_to)
    lowering.vals[op.result.id] = _reshaped(lowering, lowering.get(op.operands[0]),
                                            lambda a: access.expand_affine(a, axis),
                                            lambda m: access.expand_mask(m, axis), view, shape,
                                            lambda d: d + 1 if axis <= d else d)


@rule(K.RESHAPE)
def _reshape(lowering: Lowering, op: ir.Op) -> None:
    shape = op.result.type.shape
    x = lowering.get(op.operands[0])

    def view(v: TileView) -> TileView:
        if not v.dense:
            v = lowering.copy_dense(v)
        return TileView(v.buffer, v.offset, shape, dense_strides(shape), v.dtype, v.cast_to)

    def affine(a: Affine) -> Affine:
        r = access.reshape_affine(a, shape)
        return r if r is not None else None  # type: ignore[return-value]
    old = op.operands[0].type.shape

    def dim(d: int) -> int:  # the wrapped dim is not size 1: the k-th such dim stays the k-th
        k = sum(1 for n in old[:d] if n != 1)
        return [e for e, n in enumerate(shape) if n != 1][k]
    out = _reshaped(lowering, x, affine, lambda m: None, view, shape, dim)
    if out is None:
        out = view(lowering.view(op.operands[0]))
    lowering.vals[op.result.id] = out


@rule(K.TRANS)
def _trans(lowering: Lowering, op: ir.Op) -> None:
    perm = tuple(op.attrs["perm"])
    shape = op.result.type.shape

    def view(v: TileView) -> TileView:
        return TileView(v.buffer, v.offset, shape, tuple(v.strides[p] for p in perm), v.dtype, v.cast_to)
    x = lowering.get(op.operands[0])
    if isinstance(x, Mask):
        x = lowering.mask_tile(x)
    lowering.vals[op.result.id] = _reshaped(lowering, x, lambda a: access.trans_affine(a, perm), lambda m: None, view,
                                            shape, perm.index)

"""Pointer and mask analysis: affine index tiles, pointer tiles and bounds masks, kept symbolic.

These rules fold `arange`, `splat`, `broadcast`, `expand_dims`, `+`, `*`, `%`, `addptr` and `<` on
index tiles into `Affine` / `Wrapped` / `PtrTile` / `Mask` values, emitting only scalar arithmetic.
Anything they cannot express returns None and the caller materialises the tile on the vector pipe
instead (loads and stores of such tiles become gather/scatter).
"""

from __future__ import annotations

from typing import Callable

from npulang.backend.values import Affine, Mask, Operand, PtrTile, Wrapped, WrapPlan

ScalarOp = Callable[[str, Operand, Operand], Operand]


def broadcast_affine(a: Affine, shape: tuple[int, ...]) -> Affine:
    coeffs = tuple(0 if n == 1 and m != 1 else c for c, n, m in zip(a.coeffs, a.shape, shape))
    return Affine(a.base, coeffs, shape)


def expand_affine(a: Affine, axis: int) -> Affine:
    return Affine(a.base, a.coeffs[:axis] + (0,) + a.coeffs[axis:], a.shape[:axis] + (1,) + a.shape[axis:])


def trans_affine(a: Affine, perm: tuple[int, ...]) -> Affine:
    return Affine(a.base, tuple(a.coeffs[p] for p in perm), tuple(a.shape[p] for p in perm))


def reshape_affine(a: Affine, shape: tuple[int, ...]) -> Affine | None:
    """Only reshapes that add or drop size-1 dims keep a tile affine here."""
    if [n for n in a.shape if n != 1] != [n for n in shape if n != 1]:
        return None
    real = iter([c for c, n in zip(a.coeffs, a.shape) if n != 1])
    return Affine(a.base, tuple(next(real) if n != 1 else 0 for n in shape), shape)


def combine_affine(op: str, a: Affine, b: Affine, sop: ScalarOp) -> Affine | None:
    """a op b for op in add/sub/mul; mul only when one side is uniform (no index terms)."""
    if op in ("add", "sub"):
        coeffs = tuple(sop(op, x, y) for x, y in zip(a.coeffs, b.coeffs))
        return Affine(sop(op, a.base, b.base), coeffs, a.shape)
    if op == "mul":
        if all(c == 0 for c in b.coeffs):
            a, b = b, a
        if all(c == 0 for c in a.coeffs):
            s = a.base
            return Affine(sop("mul", b.base, s), tuple(sop("mul", c, s) for c in b.coeffs), b.shape)
    return None


def wrap_affine(a: Affine, m: Operand, sop: ScalarOp) -> Affine | Wrapped | None:
    """`a % m` for a uniform m: scalar remainder if `a` is uniform, `Wrapped` if `a` is `s + arange`."""
    varying = [d for d, c in enumerate(a.coeffs) if c != 0]
    if not varying:
        return Affine(sop("rem", a.base, m), a.coeffs, a.shape)
    if len(varying) > 1 or a.coeffs[varying[0]] != 1:
        return None
    dim, s = varying[0], a.base
    size = a.shape[dim]
    origin = sop("rem", s, m)
    first = sop("min", sop("sub", m, origin), size)
    rest = sop("sub", size, first)
    fast = sop("and", sop("ge", s, 0), sop("and", sop("ge", m, 1), sop("le", rest, m)))
    plan = WrapPlan(s, m, origin, first, rest, sop("gt", rest, 0), fast)
    return Wrapped(Affine(0, a.coeffs, a.shape), dim, plan)


def combine_wrapped(op: str, a: Affine | Wrapped, b: Affine | Wrapped, sop: ScalarOp) -> Wrapped | None:
    """wrapped + affine, affine + wrapped, wrapped - affine, and wrapped * uniform (or uniform * wrapped).

    The affine side must not vary along the wrapped dim: a mix of wrapped and plain index there is not
    a piecewise-strided tile this representation can hold.
    """
    if isinstance(a, Wrapped) and isinstance(b, Wrapped):
        return None
    if isinstance(b, Wrapped) and op in ("add", "mul"):
        a, b = b, a
    if not isinstance(a, Wrapped) or not isinstance(b, Affine):
        return None
    if op in ("add", "sub") and b.coeffs[a.dim] == 0:
        return Wrapped(combine_affine(op, a.affine, b, sop), a.dim, a.plan)  # type: ignore[arg-type]
    if op == "mul" and all(c == 0 for c in b.coeffs):
        return Wrapped(combine_affine("mul", a.affine, b, sop), a.dim, a.plan)  # type: ignore[arg-type]
    return None


def add_offsets(a: Affine | Wrapped, b: Affine | Wrapped, sop: ScalarOp) -> Affine | Wrapped | None:
    """Offsets a + b of a pointer tile, when the sum stays symbolic."""
    if isinstance(a, Affine) and isinstance(b, Affine):
        return combine_affine("add", a, b, sop)
    return combine_wrapped("add", a, b, sop)


def compare_to_mask(pred: str, a: Affine, b: Affine, sop: ScalarOp) -> Mask | None:
    """`a < b` (or <=, >, >=) where one side varies along one dim with coefficient 1, the other is uniform."""
    if pred in ("gt", "ge"):
        a, b, pred = b, a, {"gt": "lt", "ge": "le"}[pred]
    if pred not in ("lt", "le") or any(c != 0 for c in b.coeffs):
        return None
    varying = [d for d, c in enumerate(a.coeffs) if c != 0]
    if len(varying) > 1 or any(a.coeffs[d] != 1 for d in varying):
        return None
    limit = sop("sub", b.base, a.base)
    if pred == "le":
        limit = sop("add", limit, 1)
    limits: list[Operand | None] = [None] * len(a.shape)
    broadcast = [False] * len(a.shape)
    if varying:
        limits[varying[0]] = limit
    else:  # uniform condition: all-or-nothing, attach it to dim 0
        limits[0], broadcast[0] = limit, True
    return Mask(tuple(limits), tuple(broadcast), a.shape)


def and_masks(a: Mask, b: Mask, sop: ScalarOp) -> Mask | None:
    limits: list[Operand | None] = []
    broadcast: list[bool] = []
    for la, lb, ba, bb in zip(a.limits, b.limits, a.broadcast, b.broadcast):
        if la is not None and lb is not None and ba != bb:
            return None
        limits.append(lb if la is None else la if lb is None else sop("min", la, lb))
        broadcast.append(ba if la is not None else bb)
    return Mask(tuple(limits), tuple(broadcast), a.shape)


def broadcast_mask(m: Mask, shape: tuple[int, ...]) -> Mask:
    bc = tuple(b or (n == 1 and s != 1 and lim is not None)
               for b, n, s, lim in zip(m.broadcast, m.shape, shape, m.limits))
    return Mask(m.limits, bc, shape)


def expand_mask(m: Mask, axis: int) -> Mask:
    return Mask(m.limits[:axis] + (None,) + m.limits[axis:],
                m.broadcast[:axis] + (False,) + m.broadcast[axis:],
                m.shape[:axis] + (1,) + m.shape[axis:])


def extents(m: Mask | None, shape: tuple[int, ...], sop: ScalarOp) -> list[Operand | None]:
    """Valid extent per dim: clamp(limit, 0, size), or size/0 for broadcast dims; None = all."""
    if m is None:
        return [None] * len(shape)
    out: list[Operand | None] = []
    for lim, bc, n in zip(m.limits, m.broadcast, shape):
        if lim is None:
            out.append(None)
        elif bc:
            out.append(sop("mul", sop("min", sop("max", lim, 0), 1), n))
        else:
            out.append(sop("min", sop("max", lim, 0), n))
    return out


def offset_ptr(p: PtrTile, off: Affine | Wrapped, sop: ScalarOp) -> PtrTile | None:
    """`p + off` for symbolic offsets, or None when the sum is not symbolic."""
    if not isinstance(p.offsets, (Affine, Wrapped)):
        return None
    offsets = add_offsets(p.offsets, off, sop)
    return None if offsets is None else PtrTile(p.ptr, offsets)

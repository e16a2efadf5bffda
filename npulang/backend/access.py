"""Pointer and mask analysis: affine index tiles, pointer tiles and bounds masks, kept symbolic.

These rules fold `arange`, `splat`, `broadcast`, `expand_dims`, `+`, `*`, `%`, `addptr`, comparisons
and `&` on index tiles into `Affine` / `Wrapped` / `PtrTile` / `Mask` values, emitting only scalar
arithmetic. Anything they cannot express returns None (or, for comparisons, the reason) and the
caller materialises the tile on the vector pipe instead (loads and stores of such tiles become
gather/scatter, and `inspect` says why).
"""

from __future__ import annotations

from typing import Callable

from npulang.backend.values import Affine, Mask, Operand, PtrTile, Wrapped, WrapPlan

ScalarOp = Callable[[str, Operand, Operand], Operand]


def broadcast_affine(a: Affine, shape: tuple[int, ...]) -> Affine:
    """The affine index of `a` broadcast to `shape`: broadcast dims get coefficient 0."""
    coeffs = tuple(0 if n == 1 and m != 1 else c for c, n, m in zip(a.coeffs, a.shape, shape))
    return Affine(a.base, coeffs, shape)


def expand_affine(a: Affine, axis: int) -> Affine:
    """The affine index of `a` with a size-1 dim inserted at `axis`."""
    return Affine(a.base, a.coeffs[:axis] + (0,) + a.coeffs[axis:], a.shape[:axis] + (1,) + a.shape[axis:])


def trans_affine(a: Affine, perm: tuple[int, ...]) -> Affine:
    """The affine index of `a` with its dims permuted by `perm`."""
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


_FLIP = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le", "eq": "eq", "ne": "ne"}


def compare_to_mask(pred: str, a: Affine, b: Affine, sop: ScalarOp) -> Mask | str:
    """`a pred b` as bounds on one index, or the reason it is not one.

    One side must be uniform and the other vary along at most one dim with a constant step c >= 1 (a
    strided window, as a convolution with stride c indexes): `x < u` / `x <= u` bound it above, `x > u` /
    `x >= u` below, `x == u` both; a comparison of two uniform sides is a gate (the whole tile valid or not).
    """
    if any(c != 0 for c in b.coeffs):
        if any(c != 0 for c in a.coeffs):
            return "both sides of the comparison vary over the tile"
        a, b, pred = b, a, _FLIP[pred]
    varying = [d for d, c in enumerate(a.coeffs) if c != 0]
    n = len(a.shape)
    if not varying:
        return Mask((None,) * n, a.shape, gate=sop(pred, a.base, b.base))
    if len(varying) > 1:
        return "the compared index varies along more than one dim (a flattened index is not a bound per dim)"
    d, c = varying[0], a.coeffs[varying[0]]
    if not isinstance(c, int) or c < 0:
        return f"the compared index steps by {'a runtime amount' if not isinstance(c, int) else c} per element"
    if pred == "ne":
        return "`!=` excludes one index from the middle, which is not a range"
    # base + c*i pred u  <=>  i pred (u - base) / c: the first index past the edge, or the last before it
    gap = sop("sub", b.base, a.base)
    first = _ceil_div(gap, c, sop) if pred in ("lt", "ge", "eq") else None  # least i with c*i >= gap
    past = sop("add", _floor_div(gap, c, sop), 1) if pred in ("gt", "le", "eq") else None  # least c*i > gap
    lo = {"gt": past, "ge": first, "eq": first}.get(pred)
    hi = {"lt": first, "le": past, "eq": past}.get(pred)
    limits = tuple(hi if e == d else None for e in range(n))
    lows = tuple(lo if e == d else None for e in range(n)) if lo is not None else None
    return Mask(limits, a.shape, lows)


def _floor_div(a: Operand, c: int, sop: ScalarOp) -> Operand:
    """floor(a / c) for a constant c > 0 (the scalar unit's div truncates toward zero)."""
    if c == 1:
        return a
    rem = sop("rem", sop("add", sop("rem", a, c), c), c)  # a mod c, in [0, c)
    return sop("div", sop("sub", a, rem), c)


def _ceil_div(a: Operand, c: int, sop: ScalarOp) -> Operand:
    return a if c == 1 else sop("sub", 0, _floor_div(sop("sub", 0, a), c, sop))


def _both(a: Operand | None, b: Operand | None, op: str, sop: ScalarOp) -> Operand | None:
    return b if a is None else a if b is None else sop(op, a, b)


def and_masks(a: Mask, b: Mask, sop: ScalarOp) -> Mask:
    """The conjunction: the tighter bound on each side of each dim, gates and-ed."""
    limits = tuple(_both(x, y, "min", sop) for x, y in zip(a.limits, b.limits))
    lows = None if a.lows is None and b.lows is None else \
        tuple(_both(a.low(d), b.low(d), "max", sop) for d in range(len(a.shape)))
    return Mask(limits, a.shape, lows, _both(a.gate, b.gate, "and", sop))


def gate_mask(m: Mask, cond: Operand, sop: ScalarOp) -> Mask:
    """`m & cond` for a scalar condition (a splat of `h < H`)."""
    return Mask(m.limits, m.shape, m.lows, _both(m.gate, sop("ne", cond, 0), "and", sop))


def broadcast_mask(m: Mask, shape: tuple[int, ...], sop: ScalarOp) -> Mask:
    """A size-1 dim that grows checks its one index 0 against its bounds: that becomes part of the gate."""
    gate, limits, lows = m.gate, list(m.limits), list(m.lows or (None,) * len(shape))
    for d, (n, s) in enumerate(zip(m.shape, shape)):
        if n == 1 and s != 1:
            if limits[d] is not None:
                gate = _both(gate, sop("gt", limits[d], 0), "and", sop)
            if lows[d] is not None:
                gate = _both(gate, sop("le", lows[d], 0), "and", sop)
            limits[d] = lows[d] = None
    return Mask(tuple(limits), shape, tuple(lows) if m.lows is not None else None, gate)


def expand_mask(m: Mask, axis: int) -> Mask:
    """The bound mask `m` with a size-1, unbounded dim inserted at `axis`."""
    lows = None if m.lows is None else m.lows[:axis] + (None,) + m.lows[axis:]
    return Mask(m.limits[:axis] + (None,) + m.limits[axis:], m.shape[:axis] + (1,) + m.shape[axis:], lows, m.gate)


def bounds(m: Mask | None, shape: tuple[int, ...], sop: ScalarOp) -> list[tuple[Operand, Operand | None]]:
    """The valid index range [lo, hi) per dim: lo clamped to [0, size], hi to [0, size] (None: size).

    A false gate makes dim 0's hi 0. The range is empty when hi <= lo; a DMA clamps the negative
    extent hi - lo to 0.
    """
    if m is None:
        return [(0, None)] * len(shape)
    out: list[tuple[Operand, Operand | None]] = []
    for d, n in enumerate(shape):
        lo, lim = m.low(d), m.limits[d]
        out.append((0 if lo is None else sop("min", sop("max", lo, 0), n),
                    None if lim is None else sop("min", sop("max", lim, 0), n)))
    if m.gate is not None and shape:
        lo, hi = out[0]
        out[0] = (lo, sop("mul", shape[0] if hi is None else hi, m.gate))
    return out


def slab_offsets(x: Affine | Wrapped, b: int, sop: ScalarOp) -> Affine | Wrapped | None:
    """Index `b` of a rank-3 index tile's leading dim (None when that dim wraps)."""
    if isinstance(x, Wrapped):
        inner = slab_offsets(x.affine, b, sop)
        return None if x.dim == 0 or inner is None else Wrapped(inner, x.dim - 1, x.plan)  # type: ignore[arg-type]
    return Affine(sop("add", x.base, sop("mul", b, x.coeffs[0])), x.coeffs[1:], x.shape[1:])


def slab_mask(m: Mask | None, b: int, sop: ScalarOp) -> Mask | None:
    """Index `b` of a rank-3 mask's leading dim: its bounds there become part of the gate."""
    if m is None:
        return None
    gate, lo, hi = m.gate, m.low(0), m.limits[0]
    if hi is not None:
        gate = _both(gate, sop("lt", b, hi), "and", sop)
    if lo is not None:
        gate = _both(gate, sop("ge", b, lo), "and", sop)
    return Mask(m.limits[1:], m.shape[1:], None if m.lows is None else m.lows[1:], gate)


def offset_ptr(p: PtrTile, off: Affine | Wrapped, sop: ScalarOp) -> PtrTile | None:
    """`p + off` for symbolic offsets, or None when the sum is not symbolic."""
    if not isinstance(p.offsets, (Affine, Wrapped)):
        return None
    offsets = add_offsets(p.offsets, off, sop)
    return None if offsets is None else PtrTile(p.ptr, offsets)

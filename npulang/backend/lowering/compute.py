"""Lowering rules for the cube and reductions: dot (L1 -> L0A/L0B -> mmad into L0C, accumulating in
place when the accumulator allows, split into pieces that fit L0A/L0B/L0C) and reduce (one vred)."""

from __future__ import annotations

from isa.dtypes import DTYPES, accumulator
from npulang import ir
from npulang.backend.lowering.core import Lowering, is_zero, rule
from npulang.backend.values import Operand, TileView, dense_strides

K = ir.OpKind


# -- dot ---------------------------------------------------------------------------------------------
def _to_l1(lowering: Lowering, x: TileView) -> TileView:
    """A UB tile copied to L1 (the only way from the vector side into the cube's inputs)."""
    if x.rows_cols()[3] != 1:
        x = lowering.copy_dense(x)
    rows, cols, rs, _ = x.rows_cols()
    dst = lowering.new_buffer(x.shape, x.dtype, "l1", "to_l1")
    lowering.emit("store", (x.region(),), (dst.region(),), dst=dst.ref(), src=x.ref(), dtype=x.dtype, rows=rows,
                  cols=cols, src_rs=rs, dst_rs=cols)
    return dst


def _in_l1(lowering: Lowering, v: ir.Value) -> TileView:
    """`v` as an L1 tile with unit stride along its rows or its columns (what a move into L0 reads), or the
    L0 tile it already is."""
    x = lowering.get(v)
    if isinstance(x, TileView) and x.space in ("l0a", "l0b"):  # already in L0: an img2col block in L0A
        return x
    if not (isinstance(x, TileView) and x.space == "l1"):
        x = _to_l1(lowering, lowering.view(v))
    if x.strides[1] != 1 and x.strides[0] != 1:
        x = _to_l1(lowering, lowering.copy_dense(lowering.view(v)))
    return x


def _to_l0(lowering: Lowering, x: TileView, rows: tuple[int, int], cols: tuple[int, int], space: str,
           name: str) -> TileView:
    """The block [r0, r0 + nr) x [c0, c0 + nc) of L1 tile `x` moved into a new L0A/L0B tile (transposing
    when `x` is column-major)."""
    (r0, nr), (c0, nc) = rows, cols
    if x.space == space:  # an img2col block: the dot plan keeps it whole, since it was sized to fit L0A
        assert (r0, c0, nr, nc) == (0, 0, *x.shape), "an L0 operand split by the dot plan"
        return x
    rs, cs = x.strides
    block = TileView(x.buffer, x.offset + (r0 * rs + c0 * cs) * x.itemsize, (nr, nc), (rs, cs), x.dtype)
    transpose, src_rs = (0, rs) if cs == 1 else (1, cs)
    dst = lowering.new_buffer((nr, nc), x.dtype, space, name)
    lowering.emit("move", (block.region(),), (dst.region(),), dst=dst.ref(), src=block.ref(), dtype=x.dtype,
                  rows=nr, cols=nc, src_rs=src_rs, dst_rs=nc, transpose=transpose)
    return dst


def _pieces(total: int, limit: int, granule: int) -> list[tuple[int, int]]:
    """(start, size) pieces covering [0, total): sizes at most `limit` (at least one granule), in granules."""
    size = max(granule, limit // granule * granule)
    return [(s, min(size, total - s)) for s in range(0, total, size)]


def _dot_plan(lowering: Lowering, m: int, n: int, k: int, in_dt: str, split_mn: bool,
              a_in_l0: bool) -> tuple[list[tuple[int, int]], list[tuple[int, int]], list[tuple[int, int]]]:
    """Pieces of M, N and K so that each mmad's operands fit L0A/L0B and its result L0C.

    A dot that fits is one piece. Otherwise pieces take at most half of each buffer, so the moves of
    one piece can overlap the mmad of the previous one. M and N split only with `split_mn`; an A operand
    already in L0A (an img2col block) is never split: if it is too large, allocation says so at its line."""
    spec = lowering.spec
    isz, acc = DTYPES[in_dt].itemsize, DTYPES[accumulator(DTYPES[in_dt]).name].itemsize
    cap_a, cap_b, cap_c = (spec.buffer_bytes(b) for b in ("l0a", "l0b", "l0c"))
    gm, gn, gk = spec.cube_tile(in_dt)
    ms, ns = [(0, m)], [(0, n)]
    if a_in_l0:
        split_mn = False
    if split_mn and m * n * acc > cap_c:
        ns = _pieces(n, cap_c // 2 // (m * acc), gn)
        nc = max(size for _, size in ns)
        ms = _pieces(m, cap_c // 2 // (nc * acc), gm) if m * nc * acc > cap_c // 2 else ms
    mc, nc = max(size for _, size in ms), max(size for _, size in ns)
    ks = [(0, k)]
    if not a_in_l0 and (mc * k * isz > cap_a // 2 or k * nc * isz > cap_b // 2):
        ks = _pieces(k, min(cap_a // 2 // (mc * isz), cap_b // 2 // (nc * isz)), gk)
    return ms, ns, ks


def _mmads(lowering: Lowering, a: TileView, b: TileView, dst: TileView, rows: tuple[int, int],
           cols: tuple[int, int], ks: list[tuple[int, int]], in_dt: str, init: Operand,
           names: tuple[str, str]) -> tuple[TileView, TileView]:
    """dst (+)= a[rows, :] @ b[:, cols], one mmad per K piece; returns the last L0A and L0B tiles."""
    (_, mi), (_, ni) = rows, cols
    for j, kp in enumerate(ks):
        l0a = _to_l0(lowering, a, rows, kp, "l0a", names[0])
        l0b = _to_l0(lowering, b, kp, cols, "l0b", names[1])
        first = init if j == 0 else 0
        reads = (l0a.region(), l0b.region()) + ((dst.region(),) if first != 1 else ())
        lowering.emit("mmad", reads, (dst.region(),), dst=dst.ref(), a=l0a.ref(), b=l0b.ref(), dtype=in_dt, m=mi,
                      n=ni, k=kp[1], init=first)
    return l0a, l0b


@rule(K.DOT)
def _dot(lowering: Lowering, op: ir.Op) -> None:
    """One mmad into L0C when the operands fit L0A/L0B, else one per K piece (and per M/N piece of the
    result when it does not fit L0C: then each piece leaves by fixpipe into one UB tile)."""
    a_v, b_v = op.operands[:2]
    m, k = a_v.type.shape
    n = b_v.type.shape[1]
    in_dt = ir.elem_type(a_v.type).dtype
    acc_dt = accumulator(DTYPES[in_dt]).name
    out_dt = op.attrs["out_dtype"]
    a1, b1 = _in_l1(lowering, a_v), _in_l1(lowering, b_v)
    names = (f"{a_v.name or 'op'}_l0a", f"{b_v.name or 'op'}_l0b")
    init: Operand = 1
    dst: TileView | None = None
    extra = None
    if len(op.operands) > 2:
        acc_v = op.operands[2]
        acc = lowering.get(acc_v)
        in_place = lowering.uses.get(acc_v.id) == 1
        if isinstance(acc, TileView) and acc.space == "l0c" and in_place and acc.dtype == acc_dt:
            dst, init = acc, lowering.first_iter.get(id(acc.buffer), 0)
        elif not is_zero(acc):
            extra = acc_v
    ms, ns, ks = _dot_plan(lowering, m, n, k, in_dt, split_mn=dst is None, a_in_l0=a1.space == "l0a")
    if len(ms) * len(ns) > 1:
        users = lowering.consumers.get(op.result.id, [])
        cast = users[0] if len(users) == 1 and users[0].kind is K.CAST and extra is None else None
        if cast is not None and cast.attrs["dtype"] in ir.FLOAT_DTYPES:  # `dot(a, b).to(f16)`: fixpipe casts
            out_dt = cast.attrs["dtype"]
        result = lowering.new_buffer((m, n), out_dt, "ub", op.result.name or "dot")
        for rows in ms:
            for cols in ns:
                piece = lowering.new_buffer((rows[1], cols[1]), acc_dt, "l0c", "acc_piece")
                _mmads(lowering, a1, b1, piece, rows, cols, ks, in_dt, 1, names)
                at = TileView(result.buffer, (rows[0] * n + cols[0]) * result.itemsize, (rows[1], cols[1]), (n, 1),
                              out_dt)
                lowering.emit("fixpipe", (piece.region(),), (at.region(),), dst=at.ref(), src=piece.ref(),
                              src_dtype=acc_dt, dtype=out_dt, rows=rows[1], cols=cols[1], src_rs=cols[1], dst_rs=n)
        if extra is not None:
            lowering.vector("vbin", result, [("a", result), ("b", lowering.view(extra))], op="add", dtype=out_dt)
        if cast is not None and out_dt == cast.attrs["dtype"]:
            lowering.cast_early[cast.result.id] = result
        lowering.vals[op.result.id] = result
        return
    accumulates = dst is not None
    if dst is None:
        dst = lowering.new_buffer((m, n), acc_dt, "l0c", op.result.name or "acc")
    l0a, l0b = _mmads(lowering, a1, b1, dst, (0, m), (0, n), ks, in_dt, init, names)
    if accumulates:
        lowering.acc_inputs[id(dst.buffer)] = (l0a, l0b, in_dt)
    cast_to = out_dt if out_dt != acc_dt else None
    result = TileView(dst.buffer, 0, (m, n), dense_strides((m, n)), acc_dt, cast_to)
    if extra is not None:  # acc in UB: the product leaves L0C and is added there (in place where it may)
        prod, other = lowering.fixpipe_to_ub(result), lowering.view(extra)
        result = lowering.result_buffer(op, out_dt, [other, prod])
        lowering.vector("vbin", result, [("a", prod), ("b", other)], op="add", dtype=out_dt)
    lowering.vals[op.result.id] = result


# -- scans -------------------------------------------------------------------------------------------
@rule(K.SCAN)
def _scan(lowering: Lowering, op: ir.Op) -> None:
    """Prefix sums in log2(n) vector steps between two UB tiles: the first s elements along the axis are
    copied, the rest add the element s back (ahead, reversed); s = 1, 2, 4, ... (the interpreter's order)."""
    src = lowering.view(op.operands[0])
    axis, reverse = op.attrs["axis"], op.attrs["reverse"]
    n = src.shape[axis]
    bufs = [lowering.new_buffer(src.shape, src.dtype, "ub", op.result.name) for _ in range(min(2, n - 1))]
    s = 1
    while s < n:
        dst = bufs[0]
        bufs.reverse()
        near, far, head = (0, s, n - s) if reverse else (s, 0, 0)
        lowering.vector("vcopy", _along(dst, axis, head, s), [("a", _along(src, axis, head, s))], dtype=src.dtype)
        lowering.vector("vbin", _along(dst, axis, near, n - s), [("a", _along(src, axis, near, n - s)),
                                                                  ("b", _along(src, axis, far, n - s))],
                        op="add", dtype=src.dtype)
        src, s = dst, 2 * s
    lowering.vals[op.result.id] = src


def _along(x: TileView, axis: int, start: int, size: int) -> TileView:
    """Elements [start, start + size) of `x` along `axis`, as a view."""
    shape = x.shape[:axis] + (size,) + x.shape[axis + 1:]
    return TileView(x.buffer, x.offset + start * x.strides[axis] * x.itemsize, shape, x.strides, x.dtype)


# -- reductions --------------------------------------------------------------------------------------
@rule(K.REDUCE)
def _reduce(lowering: Lowering, op: ir.Op) -> None:
    x = lowering.view(op.operands[0])
    axis = 1 if len(x.shape) == 1 else op.attrs["axis"]
    dt = ir.elem_type(op.result.type).dtype
    dst = lowering.new_buffer(ir.shape_of(op.result.type), dt, "ub", op.result.name)
    if len(x.shape) == 3:
        _reduce_3d(lowering, op, x, axis, dst)
    else:
        _vred(lowering, op, x, axis, dst)
    lowering.vals[op.result.id] = dst


def _vred(lowering: Lowering, op: ir.Op, x: TileView, axis: int, dst: TileView) -> None:
    rows, cols, rs, cs = x.rows_cols()
    lowering.emit("vred", (x.region(),), (dst.region(),), op=op.attrs["op"], dst=dst.ref(), a=x.ref(),
                  dtype=x.dtype, rows=rows, cols=cols, axis=axis, a_rs=rs, a_cs=cs)


def _reduce_3d(lowering: Lowering, op: ir.Op, x: TileView, axis: int, dst: TileView) -> None:
    """A [B, M, N] tile: over B or N, one vred of the tile seen as [B, M*N] or [B*M, N] (a dense copy first
    if its strides do not allow that view); over M, one vred per slab, each writing its row of [B, N]."""
    b, m, n = x.shape
    if axis == 1:
        for i in range(b):
            _vred(lowering, op, x.slab(i), 0, dst.slab(i))
        return
    merged = (b, m * n) if axis == 0 else (b * m, n)
    if (x.strides[1] != n * x.strides[2]) if axis == 0 else (x.strides[0] != m * x.strides[1]):
        x = lowering.copy_dense(x)
    strides = (x.strides[0], x.strides[2]) if axis == 0 else (x.strides[1], x.strides[2])
    _vred(lowering, op, TileView(x.buffer, x.offset, merged, strides, x.dtype), axis // 2, dst)

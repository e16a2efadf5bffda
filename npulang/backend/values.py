"""What an IR value lowers to: a register, a symbolic affine tile, a mask, or a tile in a buffer.

Index arithmetic (aranges, splats, `pid * BLOCK + arange`, pointer tiles, bounds masks) is kept
symbolic (`Affine`, `PtrTile`, `Mask`) so loads and stores become strided 2-D DMA with valid
extents; only values that real vector work needs are materialised into buffers (`TileView`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from isa import dtype as isa_dtype
from npulang.backend.mir import Buffer, BufRef, Region, VReg

Operand = Union[VReg, int, float]  # a scalar: register or immediate


class RankError(ValueError):
    """A tile of a rank the instruction at hand cannot take (the lowering reports it at the kernel line)."""


@dataclass(frozen=True)
class Scalar:
    """A scalar in a register (or an immediate)."""

    value: Operand
    dtype: str


@dataclass(frozen=True)
class Ptr:
    """A scalar GM pointer: a register holding a byte address into argument `arg`'s array."""

    reg: VReg
    arg: int
    pointee: str


@dataclass(frozen=True)
class Affine:
    """An i32 tile `base + sum_d index_d * coeffs[d]` (coefficients are element counts)."""

    base: Operand
    coeffs: tuple[Operand, ...]
    shape: tuple[int, ...]


@dataclass(frozen=True)
class WrapPlan:
    """Scalars for `(s + i) % m` over i in [0, B), computed once where the `%` is.

    When `fast` (s >= 0, m >= 1 and at most one wrap), indices [0, first) read from r = s % m onwards
    and the `rest` = B - first indices after them from 0; otherwise each index is its own piece.
    """

    start: Operand  # s
    modulus: Operand  # m
    origin: Operand  # r = s % m
    first: Operand
    rest: Operand
    has_rest: Operand
    fast: Operand


@dataclass(frozen=True)
class Wrapped:
    """An i32 tile like `affine`, except that along `dim` the index i is replaced by (s + i) % m.

    Its value at index (.., i, ..) is `affine.base + affine.coeffs[dim] * ((s + i) % m) + (other dims'
    terms)`. Loads through it become up to two strided DMA pieces instead of a gather.
    """

    affine: Affine
    dim: int
    plan: WrapPlan

    @property
    def shape(self) -> tuple[int, ...]:
        return self.affine.shape


@dataclass(frozen=True)
class PtrTile:
    """A tile of pointers `ptr + offsets` (offsets in elements: affine, wrapped, or a UB index tile)."""

    ptr: Ptr
    offsets: Affine | Wrapped | TileView


@dataclass(frozen=True)
class Uniform:
    """A tile whose every element is one scalar (constants and splats of non-index scalars)."""

    value: Operand
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class Mask:
    """A conjunction of bounds: element valid iff lows[d] <= index_d < limits[d] for each d, and gate.

    `limits[d]` / `lows[d]` None: no bound on that side of dim d. `gate` (a 0/1 scalar, None = 1) holds
    the terms that do not vary over the tile (`h < H` ANDed in, or a bound on a broadcast dim), so the
    whole tile is valid or not.
    """

    limits: tuple[Operand | None, ...]
    shape: tuple[int, ...]
    lows: tuple[Operand | None, ...] | None = None  # None: no lower bounds at all
    gate: Operand | None = None

    def low(self, d: int) -> Operand | None:
        return None if self.lows is None else self.lows[d]


@dataclass(frozen=True)
class TileView:
    """A tile stored in a buffer: element strides per IR dimension (0 broadcasts)."""

    buffer: Buffer
    offset: int  # bytes
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    dtype: str
    cast_to: str | None = None  # L0C only: the dtype the fixpipe converts to on the way out

    @property
    def itemsize(self) -> int:
        return isa_dtype(self.dtype).itemsize

    @property
    def space(self) -> str:
        return self.buffer.space

    @property
    def out_dtype(self) -> str:
        return self.cast_to or self.dtype

    def ref(self) -> BufRef:
        return BufRef(self.buffer, self.offset)

    def region(self) -> Region:
        extent = sum((n - 1) * abs(s) for n, s in zip(self.shape, self.strides)) + 1
        return Region(self.buffer, self.offset, self.offset + extent * self.itemsize)

    def rows_cols(self) -> tuple[int, int, int, int]:
        """The tile as the ISA's rows x cols with row and column strides."""
        if len(self.shape) == 0:
            return 1, 1, 1, 1
        if len(self.shape) == 1:
            return 1, self.shape[0], self.shape[0] * self.strides[0], self.strides[0]
        if len(self.shape) == 2:
            return self.shape[0], self.shape[1], self.strides[0], self.strides[1]
        raise RankError(f"this operation does not take rank-{len(self.shape)} tiles (rank 1 or 2; rank 3 only "
                        "for elementwise work, reductions and scans)")

    def slab(self, b: int) -> TileView:
        """Index `b` of the leading dim: a tile of one rank less (rank-3 work runs slab by slab)."""
        return TileView(self.buffer, self.offset + b * self.strides[0] * self.itemsize, self.shape[1:],
                        self.strides[1:], self.dtype, self.cast_to)

    @property
    def dense(self) -> bool:
        return self.strides == dense_strides(self.shape)


def dense_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Row-major element strides of a contiguous tile of this shape."""
    out, acc = [], 1
    for n in reversed(shape):
        out.append(acc)
        acc *= n
    return tuple(reversed(out))


def rows_cols(shape: tuple[int, ...]) -> tuple[int, int]:
    """A tile of rank <= 2 as (rows, cols) for 2-D DMA and vector instructions (a scalar is 1x1)."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return 1, shape[0]
    return shape[0], shape[1]


Lowered = Union[Scalar, Ptr, Affine, Wrapped, PtrTile, Uniform, Mask, TileView, "Desc"]


@dataclass(frozen=True)
class Desc:
    """A tensor descriptor: base pointer, sizes and strides (scalars) and the block shape."""

    ptr: Ptr
    sizes: tuple[Operand, ...]
    strides: tuple[Operand, ...]
    block: tuple[int, ...]

"""Hypothesis strategies for kernel tests: shapes that break tiled kernels, arrays, block sizes.

- `shapes` favours the sides where tiled kernels go wrong: 1, one short of a block, a block, one past
  it, primes; the rest of the range is drawn evenly, and a failure shrinks toward `min_side`.
- `arrays` draws dense arrays of sensible magnitudes from a Hypothesis-drawn seed (a kernel test
  needs thousands of elements; drawing each one through Hypothesis would be slow and mostly repeat a
  fill value, which hides a missing store), with special values (nan, ±inf, -0, subnormals, the
  dtype's max) placed at Hypothesis-drawn indices on request, or elementwise from `elements=`.
- `blocks` draws constexpr block sizes the machine takes: powers of two whose rows are whole units
  of the buffer alignment (or, for `dot`, whole cube tiles) and which fit on chip.

This module needs Hypothesis (`pip install hypothesis`); the rest of `npulang.testing` does not.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import isa
from isa import dtypes
from npulang.runtime import RUNTIME
from npulang.testing.tolerances import float_info, resolve_dtype

PRIMES = (2, 3, 5, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093)
SPECIAL_VALUES = ("nan", "inf", "-inf", "-0", "subnormal", "max", "-max")
DEFAULT_RANGE = {"int8": (-128, 128), "int32": (-2**15, 2**15)}  # [low, high): sums of int32 stay in range


def shapes(rank: int = 1, *, min_side: int = 1, max_side: int = 128, multiple_of: int | None = None,
           ragged: bool = True) -> st.SearchStrategy[tuple[int, ...]]:
    """Shapes of `rank` sides in [min_side, max_side].

    With `multiple_of=b` (a kernel's block) the favoured sides are k*b - 1, k*b and k*b + 1; without it,
    powers of two and their neighbours. `ragged=False` draws only multiples of `multiple_of`.
    """
    if rank < 1 or min_side < 0 or max_side < min_side:
        raise ValueError(f"shapes(rank={rank}, min_side={min_side}, max_side={max_side}): need rank >= 1 and "
                         f"0 <= min_side <= max_side")
    if not ragged:
        if not multiple_of:
            raise ValueError("shapes(ragged=False) needs multiple_of= (the block the sides are multiples of)")
        lo, hi = -(-min_side // multiple_of), max_side // multiple_of
        if lo > hi:
            raise ValueError(f"no multiple of {multiple_of} in [{min_side}, {max_side}]")
        side = st.integers(lo, hi).map(lambda k: k * multiple_of)
    else:
        bases = [multiple_of * k for k in range(1, 5)] if multiple_of else [2**p for p in range(4, 13)]
        edges = {1, min_side, max_side, *PRIMES} | {b + d for b in bases for d in (-1, 0, 1)}
        favoured = sorted(v for v in edges if min_side <= v <= max_side)
        side = st.one_of(st.integers(min_side, max_side), st.sampled_from(favoured))
    return st.tuples(*[side] * rank)


def arrays(dtype: Any, shape: int | tuple[int, ...] | st.SearchStrategy[tuple[int, ...]], *,
           elements: st.SearchStrategy[Any] | tuple[float, float] | None = None,
           special: bool | Iterable[str] = ()) -> st.SearchStrategy[np.ndarray]:
    """Arrays of `dtype` (float16, bfloat16, float32, int8, int32, bool) and `shape` (a tuple or a strategy).

    By default values are dense: standard normal for floats, the whole range for int8, [-2**15, 2**15)
    for int32, fair coins for bool. `elements=(low, high)` draws uniformly from [low, high) instead;
    `elements=<strategy>` draws every element through Hypothesis (slower; small arrays only).
    `special=True`, or a subset of SPECIAL_VALUES, places up to 8 special values at drawn indices.
    """
    d = resolve_dtype(dtype)
    dtypes.from_numpy(d)  # only the dtypes kernels take
    wanted = _specials(d, special)
    shape_st = shape if isinstance(shape, st.SearchStrategy) else st.just((shape,) if isinstance(shape, int)
                                                                          else tuple(shape))

    @st.composite
    def draw_array(draw: st.DrawFn) -> np.ndarray:
        size_shape = draw(shape_st)
        if isinstance(elements, st.SearchStrategy):
            base = np.dtype(np.float32) if d == dtypes.dtype("bf16").np else d
            out = draw(hnp.arrays(base, size_shape, elements=elements)).astype(d)
        else:
            out = _dense(d, size_shape, np.random.default_rng(draw(st.integers(0, 2**32 - 1))), elements)
        if wanted and out.size:
            flat = out.reshape(-1)
            places = draw(st.lists(st.integers(0, out.size - 1), max_size=min(out.size, 8), unique=True))
            for i in places:
                flat[i] = draw(st.sampled_from(wanted))
        return out

    return draw_array()


def blocks(dtype: Any = "float32", *, rank: int = 1, min_size: int = 1, max_size: int | None = None,
           dot: bool = False, machine: isa.MachineSpec | None = None) -> st.SearchStrategy[Any]:
    """Constexpr block sizes (an int for rank 1, else a tuple) for tiles of `dtype` on the machine.

    Powers of two whose last dimension fills whole units of the UB alignment, and whose tile fits in an
    eighth of UB (inputs, outputs and their pipelined copies share it). With `dot=True`, rank is 3 and
    the draws are (BM, BN, BK) in whole cube tiles, whose operands and accumulator fit in half of
    L0A, L0B and L0C (room for double buffering). `machine` defaults to `npu.get_machine()`.
    """
    spec = machine if machine is not None else RUNTIME.get_machine()
    d = resolve_dtype(dtype)
    size = d.itemsize
    if dot:
        if rank != 3:
            raise ValueError("blocks(dot=True) draws (BM, BN, BK): rank must be 3")
        granule = spec.cube_tile(dtypes.from_numpy(d).name)
    else:
        granule = (1,) * (rank - 1) + (max(1, spec.buffer_alignment("ub") // size),)

    def fits(b: tuple[int, ...]) -> bool:
        if not dot:
            return math.prod(b) * size <= spec.buffer_bytes("ub") // 8
        bm, bn, bk = b
        return (bm * bk * size <= spec.buffer_bytes("l0a") // 2 and bk * bn * size <= spec.buffer_bytes("l0b") // 2
                and bm * bn * 4 <= spec.buffer_bytes("l0c") // 2)

    top = max_size if max_size is not None else (256 if dot else 4096)
    sides = [[2**p for p in range(0, 16) if 2**p % g == 0 and max(min_size, g) <= 2**p <= top] for g in granule]
    if not all(sides):
        raise ValueError(f"blocks({d}, rank={rank}, max_size={top}): no power of two in range is a whole "
                         f"unit {granule} of the machine's alignment")
    combos = st.tuples(*[st.sampled_from(s) for s in sides]).filter(fits)
    return combos.map(lambda b: b[0]) if rank == 1 else combos


def _dense(d: np.dtype, shape: tuple[int, ...], rng: np.random.Generator,
           bounds: tuple[float, float] | None) -> np.ndarray:
    if d == np.bool_:
        return rng.random(shape) < 0.5
    if float_info(d) is None:
        low, high = bounds if bounds is not None else DEFAULT_RANGE[d.name]
        return rng.integers(low, high, shape).astype(d)
    if bounds is not None:
        return rng.uniform(bounds[0], bounds[1], shape).astype(np.float32).astype(d)
    return rng.standard_normal(shape, dtype=np.float32).astype(d)


def _specials(d: np.dtype, special: bool | Iterable[str]) -> list[Any]:
    names = list(SPECIAL_VALUES) if special is True else list(special or ())
    unknown = sorted(set(names) - set(SPECIAL_VALUES))
    if unknown:
        raise ValueError(f"unknown special values {unknown}; choose from {', '.join(SPECIAL_VALUES)}")
    info = float_info(d)
    if info is None:  # integers: only the range's ends are special
        bounds = np.iinfo(d) if d != np.bool_ else None
        return [] if bounds is None else [v for n, v in (("max", bounds.max), ("-max", bounds.min)) if n in names]
    values = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "-0": -0.0,
              "subnormal": float(info.smallest_subnormal) * 3, "max": float(info.max), "-max": -float(info.max)}
    return [d.type(values[n]) for n in names]

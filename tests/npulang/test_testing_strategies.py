"""npulang.testing strategies: shapes favour the edges of blocks, arrays are dense and typed, blocks fit."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import isa
import npulang as npu
from npulang.testing import arrays, blocks, shapes
from npulang.testing.tolerances import resolve_dtype

BF16 = np.dtype(ml_dtypes.bfloat16)


def _draws(strategy: st.SearchStrategy, n: int = 300) -> list:
    seen = []

    @settings(max_examples=n, database=None, derandomize=True)
    @given(strategy)
    def collect(value) -> None:
        seen.append(value)

    collect()
    return seen


def test_shapes_favour_one_below_at_and_one_past_each_block() -> None:
    sides = [s for shape in _draws(shapes(2, min_side=1, max_side=300, multiple_of=64)) for s in shape]
    assert all(1 <= s <= 300 for s in sides)
    assert {1, 63, 64, 65, 127, 128, 129, 255, 256, 257, 300} <= set(sides)
    assert len(set(sides)) > 60  # and the rest of the range, evenly
    plain = {s for (s,) in _draws(shapes(max_side=5000))}
    assert {15, 16, 17, 1023, 1024, 1025, 4093} <= plain  # powers of two, their neighbours and primes


def test_unragged_shapes_are_multiples_and_bad_ranges_are_errors() -> None:
    assert all(s % 32 == 0 and 32 <= s <= 200 for shape in _draws(shapes(3, max_side=200, multiple_of=32,
                                                                         ragged=False), 50) for s in shape)
    with pytest.raises(ValueError, match="needs multiple_of"):
        shapes(ragged=False)
    with pytest.raises(ValueError, match="no multiple of 64 in"):
        shapes(min_side=65, max_side=100, multiple_of=64, ragged=False)
    with pytest.raises(ValueError, match="0 <= min_side <= max_side"):
        shapes(min_side=5, max_side=4)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", npu.float32, np.int8, np.int32, np.bool_])
def test_arrays_are_dense_with_the_dtype_shape_and_default_magnitudes(dtype) -> None:
    for a in _draws(arrays(dtype, shapes(2, min_side=8, max_side=40)), 20):
        assert a.ndim == 2 and min(a.shape) >= 8
        assert a.dtype == resolve_dtype(dtype)
        values = a.astype(np.float64)
        assert np.isfinite(values).all()
        assert len(np.unique(values)) > (1 if a.dtype == np.bool_ else min(a.size // 4, 64))  # not one fill value
        bound = {np.dtype(np.int8): 128, np.dtype(np.int32): 2**15, np.dtype(np.bool_): 1}.get(a.dtype, 8)
        assert np.abs(values).max() <= bound


def test_special_values_appear_on_request_only() -> None:
    drawn = _draws(arrays(np.float16, 50, special=True), 200)
    flat = np.concatenate(drawn).astype(np.float64)
    assert np.isnan(flat).any() and np.isposinf(flat).any() and np.isneginf(flat).any()
    assert (flat == 65504).any() and (flat == -65504).any() and (np.signbit(flat) & (flat == 0)).any()
    assert ((flat > 0) & (flat < 6.1e-5)).any()  # a subnormal
    only_nan = np.concatenate(_draws(arrays(BF16, 50, special=["nan"]), 100)).astype(np.float64)
    assert np.isnan(only_nan).any() and np.isfinite(only_nan[~np.isnan(only_nan)]).all()
    ints = np.concatenate(_draws(arrays(np.int8, 50, special=["max", "-max"]), 100))
    assert ints.max() == 127 and ints.min() == -128
    with pytest.raises(ValueError, match="unknown special values"):
        arrays(np.float32, 4, special=["huge"])


def test_arrays_take_bounds_or_an_elements_strategy() -> None:
    for a in _draws(arrays(np.float32, 100, elements=(2.0, 3.0)), 20):
        assert ((a >= 2) & (a <= 3)).all()
    for a in _draws(arrays(BF16, (3, 4), elements=st.sampled_from([0.5, 1.5])), 20):
        assert a.dtype == BF16 and set(a.astype(np.float64).ravel()) <= {0.5, 1.5}
    with pytest.raises(ValueError, match="no NPU equivalent"):
        arrays(np.float64, 4)


def test_blocks_are_whole_alignment_units_and_fit_the_buffers() -> None:
    spec = npu.get_machine()
    for dtype, unit in (("float32", 8), ("float16", 16), ("int8", 32)):
        sizes = set(_draws(blocks(dtype), 60))
        assert all(s % unit == 0 and s & (s - 1) == 0 for s in sizes) and unit in sizes
        assert max(sizes) * np.dtype(dtype).itemsize <= spec.buffer_bytes("ub") // 8
    for bm, bn in _draws(blocks("float32", rank=2), 60):
        assert bn % 8 == 0 and bm * bn * 4 <= spec.buffer_bytes("ub") // 8


@pytest.mark.parametrize("preset, dtype", [("davinci", "float16"), ("davinci", "int8"), ("systolic128", "bfloat16")])
def test_dot_blocks_are_whole_cube_tiles_that_fit_l0(preset: str, dtype: str) -> None:
    spec = isa.MachineSpec.load(preset)
    tm, tn, tk = spec.cube_tile(isa.dtypes.from_numpy(np.dtype(dtype)).name)
    size = np.dtype(dtype).itemsize
    drawn = _draws(blocks(dtype, rank=3, dot=True, machine=spec), 60)
    for bm, bn, bk in drawn:
        assert bm % tm == 0 and bn % tn == 0 and bk % tk == 0
        assert bm * bk * size <= spec.buffer_bytes("l0a") // 2 and bk * bn * size <= spec.buffer_bytes("l0b") // 2
        assert bm * bn * 4 <= spec.buffer_bytes("l0c") // 2
    assert len(set(drawn)) > 5 and math.prod(min(drawn)) >= tm * tn * tk
    with pytest.raises(ValueError, match="rank must be 3"):
        blocks(dtype, dot=True)

"""int32 values that overflowed in the scalar unit wrap when they enter a tile, as the reference semantics
(numpy int32) wrap them: compiled and interpreted agree instead of the compiled side saturating."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import npulang as npu


@npu.jit
def scaled(o_ptr, n, m):
    offs = npu.arange(0, 64)
    npu.store(o_ptr + offs, offs + n * m)


@npu.jit
def shifted(o_ptr, n):
    npu.store(o_ptr + npu.arange(0, 64), npu.zeros((64,), npu.int32) + (n << 40))


@settings(max_examples=20, deadline=None)
@given(n=st.integers(-(2**31), 2**31 - 1), m=st.sampled_from([1, 3, 1000, 1_000_000_000, -7, 65536]))
def test_scalar_products_past_int32_wrap_both_ways(n, m):
    compiled, interpreted = np.zeros(64, np.int32), np.zeros(64, np.int32)
    scaled[(1,)](compiled, n, m)
    with np.errstate(over="ignore"):
        scaled[(1,)](interpreted, n, m, interpret=True)
    np.testing.assert_array_equal(compiled, interpreted)


def test_a_shift_past_the_width_gives_the_low_bits_both_ways():
    compiled, interpreted = np.ones(64, np.int32), np.ones(64, np.int32)
    shifted[(1,)](compiled, 5)
    shifted[(1,)](interpreted, 5, interpret=True)
    np.testing.assert_array_equal(compiled, interpreted)
    assert (compiled == 0).all()

"""Property tests of the reference interpreter (through the frontend) against numpy."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import npulang as npu
from examples import tutorials as T
from npulang.testing import arrays, assert_close, shapes
from tests.npulang import kernels as K

BF16 = np.dtype(ml_dtypes.bfloat16)
FLOATS = [np.dtype(np.float16), BF16, np.dtype(np.float32)]
SETTINGS = settings(max_examples=12)
SIZES = shapes(1, max_side=70, multiple_of=32)  # the kernels below run 32-element blocks

UNARY_REF = {
    "exp": np.exp, "exp2": np.exp2, "log": np.log, "log2": np.log2, "sqrt": np.sqrt,
    "rsqrt": lambda x: 1 / np.sqrt(x),
    "abs": np.abs, "erf": np.vectorize(math.erf), "tanh": np.tanh, "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "floor": np.floor, "ceil": np.ceil, "sin": np.sin, "cos": np.cos, "neg": np.negative,
}
POSITIVE_ONLY = {"log", "log2", "sqrt", "rsqrt"}


def _ragged(draw_n: int, block: int) -> tuple[int, ...]:
    return (npu.cdiv(draw_n, block),)


@SETTINGS
@given(op=st.sampled_from(sorted(UNARY_REF)), dtype=st.sampled_from(FLOATS), data=st.data())
def test_unary_math_matches_numpy(op: str, dtype: np.dtype, data: st.DataObject) -> None:
    x = data.draw(arrays(dtype, SIZES, elements=(0.1 if op in POSITIVE_ONLY else -4, 4)))
    n = x.size
    out = np.zeros_like(x)
    K.unary_kernel[_ragged(n, 32)](x, out, n, BLOCK=32, OP=op, interpret=True)
    assert_close(out, UNARY_REF[op](x.astype(np.float64)))  # one rounding of the exact result


def _c_div(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q = np.array([int(x / y) for x, y in zip(a.tolist(), b.tolist())], dtype=np.int64)
    return q, a - q * b


INT_OPS = ["add", "sub", "mul", "floordiv", "mod", "maximum", "minimum", "where", "and", "or", "xor"]


@SETTINGS
@given(op=st.sampled_from(INT_OPS), dtype=st.sampled_from([np.int8, np.int32]), data=st.data())
def test_integer_binary_ops_match_numpy(op: str, dtype, data: st.DataObject) -> None:
    info = np.iinfo(dtype)
    (n,) = data.draw(SIZES)
    x, y = (data.draw(arrays(dtype, n, elements=(info.min // 2, info.max // 2))) for _ in range(2))
    y[y == 0] = 3
    out = np.zeros_like(x)
    K.binary_kernel[_ragged(n, 32)](x, y, out, n, BLOCK=32, OP=op, interpret=True)
    a, b = x.astype(np.int64), y.astype(np.int64)
    q, r = _c_div(a, b)
    ref = {"add": a + b, "sub": a - b, "mul": a * b, "floordiv": q, "mod": r, "maximum": np.maximum(a, b),
           "minimum": np.minimum(a, b), "where": np.where(a < b, a, b * 2), "and": a & b, "or": a | b,
           "xor": a ^ b}[op]
    assert_close(out, ref.astype(dtype))  # exact for integers; wraps like the hardware


@SETTINGS
@given(op=st.sampled_from(["add", "sub", "mul", "div", "maximum", "minimum", "where", "mod"]),
       dtype=st.sampled_from(FLOATS), data=st.data())
def test_float_binary_ops_round_once(op: str, dtype: np.dtype, data: st.DataObject) -> None:
    x = data.draw(arrays(dtype, SIZES, elements=(-8, 8)))
    n = x.size
    y = data.draw(arrays(dtype, n, elements=(0.5, 8)))
    out = np.zeros_like(x)
    K.binary_kernel[_ragged(n, 32)](x, y, out, n, BLOCK=32, OP=op, interpret=True)
    a, b = x.astype(np.float64), y.astype(np.float64)
    ref = {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b, "maximum": np.maximum(a, b),
           "minimum": np.minimum(a, b), "where": np.where(a < b, a, b * 2), "mod": np.fmod(a, b)}[op]
    # exact result rounded once to the dtype: what fp32 arithmetic then one cast gives for these ops
    np.testing.assert_array_equal(out, ref.astype(np.float32).astype(dtype))


@SETTINGS
@given(op=st.sampled_from(["sum", "max", "min", "argmax", "argmin"]), axis=st.sampled_from([0, 1]),
       dtype=st.sampled_from(FLOATS), data=st.data())
def test_reductions_match_numpy(op: str, axis: int, dtype: np.dtype, data: st.DataObject) -> None:
    x = data.draw(arrays(dtype, shapes(2, max_side=16, multiple_of=16)))
    m, n = x.shape
    out_len = n if axis == 0 else m
    out = np.zeros(out_len, np.int32 if op.startswith("arg") else dtype)
    K.reduce_rows_kernel[(1,)](x, out, m, n, n, BM=16, BN=16, OP=op, AXIS=axis, interpret=True)
    x32 = x.astype(np.float32)
    if op == "sum":
        assert_close(out, x32.astype(np.float64).sum(axis=axis), accumulation=x.shape[axis])
    else:
        ref = {"max": x.max(axis=axis), "min": x.min(axis=axis), "argmax": x32.argmax(axis=axis),
               "argmin": x32.argmin(axis=axis)}[op]
        assert_close(out, ref, rtol=0, atol=0)


@SETTINGS
@given(size=shapes(1, max_side=40, multiple_of=16), stride=st.integers(1, 5), offset=st.integers(0, 10),
       dtype=st.sampled_from([np.int8, np.int32, np.float16, np.float32]))
def test_strided_masked_loads_touch_only_active_lanes(size: tuple[int], stride: int, offset: int, dtype) -> None:
    (n,) = size
    x = np.arange(offset + (n - 1) * stride + 1).astype(dtype)  # exactly as long as the last lane needs
    out = np.full(n + 5, 77, dtype=dtype)  # the lanes past n must stay untouched
    K.strided_copy_kernel[_ragged(n, 16)](x, out, n, stride, offset, BLOCK=16, interpret=True)
    np.testing.assert_array_equal(out[:n], x[offset::stride][:n])
    np.testing.assert_array_equal(out[n:], 77)


@SETTINGS
@given(shape=shapes(2, max_side=20, multiple_of=8), dtype=st.sampled_from([np.float16, BF16, np.int8]))
def test_transposed_tiles_with_ragged_edges(shape: tuple[int, int], dtype) -> None:
    m, n = shape
    x = (np.arange(m * n).reshape(m, n) % 100).astype(dtype)
    out = np.zeros((n, m), dtype)
    K.transpose_kernel[(npu.cdiv(m, 8), npu.cdiv(n, 8))](x, out, m, n, BM=8, BN=8, interpret=True)
    np.testing.assert_array_equal(out, x.T)


@settings(max_examples=10)
@given(shape=shapes(3, max_side=40, multiple_of=16), dtype=st.sampled_from([np.float16, BF16, np.int8]),
       transpose_b=st.booleans(), data=st.data())
def test_matmul_on_ragged_shapes(shape: tuple[int, int, int], dtype, transpose_b: bool, data: st.DataObject) -> None:
    m, n, k = shape
    a, b = data.draw(arrays(dtype, (m, k))), data.draw(arrays(dtype, (k, n)))
    if dtype != np.int8:
        a, b = (a.astype(np.float32) * 3).astype(dtype), (b.astype(np.float32) * 3).astype(dtype)
    out_dtype = np.int32 if dtype == np.int8 else np.float32
    c, _ = T.run_matmul(a, b, out_dtype, transpose_b=transpose_b, interpret=True)
    ref = T.ref_matmul(a, b, out_dtype)
    # exact for int8 (int32 accumulation); fp32 accumulation in a different order than numpy's
    assert_close(c, ref, accumulation=k)


@pytest.mark.parametrize("src, dst, values, expected", [
    (np.float32, np.int8, [1.9, -1.9, 300.0, -300.0, np.nan], [1, -1, 127, -128, 0]),
    (np.float32, np.int32, [2.5, -2.5, 3e9], [2, -2, 2**31 - 1]),
    (np.int32, np.int8, [127, 128, -129, 255], [127, -128, 127, -1]),
    (np.float32, np.float16, [1 / 3, 70000.0], [np.float16(1 / 3), np.inf]),
    (np.int32, np.float32, [7, -2**24 - 1], [7.0, float(np.float32(-2**24 - 1))]),
])
def test_casts_truncate_saturate_and_wrap(src, dst, values, expected) -> None:
    @npu.jit
    def cast_kernel(x_ptr, out_ptr, n, BLOCK: npu.constexpr):
        offs = npu.arange(0, BLOCK)
        x = npu.load(x_ptr + offs, mask=offs < n)
        npu.store(out_ptr + offs, x.to(out_ptr.dtype.element_ty), mask=offs < n)

    x = np.array(values, dtype=src)
    out = np.zeros(len(values), dtype=dst)
    cast_kernel[(1,)](x, out, len(values), BLOCK=8, interpret=True)
    np.testing.assert_array_equal(out, np.array(expected, dtype=dst))

"""Every kernel runs compiled on the simulator and in the IR interpreter (the reference semantics).

The two must agree, so a wrong result points at the layer that broke: a frontend bug shows in both
runs against numpy (tests/npulang/test_interpreter.py), a backend or simulator bug only here. The
tutorial kernels go through `npulang.testing.check_kernel`, which also compares both with numpy.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import npulang as npu
from examples import tutorials as tut
from npulang.testing import arrays, assert_close, check_kernel, shapes
from tests.npulang import kernels as k
from tests.npulang.backend_kernels import both

SETTINGS = settings(max_examples=8)
# compiled vs interpreted: float32 work in the same order on both sides, so they agree this closely
PAIR = {"rtol": 2e-6, "atol": 1e-6}


def same(a, b):
    for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        assert_close(x, y, **({} if np.issubdtype(x.dtype, np.integer) else PAIR))


def three_ways(kernel, grid, args, reference, **meta):
    """check_kernel (default tolerances against numpy), then compiled vs interpreted as closely as `same`."""
    checked = check_kernel(kernel, grid, args, reference, **meta)
    if checked.compiled is not None:  # None: an interpreted session (--npu-interpret)
        assert checked.record.cycles > 0
        same(tuple(checked.interpreted.values()), tuple(checked.compiled.values()))
    return checked


@SETTINGS
@given(block=st.sampled_from([64, 256, 1024]), data=st.data())
def test_vector_add(block, data):
    (n,) = data.draw(shapes(1, max_side=3000, multiple_of=block))
    x, y = data.draw(arrays(np.float32, n)), data.draw(arrays(np.float32, n))
    three_ways(tut.add_kernel, (npu.cdiv(n, block),), (x, y, np.zeros_like(x), n),
               lambda x, y, out, n: x.astype(np.float64) + y, outputs="output_ptr", BLOCK_SIZE=block)


@SETTINGS
@given(shape=shapes(2, max_side=300).map(lambda s: (s[0] % 20 + 1, s[1])), programs=st.integers(1, 6), data=st.data())
def test_softmax(shape, programs, data):
    rows, cols = shape
    x = data.draw(arrays(np.float32, shape))
    three_ways(tut.softmax_kernel, (min(programs, rows),), (np.zeros_like(x), x, cols, cols, rows, cols),
               lambda out, x, *_: tut.ref_softmax(x), outputs="output_ptr",
               BLOCK_SIZE=1 << (cols - 1).bit_length(), num_stages=2)


@SETTINGS
@given(shape=shapes(2, max_side=200, multiple_of=64).map(lambda s: (s[0] % 6 + 1, s[1])),
       block=st.sampled_from([16, 64]), data=st.data())
def test_layer_norm(shape, block, data):
    rows, cols = shape
    x, w, b = data.draw(arrays(np.float32, shape)), data.draw(arrays(np.float32, cols)), \
        data.draw(arrays(np.float32, cols))
    args = (x, np.zeros_like(x), w, b, np.zeros(rows, np.float32), np.zeros(rows, np.float32), cols, cols, 1e-5)
    three_ways(tut.layer_norm_fwd_fused, (rows,), args, lambda x, y, w, b, *_: tut.ref_layer_norm(x, w, b),
               outputs=("Y", "Mean", "Rstd"), BLOCK_SIZE=block)


def _matmul_args(a, b, out_dtype, transpose_b):
    (M, K), N = a.shape, b.shape[1]
    b_arg, sbk, sbn = (np.ascontiguousarray(b.T), 1, K) if transpose_b else (b, N, 1)
    return (a, b_arg, np.zeros((M, N), out_dtype), M, N, K, K, 1, sbk, sbn, N, 1)


@SETTINGS
@given(shape=shapes(3, max_side=70, multiple_of=32), dtype=st.sampled_from([np.float16, np.int8]),
       transpose_b=st.booleans(), data=st.data())
def test_tutorial_matmul(shape, dtype, transpose_b, data):
    m, n, kk = shape
    a, b = data.draw(arrays(dtype, (m, kk))), data.draw(arrays(dtype, (kk, n)))
    out = np.int32 if dtype == np.int8 else np.float32
    three_ways(tut.matmul_kernel, (npu.cdiv(m, 32) * npu.cdiv(n, 32),), _matmul_args(a, b, out, transpose_b),
               lambda *_: tut.ref_matmul(a, b, out), outputs="c_ptr", accumulation=kk, BLOCK_SIZE_M=32,
               BLOCK_SIZE_N=32, BLOCK_SIZE_K=32, GROUP_SIZE_M=2, ACTIVATION="",
               ACC_DTYPE=npu.int32 if dtype == np.int8 else npu.float32)


@SETTINGS
@given(shape=shapes(3, max_side=70, multiple_of=32), data=st.data())
def test_descriptor_matmul(shape, data):
    m, n, kk = shape
    a, b = data.draw(arrays(np.float16, (m, kk))), data.draw(arrays(np.float16, (kk, n)))
    three_ways(tut.matmul_desc_kernel, (npu.cdiv(m, 32), npu.cdiv(n, 32)),
               (a, b, np.zeros((m, n), np.float16), m, n, kk), lambda *_: a.astype(np.float64) @ b,
               outputs="c_ptr", accumulation=kk, BM=32, BN=32, BK=32)


def _launch(kernel, grid, *args, **meta):
    def run(*, interpret=False):
        arrays = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        rec = kernel[grid](*arrays, interpret=interpret, **meta)
        return arrays[1] if len(arrays) < 3 or not isinstance(arrays[2], np.ndarray) else arrays[2], rec
    return run


@pytest.mark.parametrize("op", ["exp", "exp2", "log", "log2", "sqrt", "rsqrt", "abs", "erf", "tanh",
                                "sigmoid", "floor", "ceil", "sin", "cos", "neg"])
def test_unary(op):
    x = np.random.default_rng(1).uniform(0.1, 4, 700).astype(np.float32)
    out = np.zeros_like(x)
    run = _launch(k.unary_kernel, (3,), x, out, x.size, BLOCK=256, OP=op)
    same(*both(run))


_ARITH = ["add", "sub", "mul", "div", "floordiv", "mod", "maximum", "minimum", "where"]
_BINARY = [(op, np.float32) for op in _ARITH] + [(op, np.int32) for op in _ARITH + ["and", "or", "xor", "shl", "shr"]]


@pytest.mark.parametrize("op,dtype", _BINARY, ids=lambda v: getattr(v, "__name__", v))
def test_binary(op, dtype):
    rng = np.random.default_rng(2)
    x = rng.integers(-50, 50, 600).astype(dtype)
    y = rng.integers(1, 9, 600).astype(dtype) * rng.choice([-1, 1], 600).astype(dtype)
    out = np.zeros(600, np.float32 if op == "div" else dtype)
    run = _launch(k.binary_kernel, (3,), x, y, out, 600, BLOCK=256, OP=op)
    same(*both(run))


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("op", ["sum", "max", "min", "argmax", "argmin"])
def test_reductions(op, axis):
    x = np.random.default_rng(3).standard_normal((13, 27)).astype(np.float32)
    out = np.zeros(27 if axis == 0 else 13, np.int32 if op.startswith("arg") else np.float32)
    run = _launch(k.reduce_rows_kernel, (1,), x, out, 13, 27, 27, BM=16, BN=32, OP=op, AXIS=axis)
    same(*both(run))


def test_transpose_and_strided_copy():
    x = np.random.default_rng(4).standard_normal((37, 45)).astype(np.float32)
    out = np.zeros((45, 37), np.float32)
    same(*both(_launch(k.transpose_kernel, (3, 3), x, out, 37, 45, BM=16, BN=16)))
    src = np.arange(1000, dtype=np.float32)
    dst = np.zeros(100, np.float32)
    same(*both(_launch(k.strided_copy_kernel, (2,), src, dst, 100, 7, 5, BLOCK=64)))


def test_the_benchmarked_configs_are_correct():
    """benchmarks/kernel_perf.py measures these configs timing-only; here they run functionally, smaller."""
    rng = np.random.default_rng(5)
    a = rng.standard_normal((256, 200)).astype(np.float16)
    b = rng.standard_normal((200, 300)).astype(np.float16)
    c, _ = tut.run_matmul_desc(a, b, block=(128, 128, 32), num_stages=3)
    np.testing.assert_allclose(c, tut.ref_matmul(a, b, np.float16), rtol=2e-2, atol=0.1)
    c, _ = tut.run_matmul(a, b, np.float16, block=(128, 128, 32), group=16, num_stages=3)
    np.testing.assert_allclose(c, tut.ref_matmul(a, b, np.float16), rtol=2e-2, atol=0.1)
    x = rng.standard_normal((30, 4096)).astype(np.float32)
    out, _ = tut.run_softmax(x, programs=24)
    np.testing.assert_allclose(out, tut.ref_softmax(x), rtol=1e-5, atol=1e-8)
    w, bias = rng.standard_normal(4096).astype(np.float32), rng.standard_normal(4096).astype(np.float32)
    (y, mean, rstd), _ = tut.run_layer_norm(x[:6], w, bias, block=2048, num_stages=2)
    ry, rm, rr = tut.ref_layer_norm(x[:6], w, bias)
    np.testing.assert_allclose(y, ry, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(mean, rm, rtol=1e-5, atol=1e-6)

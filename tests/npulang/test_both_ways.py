"""Every kernel runs twice: in the IR interpreter (the reference semantics) and compiled on the simulator.

The two must agree, so a wrong result points at the layer that broke: a frontend bug shows in both
runs against numpy (tests/npulang/test_interpreter.py), a backend or simulator bug only here.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from examples import tutorials as tut
from tests.npulang import kernels as k
from tests.npulang.backend_kernels import both

SETTINGS = settings(max_examples=8, deadline=None, derandomize=True)


def same(a, b):
    for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
        if np.issubdtype(x.dtype, np.integer):
            np.testing.assert_array_equal(x, y)
        else:
            np.testing.assert_allclose(x.astype(np.float32), y.astype(np.float32), rtol=2e-6, atol=1e-6)


@SETTINGS
@given(n=st.integers(1, 3000), block=st.sampled_from([64, 256, 1024]))
def test_vector_add(n, block):
    rng = np.random.default_rng(n)
    x, y = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    same(*both(tut.run_add, x, y, block=block))


@SETTINGS
@given(rows=st.integers(1, 20), cols=st.integers(1, 300), programs=st.integers(1, 6))
def test_softmax(rows, cols, programs):
    x = np.random.default_rng(rows * cols).standard_normal((rows, cols)).astype(np.float32)
    same(*both(tut.run_softmax, x, programs=programs))


@SETTINGS
@given(rows=st.integers(1, 6), cols=st.integers(1, 200), block=st.sampled_from([16, 64]))
def test_layer_norm(rows, cols, block):
    rng = np.random.default_rng(rows + cols)
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    w, b = rng.standard_normal(cols).astype(np.float32), rng.standard_normal(cols).astype(np.float32)
    same(*both(tut.run_layer_norm, x, w, b, block=block))


@SETTINGS
@given(m=st.integers(1, 70), n=st.integers(1, 70), kk=st.integers(1, 70),
       dtype=st.sampled_from(["float16", "int8"]), transpose_b=st.booleans())
def test_tutorial_matmul(m, n, kk, dtype, transpose_b):
    rng = np.random.default_rng(m * n * kk)
    if dtype == "int8":
        a, b, out = (rng.integers(-128, 128, (m, kk)).astype(np.int8),
                     rng.integers(-128, 128, (kk, n)).astype(np.int8), np.int32)
    else:
        a, b, out = (rng.standard_normal((m, kk)).astype(np.float16),
                     rng.standard_normal((kk, n)).astype(np.float16), np.float32)
    same(*both(tut.run_matmul, a, b, out, transpose_b=transpose_b, block=(32, 32, 32)))


@SETTINGS
@given(m=st.integers(1, 70), n=st.integers(1, 70), kk=st.integers(1, 70))
def test_descriptor_matmul(m, n, kk):
    rng = np.random.default_rng(m + n + kk)
    a, b = rng.standard_normal((m, kk)).astype(np.float16), rng.standard_normal((kk, n)).astype(np.float16)
    same(*both(tut.run_matmul_desc, a, b, block=(32, 32, 32)))


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

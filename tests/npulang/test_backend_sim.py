"""Backend end to end: compile hand-built IR kernels, run them on the simulator (functional, race
detection on) and compare with numpy."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isa import MachineSpec
from npulang.compiler import compile_ir
from simulator import Device, SimOptions
from examples import tutorials
from npulang.testing import arrays, assert_close, shapes
from tests.npulang.backend_kernels import matmul, vadd

SPEC = MachineSpec.load()
DEVICE = Device(SPEC)
OPTIONS = SimOptions(functional=True, detect_races=True)
VADD = compile_ir(vadd(128), SPEC).program


@settings(max_examples=8)
@given(x=arrays(np.float32, shapes(1, max_side=700, multiple_of=128), elements=(0, 1)), data=st.data())
def test_vector_add_ragged(x: np.ndarray, data: st.DataObject) -> None:
    n = x.size
    y = data.draw(arrays(np.float32, n, elements=(0, 1)))
    out = np.zeros(n, np.float32)
    DEVICE.run(VADD, grid=(-(-n // 128),), args=[x, y, out, n], options=OPTIONS)
    assert_close(out, x + y, rtol=0, atol=0)  # exactly float32 addition


@pytest.mark.parametrize("num_stages", [1, 2])
@pytest.mark.parametrize("dt", ["f16", "bf16", "i8"])
def test_matmul_ragged(dt: str, num_stages: int) -> None:
    M, N, K = 40, 50, 70  # none a multiple of the 32x32x32 block
    rng = np.random.default_rng(0)
    np_dt = {"f16": np.float16, "bf16": ml_dtypes.bfloat16, "i8": np.int8}[dt]
    if dt == "i8":
        a = rng.integers(-8, 8, (M, K)).astype(np.int8)
        b = rng.integers(-8, 8, (K, N)).astype(np.int8)
        out_dt, c = "i32", np.zeros((M, N), np.int32)
    else:
        a, b = rng.random((M, K)).astype(np_dt), rng.random((K, N)).astype(np_dt)
        out_dt, c = "f32", np.zeros((M, N), np.float32)
    ck = compile_ir(matmul(32, 32, 32, dt=dt, out=out_dt), SPEC, num_stages=num_stages)
    DEVICE.run(ck.program, grid=(2, 2), args=[a, b, c, M, N, K, K, 1, N, 1, N, 1], options=OPTIONS)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(c, ref, rtol=1e-5, atol=1e-3)


def test_matmul_transposed_b_via_strides() -> None:
    M, N, K = 32, 48, 64
    rng = np.random.default_rng(1)
    a = rng.random((M, K)).astype(np.float16)
    bt = rng.random((N, K)).astype(np.float16)  # b = bt.T, read through strides (sbk=1, sbn=K)
    c = np.zeros((M, N), np.float16)
    ck = compile_ir(matmul(32, 32, 32), SPEC, num_stages=2)
    DEVICE.run(ck.program, grid=(1, 2), args=[a, bt, c, M, N, K, K, 1, 1, K, N, 1], options=OPTIONS)
    np.testing.assert_allclose(c, a.astype(np.float32) @ bt.T.astype(np.float32), rtol=2e-3, atol=2e-2)


# -- the Triton tutorial kernels, through the frontend ------------------------------------------------
def _run(jf, grid, args, **meta):
    fn, _ = jf.specialize(*args, **meta)
    ck = compile_ir(fn, SPEC, num_stages=2)
    call = jf.bind(tuple(args), meta)
    DEVICE.run(ck.program, grid=grid, args=[call.runtime[n] for n in fn.arg_names], options=OPTIONS)
    return ck


def test_tutorial_softmax_pipelined_over_rows() -> None:
    x = np.random.default_rng(2).random((13, 100)).astype(np.float32)
    out = np.zeros_like(x)
    _run(tutorials.softmax_kernel, (4,), [out, x, 100, 100, 13, 100], BLOCK_SIZE=128, num_stages=2)
    np.testing.assert_allclose(out, tutorials.ref_softmax(x), rtol=1e-5, atol=1e-7)


def test_tutorial_layer_norm() -> None:
    rng = np.random.default_rng(3)
    x, w, b = rng.random((5, 100), np.float32), rng.random(100, np.float32), rng.random(100, np.float32)
    y, mean, rstd = np.zeros_like(x), np.zeros(5, np.float32), np.zeros(5, np.float32)
    _run(tutorials.layer_norm_fwd_fused, (5,), [x, y, w, b, mean, rstd, 100, 100, 1e-5], BLOCK_SIZE=32)
    ry, rm, rr = tutorials.ref_layer_norm(x, w, b)
    np.testing.assert_allclose(y, ry, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(mean, rm, rtol=1e-5)
    np.testing.assert_allclose(rstd, rr, rtol=1e-4)


def test_tutorial_descriptor_matmul() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.random((40, 70)).astype(np.float16), rng.random((70, 50)).astype(np.float16)
    c = np.zeros((40, 50), np.float16)
    _run(tutorials.matmul_desc_kernel, (3, 2), [a, b, c, 40, 50, 70], BM=16, BN=32, BK=32)
    np.testing.assert_allclose(c, a.astype(np.float32) @ b.astype(np.float32), rtol=2e-3, atol=2e-2)

"""Backend end to end: compile hand-built IR kernels, run them on the simulator (functional, race
detection on) and compare with numpy."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isa import MachineSpec
from npulang.backend import compile_function
from simulator import Device, SimOptions
from tests.npulang.backend_kernels import matmul, vadd

SPEC = MachineSpec.load()
DEVICE = Device(SPEC)
OPTIONS = SimOptions(functional=True, detect_races=True)
VADD = compile_function(vadd(128), SPEC).program


@settings(max_examples=8, deadline=None)
@given(n=st.integers(1, 700))
def test_vector_add_ragged(n: int) -> None:
    rng = np.random.default_rng(n)
    x, y = rng.random(n, dtype=np.float32), rng.random(n, dtype=np.float32)
    out = np.zeros(n, np.float32)
    DEVICE.run(VADD, grid=(-(-n // 128),), args=[x, y, out, n], options=OPTIONS)
    np.testing.assert_array_equal(out, x + y)


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
    ck = compile_function(matmul(32, 32, 32, dt=dt, out=out_dt), SPEC, num_stages=num_stages)
    DEVICE.run(ck.program, grid=(2, 2), args=[a, b, c, M, N, K, K, 1, N, 1, N, 1], options=OPTIONS)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(c, ref, rtol=1e-5, atol=1e-3)


def test_matmul_transposed_b_via_strides() -> None:
    M, N, K = 32, 48, 64
    rng = np.random.default_rng(1)
    a = rng.random((M, K)).astype(np.float16)
    bt = rng.random((N, K)).astype(np.float16)  # b = bt.T, read through strides (sbk=1, sbn=K)
    c = np.zeros((M, N), np.float16)
    ck = compile_function(matmul(32, 32, 32), SPEC, num_stages=2)
    DEVICE.run(ck.program, grid=(1, 2), args=[a, bt, c, M, N, K, K, 1, 1, K, N, 1], options=OPTIONS)
    np.testing.assert_allclose(c, a.astype(np.float32) @ bt.T.astype(np.float32), rtol=2e-3, atol=2e-2)

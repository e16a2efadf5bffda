"""The frontend end to end in interpret mode: Triton's tutorials, then each language feature."""

from __future__ import annotations

import numpy as np
import pytest

import npulang as npu
from npulang import ir
from npulang.ir.verifier import verify
from examples import tutorials as T

RNG = np.random.default_rng(1234)


def _ops(fn: ir.Function) -> list[str]:
    return [op.kind.value for op in ir.walk(fn.body)]


# -- the tutorials -------------------------------------------------------------------------------


@pytest.mark.parametrize("n, block", [(1, 16), (100, 32), (256, 64), (1000, 128)])
def test_vector_add(n: int, block: int) -> None:
    x = RNG.standard_normal(n).astype(np.float32)
    y = RNG.standard_normal(n).astype(np.float32)
    out, result = T.run_add(x, y, block, interpret=True)
    np.testing.assert_array_equal(out, x + y)
    assert result.cycles is None and result.grid == (-(-n // block), 1, 1)


@pytest.mark.parametrize("shape, dtype", [((5, 37), np.float32), ((9, 64), np.float16), ((3, 100),
                                                                                         np.float32)])
def test_fused_softmax(shape, dtype) -> None:
    x = RNG.standard_normal(shape).astype(dtype)
    out, _ = T.run_softmax(x, interpret=True)
    np.testing.assert_allclose(out.astype(np.float32), T.ref_softmax(x),
                               rtol=2e-3 if dtype == np.float16 else 1e-6,
                               atol=1e-3 if dtype == np.float16 else 1e-7)


def test_layer_norm_forward() -> None:
    x = RNG.standard_normal((6, 77)).astype(np.float32)
    w = RNG.standard_normal(77).astype(np.float32)
    b = RNG.standard_normal(77).astype(np.float32)
    (y, mean, rstd), _ = T.run_layer_norm(x, w, b, interpret=True)
    ry, rmean, rrstd = T.ref_layer_norm(x, w, b)
    np.testing.assert_allclose(mean, rmean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rstd, rrstd, rtol=1e-5)
    np.testing.assert_allclose(y, ry, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype, activation", [(np.float16, "leaky_relu"), (np.float32, ""), (np.int8, "")])
def test_grouped_matmul(dtype, activation) -> None:
    a = (RNG.standard_normal((50, 40)) * 4).astype(dtype)
    b = (RNG.standard_normal((40, 70)) * 4).astype(dtype)
    out_dtype = np.int32 if dtype == np.int8 else np.float16
    c, _ = T.run_matmul(a, b, out_dtype, activation=activation, group=3, interpret=True)
    ref = T.ref_matmul(a, b, out_dtype, activation)
    if dtype == np.int8:
        np.testing.assert_array_equal(c, ref)
    else:
        np.testing.assert_allclose(c.astype(np.float32), ref.astype(np.float32), rtol=1e-3, atol=1e-2)


def test_matmul_with_tensor_descriptors() -> None:
    a = RNG.standard_normal((33, 20)).astype(np.float16)
    b = RNG.standard_normal((20, 18)).astype(np.float16)
    c, _ = T.run_matmul_desc(a, b, interpret=True)
    np.testing.assert_array_equal(c, T.ref_matmul(a, b, np.float16))


# -- specialisation and launching ------------------------------------------------------------------


def test_specialize_is_memoised_by_types_and_constexprs() -> None:
    x = np.zeros(8, np.float32)
    fn1, key1 = T.add_kernel.specialize(x, x, x, 8, BLOCK_SIZE=8)
    fn2, key2 = T.add_kernel.specialize(x, x, x, 9, BLOCK_SIZE=8)
    assert fn1 is fn2 and key1 == key2
    _, key3 = T.add_kernel.specialize(x, x, x, 8, BLOCK_SIZE=16)
    _, key4 = T.add_kernel.specialize(x.astype(np.float16), x, x, 8, BLOCK_SIZE=8)
    assert len({key1, key3, key4}) == 3
    assert [str(t) for t in fn1.arg_types] == ["ptr<f32>", "ptr<f32>", "ptr<f32>", "i32"]
    assert fn1.constexprs == {"BLOCK_SIZE": 8}


def test_the_key_covers_callees_and_global_constants(monkeypatch) -> None:
    before = T.matmul_kernel.source_hash()
    assert before == T.matmul_kernel.source_hash()
    monkeypatch.setattr(T, "leaky_relu", T.add_kernel)  # a different callee behind the same name
    assert T.matmul_kernel.source_hash() != before
    monkeypatch.undo()
    assert T.matmul_kernel.source_hash() == before
    x = np.zeros(8, np.int32)
    _, key = features_kernel.specialize(x, x, 8, BLOCK=8, MODE="tuple")
    monkeypatch.setitem(globals(), "SCALE", npu.constexpr(4))
    _, key2 = features_kernel.specialize(x, x, 8, BLOCK=8, MODE="tuple")
    assert key2 != key


def test_jit_with_options_interprets_by_default() -> None:
    @npu.jit(interpret=True)
    def double(x_ptr, BLOCK: npu.constexpr):
        offs = npu.arange(0, BLOCK)
        npu.store(x_ptr + offs, npu.load(x_ptr + offs) * 2)

    x = np.arange(4, dtype=np.float32)
    run = double[(1,)](x, BLOCK=4)
    assert isinstance(run, npu.RunRecord) and run.cycles is None
    np.testing.assert_array_equal(x, [0, 2, 4, 6])


def test_num_stages_and_num_warps_are_launch_options_not_constexprs() -> None:
    x = np.arange(10, dtype=np.float32)
    out = np.zeros_like(x)
    fn, _ = T.add_kernel.specialize(x, x, out, 10, BLOCK_SIZE=16, num_stages=3, num_warps=4)
    assert fn.constexprs == {"BLOCK_SIZE": 16}
    T.add_kernel[(1,)](x, x, out, 10, BLOCK_SIZE=16, num_stages=3, num_warps=4, interpret=True)
    np.testing.assert_array_equal(out, 2 * x)


def test_interpret_from_environment(monkeypatch) -> None:
    monkeypatch.setenv("NPU_INTERPRET", "1")
    x = np.arange(5, dtype=np.int32)
    out, result = T.run_add(x, x, 8)
    np.testing.assert_array_equal(out, 2 * x)
    assert isinstance(result, npu.RunRecord) and result.cycles is None


def test_builtins_outside_kernels_fail_clearly_but_cdiv_works_on_host() -> None:
    assert npu.cdiv(10, 4) == 3 and npu.cdiv(8, 4) == 2
    with pytest.raises(npu.NpuError, match=r"npu.load\(\) can only be called inside an @npu.jit kernel"):
        npu.load(None)
    with pytest.raises(npu.NpuError, match="cannot be called directly"):
        T.add_kernel(1, 2, 3, 4, 5)
    with pytest.raises(npu.NpuError, match="static_range can only be used"):
        npu.static_range(4)


def test_bad_launch_arguments() -> None:
    x = np.zeros(4, np.float64)
    with pytest.raises(npu.NpuError, match="float64 has no NPU equivalent"):
        T.run_add(x, x, interpret=True)
    y = np.zeros((4, 4), np.float32).T
    with pytest.raises(npu.NpuError, match="not a contiguous array"):
        T.add_kernel[(1,)](y, y, y, 4, BLOCK_SIZE=4, interpret=True)
    z = np.zeros(4, np.float32)
    with pytest.raises(npu.NpuError, match="grid must be 1 to 3 non-negative ints"):
        T.add_kernel[(1, 2, 3, 4)](z, z, z, 4, BLOCK_SIZE=4, interpret=True)
    with pytest.raises(npu.NpuError, match="missing a required argument"):
        T.add_kernel[(1,)](z, z, z, BLOCK_SIZE=4, interpret=True)


# -- language features -------------------------------------------------------------------------------

SCALE = npu.constexpr(3)
PLAIN_GLOBAL = 2


@npu.jit
def _helper_pair(x, k: npu.constexpr):
    return x * k, x + k


@npu.jit
def features_kernel(x_ptr, out_ptr, n, BLOCK: npu.constexpr, MODE: npu.constexpr):
    pid = npu.program_id(0)
    offs = pid * BLOCK + npu.arange(0, BLOCK)
    mask = offs < n
    x = npu.load(x_ptr + offs, mask=mask, other=0)
    if MODE == "tuple":
        a, b = _helper_pair(x, SCALE)
        y = a + b
    elif MODE == "static_range":
        y = x
        for i in npu.static_range(1, 4):
            y = y + i * PLAIN_GLOBAL
    elif MODE == "runtime_if":
        if n > 8:
            y = x * 2
        else:
            y = x - 1
    elif MODE == "runtime_loop":
        y = npu.zeros([BLOCK], dtype=npu.int32)
        s = 0
        for i in range(0, n, 3):
            y += x
            s += i
        y = y + s
    elif MODE == "scalars":
        m = max(pid, 1)
        y = x + min(n, 100) * m + abs(-n) // 3 - n % 4
    elif MODE == "ternary":
        y = x if BLOCK > 4 else -x
    else:
        y = npu.where(mask & ~(offs == 2) | (offs == 0), x, -x)
    out = out_ptr
    out += offs
    npu.store(out, y, mask=mask)


def _run_features(mode: str, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    x = np.arange(n, dtype=np.int32) - 3
    out = np.zeros_like(x)
    features_kernel[(npu.cdiv(n, 8),)](x, out, n, BLOCK=8, MODE=mode, interpret=True)
    return x, out


def test_inlined_jit_functions_returning_tuples_and_global_constexprs() -> None:
    x, out = _run_features("tuple")
    np.testing.assert_array_equal(out, x * 3 + x + 3)


def test_static_range_unrolls_at_compile_time() -> None:
    x, out = _run_features("static_range")
    np.testing.assert_array_equal(out, x + 2 * (1 + 2 + 3))
    fn, _ = features_kernel.specialize(x, out, 10, BLOCK=8, MODE="static_range")
    assert "for" not in _ops(fn)


@pytest.mark.parametrize("n", [5, 10])
def test_runtime_if_merges_the_branches(n: int) -> None:
    x, out = _run_features("runtime_if", n)
    np.testing.assert_array_equal(out, x * 2 if n > 8 else x - 1)
    fn, _ = features_kernel.specialize(x, out, n, BLOCK=8, MODE="runtime_if")
    verify(fn)
    assert "if" in _ops(fn)


@pytest.mark.parametrize("n", [1, 7, 10])
def test_runtime_loop_carries_tiles_and_scalars(n: int) -> None:
    x, out = _run_features("runtime_loop", n)
    trips = range(0, n, 3)
    np.testing.assert_array_equal(out, x * len(trips) + sum(trips))
    fn, _ = features_kernel.specialize(x, out, n, BLOCK=8, MODE="runtime_loop")
    (loop,) = [op for op in ir.walk(fn.body) if op.kind is ir.OpKind.FOR]
    assert [r.name for r in loop.results] == ["y", "s"]


def test_python_min_max_abs_floordiv_mod_on_runtime_scalars() -> None:
    x, out = _run_features("scalars", 10)
    pids = np.arange(10) // 8
    np.testing.assert_array_equal(out, x + 10 * np.maximum(pids, 1) + 10 // 3 - 10 % 4)


def test_constexpr_ternary_and_masks_with_bitwise_operators() -> None:
    x, out = _run_features("ternary")
    np.testing.assert_array_equal(out, x)
    x, out = _run_features("where")
    offs = np.arange(10)
    np.testing.assert_array_equal(out, np.where(((offs != 2)) | (offs == 0), x, -x))


@npu.jit
def _int_semantics(a_ptr, b_ptr, q_ptr, r_ptr, f_ptr, n, BLOCK: npu.constexpr):
    offs = npu.arange(0, BLOCK)
    m = offs < n
    a = npu.load(a_ptr + offs, mask=m, other=1)
    b = npu.load(b_ptr + offs, mask=m, other=1)
    npu.store(q_ptr + offs, a // b, mask=m)
    npu.store(r_ptr + offs, a % b, mask=m)
    npu.store(f_ptr + offs, a / b, mask=m)


def test_integer_division_truncates_like_c_and_true_division_gives_f32() -> None:
    a = np.array([7, -7, 7, -7, 0, 5], np.int32)
    b = np.array([2, 2, -2, -2, 3, 5], np.int32)
    q, r, f = np.zeros_like(a), np.zeros_like(a), np.zeros(6, np.float32)
    _int_semantics[(1,)](a, b, q, r, f, 6, BLOCK=8, interpret=True)
    np.testing.assert_array_equal(q, [3, -3, -3, 3, 0, 1])
    np.testing.assert_array_equal(r, [1, -1, 1, -1, 0, 0])
    np.testing.assert_array_equal(f, a.astype(np.float32) / b.astype(np.float32))
    fn, _ = _int_semantics.specialize(a, b, q, r, f, 6, BLOCK=8)
    assert any(op.kind is ir.OpKind.CAST and op.attrs["dtype"] == "f32" for op in ir.walk(fn.body))


@npu.jit
def _promotion(x16_ptr, i8_ptr, out_ptr):
    offs = npu.arange(0, 4)
    h = npu.load(x16_ptr + offs)
    c = npu.load(i8_ptr + offs)
    y = h * 2 + c              # f16 * literal stays f16; f16 + i8 -> f16
    z = y.to(npu.float32) + h  # f32 + f16 -> f32
    npu.store(out_ptr + offs, z + 0.5)
    npu.device_print("z=", z)


def test_promotion_rules_and_device_print(capsys) -> None:
    h = np.array([1, 2, 3, 4], np.float16)
    c = np.array([-1, 0, 1, 2], np.int8)
    out = np.zeros(4, np.float32)
    result = _promotion[(1,)](h, c, out, interpret=True)
    np.testing.assert_array_equal(out, (h * 2 + c).astype(np.float32) + h + 0.5)
    fn, _ = _promotion.specialize(h, c, out)
    types = {str(op.result.type) for op in ir.walk(fn.body) if op.kind is ir.OpKind.BINARY}
    assert types == {"tile<4xf16>", "tile<4xf32>"}
    assert result.prints == ["pid (0, 0, 0) z=[2.0, 6.0, 10.0, 14.0]"]
    assert "z=[2.0, 6.0, 10.0, 14.0]" in capsys.readouterr().out


@npu.jit
def _shapes(x_ptr, out_ptr, M: npu.constexpr, N: npu.constexpr):
    rm = npu.arange(0, M)
    rn = npu.arange(0, N)
    x = npu.load(x_ptr + rm[:, None] * N + rn[None, :])
    npu.static_assert(x.shape == (M, N), "shape")
    t = npu.trans(x)
    r = npu.reshape(t, (N * M,))
    e = npu.expand_dims(r, 0)
    b = npu.broadcast_to(e, (2, N * M))
    s = b.sum(axis=0) + x.T.reshape(N * M) * 0
    npu.store(out_ptr + npu.arange(0, N * M), s)


def test_shape_builtins() -> None:
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = np.zeros(6, np.float32)
    _shapes[(1,)](x, out, M=2, N=3, interpret=True)
    np.testing.assert_array_equal(out, 2 * x.T.reshape(-1))


@npu.jit
def _argmax_full(x_ptr, out_ptr, BLOCK: npu.constexpr):
    x = npu.load(x_ptr + npu.arange(0, BLOCK))
    v, i = npu.max(x, axis=0, return_indices=True)
    npu.store(out_ptr, i + npu.argmin(x, axis=0) * 100 + npu.sum(x > v - 1).to(npu.int32) * 10000)


def test_reductions_with_indices() -> None:
    x = np.array([3, 9, 1, 9, 0, 5], np.float32)
    out = np.zeros(1, np.int32)
    _argmax_full[(1,)](x, out, BLOCK=6, interpret=True)
    assert out[0] == 1 + 4 * 100 + 2 * 10000


@npu.jit
def _annotated(x_ptr, BLOCK: npu.constexpr):
    HALF: npu.constexpr = npu.constexpr(BLOCK // 2)
    offs = npu.arange(0, HALF)
    npu.store(x_ptr + offs, npu.load(x_ptr + offs + HALF))


def test_annotated_constexpr_locals() -> None:
    x = np.arange(8, dtype=np.int32)
    _annotated[(1,)](x, BLOCK=8, interpret=True)
    np.testing.assert_array_equal(x, [4, 5, 6, 7, 4, 5, 6, 7])

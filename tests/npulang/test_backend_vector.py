"""Vector-side lowering and scheduling: `where` on bounds masks, in-place loop-carried accumulation, and
flags placed so a later pass's loads start early. Simulator runs with race detection on, against numpy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import npulang as npu
from npulang.compiler import compile_ir
from simulator import Device, SimOptions
from examples import tutorials
from npulang.testing import arrays, assert_close
from tests.npulang.backend_kernels import SPEC, run_compiled


@npu.jit
def where_bounds_kernel(x_ptr, out_ptr, out2_ptr, lim_r, lim_c, R: npu.constexpr, C: npu.constexpr,
                        KEEP_A: npu.constexpr, SCALAR_A: npu.constexpr):
    """out = where((r < lim_r) & (c < lim_c), a, -3.0), with `a` dying, still live, or a scalar."""
    r = npu.arange(0, R)
    c = npu.arange(0, C)
    x = npu.load(x_ptr + r[:, None] * C + c[None, :])
    a = x * 2.0
    mask = (r[:, None] < lim_r) & (c[None, :] < lim_c)
    if SCALAR_A:
        y = npu.where(mask, 5.0, -3.0)
    else:
        y = npu.where(mask, a, -3.0)
    npu.store(out_ptr + r[:, None] * C + c[None, :], y)
    if KEEP_A:
        npu.store(out2_ptr + r[:, None] * C + c[None, :], a + 1.0)


@npu.jit
def where_1d_kernel(x_ptr, out_ptr, n, BLOCK: npu.constexpr):
    offs = npu.arange(0, BLOCK)
    x = npu.load(x_ptr + offs)
    npu.store(out_ptr + offs, npu.where(offs < n, x - 1.0, 0.0))


@npu.jit
def running_sums_kernel(x_ptr, out_ptr, out2_ptr, n, BLOCK: npu.constexpr):
    """acc accumulates in place; acc2 = acc2 * 0.5 + x is yielded from an op that does not read acc2."""
    cols = npu.arange(0, BLOCK)
    acc = npu.zeros([BLOCK], dtype=npu.float32)
    acc2 = npu.zeros([BLOCK], dtype=npu.float32)
    for off in range(0, n, BLOCK):
        x = npu.load(x_ptr + off + cols, mask=off + cols < n, other=0.0)
        acc += x
        acc2 = acc2 * 0.5 + x
    npu.store(out_ptr + cols, acc)
    npu.store(out2_ptr + cols, acc2)


def _ops(ck) -> list[str]:
    return [i.op for i in ck.program.instructions()]


@settings(max_examples=20)
@given(lim_r=st.integers(-2, 10), lim_c=st.integers(-2, 20), keep_a=st.booleans(), scalar_a=st.booleans(),
       x=arrays(np.float32, (8, 16), elements=(0, 1)))
def test_where_on_a_bounds_mask_fills_the_tails(lim_r: int, lim_c: int, keep_a: bool, scalar_a: bool,
                                                x: np.ndarray) -> None:
    R, C = x.shape
    out, out2 = np.zeros_like(x), np.zeros_like(x)
    ck, _ = run_compiled(where_bounds_kernel, (1,), [x, out, out2, lim_r, lim_c], R=R, C=C, KEEP_A=keep_a,
                         SCALAR_A=scalar_a)
    r, c = np.arange(R)[:, None], np.arange(C)[None, :]
    assert_close(out, np.where((r < lim_r) & (c < lim_c), 5.0 if scalar_a else x * 2, -3.0), rtol=0, atol=0)
    if keep_a:
        assert_close(out2, x * 2 + 1, rtol=0, atol=0)
    assert "vsel" not in _ops(ck) and "viota" not in _ops(ck)  # no mask tile is built


@pytest.mark.parametrize("n", [0, 5, 64, 99])
def test_where_on_a_1d_bounds_mask(n: int) -> None:
    x = np.arange(64, dtype=np.float32)
    out = np.full(64, 7, np.float32)
    run_compiled(where_1d_kernel, (1,), [x, out, n], BLOCK=64)
    np.testing.assert_array_equal(out, np.where(np.arange(64) < n, x - 1, 0))


@pytest.mark.parametrize("num_stages", [1, 2, 3])
def test_loop_carried_tile_accumulates_in_place(num_stages: int) -> None:
    n = 200
    x = np.random.default_rng(n).random(n).astype(np.float32)
    out, out2 = np.zeros(64, np.float32), np.zeros(64, np.float32)
    ck, _ = run_compiled(running_sums_kernel, (1,), [x, out, out2, n], num_stages=num_stages, BLOCK=64)
    blocks = np.concatenate([x, np.zeros(-n % 64, np.float32)]).reshape(-1, 64)
    ref2 = np.zeros(64, np.float32)
    for blk in blocks:
        ref2 = ref2 * np.float32(0.5) + blk
    np.testing.assert_allclose(out, blocks.sum(axis=0), rtol=1e-6)
    np.testing.assert_allclose(out2, ref2, rtol=1e-6)
    copies = [i for i in ck.program.instructions() if i.op == "vcopy"]
    assert copies == []  # both update their carried tile in place (acc2 * 0.5 overwrites acc2, which dies there)


def test_layer_norm_passes_overlap_their_loads() -> None:
    """One row: every pass's loads are issued up front, so the row costs about one load latency, the
    vector work and the store, not three load round trips."""
    n = 4096
    rng = np.random.default_rng(0)
    x, w, b = rng.random((1, n), np.float32), rng.random(n, np.float32), rng.random(n, np.float32)
    y, mean, rstd = np.zeros_like(x), np.zeros(1, np.float32), np.zeros(1, np.float32)
    args = [x, y, w, b, mean, rstd, n, n, 1e-5]
    ck, run = run_compiled(tutorials.layer_norm_fwd_fused, (1,), args, num_stages=1, BLOCK_SIZE=n)
    ry, rm, rr = tutorials.ref_layer_norm(x, w, b)
    np.testing.assert_allclose(y, ry, rtol=1e-4, atol=1e-5)
    load = SPEC.mte2.latency + n * 4 // SPEC.mte2.bytes_per_cycle
    store = SPEC.mte3.latency + n * 4 // SPEC.mte3.bytes_per_cycle
    assert run.cycles < 1.15 * (load + run.pipe_busy["v"] + store)


@npu.jit
def many_loops_kernel(x_ptr, out_ptr, n, BLOCK: npu.constexpr):
    """Nine passes over x: more loop-carried flags than event ids if every prime were hoisted."""
    cols = npu.arange(0, BLOCK)
    total = npu.zeros([BLOCK], dtype=npu.float32)
    for p in npu.static_range(9):
        acc = npu.zeros([BLOCK], dtype=npu.float32)
        for off in range(0, n, BLOCK):
            acc += npu.load(x_ptr + off + cols, mask=off + cols < n, other=0.0) * (p + 1.0)
        total += acc
    npu.store(out_ptr + cols, total)


def test_flag_placement_falls_back_when_event_ids_run_out() -> None:
    n = 100
    x = np.random.default_rng(1).random(n).astype(np.float32)
    out = np.zeros(32, np.float32)
    ck, _ = run_compiled(many_loops_kernel, (1,), [x, out, n], num_stages=2, BLOCK=32)
    blocks = np.concatenate([x, np.zeros(-n % 32, np.float32)]).reshape(-1, 32)
    np.testing.assert_allclose(out, blocks.sum(axis=0) * 45, rtol=1e-5)
    events = {i.args[2] for i in ck.program.instructions() if i.op == "set_flag"}
    assert max(events) < SPEC.sync.event_ids


def test_kernel_without_loops_is_unchanged_by_flag_placement() -> None:
    fn, _ = where_1d_kernel.specialize(np.zeros(8, np.float32), np.zeros(8, np.float32), 3, BLOCK=8)
    program = compile_ir(fn, SPEC).program
    x, out = np.arange(8, dtype=np.float32), np.zeros(8, np.float32)
    Device(SPEC).run(program, (1,), [x, out, 3], SimOptions(functional=True, detect_races=True))
    np.testing.assert_array_equal(out, [-1, 0, 1, 0, 0, 0, 0, 0])


@npu.jit
def int_window_sums_kernel(x_ptr, out_ptr, n, ROWS: npu.constexpr, BLOCK: npu.constexpr):
    """out[i] = Σ_r Σ_start 3·x[r, start + i]: an int32 accumulator that starts as zeros and is updated from
    loaded int8 data in nested loops (as a depthwise convolution's taps are)."""
    offs = npu.arange(0, BLOCK)
    acc = npu.zeros((BLOCK,), dtype=npu.int32)
    for r in range(ROWS):
        for start in range(0, n, BLOCK):
            x = npu.load(x_ptr + r * n + start + offs, mask=start + offs < n, other=0)
            acc = acc + x.to(npu.int32) * 3
    npu.store(out_ptr + offs, acc)


def test_an_int_accumulator_from_zeros_is_data_not_an_index_tile() -> None:
    """A carried int32 tile that starts as zeros (which lowers as an affine index tile) but is updated from
    loads lives in a buffer; it was rejected as an index tile that 'must advance by the same amount'."""
    x = np.random.default_rng(3).integers(-128, 128, (3, 100)).astype(np.int8)
    out = np.zeros(32, np.int32)
    run_compiled(int_window_sums_kernel, (1,), [x, out, 100], ROWS=3, BLOCK=32)
    padded = np.concatenate([x.astype(np.int32), np.zeros((3, 28), np.int32)], axis=1)
    np.testing.assert_array_equal(out, 3 * padded.reshape(3, 4, 32).sum(axis=(0, 1)))


@npu.jit
def fma_kernel(x_ptr, y_ptr, row_ptr, out_ptr, s, R: npu.constexpr, C: npu.constexpr, FORM: npu.constexpr):
    """The forms flash attention uses: tile · scalar − row, tile · row + tile, and a scalar first operand."""
    r = npu.arange(0, R)
    c = npu.arange(0, C)
    x = npu.load(x_ptr + r[:, None] * C + c[None, :])
    y = npu.load(y_ptr + r[:, None] * C + c[None, :])
    row = npu.load(row_ptr + r)
    if FORM == "scale":
        out = npu.fma(x, s, -row[:, None])
    elif FORM == "rescale":
        out = npu.fma(x, row[:, None], y)
    else:
        out = npu.fma(s, x, 1.5)
    npu.store(out_ptr + r[:, None] * C + c[None, :], out)


@settings(max_examples=10, deadline=None)
@given(form=st.sampled_from(["scale", "rescale", "scalar_first"]), dtype=st.sampled_from(["float32", "float16"]),
       data=st.data())
def test_fma_is_one_vector_instruction_rounded_once(form: str, dtype: str, data: st.DataObject) -> None:
    """Compiled (one `vfma`, race detector on) and interpreted agree bit for bit, and with a * b + c in f64
    rounded once."""
    x, y = data.draw(arrays(dtype, (8, 64))), data.draw(arrays(dtype, (8, 64)))
    row = data.draw(arrays(dtype, (8,)))
    s = 0.3
    outs = []
    for interpret in (False, True):
        out = np.zeros_like(x)
        fma_kernel[(1,)](x, y, row, out, s, R=8, C=64, FORM=form, interpret=interpret)
        outs.append(out)
    np.testing.assert_array_equal(outs[0], outs[1])
    wide = [a.astype(np.float64) for a in (x, y, row)]
    s32 = np.float64(np.float32(s))  # an f32 scalar argument: with it the fma runs in f32 (Triton's promotion)
    want = {"scale": wide[0] * s32 - wide[2][:, None], "rescale": wide[0] * wide[2][:, None] + wide[1],
            "scalar_first": s32 * wide[0] + 1.5}[form]
    computed_in = dtype if form == "rescale" else "float32"
    np.testing.assert_array_equal(outs[0], want.astype(computed_in).astype(dtype))
    asm = fma_kernel.inspect(x, y, row, np.zeros_like(x), s, R=8, C=64, FORM=form).asm
    assert asm.count("vfma") >= 1 and "vbin mul" not in asm

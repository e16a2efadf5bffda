"""Grids as persistent per-core loops (npulang/backend/persistent.py): same results, Triton's ids, faster.

Most tests run on a 4-core copy of the default machine, so small grids fall below, on and above the
core count. Compiled launches run with the race detector on (functional mode).
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import npulang as npu
from isa.asm import assemble
from examples import conv2d as cv
from examples import norms
from examples import tutorials as tut
from npulang.runtime.cache import ProgramKey
from npulang.runtime.launch import RUNTIME
from npulang.testing import arrays, assert_close, shapes

SETTINGS = settings(max_examples=10)
CORES = 4
MODES = [None, True, False]  # persistent: automatic (grid > cores), always, never


@contextlib.contextmanager
def four_cores():
    """A 4-core copy of the machine (a context manager: Hypothesis runs many inputs per test call)."""
    base = RUNTIME.get_machine()
    RUNTIME.set_machine(base.replace(cores=CORES))
    try:
        yield
    finally:
        RUNTIME.set_machine(base)


@npu.jit
def program_ids(Out):
    x, y, z = npu.program_id(0), npu.program_id(1), npu.program_id(2)
    nx, ny, nz = npu.num_programs(0), npu.num_programs(1), npu.num_programs(2)
    at = Out + ((z * ny + y) * nx + x) * 6
    npu.store(at, x)
    npu.store(at + 1, y)
    npu.store(at + 2, z)
    npu.store(at + 3, nx)
    npu.store(at + 4, ny)
    npu.store(at + 5, nz)


@npu.jit
def printing(X, BLOCK: npu.constexpr):
    pid = npu.program_id(0)
    x = npu.load(X + pid * BLOCK + npu.arange(0, BLOCK))
    npu.device_print("s", npu.sum(x, axis=0))


@npu.jit
def unmasked_row_copy(X, Out, BLOCK: npu.constexpr):
    offs = npu.program_id(0) * BLOCK + npu.arange(0, BLOCK)
    npu.store(Out + offs, npu.load(X + offs))


def expected_ids(grid):
    gx, gy, gz = grid
    z, y, x = np.meshgrid(range(gz), range(gy), range(gx), indexing="ij")
    cols = [x, y, z, np.full_like(x, gx), np.full_like(x, gy), np.full_like(x, gz)]
    return np.stack([c.reshape(-1) for c in cols], axis=1).astype(np.int32)


@SETTINGS
@given(grid=st.tuples(st.integers(1, 9), st.integers(1, 3), st.integers(1, 2)), persistent=st.sampled_from(MODES))
def test_each_program_sees_its_own_ids_and_the_logical_grid(grid, persistent):
    with four_cores():
        want = expected_ids(grid)
        for interpret in (True, False):
            out = np.full((want.shape[0], 6), -1, np.int32)
            program_ids[grid](out, interpret=interpret, persistent=persistent)
            assert_close(out, want)  # exact: int32


@SETTINGS
@given(shape=shapes(2, max_side=300).map(lambda s: (s[0] % 13 + 1, s[1])),
       dtype=st.sampled_from([np.float32, np.float16]), persistent=st.sampled_from(MODES), data=st.data())
def test_rms_norm_against_numpy(shape, dtype, persistent, data):
    with four_cores():
        x, w = data.draw(arrays(dtype, shape)), data.draw(arrays(dtype, shape[1]))
        ref_y, ref_rstd = norms.ref_rms_norm(x, w)
        tol = 2e-6 if dtype == np.float32 else 2e-3
        for interpret in (True, False):
            (y, rstd), _ = norms.run_rms_norm(x, w, interpret=interpret, persistent=persistent)
            assert_close(rstd, ref_rstd, rtol=tol, atol=tol)
            assert_close(y.astype(np.float32), ref_y.astype(dtype).astype(np.float32), rtol=tol, atol=tol)


@SETTINGS
@given(shape=shapes(2, max_side=200, multiple_of=64).map(lambda s: (s[0] % 13 + 1, s[1])),
       block=st.sampled_from([16, 64]), persistent=st.sampled_from(MODES), data=st.data())
def test_layer_norm_against_numpy(shape, block, persistent, data):
    with four_cores():
        x = data.draw(arrays(np.float32, shape))
        w, b = data.draw(arrays(np.float32, shape[1])), data.draw(arrays(np.float32, shape[1]))
        want = tut.ref_layer_norm(x, w, b)
        for interpret in (True, False):
            got, _ = tut.run_layer_norm(x, w, b, block=block, interpret=interpret, persistent=persistent)
            for g, r in zip(got, want):
                assert_close(g, r, rtol=2e-5, atol=2e-5)


@SETTINGS
@given(x=arrays(np.float32, shapes(2, max_side=100).map(lambda s: (s[0] % 12 + 1, s[1]))),
       programs=st.integers(1, 9))
def test_softmax_grid_stride_loop_inside_the_persistent_loop(x, programs):
    with four_cores():
        # the tutorial's own loop steps by num_programs(0): it must see the logical count, not the cores
        e = np.exp(x - x.max(axis=1, keepdims=True))
        for interpret in (True, False):
            y, _ = tut.run_softmax(x, programs=programs, interpret=interpret, persistent=True)
            assert_close(y, e / e.sum(axis=1, keepdims=True), rtol=2e-6, atol=1e-6)


@SETTINGS
@given(mn=shapes(2, max_side=80, multiple_of=16), k=shapes(1, max_side=40, multiple_of=16),
       activation=st.sampled_from(["", "leaky_relu"]), data=st.data())
def test_matmuls_over_one_and_two_dimensional_grids(mn, k, activation, data):
    # a K loop and L0C accumulators inside the loop over programs; grids of 1 to 25 programs on 4 cores
    (m, n), (k,) = mn, k
    a, b = data.draw(arrays(np.float16, (m, k))), data.draw(arrays(np.float16, (k, n)))
    with four_cores():
        for interpret in (True, False):
            c, _ = tut.run_matmul(a, b, activation=activation, interpret=interpret, persistent=True)
            assert_close(c, tut.ref_matmul(a, b, activation=activation), rtol=1e-4, atol=1e-4)
            c, _ = tut.run_matmul_desc(a, b, interpret=interpret, persistent=True)
            assert_close(c.astype(np.float32), a.astype(np.float32) @ b.astype(np.float32), rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("rows", [3, 4, 11])
def test_results_are_identical_with_and_without_the_persistent_loop(rows):
    with four_cores():
        rng = np.random.default_rng(rows)
        x, w = rng.standard_normal((rows, 777)).astype(np.float16), rng.standard_normal(777).astype(np.float16)
        (y0, r0), _ = norms.run_rms_norm(x, w, persistent=False)
        (y1, r1), _ = norms.run_rms_norm(x, w, persistent=True)
        assert np.array_equal(y0, y1) and np.array_equal(r0, r1)


@pytest.mark.npu_compiled
def test_many_short_programs_run_faster_and_never_beat_the_roofline():
    spec = RUNTIME.get_machine()
    x = np.zeros((240, 1024), np.float32)
    w = np.zeros(1024, np.float32)
    before = norms.run_rms_norm(x, w, persistent=False, timing_only=True, l2="cold")[1]
    after = norms.run_rms_norm(x, w, timing_only=True, l2="cold")[1]
    roofline = (2 * x.nbytes + w.nbytes + 4 * x.shape[0]) / spec.hbm_bytes_per_cycle
    assert roofline < after.cycles < 0.8 * before.cycles
    assert after.persistent and "as a persistent loop per core" in after.report()
    # the generated timing-only code and the general issue loop (functional, races checked) agree
    assert norms.run_rms_norm(x, w, l2="cold")[1].cycles == after.cycles
    assert not before.persistent and "persistent" not in before.report()


def test_inspect_shows_the_loop_over_programs():
    x, w = np.zeros((64, 256), np.float32), np.zeros(256, np.float32)
    y, rstd = np.zeros_like(x), np.zeros(64, np.float32)
    ins = norms.rms_norm_fwd.inspect(x, y, w, rstd, 256, 256, 1e-6, BLOCK_SIZE=256)
    assert "for program" in ins.stage("persistent-grid")
    assert ins.program.meta["grid"] == "persistent"
    assert [a.name for a in ins.program.args[-3:]] == ["grid.x", "grid.y", "grid.z"]
    assert assemble(ins.asm) == ins.program  # the disk cache keeps assembly: the loop's marks survive it
    assert any("persistent loop per core" in n and "2 deep" in n for n in ins.notes)
    plain = norms.rms_norm_fwd.inspect(x, y, w, rstd, 256, 256, 1e-6, BLOCK_SIZE=256, persistent=False)
    assert "grid" not in plain.program.meta and "persistent-grid" not in [n for n, _ in plain.stages]


@pytest.mark.parametrize("event_ids, grid, first", [
    (2, "persistent", "programs: a persistent loop per core over the grid's programs, software-pipelined 1 deep"),
    (1, None, "programs: one per dispatch (no persistent loop fits the machine)"),
])
def test_a_loop_over_programs_that_does_not_fit_falls_back_and_says_why(event_ids, grid, first):
    # the RMS norm's copies for two programs need 3 event ids from V to MTE2, one program's 2, the plain kernel 1
    rng = np.random.default_rng(event_ids)
    x, w = rng.standard_normal((9, 256)).astype(np.float32), rng.standard_normal(256).astype(np.float32)
    y, rstd = np.zeros_like(x), np.zeros(9, np.float32)
    base = RUNTIME.get_machine()
    RUNTIME.set_machine(base.replace(cores=CORES, sync={"event_ids": event_ids}))
    try:
        ins = norms.rms_norm_fwd.inspect(x, y, w, rstd, 256, 256, 1e-6, BLOCK_SIZE=256)
        (y, rstd), _ = norms.run_rms_norm(x, w)
    finally:
        RUNTIME.set_machine(base)
    assert ins.program.meta.get("grid") == grid
    assert ins.notes[0].startswith("programs: a persistent loop pipelined 2 deep does not fit: ")
    assert ins.notes[0].endswith(f"norms.py:20:5: {event_ids + 1} flags from v to mte2 would be outstanding at once, "
                                 f"but the machine has {event_ids} event id(s) per pipe pair")
    assert ins.notes[-1].startswith(first)
    np.testing.assert_allclose(y, norms.ref_rms_norm(x, w)[0], rtol=2e-6, atol=2e-6)


def test_a_kernel_whose_loops_use_up_the_event_ids_is_told_to_lower_num_stages():
    x, w, b = np.zeros((64, 4096), np.float32), np.zeros(4096, np.float32), np.zeros(4096, np.float32)
    y, mean, rstd = np.zeros_like(x), np.zeros(64, np.float32), np.zeros(64, np.float32)
    base = RUNTIME.get_machine()
    RUNTIME.set_machine(base.replace(sync={"event_ids": 6}))
    try:
        two, one = (tut.layer_norm_fwd_fused.inspect(x, y, w, b, mean, rstd, 4096, 4096, 1e-5, BLOCK_SIZE=2048,
                                                     num_stages=stages) for stages in (2, 1))
    finally:
        RUNTIME.set_machine(base)
    assert two.notes[-1] == ("programs: one per dispatch (no persistent loop fits the machine; with a lower "
                             "num_stages for its loops one may)")
    assert "grid" not in two.program.meta and one.program.meta["grid"] == "persistent"


@pytest.mark.npu_compiled
def test_a_kernel_with_device_print_keeps_one_program_per_dispatch():
    with four_cores():
        x = np.arange(9 * 8, dtype=np.float32)
        run = printing[(9,)](x, BLOCK=8)
        got = sorted((p.split(" s ")[0], float(p.split(" s ")[1].strip("[]"))) for p in run.prints)
        assert got == [(f"pid ({p}, 0, 0)", float(x[p * 8:(p + 1) * 8].sum())) for p in range(9)]


def test_persistent_must_be_a_bool_or_none():
    with pytest.raises(npu.NpuError, match=r"^persistent must be True, False or None, got 'yes'$"):
        program_ids[(1,)](np.zeros(6, np.int32), persistent="yes")



@pytest.mark.npu_compiled
def test_an_out_of_bounds_access_says_the_program_named_is_the_cores():
    x, out = np.zeros(30 * 64 - 5, np.float32), np.zeros(30 * 64, np.float32)
    with pytest.raises(npu.OutOfBoundsError) as info:
        unmasked_row_copy[(30,)](x, out, BLOCK=64)
    assert "launch with persistent=False to see the logical program id" in str(info.value)
    with pytest.raises(npu.OutOfBoundsError) as info:
        unmasked_row_copy[(30,)](x, out, BLOCK=64, persistent=False)
    assert "program (29, 0, 0)" in str(info.value) and "persistent loop" not in str(info.value)


def test_the_persistent_program_has_its_own_cache_key():
    fingerprint = RUNTIME.get_machine().fingerprint
    assert ProgramKey("k", 2, fingerprint).digest() != ProgramKey("k", 2, fingerprint, persistent=True).digest()



@pytest.mark.parametrize("l0c_kib, apart", [(128, True), (28, False)])
def test_a_k_loop_over_programs_gets_two_l0c_accumulators_when_they_fit(l0c_kib, apart):
    # a 3x3 conv (cube-bound: the window loads are small) as 14 programs of a 112x64 tile with a 2-step K
    # loop on 4 cores, pipelined two deep across programs: each program copy has its own 28 KiB accumulator,
    # at its own bytes when L0C has room for both, so a program's first mmad need not wait for the fixpipe to
    # drain the previous program's
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 28, 28, 32)).astype(np.float16)
    w = (rng.standard_normal((64, 32, 3, 3)) / 17).astype(np.float16)
    want = cv.reference(x.transpose(0, 3, 1, 2), w, 1, 1, 1)
    conv = dict(pad=1, layout="NHWC", channel_block=16, bm=112, bn=64)
    base = RUNTIME.get_machine()
    RUNTIME.set_machine(base.replace(cores=CORES, buffers={"l0c": l0c_kib * 1024}))
    try:
        y = np.zeros((2, 28, 28, 64), np.float16)
        ins = cv.conv2d_kernel.inspect(x, cv.weight_matrix(w, 16), y, N=2, C=32, H=28, W=28, KOUT=64, R=3, S=3,
                                       STRIDE=1, PAD=1, DIL=1, LAYOUT="NHWC", CB=16, BM=112, BN=64, BK=144)
        for interpret in (True, False):
            y, _ = cv.conv2d(x, w, interpret=interpret, **conv)
            assert_close(y.astype(np.float32), want, rtol=1e-2, atol=1e-2)
        cycles = cv.conv2d(x, w, timing_only=True, l2="cold", **conv)[1].cycles
    finally:
        RUNTIME.set_machine(base)
    accs = [s for s in ins.buffers if s.space == "l0c"]
    assert [s.size for s in accs] == [112 * 64 * 4] * 2 and "2 deep" in ins.notes[-1]
    assert (accs[0].offset != accs[1].offset) is apart
    # one accumulator's bytes for both copies: the first mmad of each program waits for the fixpipe again
    assert cycles == {128: 2781, 28: 3332}[l0c_kib]

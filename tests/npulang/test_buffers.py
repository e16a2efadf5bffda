"""On-chip buffers at Triton's block sizes: liveness reuse, in-place elementwise chains, private copies only
for pipelined loads, and dots split to fit L0A/L0B/L0C.

The kernels of `examples/kernels.py` run interpreted and compiled (race detector on) against numpy, at the
block sizes Triton users pick; the allocator's decisions are pinned as exact byte counts.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import npulang as npu
from examples import kernels as kx
from isa import SourceLoc
from npulang.backend.alloc import BufferAllocation
from npulang.backend.mir import Buffer, MInstr, Region
from npulang.compiler import compile_ir
from tests.npulang.backend_kernels import SPEC, both, run_compiled

SETTINGS = settings(max_examples=6, deadline=None, derandomize=True)


def _close(out: np.ndarray, ref: np.ndarray, atol: float, rtol: float = 1e-2) -> None:
    np.testing.assert_allclose(out.astype(np.float32), ref.astype(np.float32), atol=atol, rtol=rtol)


# -- flash attention ---------------------------------------------------------------------------------
def _qkv(heads: int, n_ctx: int, d: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((1, heads, n_ctx, d)).astype(np.float16) for _ in range(3)]


@SETTINGS
@given(block=st.sampled_from([(16, 16), (32, 16), (16, 32), (32, 64)]), d=st.sampled_from([16, 32, 64]),
       heads=st.integers(1, 2), blocks=st.integers(1, 3), causal=st.booleans())
def test_flash_attention_matches_numpy(block, d, heads, blocks, causal) -> None:
    n_ctx = max(block) * blocks
    q, k, v = _qkv(heads, n_ctx, d, seed=n_ctx * d + heads)
    ref = kx.ref_attention(q, k, v, causal)
    interpreted, compiled = both(kx.run_attention, q, k, v, causal=causal, block=block)
    _close(interpreted, ref, atol=3e-3)
    _close(compiled, ref, atol=3e-3)


@pytest.mark.parametrize("block, d, causal, n_ctx", [((128, 64), 64, False, 256), ((128, 64), 64, True, 256),
                                                     ((32, 64), 128, True, 256), ((64, 256), 128, False, 768)])
def test_flash_attention_at_the_tutorial_block_sizes(block, d, causal, n_ctx) -> None:
    """The last: three iterations of a loop whose pipelined copies share L0C bytes (a flag once missed)."""
    q, k, v = _qkv(2, n_ctx, d, seed=d)
    out, record = kx.run_attention(q, k, v, causal=causal, block=block)
    _close(out, kx.ref_attention(q, k, v, causal), atol=3e-3)
    assert record.cycles > 0


# -- matmul + GELU epilogue, online softmax ---------------------------------------------------------
@SETTINGS
@given(m=st.integers(1, 200), n=st.integers(1, 200), k=st.integers(1, 100))
def test_matmul_gelu_at_128x128_matches_numpy(m, n, k) -> None:
    rng = np.random.default_rng(m * n + k)
    a, b = rng.standard_normal((m, k)).astype(np.float16), rng.standard_normal((k, n)).astype(np.float16)
    bias = rng.standard_normal(n).astype(np.float32)
    ref = kx.ref_matmul_gelu(a, b, bias)
    for out in both(kx.run_matmul_gelu, a, b, bias, block=(128, 128, 32)):
        _close(out, ref, atol=2e-2)


@SETTINGS
@given(rows=st.integers(1, 3), cols=st.integers(1, 20000))
def test_online_softmax_with_8192_lanes_matches_numpy(rows, cols) -> None:
    x = (np.random.default_rng(cols).standard_normal((rows, cols)) * 4).astype(np.float32)
    for out in both(kx.run_online_softmax, x, block=8192):
        np.testing.assert_allclose(out, kx.ref_softmax(x), rtol=1e-5, atol=1e-9)


# -- dots larger than L0A/L0B/L0C ---------------------------------------------------------------------
@npu.jit
def one_dot(a_ptr, b_ptr, c_ptr, M: npu.constexpr, N: npu.constexpr, K: npu.constexpr, OUT16: npu.constexpr):
    rm, rn, rk = npu.arange(0, M), npu.arange(0, N), npu.arange(0, K)
    a = npu.load(a_ptr + rm[:, None] * K + rk[None, :])
    b = npu.load(b_ptr + rk[:, None] * N + rn[None, :])
    c = npu.dot(a, b)
    if OUT16:
        npu.store(c_ptr + rm[:, None] * N + rn[None, :], c.to(npu.float16))
    else:
        npu.store(c_ptr + rm[:, None] * N + rn[None, :], c)


@pytest.mark.parametrize("m, n, k, out16, mmads", [
    (256, 256, 256, True, 16),  # see the next test
    (128, 128, 512, False, 4),  # A is 128 KiB > L0A: K pieces of 128 (32 KiB, half of L0A)
    (64, 64, 1024, False, 4),  # K pieces of 256
    (64, 64, 256, False, 1),  # fits: one mmad, as before
])
def test_a_dot_too_big_for_l0_is_split(m, n, k, out16, mmads) -> None:
    rng = np.random.default_rng(m + n + k)
    a, b = rng.standard_normal((m, k)).astype(np.float16), rng.standard_normal((k, n)).astype(np.float16)
    c = np.zeros((m, n), np.float16 if out16 else np.float32)
    ck, _ = run_compiled(one_dot, (1,), [a, b, c], M=m, N=n, K=k, OUT16=out16)
    _close(c, (a.astype(np.float32) @ b.astype(np.float32)).astype(c.dtype), atol=3e-2 if out16 else 1e-3,
           rtol=1e-3)
    assert sum(i.op == "mmad" for i in ck.program.instructions()) == mmads


def test_256_cubed_splits_into_l0c_pieces_of_half_its_size() -> None:
    """256x256 f32 is 256 KiB, L0C 128 KiB: N pieces of 64 columns (64 KiB); each piece's A (256 x K) and
    B (K x 64) take at most half of L0A/L0B, so K goes in 64-deep pieces: 4 N pieces x 4 K pieces."""
    a = np.zeros((256, 256), np.float16)
    fn, _ = one_dot.specialize(a, a, a, M=256, N=256, K=256, OUT16=True)
    mmads = [i for i in compile_ir(fn, SPEC).program.instructions() if i.op == "mmad"]
    assert [(i.get("m"), i.get("n"), i.get("k")) for i in mmads] == [(256, 64, 64)] * 16


def test_a_dot_result_too_big_for_l0c_and_ub_is_a_buffer_overflow_at_the_dot() -> None:
    a = np.zeros((256, 256), np.float16)
    fn, _ = one_dot.specialize(a, a, np.zeros((256, 256), np.float32), M=256, N=256, K=256, OUT16=False)
    with pytest.raises(npu.BufferOverflowError) as err:
        compile_ir(fn, SPEC)
    assert err.value.message == ("tile 'dot3' needs 262144 bytes of UB but only 196608 of its 196608 bytes are "
                                 "available (0 bytes are taken by other live tiles)")
    assert "c = npu.dot(a, b)" in str(err.value)


# -- the allocator's decisions ------------------------------------------------------------------------
def _compiled_attention(bm: int, bn: int, d: int, stage: int):
    x = np.zeros((256, d), np.float16)
    fn, _ = kx.attn_fwd.specialize(x, x, x, x, 0.1, 1, 1, 256, HEAD_DIM=d, BLOCK_M=bm, BLOCK_N=bn, STAGE=stage)
    return compile_ir(fn, SPEC, num_stages=2)


def test_flash_attention_buffer_usage() -> None:
    """BM=128, BN=64, D=64: the 128x64 f32 scores and accumulator (32 KiB each) in UB with the softmax
    chain run in place; the next iteration's scores (Q Kᵀ and softmax, run ahead) in tiles of their own."""
    ck = _compiled_attention(128, 64, 64, 1)
    assert ck.usage == {"l1": 90112, "ub": 185344, "l0a": 65536, "l0b": 40960, "l0c": 131072}
    assert ck.notes == []


def test_online_softmax_at_8192_keeps_private_load_copies() -> None:
    """Four 32 KiB tiles live per iteration, two carried: the temporaries share bytes by liveness and the
    two pipelined copies of x keep their own, so there is no note about loads sharing bytes."""
    x = np.zeros((2, 20000), np.float32)
    fn, _ = kx.online_softmax_kernel.specialize(x, x, 2, 20000, BLOCK=8192)
    ck = compile_ir(fn, SPEC, num_stages=2)
    assert ck.usage == {"ub": 196608}
    assert ck.notes == []


def _stage(ck, name: str) -> str:
    return dict(ck.stages)[name]


def test_attention_runs_the_next_scores_ahead_and_a_matmul_loop_does_not() -> None:
    """The pipelining puts iteration i+1's Q Kᵀ mmad and its softmax before iteration i's P V mmad: the first
    Q Kᵀ (n=BN=64) is issued before the loop, and inside it a Q Kᵀ precedes each P V (n=D=32)."""
    x = np.zeros((256, 32), np.float16)
    fn, _ = kx.attn_fwd.specialize(x, x, x, x, 0.1, 1, 1, 256, HEAD_DIM=32, BLOCK_M=64, BLOCK_N=64, STAGE=1)
    text = _stage(compile_ir(fn, SPEC, num_stages=2, record=True), "software-pipeline")
    before, loop = text.split("for ", 1)
    assert [line.split("n=")[1].split(",")[0] for line in before.splitlines() if "mmad" in line] == ["64"]
    in_loop = [line.split("n=")[1].split(",")[0] for line in loop.splitlines() if "mmad" in line]
    assert in_loop == ["64", "32", "64", "32"]
    a = np.zeros((64, 64), np.float16)
    fn, _ = kx.matmul_gelu_kernel.specialize(a, a, np.zeros(64, np.float32), a, 64, 64, 64, BM=32, BN=32, BK=16)
    text = _stage(compile_ir(fn, SPEC, num_stages=2, record=True), "software-pipeline")
    assert "mmad" not in text.split("for ", 1)[0]


def test_back_to_back_split_dot_pieces_alternate_between_two_places() -> None:
    """Once L0B has no fresh bytes, each piece takes the bytes freed longest ago: the move of one piece
    then overlaps the mmad reading the previous one."""
    loc = SourceLoc("k.py", 1)
    pieces = [Buffer(f"p{i}", "l0b", 32768, loc) for i in range(4)]
    nodes = [MInstr("move", {}, loc, (), (Region(b, 0, b.nbytes),)) for b in pieces]
    nodes = [n for i, b in enumerate(pieces) for n in (nodes[i], MInstr("mmad", {}, loc, (Region(b, 0, b.nbytes),)))]
    BufferAllocation(SPEC, "k", loc).apply(nodes)
    assert [b.addr for b in pieces] == [0, 32768, 0, 32768]


def test_matmul_gelu_epilogue_runs_in_place() -> None:
    """128x128: the f32 accumulator leaves L0C once (64 KiB), x and 0.5*x are the only two f32 tiles the
    epilogue needs (erf and the sums run in place), plus the 512-byte bias and the 32 KiB f16 result."""
    a = np.zeros((128, 128), np.float16)
    fn, _ = kx.matmul_gelu_kernel.specialize(a, a, np.zeros(128, np.float32), a, 128, 128, 128, BM=128, BN=128,
                                             BK=32)
    ck = compile_ir(fn, SPEC, num_stages=2)
    assert ck.usage["ub"] == 2 * 65536 + 512 + 32768
    ub = [s for s in ck.buffers if s.space == "ub"]
    assert sorted(s.size for s in ub) == [512, 32768, 65536, 65536]


@npu.jit
def swap_kernel(x_ptr, y_ptr, o_ptr, p_ptr, n, B: npu.constexpr):
    offs = npu.arange(0, B)
    a = npu.load(x_ptr + offs)
    b = npu.load(y_ptr + offs)
    for _ in range(0, n):
        a, b = b * 2.0, a + 1.0  # each new value is computed in place in the other's carried tile
    npu.store(o_ptr + offs, a)
    npu.store(p_ptr + offs, b)


@pytest.mark.parametrize("n", [0, 1, 2, 5])
@pytest.mark.parametrize("num_stages", [1, 2])
def test_carried_tiles_swapped_in_place_keep_their_values(n: int, num_stages: int) -> None:
    x = np.arange(64, dtype=np.float32)
    y = -x
    o, p = np.zeros_like(x), np.zeros_like(x)
    run_compiled(swap_kernel, (1,), [x, y, o, p, n], num_stages=num_stages, B=64)
    a, b = x.copy(), y.copy()
    for _ in range(n):
        a, b = b * 2, a + 1
    np.testing.assert_array_equal(o, a)
    np.testing.assert_array_equal(p, b)


def test_a_fragmented_buffer_overflow_names_the_largest_free_range() -> None:
    """Four 48 KiB tiles fill UB; the second and fourth die before a 64 KiB tile is born: 96 KiB are free,
    in two 48 KiB ranges."""
    loc = SourceLoc("k.py", 1)
    tiles = [Buffer(f"t{i}", "ub", 49152, loc) for i in range(4)]
    big = Buffer("big", "ub", 65536, loc)

    def touch(*bufs: Buffer) -> MInstr:
        return MInstr("vdup", {}, loc, (), tuple(Region(b, 0, b.nbytes) for b in bufs))

    nodes = [touch(*tiles), touch(tiles[0], tiles[2]), touch(big), touch(tiles[0], tiles[2], big)]
    with pytest.raises(npu.BufferOverflowError) as err:
        BufferAllocation(SPEC, "k", loc).apply(nodes)
    assert err.value.message == ("tile 'big' needs 65536 bytes of UB but only 98304 of its 196608 bytes are "
                                 "available (98304 bytes are taken by other live tiles; the largest free range "
                                 "is 49152 bytes)")


@pytest.mark.parametrize("bm, bn, d, event_ids, num_stages", [
    (128, 128, 128, 8, 2),  # running ahead needs a second 64 KiB score tile in UB: does not fit
    (16, 16, 16, 4, 3),  # fits, but its flags stay outstanding longer than 4 event ids allow
])
def test_attention_that_cannot_run_ahead_is_pipelined_plainly(bm, bn, d, event_ids, num_stages) -> None:
    x = np.zeros((256, d), np.float16)
    fn, _ = kx.attn_fwd.specialize(x, x, x, x, 0.1, 1, 1, 256, HEAD_DIM=d, BLOCK_M=bm, BLOCK_N=bn, STAGE=1)
    ck = compile_ir(fn, SPEC.replace(sync={"event_ids": event_ids}), num_stages=num_stages, record=True)
    pipelined = [text.split("for ", 1)[0] for name, text in ck.stages if name == "software-pipeline"]
    assert ["mmad" in text for text in pipelined] == [True, False]  # the first attempt ran ahead, then not
    assert "mmad" not in _stage(ck, "insert-flags").split("for ", 1)[0]

"""Functional semantics of the DMA, cube and fixpipe opcodes against numpy."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from isa.asm import assemble
from simulator import Device
from sim_harness import strided


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 6), cols=st.integers(1, 10), extra_rs=st.integers(0, 5), cs=st.sampled_from([1, 2, 3]),
       vr=st.integers(-1, 7), vc=st.integers(0, 11), dst_extra=st.integers(0, 3), pad=st.sampled_from([0, -1.5]),
       dt=st.sampled_from(["f32", "f16", "i8"]))
def test_load(rows: int, cols: int, extra_rs: int, cs: int, vr: int, vc: int, dst_extra: int, pad: float,
              dt: str) -> None:
    npdt = {"f32": np.float32, "f16": np.float16, "i8": np.int8}[dt]
    rs = cols * cs + extra_rs
    src = (np.arange(rows * rs + cols * cs) % 100).astype(npdt)
    drs = cols + dst_extra
    out = np.full(rows * drs, 7, npdt)
    text = f"""
.kernel t
.arg src ptr {dt}
.arg out ptr {dt}
    arg s0, 0
    arg s1, 1
    vdup ub[0], 7, dtype={dt}, rows=1, cols={rows * drs}
    set_flag v, mte2, 0
    wait_flag v, mte2, 0
    load ub[0], gm[s0], dtype={dt}, rows={rows}, cols={cols}, src_rs={rs}, src_cs={cs}, dst_rs={drs}, valid_rows={vr}, valid_cols={vc}, pad={pad}
    set_flag mte2, mte3, 0
    wait_flag mte2, mte3, 0
    store gm[s1], ub[0], dtype={dt}, rows=1, cols={rows * drs}, dst_rs={rows * drs}
"""
    Device().run(assemble(text), (1,), [src, out])
    vr, vc = max(0, min(vr, rows)), min(vc, cols)  # valid counts are clamped to the tile
    ref = np.full((rows, drs), 7, npdt)
    ref[:, :cols] = np.asarray(pad).astype(npdt) if dt != "i8" else int(pad)
    ref[:vr, :vc] = strided(src, rows, cols, rs, cs)[:vr, :vc]
    np.testing.assert_array_equal(out.reshape(rows, drs), ref)


def test_store_column_strided_valid_part_only() -> None:
    x = np.arange(12, dtype=np.float32)
    out = np.full((4, 6), -1, np.float32)
    text = """
.kernel t
.arg x ptr f32
.arg out ptr f32
    arg s0, 0
    arg s1, 1
    load ub[0], gm[s0], dtype=f32, rows=3, cols=4, src_rs=4
    set_flag mte2, mte3, 0
    wait_flag mte2, mte3, 0
    store gm[s1], ub[0], dtype=f32, rows=3, cols=4, dst_rs=1, dst_cs=6, valid_rows=3, valid_cols=2
"""
    res = Device().run(assemble(text), (1,), [x, out])
    ref = np.full((4, 6), -1, np.float32)
    ref[:2, :3] = x.reshape(3, 4)[:, :2].T  # a transposing store of the 3 x 2 valid part
    np.testing.assert_array_equal(out, ref)
    assert res.gm_bytes == 64 + 6 * 32  # the load's two bursts, then one burst per element when cs != 1


GATHER_SCATTER = """
.kernel t
.arg src ptr f32
.arg idx ptr i32
.arg mask ptr i1
.arg out ptr f32
    arg s0, 0
    arg s1, 1
    arg s2, 2
    arg s3, 3
    load ub[0], gm[s1], dtype=i32, rows=1, cols=6, src_rs=6
    load ub[64], gm[s2], dtype=i1, rows=1, cols=6, src_rs=6
    gather ub[128], gm[s0], idx=ub[0], dtype=f32, n=6, mask=ub[64], pad=-9
    set_flag mte2, mte3, 0
    wait_flag mte2, mte3, 0
    scatter gm[s3], ub[128], idx=ub[0], dtype=f32, n=6, mask=ub[64]
"""


def test_gather_and_scatter_with_mask() -> None:
    src = np.arange(10, dtype=np.float32) * 10
    idx = np.array([9, 0, 1000, 3, 3, 5], np.int32)  # lane 2 is masked off: never read or written
    mask = np.array([1, 1, 0, 1, 0, 1], np.bool_)
    out = np.zeros(10, np.float32)
    res = Device().run(assemble(GATHER_SCATTER), (1,), [src, idx, mask, out])
    ref = np.zeros(10, np.float32)
    for i in np.flatnonzero(mask):
        ref[idx[i]] = src[idx[i]]
    np.testing.assert_array_equal(out, ref)
    assert res.pipe_busy["mte2"] > 0


MOVE_MMAD_FIX = """
.kernel t
.arg a ptr f16
.arg b ptr f16
.arg c ptr f16
    arg s0, 0
    arg s1, 1
    arg s2, 2
    load l1[0], gm[s0], dtype=f16, rows=16, cols=32, src_rs=32
    load l1[4096], gm[s1], dtype=f16, rows=16, cols=16, src_rs=16
    set_flag mte2, mte1, 0
    wait_flag mte2, mte1, 0
    move l0a[0], l1[0], dtype=f16, rows=16, cols=32
    move l0b[0], l1[4096], dtype=f16, rows=16, cols=16
    move l0b[1024], l1[0], dtype=f16, rows=32, cols=16, transpose=1
    set_flag mte1, m, 0
    wait_flag mte1, m, 0
    mmad l0c[0], l0a[0], l0b[1024], dtype=f16, m=16, n=16, k=32
    mmad l0c[0], l0a[0], l0b[1024], dtype=f16, m=16, n=16, k=16, init=0
    set_flag m, fix, 0
    wait_flag m, fix, 0
    fixpipe ub[0], l0c[0], src_dtype=f32, dtype=f16, rows=16, cols=16, relu=1, valid_rows=10, valid_cols=12, dst_rs=16
    set_flag fix, mte3, 0
    wait_flag fix, mte3, 0
    store gm[s2], ub[0], dtype=f16, rows=16, cols=16, dst_rs=16
"""


def test_move_transpose_mmad_accumulate_fixpipe() -> None:
    rng = np.random.default_rng(5)
    a = rng.standard_normal((16, 32)).astype(np.float16)
    b = rng.standard_normal((16, 16)).astype(np.float16)
    c = np.full((16, 16), 5, np.float16)
    Device().run(assemble(MOVE_MMAD_FIX), (1,), [a, b, c])
    af = a.astype(np.float32)
    bt = af.T  # the transposed move: l0b holds a^T (32 x 16)
    # the second mmad (k=16) reads l0a as a row-major 16 x 16 tile: the first 256 elements of a
    acc = af @ bt + af.reshape(-1)[: 16 * 16].reshape(16, 16) @ bt[:16, :]
    ref = np.zeros((16, 16), np.float16)  # the UB tile was zero; the fixpipe writes only 10 x 12
    ref[:10, :12] = np.maximum(acc[:10, :12], 0).astype(np.float16)
    np.testing.assert_allclose(c.astype(np.float32), ref.astype(np.float32), rtol=2e-3, atol=2e-3)


def img2col_reference(fmap: np.ndarray, kh: int, kw: int, stride: int, pad: int, dil: int, ow: int,
                      pos: int, rows: int, k0: int, cols: int) -> np.ndarray:
    h, w, c = fmap.shape
    out = np.zeros((rows, cols), fmap.dtype)
    for i in range(rows):
        oy, ox = divmod(pos + i, ow)
        for j in range(cols):
            t = k0 + j
            if t >= kh * kw * c:
                continue
            ky, rest = divmod(t, kw * c)
            kx, ci = divmod(rest, c)
            y, x = oy * stride - pad + ky * dil, ox * stride - pad + kx * dil
            if 0 <= y < h and 0 <= x < w:
                out[i, j] = fmap[y, x, ci]
    return out


def test_img2col_matches_reference() -> None:
    h, w, c, kh, kw, stride, pad, dil = 5, 6, 3, 3, 2, 2, 1, 1
    ow = (w + 2 * pad - dil * (kw - 1) - 1) // stride + 1
    fmap = np.arange(h * w * c, dtype=np.float16).reshape(h, w, c) + 1
    rows, cols, pos, k0 = 8, 16, 2, 1
    eye = np.eye(cols, dtype=np.float16)
    got = np.zeros((rows, cols), np.float32)
    # the img2col tile in L0A leaves through the cube: tile @ identity
    text = f"""
.kernel t
.arg f ptr f16
.arg eye ptr f16
.arg out ptr f32
    arg s0, 0
    arg s1, 1
    arg s2, 2
    load l1[0], gm[s0], dtype=f16, rows=1, cols={h * w * c}, src_rs={h * w * c}
    load l1[65536], gm[s1], dtype=f16, rows={cols}, cols={cols}, src_rs={cols}
    set_flag mte2, mte1, 0
    wait_flag mte2, mte1, 0
    img2col l0a[0], l1[0], dtype=f16, c={c}, h={h}, w={w}, kh={kh}, kw={kw}, stride_h={stride}, stride_w={stride}, pad_top={pad}, pad_left={pad}, dil_h={dil}, dil_w={dil}, ow={ow}, pos={pos}, rows={rows}, k0={k0}, cols={cols}
    move l0b[0], l1[65536], dtype=f16, rows={cols}, cols={cols}
    set_flag mte1, m, 0
    wait_flag mte1, m, 0
    mmad l0c[0], l0a[0], l0b[0], dtype=f16, m={rows}, n={cols}, k={cols}
    set_flag m, fix, 0
    wait_flag m, fix, 0
    fixpipe gm[s2], l0c[0], src_dtype=f32, dtype=f32, rows={rows}, cols={cols}
"""
    Device().run(assemble(text), (1,), [fmap, eye, got])
    ref = img2col_reference(fmap, kh, kw, stride, pad, dil, ow, pos, rows, k0, cols)
    assert (ref == 0).any() and (ref != 0).any()  # the window covers padding and data
    np.testing.assert_array_equal(got, ref.astype(np.float32))


def test_int8_mmad_wraps_in_int32_and_fixpipe_saturates() -> None:
    a = np.full((16, 32), 127, np.int8)
    b = np.full((32, 16), 127, np.int8)
    c = np.zeros((16, 16), np.int8)
    text = """
.kernel t
.arg a ptr i8
.arg b ptr i8
.arg c ptr i8
    arg s0, 0
    arg s1, 1
    arg s2, 2
    load l0a[0], gm[s0], dtype=i8, rows=16, cols=32, src_rs=32
    load l0b[0], gm[s1], dtype=i8, rows=32, cols=16, src_rs=16
    set_flag mte2, m, 0
    wait_flag mte2, m, 0
    mmad l0c[0], l0a[0], l0b[0], dtype=i8, m=16, n=16, k=32
    set_flag m, fix, 0
    wait_flag m, fix, 0
    fixpipe gm[s2], l0c[0], src_dtype=i32, dtype=i8, rows=16, cols=16
"""
    Device().run(assemble(text), (1,), [a, b, c])
    assert (c == 127).all()  # 32 * 127 * 127 saturates to the i8 maximum

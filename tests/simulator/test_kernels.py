"""Hand-written assembly kernels checked against numpy and against cycle counts derived from the spec."""

from __future__ import annotations

import math

import numpy as np
import pytest

from isa import MachineSpec, SourceLoc
from isa.asm import assemble
from simulator import Device, SimOptions

from sim_harness import dma_cycles


def bursts(offset: int, rows: int, row_bytes: int, stride: int, burst: int) -> int:
    """Bytes a 2-D GM access moves: each row rounded out to whole bursts (arrays count as aligned)."""
    total = 0
    for r in range(rows):
        lo = offset + r * stride
        total += (math.ceil((lo + row_bytes) / burst) - lo // burst) * burst
    return total


def ceil_div(a: float, b: float) -> int:
    return max(1, math.ceil(a / b))


VADD = """
.kernel vadd
.arg x ptr f32
.arg y ptr f32
.arg out ptr f32
.arg n scalar i32
    arg s0, 0
    arg s1, 1
    arg s2, 2
    arg s3, 3
    pid s4, 0
    mul s5, s4, {block}
    mul s7, s5, 4
    sub s6, s3, s5
    add s0, s0, s7
    add s1, s1, s7
    add s2, s2, s7 || load ub[0], gm[s0], dtype=f32, rows=1, cols={block}, src_rs={block}, valid_cols=s6 @ "vadd.py":7
    load ub[{off}], gm[s1], dtype=f32, rows=1, cols={block}, src_rs={block}, valid_cols=s6 @ "vadd.py":8
    set_flag mte2, v, 0
    wait_flag mte2, v, 0
    vbin add, ub[{off2}], ub[0], ub[{off}], dtype=f32, rows=1, cols={block} @ "vadd.py":9
    set_flag v, mte3, 0
    wait_flag v, mte3, 0
    store gm[s2], ub[{off2}], dtype=f32, rows=1, cols={block}, dst_rs={block}, valid_cols=s6 @ "vadd.py":10
"""


def vadd(block: int):
    return assemble(VADD.format(block=block, off=4 * block, off2=8 * block))


def test_vector_add_single_program_cycles(device: Device, spec: MachineSpec) -> None:
    block = 256
    x = np.arange(block, dtype=np.float32)
    y = np.full(block, 0.5, np.float32)
    out = np.zeros(block, np.float32)
    res = device.run(vadd(block), (1,), [x, y, out, block])
    np.testing.assert_array_equal(out, x + y)
    assert spec.hbm_bytes_per_cycle > spec.mte2.bytes_per_cycle  # a lone core is port-bound
    nbytes = 4 * block
    load = dma_cycles(spec.mte2, nbytes, nbytes)
    first_load = 10  # bundle index = issue cycle
    loads_done = first_load + 2 * load + spec.mte2.latency
    vec_done = loads_done + spec.vector.latency + ceil_div(nbytes, spec.vector.bytes_per_cycle)
    store_done = vec_done + spec.mte3.latency + dma_cycles(spec.mte3, nbytes, nbytes)
    assert res.cycles == store_done
    assert res.instructions == 19
    assert res.pipe_busy["mte2"] == 2 * load
    assert res.pipe_stall["v"] == loads_done - 13  # the wait_flag issued at cycle 13
    assert res.line_cycles[SourceLoc("vadd.py", 7)] == load
    assert res.line_cycles[SourceLoc("vadd.py", 9)] == ceil_div(nbytes, spec.vector.bytes_per_cycle)


def test_vector_add_many_programs_with_ragged_tail(device: Device) -> None:
    n, block = 1000, 128
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    out = np.full(n + 8, -7.0, np.float32)  # the tail beyond n must stay untouched
    res = device.run(vadd(block), (math.ceil(n / block),), [x, y, out[:n], n])
    np.testing.assert_array_equal(out[:n], x + y)
    assert (out[n:] == -7.0).all()
    assert sum(len(c.programs) for c in res.per_core) == 8
    assert {c.core for c in res.per_core if c.programs} == set(range(8))  # one program per free core


STRIDED_COPY = """
.kernel window
.arg a ptr f16
.arg out ptr f16
    arg s0, 0
    arg s1, 1
    load ub[0], gm[s0+{src_off}], dtype=f16, rows=8, cols=16, src_rs=16, valid_rows=5, valid_cols=7, pad={pad}
    set_flag mte2, mte3, 0
    wait_flag mte2, mte3, 0
    store gm[s1], ub[0], dtype=f16, rows=8, cols=16, dst_rs=16
"""


@pytest.mark.parametrize("pad", [0, 2.5])
def test_strided_copy_with_padding(device: Device, spec: MachineSpec, pad: float) -> None:
    a = np.arange(256, dtype=np.float16).reshape(16, 16)
    out = np.full((8, 16), 99, np.float16)
    src_off = (3 * 16 + 4) * 2  # the window starts at a[3, 4]
    res = device.run(assemble(STRIDED_COPY.format(src_off=src_off, pad=pad)), (1,), [a, out])
    expected = np.full((8, 16), pad, np.float16)
    expected[:5, :7] = a[3:8, 4:11]
    np.testing.assert_array_equal(out, expected)
    # the load writes the whole 8 x 16 tile on chip, padding included
    load = dma_cycles(spec.mte2, 8 * 16 * 2, bursts(src_off, 5, 7 * 2, 32, spec.gm.burst_bytes))
    store = dma_cycles(spec.mte3, 8 * 16 * 2, bursts(0, 8, 32, 32, spec.gm.burst_bytes))
    assert res.cycles == 2 + load + spec.mte2.latency + store + spec.mte3.latency
    assert res.gm_bytes == 5 * spec.gm.burst_bytes + 8 * 32


MMAD_TILE = """
.kernel tile
.arg a ptr {dt}
.arg b ptr {dt}
.arg c ptr {acc}
    arg s0, 0
    arg s1, 1
    arg s2, 2
    load l1[0], gm[s0], dtype={dt}, rows={m}, cols={k}, src_rs={k}
    load l1[{boff}], gm[s1], dtype={dt}, rows={k}, cols={n}, src_rs={n}
    set_flag mte2, mte1, 0
    wait_flag mte2, mte1, 0
    move l0a[0], l1[0], dtype={dt}, rows={m}, cols={k}
    move l0b[0], l1[{boff}], dtype={dt}, rows={k}, cols={n}
    set_flag mte1, m, 0
    wait_flag mte1, m, 0
    mmad l0c[0], l0a[0], l0b[0], dtype={dt}, m={m}, n={n}, k={k}
    set_flag m, fix, 0
    wait_flag m, fix, 0
    fixpipe gm[s2], l0c[0], src_dtype={acc}, dtype={acc}, rows={m}, cols={n}
"""


@pytest.mark.parametrize("dt", ["f16", "i8"])
def test_one_mmad_tile(device: Device, spec: MachineSpec, dt: str) -> None:
    m, n, k = 32, 16, (48 if dt == "f16" else 64)
    rng = np.random.default_rng(2)
    if dt == "f16":
        a = rng.standard_normal((m, k)).astype(np.float16)
        b = rng.standard_normal((k, n)).astype(np.float16)
        c = np.zeros((m, n), np.float32)
        acc, e, k_step = "f32", 2, spec.cube.k
    else:
        a = rng.integers(-128, 128, (m, k)).astype(np.int8)
        b = rng.integers(-128, 128, (k, n)).astype(np.int8)
        c = np.zeros((m, n), np.int32)
        acc, e, k_step = "i32", 1, spec.cube.k_int8
    text = MMAD_TILE.format(dt=dt, acc=acc, m=m, n=n, k=k, boff=4096)
    res = device.run(assemble(text), (1,), [a, b, c])
    if dt == "f16":
        np.testing.assert_allclose(c, a.astype(np.float32) @ b.astype(np.float32), rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_array_equal(c, a.astype(np.int32) @ b.astype(np.int32))
    # analytic schedule: two loads back to back, two moves back to back, mmad, fixpipe
    la, lb = dma_cycles(spec.mte2, m * k * e, m * k * e), dma_cycles(spec.mte2, k * n * e, k * n * e)
    loads_done = 3 + la + lb + spec.mte2.latency
    ma = dma_cycles(spec.mte1, m * k * e, rate=spec.mte1.l0a_bytes_per_cycle)
    mb = dma_cycles(spec.mte1, k * n * e, rate=spec.mte1.l0b_bytes_per_cycle)
    moves_done = max(loads_done + ma + spec.mte1.latency, loads_done + ma + mb + spec.mte1.latency)
    cube = math.ceil(m / spec.cube.m) * math.ceil(n / spec.cube.n) * math.ceil(k / k_step)
    mmad_done = moves_done + cube + spec.cube.latency
    fix = dma_cycles(spec.fix, m * n * 4, m * n * 4)
    assert res.cycles == mmad_done + fix + spec.fix.latency
    assert res.pipe_busy["m"] == cube


PINGPONG = """
.kernel kloop
.arg a ptr f16
.arg b ptr f16
.arg c ptr f32
.arg pairs scalar i32
    arg s0, 0
    arg s1, 1
    arg s2, 2
    arg s3, 3
    mov s4, 0 || set_flag m, mte2, 0
    mov s6, 1 || set_flag m, mte2, 1
loop:
    nop
    wait_flag m, mte2, 0
    load l0a[0], gm[s0], dtype=f16, rows=32, cols=32, src_rs={K}
    load l0b[0], gm[s1], dtype=f16, rows=32, cols=16, src_rs=16
    set_flag mte2, m, 0
    wait_flag m, mte2, 1
    load l0a[2048], gm[s0+64], dtype=f16, rows=32, cols=32, src_rs={K}
    load l0b[1024], gm[s1+1024], dtype=f16, rows=32, cols=16, src_rs=16
    set_flag mte2, m, 1
    wait_flag mte2, m, 0
    mmad l0c[0], l0a[0], l0b[0], dtype=f16, m=32, n=16, k=32, init=s6
    set_flag m, mte2, 0
    wait_flag mte2, m, 1
    mmad l0c[0], l0a[2048], l0b[1024], dtype=f16, m=32, n=16, k=32, init=0
    set_flag m, mte2, 1 || add s0, s0, 128
    add s1, s1, 2048
    mov s6, 0
    add s4, s4, 1
    lt s7, s4, s3
    bnz s7, loop
    wait_flag m, mte2, 0
    wait_flag m, mte2, 1
    set_flag m, fix, 0
    wait_flag m, fix, 0
    fixpipe gm[s2], l0c[0], src_dtype=f32, dtype=f32, rows=32, cols=16
"""


def test_double_buffered_dma_mmad_loop(device: Device, spec: MachineSpec) -> None:
    pairs = 4
    K = 64 * pairs
    rng = np.random.default_rng(3)
    a = rng.standard_normal((32, K)).astype(np.float16)
    b = rng.standard_normal((K, 16)).astype(np.float16)
    c = np.zeros((32, 16), np.float32)
    res = device.run(assemble(PINGPONG.format(K=K)), (1,), [a, b, c, pairs])
    np.testing.assert_allclose(c, a.astype(np.float32) @ b.astype(np.float32), rtol=1e-4, atol=1e-4)
    # steady state: the loads of tile t+2 wait for mmad t, which waits for tile t's loads to complete
    burst = spec.gm.burst_bytes
    la = dma_cycles(spec.mte2, 32 * 32 * 2, bursts(0, 32, 64, 2 * K, burst))
    lb = dma_cycles(spec.mte2, 32 * 16 * 2, 32 * 16 * 2)
    cube = math.ceil(32 / spec.cube.m) * math.ceil(16 / spec.cube.n) * math.ceil(32 / spec.cube.k)
    period = la + lb + spec.mte2.latency + cube + spec.cube.latency  # one pair of tiles
    first_load = 8
    last_loads_start = first_load + (pairs - 1) * period + (la + lb)
    last_mmad_done = last_loads_start + la + lb + spec.mte2.latency + cube + spec.cube.latency
    expected = last_mmad_done + dma_cycles(spec.fix, 32 * 16 * 4, 32 * 16 * 4) + spec.fix.latency
    assert res.cycles == expected
    assert res.pipe_busy["mte2"] == 2 * pairs * (la + lb)
    assert res.pipe_busy["m"] == 2 * pairs * cube


def test_timing_only_gives_the_same_cycles(spec: MachineSpec) -> None:
    pairs = 3
    K = 64 * pairs
    a = np.ones((32, K), np.float16)
    b = np.ones((K, 16), np.float16)
    c = np.zeros((32, 16), np.float32)
    program = assemble(PINGPONG.format(K=K))
    full = Device(spec).run(program, (5,), [a, b, c, pairs])
    timing = Device(spec).run(program, (5,), [a, b, c.copy(), pairs], SimOptions(functional=False))
    quick = Device(spec).run(program, (5,), [a, b, c.copy(), pairs],
                             SimOptions(functional=False, detect_races=False))
    assert full.cycles == timing.cycles == quick.cycles
    assert full.pipe_busy == timing.pipe_busy and full.pipe_stall == timing.pipe_stall
    assert full.instructions == timing.instructions

"""Simulator speed: simulated instructions per wall-clock second, for the autotuner's inner loop.

Two hand-written kernels, each a loop with flags: a streaming kernel (GM -> UB -> relu -> GM) and
a matmul-like loop (two DMA loads into L1, two L1 -> L0 moves, one mmad). Each runs in timing-only
mode (with and without race detection) and in functional mode. Each figure is the best of
`--repeat` runs on a fresh device (the machine may be shared, so the best is the least noisy).

    python benchmarks/sim_speed.py [--iters N] [--grid G] [--repeat R]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from isa.asm import assemble
from simulator import Device, SimOptions

STREAM = """
.kernel stream
.arg x ptr f16
.arg out ptr f16
.arg iters scalar i32
    arg s0, 0
    arg s1, 1
    arg s2, 2
    pid s5, 0
    mul s6, s5, s2
    mul s6, s6, 8192
    add s0, s0, s6
    add s1, s1, s6
    mov s3, 0 || set_flag mte3, mte2, 0
loop:
    wait_flag mte3, mte2, 0
    load ub[0], gm[s0], dtype=f16, rows=16, cols=256, src_rs=256
    set_flag mte2, v, 0
    wait_flag mte2, v, 0
    vun relu, ub[8192], ub[0], dtype=f16, rows=16, cols=256
    set_flag v, mte3, 0
    wait_flag v, mte3, 0
    store gm[s1], ub[8192], dtype=f16, rows=16, cols=256, dst_rs=256
    set_flag mte3, mte2, 0 || add s0, s0, 8192
    add s1, s1, 8192
    add s3, s3, 1
    lt s4, s3, s2
    bnz s4, loop
    wait_flag mte3, mte2, 0
"""

MATMUL = """
.kernel mm_loop
.arg a ptr f16
.arg b ptr f16
.arg c ptr f32
.arg iters scalar i32
    arg s0, 0
    arg s1, 1
    arg s2, 3
    mov s3, 0 || set_flag mte1, mte2, 0
    set_flag m, mte1, 0
loop:
    wait_flag mte1, mte2, 0
    load l1[0], gm[s0], dtype=f16, rows=64, cols=64, src_rs=64
    load l1[8192], gm[s1], dtype=f16, rows=64, cols=64, src_rs=64
    set_flag mte2, mte1, 0
    wait_flag mte2, mte1, 0
    wait_flag m, mte1, 0
    move l0a[0], l1[0], dtype=f16, rows=64, cols=64
    move l0b[0], l1[8192], dtype=f16, rows=64, cols=64
    set_flag mte1, mte2, 0
    set_flag mte1, m, 0
    wait_flag mte1, m, 0
    mmad l0c[0], l0a[0], l0b[0], dtype=f16, m=64, n=64, k=64, init=0
    set_flag m, mte1, 0 || add s3, s3, 1
    lt s4, s3, s2
    bnz s4, loop
    wait_flag mte1, mte2, 0
    wait_flag m, mte1, 0
    set_flag m, fix, 0
    wait_flag m, fix, 0
    arg s5, 2
    fixpipe gm[s5], l0c[0], src_dtype=f32, dtype=f32, rows=64, cols=64
"""

MODES = {
    "timing only": SimOptions(functional=False, detect_races=False),
    "timing + races": SimOptions(functional=False, detect_races=True),
    "functional + races": SimOptions(functional=True, detect_races=True),
}


def _stream_case(iters: int, grid: int) -> tuple:
    x = np.random.default_rng(0).standard_normal(grid * iters * 4096).astype(np.float16)
    return assemble(STREAM), (grid,), [x, np.zeros_like(x), iters]


def _matmul_case(iters: int, grid: int) -> tuple:
    a = np.ones((64, 64), np.float16)
    return assemble(MATMUL), (grid,), [a, a.copy(), np.zeros((grid, 64, 64), np.float32), iters]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=400, help="loop iterations per program")
    parser.add_argument("--grid", type=int, default=24, help="programs per launch")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure, the fastest is shown")
    opts = parser.parse_args()
    print(f"{'kernel':10} {'mode':20} {'instructions':>12} {'seconds':>8} {'instr/s':>10} {'cycles':>10}")
    for name, case in (("stream", _stream_case), ("matmul", _matmul_case)):
        program, grid, args = case(opts.iters, opts.grid)
        if name == "matmul":  # every program writes its own C tile
            args[2] = np.zeros((opts.grid * 64, 64), np.float32)
        for mode, options in MODES.items():
            dt = float("inf")
            for _ in range(opts.repeat):
                device = Device()
                t0 = time.perf_counter()
                res = device.run(program, grid, args, options)
                dt = min(dt, time.perf_counter() - t0)
            rate = res.instructions / dt
            print(f"{name:10} {mode:20} {res.instructions:12d} {dt:8.3f} {rate:10.0f} {res.cycles:10d}")


if __name__ == "__main__":
    main()

"""Wall time of a timing-only descriptor matmul launch (the autotuner's objective), and its cycles
against the full model (the general issue loop, reached here through trace=True, which records but
does not change cycles).

    python benchmarks/matmul_wall.py [--sizes 2048 4096] [--repeat R] [--check]

Each time is the best of `--repeat` launches (the machine may be shared); every launch starts with a
cold L2, as kernel_perf.py measures.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import npulang as npu  # noqa: E402
from examples import tutorials  # noqa: E402

BM, BN, BK, STAGES = 128, 128, 32, 3


def launch(size: int, trace: bool = False) -> tuple[float, int, int, int]:
    """(wall seconds, cycles, instructions, HBM bytes) of one cold-L2 timing-only launch."""
    a, b, c = (np.zeros((size, size), np.float16) for _ in range(3))
    grid = (npu.cdiv(size, BM), npu.cdiv(size, BN))
    t0 = time.perf_counter()
    run = tutorials.matmul_desc_kernel[grid](a, b, c, size, size, size, BM=BM, BN=BN, BK=BK, num_stages=STAGES,
                                             timing_only=True, l2="cold", trace=trace)
    return time.perf_counter() - t0, run.cycles, run.instructions, run.hbm_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--repeat", type=int, default=3, help="launches per size, the fastest is shown")
    parser.add_argument("--check", action="store_true", help="also run the full model and compare cycles")
    opts = parser.parse_args()
    print(f"matmul_desc_kernel fp16, BM={BM} BN={BN} BK={BK} num_stages={STAGES}, timing only, cold L2")
    print(f"{'size':>6} {'seconds':>8} {'cycles':>12} {'instructions':>13} {'HBM bytes':>14} full model")
    for size in opts.sizes:
        launch(size)  # compile once outside the timing
        best = min((launch(size) for _ in range(opts.repeat)), key=lambda r: r[0])
        full = ""
        if opts.check:
            _, cycles, _, hbm = launch(size, trace=True)
            full = "identical" if (cycles, hbm) == best[1:2] + best[3:] else f"DIFFERS: {cycles:,} cycles, {hbm:,} B"
        print(f"{size:>6} {best[0]:8.3f} {best[1]:12,} {best[2]:13,} {best[3]:14,} {full}")


if __name__ == "__main__":
    main()

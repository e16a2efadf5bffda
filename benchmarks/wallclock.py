"""Wall-clock costs a kernel author feels: functional launches, cold compiles and cache hits.

The peer comparison (Triton 3.9's CPU interpreter, timed interleaved with npulang in one run) is
benchmarks/vs_triton.py; this script runs it too when its venv (.bench-venvs/triton) exists.

    python benchmarks/wallclock.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from examples import tutorials as tut  # noqa: E402
from npulang.runtime import RUNTIME, Runtime  # noqa: E402
from npulang.runtime.cache import KernelCache  # noqa: E402

import vs_triton  # noqa: E402  (beside this file)


def _times(fn: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((512, 512)).astype(np.float16)
    b = rng.standard_normal((512, 512)).astype(np.float16)
    x = rng.standard_normal((1024, 1024)).astype(np.float32)
    launches = {
        "matmul 512^3 (64x64x32)": lambda: tut.run_matmul(a, b, np.float16, block=(64, 64, 32), group=8),
        "softmax 1024x1024": lambda: tut.run_softmax(x, programs=24),
    }
    print("| launch (functional, compiled kernel cached) | npulang s |")
    print("|---|---|")
    for name, fn in launches.items():
        fn()  # compile once; the launch itself is what is measured
        secs = statistics.median(_times(fn, 3))
        print(f"| {name} | {secs:.3f} |")
    print()
    if vs_triton.STAMP.exists():
        vs_triton.print_table(vs_triton.compare(3), 3)
    else:
        print("against Triton's interpreter, side by side: python benchmarks/vs_triton.py (installs the peer once)")

    # cold compile of the tutorial matmul: frontend, generic passes and backend, no cache at all
    def cold() -> None:
        fresh = Runtime(KernelCache(use_disk=False))
        tut.matmul_kernel._source = None  # parse the Python source again too
        args, meta = _matmul_call(a, b)
        fresh.program(tut.matmul_kernel, tut.matmul_kernel.bind(args, meta), 2, RUNTIME.get_machine())

    cold_s = statistics.median(_times(cold, 5))
    hit_s = statistics.median(_hit_times(a, b))
    print()
    print("| compile | time | goal |")
    print("|---|---|---|")
    print(f"| tutorial matmul, cold | {cold_s * 1e3:.1f} ms | < 200 ms |")
    print(f"| tutorial matmul, cache hit (bind + check + lookup) | {hit_s * 1e6:.1f} us | < 100 us |")


def _matmul_call(a: np.ndarray, b: np.ndarray) -> tuple[tuple, dict]:
    M, K = a.shape
    N = b.shape[1]
    c = np.zeros((M, N), np.float16)
    args = (a, b, c, M, N, K, K, 1, N, 1, N, 1)
    meta = dict(BLOCK_SIZE_M=64, BLOCK_SIZE_N=64, BLOCK_SIZE_K=32, GROUP_SIZE_M=8, ACTIVATION="",
                ACC_DTYPE=tut.npu.float32)
    return args, meta


def _hit_times(a: np.ndarray, b: np.ndarray) -> list[float]:
    """A launch's cost before the simulator runs, on a cache hit: split options, bind, check, look up."""
    args, meta = _matmul_call(a, b)
    kernel, spec = tut.matmul_kernel, RUNTIME.get_machine()

    def hit() -> None:
        options, _, kwargs = kernel.split(meta)
        RUNTIME.program(kernel, kernel.bind(args, kwargs), options.num_stages, spec)

    hit()
    return _times(hit, 2000)


if __name__ == "__main__":
    main()

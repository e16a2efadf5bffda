"""`make demo`: kernels written in npulang, compiled, run on the simulated NPU, checked against numpy.

Prints each kernel's result check, cycle count and pipe utilisation, and writes a Chrome trace of
the matmul (open it at https://ui.perfetto.dev). Then kernel_lib: tunes a GEMM and a conv2d into a fresh
temporary tuning database (a small budget), calls `kernel_lib.gemm` and `kernel_lib.conv2d` (which find
the tuned configs there), checks them against numpy and writes their traces.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import npulang as npu  # noqa: E402
import kernel_lib as kl  # noqa: E402
from examples import tutorials as tut  # noqa: E402
from examples.conv2d import reference as conv_reference  # noqa: E402
from kernel_lib.conv2d import problem as conv2d_problem  # noqa: E402
from kernel_lib.gemm import GemmCall  # noqa: E402
from kernel_lib.tuning import Problem  # noqa: E402


def show(name: str, run: npu.RunRecord, ok: bool) -> None:
    busy = ", ".join(f"{pipe} {u:.0%}" for pipe, u in run.utilisation.items() if u >= 0.005)
    print(f"{name:<34} {'ok' if ok else 'WRONG':<6} {run.cycles:>10,} cycles  {run.seconds * 1e6:8.2f} us"
          f"   busy: {busy}")


def main() -> int:
    spec = npu.get_machine()
    print(f"machine: {spec.name} ({spec.cores} cores at {spec.clock_ghz} GHz, fingerprint {spec.fingerprint[:12]})\n")
    rng = np.random.default_rng(0)
    all_ok = True

    x = rng.standard_normal(1_000_000).astype(np.float32)
    y = rng.standard_normal(1_000_000).astype(np.float32)
    out, run = tut.run_add(x, y, block=4096)
    all_ok &= (ok := np.array_equal(out, x + y))
    show("vector add, 1M fp32", run, ok)

    s = rng.standard_normal((1024, 1000)).astype(np.float32)
    out, run = tut.run_softmax(s, programs=spec.cores)
    all_ok &= (ok := np.allclose(out, tut.ref_softmax(s), rtol=1e-5, atol=1e-7))
    show("softmax, 1024x1000 fp32", run, ok)

    a = rng.standard_normal((1024, 1024)).astype(np.float16)
    b = rng.standard_normal((1024, 1024)).astype(np.float16)
    out, run = tut.run_matmul_desc(a, b, block=(128, 128, 32), num_stages=3, trace=True)
    all_ok &= (ok := np.allclose(out, tut.ref_matmul(a, b, np.float16), rtol=2e-2, atol=1e-1))
    show("matmul, 1024^3 fp16 (128x128x32)", run, ok)
    roofline = 1024**3 / (spec.cube_macs_per_cycle() * spec.cores)
    print(f"{'':<34} {roofline / run.cycles:.0%} of the cube roofline")
    trace = run.write_trace(Path("traces") / "matmul.trace.json")
    print(f"\ntrace of the matmul: {trace} (open in https://ui.perfetto.dev)")
    print("\nprofile of the matmul:")
    print(run.report())
    return 0 if all_ok and library_ops(rng) else 1


def library_ops(rng: np.random.Generator) -> bool:
    """kernel_lib: tune a GEMM and a conv2d into a fresh store, then call the library, which uses those configs."""
    previous = os.environ.get("NPU_TUNING_DB")
    with tempfile.TemporaryDirectory() as tmp:
        db = os.environ["NPU_TUNING_DB"] = str(Path(tmp) / "tuning.db")  # library calls look it up here
        try:
            print(f"\nkernel_lib, tuned into a fresh store ({db}):")
            return library_gemm(rng, db) & library_conv2d(rng, db)
        finally:
            os.environ.pop("NPU_TUNING_DB") if previous is None else os.environ.update(NPU_TUNING_DB=previous)


def tuned(problem: Problem, db: str, trials: int) -> None:
    """Tune `problem` as `npu-tune` would (a small budget) and say what the library call will use."""
    start = time.monotonic()
    report = problem.tune(db, trials=trials, verify=False)
    print(f"  tuned in {time.monotonic() - start:.1f} s: {len(report.evaluated)} simulations, {len(report.pruned)} "
          f"configs pruned by compiling only; best {report.best} at {report.cycles:,} cycles (timing-only, cold L2)")
    config, source = problem.candidates()[0]
    print(f"  the library call uses the {source} config {config}")


def timed_call(name: str, problem: Problem, call: Callable[[], np.ndarray], want: np.ndarray, trace: str) -> bool:
    """Run a library call functionally with a trace, check it, print its cycles and roofline share."""
    with npu.profile() as prof, npu.launch_defaults(trace=True, l2="cold"):
        got = call()
    ok = bool(np.allclose(got.astype(np.float32), want, rtol=2e-2, atol=5e-2))
    run = prof.launches[0]
    show(name, run, ok)
    print(f"{'':<34} {problem.roofline / run.cycles:.0%} of the cube roofline ({problem.roofline:,.0f} cycles)")
    print(f"  trace: {run.write_trace(Path('traces') / trace)} (open in https://ui.perfetto.dev)")
    return ok


def library_gemm(rng: np.random.Generator, db: str) -> bool:
    m, n, k = 768, 1024, 512
    print(f"kernel_lib.gemm, fp16 {m}x{n}x{k}, with bias and GELU fused:")
    a, b = rng.standard_normal((m, k)).astype(np.float16), rng.standard_normal((k, n)).astype(np.float16)
    bias = rng.standard_normal(n).astype(np.float16)
    problem = GemmCall(a, b, np.empty((m, n), np.float16), m, n, k, bias=bias, activation="gelu").problem()
    tuned(problem, db, trials=6)
    x = a.astype(np.float32) @ b.astype(np.float32) + bias.astype(np.float32)
    want = 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    return timed_call("kernel_lib.gemm (tuned config)", problem,
                      lambda: kl.gemm(a, b, bias=bias, activation="gelu"), want, "kernel_lib_gemm.trace.json")


def library_conv2d(rng: np.random.Generator, db: str) -> bool:
    n, c, hw, kout = 4, 64, 56, 64  # a ResNet-50 layer1 3x3 convolution at batch 4
    print(f"kernel_lib.conv2d, fp16 NHWC {n}x{hw}x{hw}x{c}, 3x3 filters to {kout} channels, padding 1, ReLU:")
    x = rng.standard_normal((n, hw, hw, c)).astype(np.float16)
    w = (rng.standard_normal((kout, c, 3, 3)) / 24).astype(np.float16)
    problem = conv2d_problem(x, w, None, np.empty((n, hw, hw, kout), np.float16), 1, 1, 1, "relu", "NHWC")
    tuned(problem, db, trials=4)
    want = np.maximum(conv_reference(x.transpose(0, 3, 1, 2), w, 1, 1, 1), 0)
    return timed_call("kernel_lib.conv2d (tuned config)", problem,
                      lambda: kl.conv2d(x, w, padding=1, activation="relu", layout="NHWC"), want,
                      "kernel_lib_conv2d.trace.json")


if __name__ == "__main__":
    sys.exit(main())

"""`make demo`: kernels written in npulang, compiled, run on the simulated NPU, checked against numpy.

Prints each kernel's result check, cycle count and pipe utilisation, and writes a Chrome trace of
the matmul (open it at https://ui.perfetto.dev). Then kernel_lib: tunes a GEMM into a fresh temporary
tuning database (a small budget), calls `kernel_lib.gemm` (which finds the tuned config there), checks
it against numpy and writes its trace.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import npulang as npu  # noqa: E402
from examples import tutorials as tut  # noqa: E402


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
    return 0 if all_ok and library_gemm(rng) else 1


def library_gemm(rng: np.random.Generator) -> bool:
    """kernel_lib: tune a GEMM into a fresh store, then call `kernel_lib.gemm`, which uses that config."""
    import kernel_lib as kl
    from kernel_lib.gemm import GemmCall

    m, n, k = 768, 1024, 512
    print(f"\nkernel_lib.gemm, fp16 {m}x{n}x{k}, with bias and GELU fused:")
    previous = os.environ.get("NPU_TUNING_DB")
    with tempfile.TemporaryDirectory() as tmp:
        db = os.environ["NPU_TUNING_DB"] = str(Path(tmp) / "tuning.db")  # library calls look it up here
        a, b = rng.standard_normal((m, k)).astype(np.float16), rng.standard_normal((k, n)).astype(np.float16)
        bias = rng.standard_normal(n).astype(np.float16)
        problem = GemmCall(a, b, np.empty((m, n), np.float16), m, n, k, bias=bias, activation="gelu").problem()
        start = time.monotonic()
        report = problem.tune(db, trials=6, verify=False)  # the search `npu-tune gemm` runs, for this epilogue
        print(f"  tuned in {time.monotonic() - start:.1f} s ({len(report.evaluated)} simulations, "
              f"{len(report.pruned)} configs pruned by compiling only) into {db}")
        print(f"  best: {report.best}, {report.cycles:,} cycles (timing-only, cold L2)")
        print(f"  kernel_lib.gemm will use: {problem.candidates()[0][1]} config {problem.candidates()[0][0]}")
        with npu.profile() as prof, npu.launch_defaults(trace=True, l2="cold"):
            y = kl.gemm(a, b, bias=bias, activation="gelu")
        os.environ.pop("NPU_TUNING_DB") if previous is None else os.environ.update(NPU_TUNING_DB=previous)
    x = a.astype(np.float32) @ b.astype(np.float32) + bias.astype(np.float32)
    ref = 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    ok = bool(np.allclose(y.astype(np.float32), ref, rtol=2e-2, atol=5e-2))
    run = prof.launches[0]
    show("kernel_lib.gemm (tuned config)", run, ok)
    print(f"{'':<34} {problem.roofline / run.cycles:.0%} of the cube roofline ({problem.roofline:,.0f} cycles)")
    trace = run.write_trace(Path("traces") / "kernel_lib_gemm.trace.json")
    print(f"  trace: {trace} (open in https://ui.perfetto.dev)")
    return ok


if __name__ == "__main__":
    sys.exit(main())

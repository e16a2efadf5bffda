"""`make demo`: kernels written in npulang, compiled, run on the simulated NPU, checked against numpy.

Prints each kernel's result check, cycle count and pipe utilisation, and writes a Chrome trace of
the matmul (open it at https://ui.perfetto.dev).
"""

from __future__ import annotations

import sys
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
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())

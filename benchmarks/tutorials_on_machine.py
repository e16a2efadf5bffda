"""Compile and run every tutorial kernel of examples/tutorials.py on another machine (default `systolic128`).

A check in waiting, outside `make test`: the compiler must read every size from the spec, so each kernel
should compile and match numpy on any preset. Prints one line per case, `ok` with the simulated cycles
and the davinci figure beside it, or `FAIL` with the exception and the innermost npulang frame that
raised it, so the fix can be found.

    python benchmarks/tutorials_on_machine.py
    python benchmarks/tutorials_on_machine.py --machine davinci
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import npulang as npu  # noqa: E402
from examples import tutorials as tut  # noqa: E402

RNG = np.random.default_rng(0)


def _f32(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def _f16(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float16)


def _first(outputs_and_record: tuple[tuple[np.ndarray, ...], Any]) -> tuple[np.ndarray, Any]:
    """(y, record) of a run returning ((y, mean, rstd), record)."""
    return outputs_and_record[0][0], outputs_and_record[1]


def cases() -> list[tuple[str, Callable[[], tuple[Any, Any]], Callable[[], Any], float]]:
    """(name, run -> (output, record), numpy reference, tolerance) for each tutorial kernel and a few configs."""
    x, y = _f32(3000), _f32(3000)
    s = _f32(37, 300)
    ln_x, ln_w, ln_b = _f32(5, 200), _f32(200), _f32(200)
    a16, b16 = _f16(200, 160), _f16(160, 144)
    a8 = RNG.integers(-128, 128, (64, 96)).astype(np.int8)
    b8 = RNG.integers(-128, 128, (96, 80)).astype(np.int8)
    big_a, big_b = _f16(256, 256), _f16(256, 256)
    return [
        ("add block=1024", lambda: tut.run_add(x, y, block=1024), lambda: x + y, 0.0),
        ("softmax 37x300", lambda: tut.run_softmax(s), lambda: tut.ref_softmax(s), 1e-5),
        ("layer_norm 5x200", lambda: _first(tut.run_layer_norm(ln_x, ln_w, ln_b, block=64)),
         lambda: tut.ref_layer_norm(ln_x, ln_w, ln_b)[0], 1e-4),
        ("matmul f16 32x32x32", lambda: tut.run_matmul(a16, b16, block=(32, 32, 32)),
         lambda: tut.ref_matmul(a16, b16), 1e-3),
        ("matmul f16 128x128x64", lambda: tut.run_matmul(big_a, big_b, block=(128, 128, 64)),
         lambda: tut.ref_matmul(big_a, big_b), 1e-2),
        ("matmul i8 32x32x32", lambda: tut.run_matmul(a8, b8, np.int32, block=(32, 32, 32)),
         lambda: tut.ref_matmul(a8, b8, np.int32), 0.0),
        ("matmul f16 leaky_relu", lambda: tut.run_matmul(a16, b16, block=(32, 32, 32), activation="leaky_relu"),
         lambda: tut.ref_matmul(a16, b16, activation="leaky_relu"), 1e-3),
        ("matmul_desc 128x128x64 stages=2", lambda: tut.run_matmul_desc(big_a, big_b, block=(128, 128, 64),
                                                                        num_stages=2),
         lambda: (big_a.astype(np.float32) @ big_b.astype(np.float32)).astype(np.float16), 1e-2),
    ]


def where(exc: BaseException) -> str:
    """The innermost frame inside npulang/ (or the last frame) that the exception passed through."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/npulang/" in f.filename] or frames
    f = ours[-1]
    return f"{Path(f.filename).relative_to(ROOT) if ROOT in Path(f.filename).parents else f.filename}:{f.lineno}"


def run_case(run: Callable[[], tuple[Any, Any]], ref: Callable[[], Any], tol: float) -> int:
    out, record = run()
    expected = ref()
    np.testing.assert_allclose(np.asarray(out, np.float64), np.asarray(expected, np.float64), rtol=tol, atol=tol)
    return record.cycles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machine", default="systolic128")
    args = parser.parse_args()
    failed = 0
    for name, run, ref, tol in cases():
        try:
            npu.set_machine("davinci")
            base = run_case(run, ref, tol)
        except Exception as exc:  # noqa: BLE001 - a report, every failure is printed
            base = None
            print(f"  (davinci itself fails {name}: {type(exc).__name__}: {exc})")
        try:
            npu.set_machine(args.machine)
            cycles = run_case(run, ref, tol)
            print(f"ok    {name:<34} {cycles:>10,} cycles   (davinci {base if base is None else f'{base:,}'})")
        except Exception as exc:  # noqa: BLE001
            failed += 1
            message = str(exc).splitlines()[0] if str(exc) else ""
            print(f"FAIL  {name:<34} {type(exc).__name__}: {message[:150]}  [at {where(exc)}]")
    npu.set_machine("davinci")
    print(f"{failed} of {len(cases())} cases fail on {args.machine}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

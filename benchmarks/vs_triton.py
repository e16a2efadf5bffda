"""npulang's functional launch against Triton's CPU interpreter, side by side in one run.

The peer is Triton 3.9 with TRITON_INTERPRET=1 on CPU torch tensors, running its tutorial kernels
(grouped matmul 512^3 with 64x64x32 blocks and GROUP_SIZE_M=8, fused softmax 1024x1024 over 24
persistent programs) as written below in Triton source. npulang runs the same kernels from
examples/tutorials.py with the same configuration (as benchmarks/wallclock.py does). Both get the
same inputs; each launch is warmed up once, then the two are timed interleaved, round by round, so
machine load hits both alike. The outputs of both are checked against numpy.

Triton and torch live in their own venv (.bench-venvs/triton, created on first use, never by
`make test`); Triton runs there as a worker subprocess this script drives over a pipe.

    python benchmarks/vs_triton.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".bench-venvs" / "triton"
# torch 2.13.0 is the CPU wheel that lies on this machine's disk; any other torch pulls a CUDA build
PEER_PACKAGES = ("triton==3.9.0", "torch==2.13.0", "numpy")
STAMP = VENV / ".installed"
KERNELS = ("matmul 512^3 (64x64x32, GROUP_SIZE_M=8)", "softmax 1024x1024 (24 programs)")

try:  # only the Triton venv's worker has triton; the npulang side never imports it
    import triton
    import triton.language as tl
except ImportError:
    triton = None

if triton is not None:
    @triton.jit
    def triton_matmul_kernel(a_ptr, b_ptr, c_ptr, M, N, K, stride_am, stride_ak, stride_bk, stride_bn,
                             stride_cm, stride_cn, BLOCK_SIZE_M: tl.constexpr, BLOCK_SIZE_N: tl.constexpr,
                             BLOCK_SIZE_K: tl.constexpr, GROUP_SIZE_M: tl.constexpr):
        """Triton tutorial 03 (grouped matmul), fp32 accumulator, output in c's dtype."""
        pid = tl.program_id(axis=0)
        num_pid_m = tl.cdiv(M, BLOCK_SIZE_M)
        num_pid_n = tl.cdiv(N, BLOCK_SIZE_N)
        num_pid_in_group = GROUP_SIZE_M * num_pid_n
        group_id = pid // num_pid_in_group
        first_pid_m = group_id * GROUP_SIZE_M
        group_size_m = min(num_pid_m - first_pid_m, GROUP_SIZE_M)
        pid_m = first_pid_m + ((pid % num_pid_in_group) % group_size_m)
        pid_n = (pid % num_pid_in_group) // group_size_m
        offs_am = (pid_m * BLOCK_SIZE_M + tl.arange(0, BLOCK_SIZE_M)) % M
        offs_bn = (pid_n * BLOCK_SIZE_N + tl.arange(0, BLOCK_SIZE_N)) % N
        offs_k = tl.arange(0, BLOCK_SIZE_K)
        a_ptrs = a_ptr + (offs_am[:, None] * stride_am + offs_k[None, :] * stride_ak)
        b_ptrs = b_ptr + (offs_k[:, None] * stride_bk + offs_bn[None, :] * stride_bn)
        accumulator = tl.zeros((BLOCK_SIZE_M, BLOCK_SIZE_N), dtype=tl.float32)
        for k in range(0, tl.cdiv(K, BLOCK_SIZE_K)):
            a = tl.load(a_ptrs, mask=offs_k[None, :] < K - k * BLOCK_SIZE_K, other=0.0)
            b = tl.load(b_ptrs, mask=offs_k[:, None] < K - k * BLOCK_SIZE_K, other=0.0)
            accumulator = tl.dot(a, b, accumulator)
            a_ptrs += BLOCK_SIZE_K * stride_ak
            b_ptrs += BLOCK_SIZE_K * stride_bk
        c = accumulator.to(c_ptr.dtype.element_ty)
        offs_cm = pid_m * BLOCK_SIZE_M + tl.arange(0, BLOCK_SIZE_M)
        offs_cn = pid_n * BLOCK_SIZE_N + tl.arange(0, BLOCK_SIZE_N)
        c_ptrs = c_ptr + stride_cm * offs_cm[:, None] + stride_cn * offs_cn[None, :]
        c_mask = (offs_cm[:, None] < M) & (offs_cn[None, :] < N)
        tl.store(c_ptrs, c, mask=c_mask)

    @triton.jit
    def triton_softmax_kernel(output_ptr, input_ptr, input_row_stride, output_row_stride, n_rows, n_cols,
                              BLOCK_SIZE: tl.constexpr, num_stages: tl.constexpr):
        """Triton tutorial 02 (fused softmax): persistent programs stepping over the rows."""
        row_start = tl.program_id(0)
        row_step = tl.num_programs(0)
        for row_idx in tl.range(row_start, n_rows, row_step, num_stages=num_stages):
            row_start_ptr = input_ptr + row_idx * input_row_stride
            col_offsets = tl.arange(0, BLOCK_SIZE)
            mask = col_offsets < n_cols
            row = tl.load(row_start_ptr + col_offsets, mask=mask, other=-float("inf"))
            row_minus_max = row - tl.max(row, axis=0)
            numerator = tl.exp(row_minus_max)
            denominator = tl.sum(numerator, axis=0)
            softmax_output = numerator / denominator
            output_row_start_ptr = output_ptr + row_idx * output_row_stride
            tl.store(output_row_start_ptr + col_offsets, softmax_output, mask=mask)


# -- the Triton side (runs in the Triton venv) ----------------------------------------------------
def _triton_launches(inputs: Path) -> dict[str, Callable[[], Any]]:
    import numpy as np
    import torch

    a = torch.from_numpy(np.load(inputs / "a.npy"))
    b = torch.from_numpy(np.load(inputs / "b.npy"))
    x = torch.from_numpy(np.load(inputs / "x.npy"))

    def matmul() -> Any:
        M, K = a.shape
        N = b.shape[1]
        c = torch.empty((M, N), dtype=torch.float16)
        grid = (triton.cdiv(M, 64) * triton.cdiv(N, 64),)
        triton_matmul_kernel[grid](a, b, c, M, N, K, a.stride(0), a.stride(1), b.stride(0), b.stride(1),
                                   c.stride(0), c.stride(1), BLOCK_SIZE_M=64, BLOCK_SIZE_N=64, BLOCK_SIZE_K=32,
                                   GROUP_SIZE_M=8)
        return c

    def softmax() -> Any:
        n_rows, n_cols = x.shape
        y = torch.empty_like(x)
        block = triton.next_power_of_2(n_cols)
        triton_softmax_kernel[(min(24, n_rows),)](y, x, x.stride(0), y.stride(0), n_rows, n_cols,
                                                  BLOCK_SIZE=block, num_stages=2)
        return y

    return dict(zip(KERNELS, (matmul, softmax)))


def _worker(inputs: Path) -> None:
    """Answer one line per request: a kernel name in, {"seconds": t} out; the output goes to a file."""
    import numpy as np

    launches = _triton_launches(inputs)
    print(json.dumps({"ready": triton.__version__}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        fn = launches[request["kernel"]]
        t = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - t
        if request.get("save"):
            np.save(inputs / f"triton_{KERNELS.index(request['kernel'])}.npy", out.numpy())
        print(json.dumps({"seconds": seconds}), flush=True)


# -- the npulang side ------------------------------------------------------------------------------
def ensure_venv() -> Path:
    """The Triton venv's python, creating the venv and installing the peer into it on first use."""
    python = VENV / "bin" / "python"
    if not STAMP.exists():
        print(f"installing {' '.join(PEER_PACKAGES)} into {VENV.relative_to(ROOT)} (once) ...", flush=True)
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True)
        STAMP.write_text(" ".join(PEER_PACKAGES) + "\n")
    return python


class TritonWorker:
    """The Triton interpreter in its own venv, one launch per request."""

    def __init__(self, python: Path, inputs: Path) -> None:
        env = dict(os.environ, TRITON_INTERPRET="1")
        self.proc = subprocess.Popen([str(python), str(Path(__file__).resolve()), "--worker", str(inputs)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.version = self._answer()["ready"]

    def _answer(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the Triton worker exited (code {self.proc.wait()})")
        return json.loads(line)

    def launch(self, kernel: str, save: bool = False) -> float:
        self.proc.stdin.write(json.dumps({"kernel": kernel, "save": save}) + "\n")
        self.proc.stdin.flush()
        return self._answer()["seconds"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def npulang_launches(tut: Any, a: Any, b: Any, x: Any) -> dict[str, Callable[[], Any]]:
    """The same two launches in npulang (examples/tutorials.py): functional, race detection on."""
    import numpy as np

    return dict(zip(KERNELS, (
        lambda: tut.run_matmul(a, b, np.float16, block=(64, 64, 32), group=8)[0],
        lambda: tut.run_softmax(x, programs=24)[0],
    )))


def compare(repeat: int) -> list[dict[str, Any]]:
    """Time both sides interleaved; return one row per kernel (best and median seconds of each)."""
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from examples import tutorials as tut

    rng = np.random.default_rng(0)
    a = rng.standard_normal((512, 512)).astype(np.float16)
    b = rng.standard_normal((512, 512)).astype(np.float16)
    x = rng.standard_normal((1024, 1024)).astype(np.float32)
    refs = (tut.ref_matmul(a, b, np.float16), tut.ref_softmax(x))
    tolerance = ({"rtol": 2e-2, "atol": 5e-2}, {"rtol": 1e-4, "atol": 1e-6})
    python = ensure_venv()
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp)
        for name, arr in (("a", a), ("b", b), ("x", x)):
            np.save(inputs / f"{name}.npy", arr)
        worker = TritonWorker(python, inputs)
        ours = npulang_launches(tut, a, b, x)
        times: dict[str, dict[str, list[float]]] = {k: {"npulang": [], "triton": []} for k in KERNELS}
        try:
            for i, kernel in enumerate(KERNELS):  # warm-up (compiles, caches), and the outputs checked
                out = ours[kernel]()
                worker.launch(kernel, save=True)
                theirs = np.load(inputs / f"triton_{i}.npy")
                for who, got in (("npulang", out), ("Triton", theirs)):
                    np.testing.assert_allclose(got.astype(np.float32), refs[i].astype(np.float32),
                                               err_msg=f"{who} {kernel}", **tolerance[i])
            for _ in range(repeat):
                for kernel in KERNELS:
                    t = time.perf_counter()
                    ours[kernel]()
                    times[kernel]["npulang"].append(time.perf_counter() - t)
                    times[kernel]["triton"].append(worker.launch(kernel))
        finally:
            worker.close()
    rows = []
    for kernel, by in times.items():
        row: dict[str, Any] = {"kernel": kernel, "triton_version": worker.version}
        for who, ts in by.items():
            row[f"{who}_best"], row[f"{who}_median"] = min(ts), statistics.median(ts)
        rows.append(row)
    return rows


def print_table(rows: list[dict[str, Any]], repeat: int) -> None:
    version = rows[0]["triton_version"]
    print(f"functional launch, best / median of {repeat} interleaved runs (warm-up excluded); "
          f"peer: Triton {version}, TRITON_INTERPRET=1, CPU tensors")
    print()
    print("| launch | npulang s | Triton interpreter s | speed-up (best / median) |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['kernel']} | {r['npulang_best']:.3f} / {r['npulang_median']:.3f} | "
              f"{r['triton_best']:.3f} / {r['triton_median']:.3f} | "
              f"{r['triton_best'] / r['npulang_best']:.1f}x / {r['triton_median'] / r['npulang_median']:.1f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds after the warm-up")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)  # inside the Triton venv
    ns = parser.parse_args()
    if ns.worker is not None:
        _worker(ns.worker)
        return
    print_table(compare(ns.repeat), ns.repeat)


if __name__ == "__main__":
    main()

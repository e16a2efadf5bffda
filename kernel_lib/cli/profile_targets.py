"""`npu-prof <op> --shape ...`: the kernel_lib operators as named profiling targets.

Registered under npulang's `npulang.profile_targets` entry-point group (npulang never imports
kernel_lib): each target parses its arguments as `npu-tune` does, makes random operands of that shape
and calls the operator once, inside npu-prof's profile, with the configuration a library call would use.
The call runs timing-only by default (the operands are random and the result is thrown away; the cycles
and the trace are the same), so profiling a 2048³ GEMM takes seconds; `--functional` computes it too.
"""

from __future__ import annotations

import argparse
from typing import Callable, Sequence

import numpy as np

import kernel_lib
import npulang as npu
from kernel_lib.cli.problems import DTYPES, OPS, parse_shape
from npulang.errors import NpuError


def _operands(op: str, shape: tuple[int, ...], dtype: np.dtype) -> Callable[[], object]:
    rng = np.random.default_rng(0)

    def rand(*dims: int) -> np.ndarray:
        if dtype == np.int8:
            return rng.integers(-128, 128, dims).astype(dtype)
        return rng.standard_normal(dims).astype(dtype)

    if op == "gemm":
        m, n, k = shape
        a, b = rand(m, k), rand(k, n)
        return lambda: kernel_lib.gemm(a, b)
    if op == "conv2d":
        n, c, h, w, k, r, s, stride, pad = (*shape, 1, 0)[:9] if len(shape) == 7 else (*shape, 0)[:9]
        x, f = rand(n, h, w, c), rand(k, c, r, s)
        if dtype != np.int8:  # keep float outputs near unit scale (int8 accumulates exactly in int32)
            f = f / np.asarray(c * r * s, dtype)
        return lambda: kernel_lib.conv2d(x, f, stride=stride, padding=pad, layout="NHWC")  # as npu-tune tunes it
    if op.startswith("attention"):
        q, k, v = rand(*shape), rand(*shape), rand(*shape)
        return lambda: kernel_lib.attention(q, k, v, causal=op == "attention_causal")
    x = rand(*shape)
    if op in ("layer_norm", "rms_norm"):
        return lambda: getattr(kernel_lib, op)(x, shape[-1])
    return lambda: getattr(kernel_lib, op)(x)


def _target(op: str) -> Callable[[Sequence[str]], None]:
    def run(argv: Sequence[str]) -> None:
        parser = argparse.ArgumentParser(prog=f"npu-prof {op}", exit_on_error=False)
        parser.add_argument("--shape", required=True, help=OPS[op].form)
        parser.add_argument("--dtype", default="fp16", choices=OPS[op].dtypes)
        parser.add_argument("--functional", action="store_true",
                            help="also compute the result (slower; the cycles are the same)")
        try:
            opts = parser.parse_args(list(argv))
            shape = parse_shape(op, opts.shape)
        except (argparse.ArgumentError, ValueError) as exc:
            raise NpuError(f"npu-prof {op}: {exc} (usage: npu-prof {op} --shape {OPS[op].form} "
                           f"[--dtype {'|'.join(OPS[op].dtypes)}])") from None
        call = _operands(op, shape, DTYPES[opts.dtype])
        if opts.functional:
            call()
        else:
            with npu.launch_defaults(timing_only=True):
                call()
    return run


gemm = _target("gemm")
conv2d = _target("conv2d")
softmax = _target("softmax")
layer_norm = _target("layer_norm")
rms_norm = _target("rms_norm")
attention = _target("attention")
attention_causal = _target("attention_causal")

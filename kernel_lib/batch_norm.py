"""batch_norm (inference): per-channel affine normalisation with running statistics, NCHW or NHWC.

x is viewed as [N, C, S] (NCHW: S = H·W, or any trailing spatial dims) and each program normalises
[BC, BS] tiles, loading the BC channels' statistics once per tile, so small spatial sizes (7×7) still
move large blocks. NHWC is the same with the channel dimension last: [N·S, C] rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import npulang as npu
from autotune import Config
from kernel_lib import arguments
from kernel_lib.errors import OperatorError
from kernel_lib.launching import Meta, cores, pow2_at_least
from kernel_lib.tuning import Problem, TunedKernel


@npu.jit
def _batch_norm_kernel(x_ptr, mean_ptr, var_ptr, w_ptr, b_ptr, y_ptr, n, c, s, eps, HAS_W: npu.constexpr,
                       HAS_B: npu.constexpr, CHANNELS_LAST: npu.constexpr, BC: npu.constexpr,
                       BS: npu.constexpr, num_stages: npu.constexpr):
    pid = npu.program_id(0)
    step = npu.num_programs(0)
    c_tiles = npu.cdiv(c, BC)
    s_tiles = npu.cdiv(s, BS)
    for t in npu.range(pid, n * c_tiles * s_tiles, step, num_stages=num_stages):
        ni = t // (c_tiles * s_tiles)
        ci = (t // s_tiles) % c_tiles * BC + npu.arange(0, BC)
        si = t % s_tiles * BS + npu.arange(0, BS)
        cmask = ci < c
        scale = npu.rsqrt(npu.load(var_ptr + ci, mask=cmask, other=1.0).to(npu.float32) + eps)
        if HAS_W:
            scale = scale * npu.load(w_ptr + ci, mask=cmask, other=0.0).to(npu.float32)
        shift = -npu.load(mean_ptr + ci, mask=cmask, other=0.0).to(npu.float32) * scale
        if HAS_B:
            shift = shift + npu.load(b_ptr + ci, mask=cmask, other=0.0).to(npu.float32)
        if CHANNELS_LAST:
            offs = (ni * s + si[:, None]) * c + ci[None, :]
            mask = (si[:, None] < s) & cmask[None, :]
            x = npu.load(x_ptr + offs, mask=mask, other=0.0).to(npu.float32)
            y = x * scale[None, :] + shift[None, :]
        else:
            offs = (ni * c + ci[:, None]) * s + si[None, :]
            mask = cmask[:, None] & (si[None, :] < s)
            x = npu.load(x_ptr + offs, mask=mask, other=0.0).to(npu.float32)
            y = x * scale[:, None] + shift[:, None]
        npu.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


def _prune(configs: list[Config], named: dict[str, Any]) -> list[Config]:
    """Tiles more than the channels or positions there are (rounded up to a power of two) only move padding."""
    c, s = named["c"], named["s"]
    return [k for k in configs if k.kwargs["BC"] <= max(8, pow2_at_least(c)) and k.kwargs["BS"] <= max(
        64, pow2_at_least(s))] or configs


# The search space (npu-tune): channels BC and positions BS per tile, the tile loop's pipelining depth.
# The key: the [N, C, S] view, the layout and which of weight and bias there are.
BATCH_NORM = TunedKernel("batch_norm", _batch_norm_kernel, {"BC": [8, 16, 32, 64],
                                                            "BS": [64, 128, 256, 512, 1024, 2048, 4096, 8192],
                                                            "num_stages": [1, 2, 3]},
                         key=["n", "c", "s", "HAS_W", "HAS_B", "CHANNELS_LAST"], prune=_prune)


def rule(c: int, s: int) -> list[Meta]:
    """The most channels (<= 64) and then the most positions that fit a block of 8192 elements, double-
    buffered; then fewer channels, and 64 positions."""
    bc_max = min(pow2_at_least(c), 64)
    return [{"BC": bc, "BS": bs, "num_stages": 2} for bc in (bc_max, 16, 8) if bc <= bc_max
            for bs in (min(pow2_at_least(s), 8192 // bc), 64) if bs <= pow2_at_least(s) or bs == 64]


def problem(x: np.ndarray, mean: np.ndarray, var: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None,
            y: np.ndarray, eps: float, layout: str) -> Problem:
    """The launch over x viewed as [N, C, S] (NCHW) or [N·S, C] rows (NHWC); roofline: x read once, y
    written once, the [C] vectors read once."""
    c = x.shape[1] if layout == "NCHW" else x.shape[-1]
    n, s = x.shape[0], x.size // (x.shape[0] * c)
    args = (x, mean, var, x if weight is None else weight, x if bias is None else bias, y, n, c, s, eps)
    flags = {"HAS_W": weight is not None, "HAS_B": bias is not None, "CHANNELS_LAST": layout == "NHWC"}
    moved = 2 * x.nbytes + sum(a.nbytes for a in (mean, var, weight, bias) if a is not None)
    shape = "x".join(map(str, x.shape)) + ("" if layout == "NCHW" else ":nhwc")
    return Problem(BATCH_NORM, lambda meta: (cores(),), args, flags, rule(c, s),
                   moved / npu.get_machine().hbm_bytes_per_cycle, "HBM", shape=shape, op="batch_norm")


def batch_norm(x: np.ndarray, running_mean: np.ndarray, running_var: np.ndarray, weight: np.ndarray | None = None,
               bias: np.ndarray | None = None, eps: float = 1e-5, *, layout: str = "NCHW") -> np.ndarray:
    """(x - running_mean) / sqrt(running_var + eps) · weight + bias per channel (inference mode).

    x is [N, C, *spatial] for layout "NCHW" or [N, *spatial, C] for "NHWC"; the statistics, weight and
    bias are [C] in x's dtype. Computed in fp32, returned in x's dtype.
    """
    op = "batch_norm"
    x = arguments.array(op, "x", x, min_ndim=2)
    if layout not in ("NCHW", "NHWC"):
        raise OperatorError(f"kernel_lib.{op}: layout must be 'NCHW' or 'NHWC', got {layout!r}")
    c = x.shape[1] if layout == "NCHW" else x.shape[-1]
    params = {name: None if a is None and name in ("weight", "bias") else arguments.array(op, name, a)
              for name, a in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                              ("bias", bias))}
    for name, a in params.items():
        arguments.shape(op, name, a, (c,))
    arguments.same_dtype(op, x=x, **params)
    eps = arguments.positive_float(op, "eps", eps)
    y = np.empty_like(x)
    problem(x, params["running_mean"], params["running_var"], params["weight"], params["bias"], y, eps,
            layout).launch()
    return y

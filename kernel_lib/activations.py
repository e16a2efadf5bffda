"""Elementwise activations: relu, gelu, silu, sigmoid, tanh (and the `activate` helper epilogues use).

Each runs one persistent program per core over the flattened array, software-pipelined so the load
of the next block overlaps the math of this one; fp16/bf16 inputs compute in fp32. `gelu` is the
exact (erf) form, as `torch.nn.functional.gelu` by default; `approximate="tanh"` gives the tanh form.
"""

from __future__ import annotations

import numpy as np

import npulang as npu
from kernel_lib import arguments
from kernel_lib.errors import OperatorError
from kernel_lib.launching import cores
from kernel_lib.tuning import Problem, TunedKernel

ACTIVATIONS = ("relu", "gelu", "gelu_tanh", "silu", "sigmoid", "tanh")


@npu.jit
def activate(x, ACTIVATION: npu.constexpr):
    """`x` through the named activation ("" leaves it as it is); fused into other kernels' epilogues."""
    if ACTIVATION == "relu":
        x = npu.maximum(x, 0.0)
    if ACTIVATION == "gelu":
        x = 0.5 * x * (1.0 + npu.erf(x * 0.7071067811865476))
    if ACTIVATION == "gelu_tanh":
        x = 0.5 * x * (1.0 + npu.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
    if ACTIVATION == "silu":
        x = x * npu.sigmoid(x)
    if ACTIVATION == "sigmoid":
        x = npu.sigmoid(x)
    if ACTIVATION == "tanh":
        x = npu.tanh(x)
    return x


@npu.jit
def _activation_kernel(x_ptr, y_ptr, n, ACTIVATION: npu.constexpr, BLOCK: npu.constexpr,
                       num_stages: npu.constexpr):
    pid = npu.program_id(0)
    step = npu.num_programs(0)
    for start in npu.range(pid * BLOCK, n, step * BLOCK, num_stages=num_stages):
        offs = start + npu.arange(0, BLOCK)
        mask = offs < n
        x = npu.load(x_ptr + offs, mask=mask, other=0.0).to(npu.float32)
        npu.store(y_ptr + offs, activate(x, ACTIVATION).to(y_ptr.dtype.element_ty), mask=mask)


# The search space (npu-tune): elements per block and the loop's pipelining depth.
ELEMENTWISE = TunedKernel("activation", _activation_kernel, {"BLOCK": [1024, 2048, 4096, 8192, 16384],
                                                             "num_stages": [1, 2, 3]}, key=["n", "ACTIVATION"])


def problem(op: str, activation: str, x: np.ndarray, y: np.ndarray) -> Problem:
    """The launch of one activation over x; the rule: the largest block of 8192, 4096, 2048, 1024 that fits,
    double-buffered."""
    heuristic = [{"BLOCK": block, "num_stages": 2} for block in (8192, 4096, 2048, 1024)]
    roof = 2 * x.nbytes / npu.get_machine().hbm_bytes_per_cycle
    return Problem(ELEMENTWISE, lambda meta: (cores(),), (x, y, x.size), {"ACTIVATION": activation}, heuristic,
                   roof, "HBM", shape=str(x.size), op=op)


def _apply(op: str, activation: str, x: np.ndarray) -> np.ndarray:
    x = arguments.array(op, "x", x)
    y = np.empty_like(x)
    problem(op, activation, x, y).launch()
    return y


def relu(x: np.ndarray) -> np.ndarray:
    """max(x, 0), elementwise, in x's dtype (float16, bfloat16 or float32)."""
    return _apply("relu", "relu", x)


def gelu(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    """x·Φ(x), elementwise: exact (erf) by default, `approximate="tanh"` for the tanh form (as PyTorch)."""
    if approximate not in ("none", "tanh"):
        raise OperatorError(f"kernel_lib.gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return _apply("gelu", "gelu" if approximate == "none" else "gelu_tanh", x)


def silu(x: np.ndarray) -> np.ndarray:
    """x·sigmoid(x), elementwise (also called swish)."""
    return _apply("silu", "silu", x)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), elementwise."""
    return _apply("sigmoid", "sigmoid", x)


def tanh(x: np.ndarray) -> np.ndarray:
    """tanh(x), elementwise."""
    return _apply("tanh", "tanh", x)

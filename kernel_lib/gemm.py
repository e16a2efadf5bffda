"""gemm and matmul: C = activation(alpha·op(A)·op(B) + beta·C + bias), fused in one kernel.

The kernel reads A and B through tensor descriptors (strided 2-D DMA into L1, MTE1 moves into
L0A/L0B, transposing moves for `trans_a`/`trans_b`), accumulates in L0C (fp32 for fp16/bf16/f32
inputs, int32 for int8), and applies alpha, beta·C, the bias and the activation to the accumulator
before the one store, so an epilogue costs no extra launch. Programs are ordered in groups of
GROUP_M row blocks so that neighbouring programs share B tiles in L2. `matmul` batches over leading
dimensions with NumPy's broadcasting, one grid axis per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

import npulang as npu
from autotune import Config
from kernel_lib import arguments
from kernel_lib.activations import ACTIVATIONS, activate
from kernel_lib.errors import OperatorError
from kernel_lib.tuning import Problem, TunedKernel

INPUT_DTYPES = (*arguments.FLOAT_DTYPES, np.dtype(np.int8))


@npu.jit
def _gemm_kernel(a_ptr, b_ptr, c_ptr, bias_ptr, scale_ptr, y_ptr, M, N, K, alpha, beta, a_batch, b_batch, c_batch,
                 y_batch, TRANS_A: npu.constexpr, TRANS_B: npu.constexpr, HAS_ALPHA: npu.constexpr,
                 HAS_C: npu.constexpr, HAS_BIAS: npu.constexpr, ACTIVATION: npu.constexpr, REQUANT: npu.constexpr,
                 ACC: npu.constexpr, BM: npu.constexpr, BN: npu.constexpr, BK: npu.constexpr, GROUP_M: npu.constexpr):
    pid = npu.program_id(0)
    batch = npu.program_id(1)
    num_m = npu.cdiv(M, BM)
    num_n = npu.cdiv(N, BN)
    group = GROUP_M * num_n
    first_m = pid // group * GROUP_M
    group_m = min(num_m - first_m, GROUP_M)
    pid_m = first_m + (pid % group) % group_m
    pid_n = (pid % group) // group_m
    a_base = a_ptr + batch * a_batch
    b_base = b_ptr + batch * b_batch
    if TRANS_A:
        a_desc = npu.make_tensor_descriptor(a_base, shape=[K, M], strides=[M, 1], block_shape=[BK, BM])
    else:
        a_desc = npu.make_tensor_descriptor(a_base, shape=[M, K], strides=[K, 1], block_shape=[BM, BK])
    if TRANS_B:
        b_desc = npu.make_tensor_descriptor(b_base, shape=[N, K], strides=[K, 1], block_shape=[BN, BK])
    else:
        b_desc = npu.make_tensor_descriptor(b_base, shape=[K, N], strides=[N, 1], block_shape=[BK, BN])
    acc = npu.zeros((BM, BN), dtype=ACC)
    for k in range(0, K, BK):
        if TRANS_A:
            a = npu.trans(a_desc.load([k, pid_m * BM]))
        else:
            a = a_desc.load([pid_m * BM, k])
        if TRANS_B:
            b = npu.trans(b_desc.load([pid_n * BN, k]))
        else:
            b = b_desc.load([k, pid_n * BN])
        acc = npu.dot(a, b, acc=acc)
    if HAS_ALPHA:
        acc = acc * alpha
    if HAS_C:
        c_desc = npu.make_tensor_descriptor(c_ptr + batch * c_batch, shape=[M, N], strides=[N, 1],
                                            block_shape=[BM, BN])
        acc = acc + beta * c_desc.load([pid_m * BM, pid_n * BN]).to(acc.dtype)
    if HAS_BIAS:
        cols = pid_n * BN + npu.arange(0, BN)
        acc = acc + npu.load(bias_ptr + cols, mask=cols < N, other=0).to(acc.dtype)[None, :]
    acc = activate(acc, ACTIVATION)
    if REQUANT == "tensor":
        acc = npu.minimum(npu.maximum(npu.floor(acc.to(npu.float32) * npu.load(scale_ptr) + 0.5), -128.0), 127.0)
    if REQUANT == "channel":
        cols = pid_n * BN + npu.arange(0, BN)
        scale = npu.load(scale_ptr + cols, mask=cols < N, other=0.0)
        acc = npu.minimum(npu.maximum(npu.floor(acc.to(npu.float32) * scale[None, :] + 0.5), -128.0), 127.0)
    y_desc = npu.make_tensor_descriptor(y_ptr + batch * y_batch, shape=[M, N], strides=[N, 1],
                                        block_shape=[BM, BN])
    y_desc.store([pid_m * BM, pid_n * BN], acc.to(y_ptr.dtype.element_ty))


def _out_dtype(op: str, a: np.ndarray, out_dtype: Any) -> np.dtype:
    if out_dtype is None:
        return np.dtype(np.int32) if a.dtype == np.int8 else a.dtype
    dt = np.dtype(out_dtype)
    allowed = (np.dtype(np.int32), np.dtype(np.int8)) if a.dtype == np.int8 else arguments.FLOAT_DTYPES
    if dt not in allowed:
        raise OperatorError(f"kernel_lib.{op}: out_dtype {dt} is not available for {a.dtype} inputs; use "
                            f"{arguments.dtype_names(allowed)}")
    return dt


def _heuristic(m: int, n: int, k: int, batches: int, dtype: str) -> list[dict[str, Any]]:
    """The rule: of the tiles no more than twice the problem's M and N (small problems take small tiles),
    the quickest by a wave estimate first, GROUP_M=8, double-buffered K loop. The estimate is waves of
    programs over the cores times the K steps times the slower of a step's cube time and its MTE2 time
    (A and B tiles at the machine's MTE2 rate plus two commands' set-up): 128x176 fills 1024² in two full
    waves where 128x256 leaves a third of the last empty; ties keep the larger tile."""
    tiles = [(128, 256, 32), (128, 176, 64), (128, 128, 64), (128, 128, 32), (64, 128, 32), (64, 64, 32),
             (32, 32, 32), (16, 16, 32)]
    fitting = [t for t in tiles if t[0] <= max(16, m) * 2 and t[1] <= max(16, n) * 2] or tiles[-1:]
    spec = npu.get_machine()
    gm, gn, _ = spec.cube_tile(dtype)
    size = {"i8": 1, "f32": 4}.get(dtype, 2)

    def estimate(tile: tuple[int, int, int]) -> float:
        bm, bn, bk = tile
        waves = -(-npu.cdiv(m, bm) * npu.cdiv(n, bn) * batches // spec.cores)
        cube = npu.cdiv(bm, gm) * gm * npu.cdiv(bn, gn) * gn * bk / spec.cube_macs_per_cycle(dtype=dtype)
        mte2 = (bm + bn) * bk * size / spec.mte2.bytes_per_cycle + 2 * spec.mte2.command_cycles
        return waves * npu.cdiv(k, bk) * max(cube, mte2)

    ranked = sorted(fitting, key=lambda t: (estimate(t), -t[0] * t[1]))
    return [{"BM": bm, "BN": bn, "BK": bk, "GROUP_M": 8, "num_stages": 2} for bm, bn, bk in ranked]


def _prune(configs: list[Config], named: dict[str, Any]) -> list[Config]:
    """Tiles more than twice the problem in M or N only compute padding: not worth a simulation."""
    m, n = named["M"], named["N"]
    return [c for c in configs if c.kwargs["BM"] <= max(32, 2 * m) and c.kwargs["BN"] <= max(32, 2 * n)] or configs


# The search space npu-tune explores: output tiles BM x BN (the L0C accumulator; 176 = 11 fractals, so that
# tile counts fill the last wave: 1024² in 128x176 tiles is 48 programs, two full waves of 24 cores,
# where 128x128 makes 64 programs in three waves for 2.67 and 128x256 32 in two for 1.33), the K step BK (the
# L0A/L0B operand tiles; larger steps mean fewer, longer DMA commands), GROUP_M (row blocks per group
# of programs sharing B tiles in L2) and the K loop's pipelining depth. Configs that do not fit the
# machine's buffers are pruned by compiling only. The key is the problem and its epilogue (a GELU epilogue
# can cost as much vector time as the K loop takes); a batched call uses its per-batch problem's record.
GEMM = TunedKernel("gemm", _gemm_kernel, {"BM": [32, 64, 128, 176, 256], "BN": [32, 64, 128, 176, 256],
                                          "BK": [32, 64, 128], "GROUP_M": [1, 8], "num_stages": [2, 3]},
                   key=["M", "N", "K", "TRANS_A", "TRANS_B", "HAS_C", "HAS_BIAS", "ACTIVATION", "REQUANT"],
                   prune=_prune)


@dataclass(frozen=True)
class GemmCall:
    """One checked gemm launch: operands, the [M, N, K] problem, its batches and epilogue."""

    a: np.ndarray
    b: np.ndarray
    y: np.ndarray
    m: int
    n: int
    k: int
    trans_a: bool = False
    trans_b: bool = False
    c: np.ndarray | None = None
    bias: np.ndarray | None = None
    scale: np.ndarray | None = None  # int8 requantisation: [1] per tensor or [N] per output channel
    alpha: float = 1.0
    beta: float = 0.0
    activation: str | None = None
    batches: int = 1
    batch_strides: tuple[int, int, int, int] = (0, 0, 0, 0)  # a, b, c, y: elements between batches

    def problem(self) -> Problem:
        """This launch as a tuned-kernel problem (npu-tune tunes the same)."""
        requant = "" if self.scale is None else "tensor" if self.scale.size == 1 else "channel"
        flags = {"TRANS_A": self.trans_a, "TRANS_B": self.trans_b, "HAS_ALPHA": self.alpha != 1.0,
                 "HAS_C": self.c is not None and self.beta != 0, "HAS_BIAS": self.bias is not None,
                 "ACTIVATION": self.activation or "", "REQUANT": requant,
                 "ACC": npu.int32 if self.a.dtype == np.int8 else npu.float32}
        y = self.y  # stands in for the pointers a flag leaves unused
        args = (self.a, self.b, y if self.c is None else self.c, y if self.bias is None else self.bias,
                y if self.scale is None else self.scale, y, self.m, self.n, self.k, self.alpha, self.beta,
                *self.batch_strides)
        m, n, k, batches = self.m, self.n, self.k, self.batches
        spec = npu.get_machine()
        dtype = {"int8": "i8", "float32": "f32"}.get(str(self.a.dtype), "f16")
        macs = batches * m * n * k
        return Problem(GEMM, lambda meta: (npu.cdiv(m, meta["BM"]) * npu.cdiv(n, meta["BN"]), batches), args, flags,
                       _heuristic(m, n, k, batches, dtype), macs / (spec.cube_macs_per_cycle(dtype=dtype) * spec.cores),
                       "cube", 2 * macs, f"{m}x{n}x{k}")


def _requant_scale(op: str, y: np.ndarray, n: int, scale: float | np.ndarray | None) -> np.ndarray | None:
    """The requantisation scale as a float32 array ([1] or [N]); only int8 outputs take one, and need one."""
    if y.dtype != np.int8:
        if scale is not None:
            raise OperatorError(f"kernel_lib.{op}: scale requantises int8 outputs; out_dtype is {y.dtype}")
        return None
    if scale is None:
        raise OperatorError(f"kernel_lib.{op}: an int8 output needs scale= (a float, or a float32 array of [N] "
                            f"per-channel scales)")
    if isinstance(scale, np.ndarray):
        scale = arguments.array(op, "scale", scale, (np.dtype(np.float32),), ndim=1)
        arguments.shape(op, "scale", scale, (n,))
        if not (np.isfinite(scale) & (scale > 0)).all():
            raise OperatorError(f"kernel_lib.{op}: scale must hold positive finite numbers, got {scale}")
        return scale
    value = arguments.positive_float(op, "scale", scale)
    if value > float(np.finfo(np.float32).max):
        raise OperatorError(f"kernel_lib.{op}: scale must be a positive number "
                            f"within float32's range, got {scale!r}")
    return np.array([value], np.float32)


def check_activation(op: str, activation: str | None) -> None:
    """Raise OperatorError unless `activation` is None or an epilogue the kernels fuse."""
    if activation not in (None, *ACTIVATIONS):
        raise OperatorError(f"kernel_lib.{op}: activation must be None or one of {', '.join(ACTIVATIONS)}, "
                            f"got {activation!r}")


def gemm(a: np.ndarray, b: np.ndarray, *, c: np.ndarray | None = None, alpha: float = 1.0, beta: float = 0.0,
         trans_a: bool = False, trans_b: bool = False, bias: np.ndarray | None = None, activation: str | None = None,
         out_dtype: Any = None, scale: float | np.ndarray | None = None) -> np.ndarray:
    """activation(alpha · op(a) @ op(b) + beta · c + bias), as BLAS gemm with a fused epilogue.

    a is [M, K] ([K, M] with `trans_a`), b is [K, N] ([N, K] with `trans_b`: the `x @ W.T` layout of a
    linear layer); c is [M, N] and bias [N]. fp16/bf16/f32 inputs accumulate in fp32 (f32 at the
    machine's f32 cube rate), int8 in int32. The result has `out_dtype` (default: a's dtype, int32 for
    int8 inputs). int8 inputs with `out_dtype=np.int8` requantise: y = clamp(floor(acc · scale + 0.5),
    -128, 127) with `scale` a float (per tensor) or a float32 [N] array (per output channel), applied
    after the rest of the epilogue.
    """
    op = "gemm"
    a = arguments.array(op, "a", a, INPUT_DTYPES, ndim=2)
    b = arguments.array(op, "b", b, INPUT_DTYPES, ndim=2)
    arguments.same_dtype(op, a=a, b=b)
    check_activation(op, activation)
    m, k = a.shape[::-1] if trans_a else a.shape
    kb, n = b.shape[::-1] if trans_b else b.shape
    if k != kb:
        raise OperatorError(f"kernel_lib.{op}: inner dimensions differ: op(a) is {m}x{k}, op(b) is {kb}x{n} "
                            f"(a {a.shape}, trans_a={trans_a}; b {b.shape}, trans_b={trans_b})")
    y = np.empty((m, n), _out_dtype(op, a, out_dtype))
    if c is not None:
        c = arguments.array(op, "c", c, (y.dtype,), ndim=2)
        arguments.shape(op, "c", c, (m, n))
    if bias is not None:
        bias = arguments.array(op, "bias", bias, (y.dtype,), ndim=1)
        arguments.shape(op, "bias", bias, (n,))
    GemmCall(a, b, y, m, n, k, trans_a, trans_b, c, bias, _requant_scale(op, y, n, scale), float(alpha),
             float(beta), activation).problem().launch()
    return y


def _batched(x: np.ndarray, batch: tuple[int, ...], size: int) -> tuple[np.ndarray, int]:
    """x and its batch stride in elements: every batch of its own, one shared by all (0), or broadcast.

    A partial broadcast (some batch dimensions of size 1, others not) is expanded on the host: that copy
    is not part of the simulated cycles.
    """
    if x.shape[:-2] == batch:
        return x, size
    if int(np.prod(x.shape[:-2])) == 1:
        return x, 0
    return np.ascontiguousarray(np.broadcast_to(x, (*batch, *x.shape[-2:]))), size


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b as `np.matmul`: 1-D operands promoted and squeezed, leading dimensions broadcast as batches."""
    op = "matmul"
    a = arguments.array(op, "a", a, INPUT_DTYPES, min_ndim=1)
    b = arguments.array(op, "b", b, INPUT_DTYPES, min_ndim=1)
    arguments.same_dtype(op, a=a, b=b)
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    (m, k), (kb, n) = a2.shape[-2:], b2.shape[-2:]
    if k != kb:
        raise OperatorError(f"kernel_lib.{op}: shapes {a.shape} and {b.shape} are not aligned: {k} != {kb}")
    try:
        batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    except ValueError:
        raise OperatorError(f"kernel_lib.{op}: batch dimensions of {a.shape} and {b.shape} do not broadcast") from None
    a2, stride_a = _batched(a2, batch, m * k)
    b2, stride_b = _batched(b2, batch, k * n)
    y = np.empty((*batch, m, n), _out_dtype(op, a, None))
    call = GemmCall(a2, b2, y, m, n, k, batches=int(np.prod(batch)), batch_strides=(stride_a, stride_b, 0, m * n))
    call.problem().launch()
    if a.ndim == 1:
        y = y[..., 0, :]
    if b.ndim == 1:
        y = y[..., 0]
    return y

"""attention: softmax(q kᵀ · scale) v, fused flash-style, as `torch.nn.functional.scaled_dot_product_attention`.

One program takes BM query rows of one batch (every leading dimension: batch, heads) and walks the keys
in blocks of BN with an online softmax (a running row max m and row sum l, the output accumulator rescaled
as m grows), so the Sq × Sk scores live only on chip, one [BM, BN] block at a time. Per block: the cube
computes q kᵀ into L0C; the vector unit takes the row max, p = exp2(s · scale·log2(e) − m) with one fused
multiply-add (`npu.fma`), the row sum and p's cast to the input dtype; the cube computes p v; and one more
fused multiply-add rescales the accumulator and adds p v (acc · α + p v). Softmax statistics and the
accumulator are fp32 (fp16/bf16 inputs; P goes to the cube in the input dtype, as FlashAttention does).
Blocks that need a mask (the last, ragged key block; the blocks crossing the causal diagonal) run in a loop
of their own, so the others pay nothing for it.

`causal=True` masks as torch's `is_causal=True` does: top-left aligned, query i sees keys j ≤ i (for
Sq ≠ Sk too; torch's `causal_lower_right` bias is not this).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

import npulang as npu
from kernel_lib import arguments
from kernel_lib.errors import OperatorError
from kernel_lib.tuning import Problem, TunedKernel

LOG2E = 1.4426950408889634


@npu.jit
def _attention_blocks(acc, l_i, m_i, q, k_desc, v_desc, m0, lo, hi, n_k, qk_scale, MASKED: npu.constexpr,
                      CAUSAL: npu.constexpr, BM: npu.constexpr, BN: npu.constexpr, num_stages: npu.constexpr):
    offs_m = m0 + npu.arange(0, BM)
    offs_n = npu.arange(0, BN)
    for n0 in npu.range(lo, hi, BN, num_stages=num_stages):
        qk = npu.dot(q, k_desc.load([n0, 0]).T)
        if MASKED:  # scale, then mask with -inf: any finite fill is beaten by a large enough scale
            keep = (n0 + offs_n[None, :]) < n_k
            if CAUSAL:
                keep = keep & ((n0 + offs_n[None, :]) <= offs_m[:, None])
            qk = npu.where(keep, qk * qk_scale, -float("inf"))
            m_ij = npu.maximum(m_i, npu.max(qk, 1))
            p = npu.exp2(qk - m_ij[:, None])
        else:  # qk_scale >= 0 (the host negates q for a negative scale): max(s) · scale is max(s · scale)
            m_ij = npu.maximum(m_i, npu.max(qk, 1) * qk_scale)
            p = npu.exp2(npu.fma(qk, qk_scale, -m_ij[:, None]))
        alpha = npu.exp2(m_i - m_ij)
        l_i = npu.fma(l_i, alpha, npu.sum(p, 1))
        pv = npu.dot(p.to(q.dtype), v_desc.load([n0, 0]))
        acc = npu.fma(acc, alpha[:, None], pv)
        m_i = m_ij
    return acc, l_i, m_i


@npu.jit
def _attention_kernel(q_ptr, k_ptr, v_ptr, o_ptr, n_q, n_k, D, DV, qk_scale, q_batch, k_batch, v_batch,
                      CAUSAL: npu.constexpr, BD: npu.constexpr, BDV: npu.constexpr, BM: npu.constexpr,
                      BN: npu.constexpr, num_stages: npu.constexpr):
    batch = npu.program_id(0)  # batches vary fastest: a core's programs then span all query blocks (causal:
    m0 = npu.program_id(1) * BM  # light and heavy alike), where blocks fastest would give each core a few rows
    q_desc = npu.make_tensor_descriptor(q_ptr + batch * q_batch, shape=[n_q, D], strides=[D, 1], block_shape=[BM, BD])
    k_desc = npu.make_tensor_descriptor(k_ptr + batch * k_batch, shape=[n_k, D], strides=[D, 1], block_shape=[BN, BD])
    v_desc = npu.make_tensor_descriptor(v_ptr + batch * v_batch, shape=[n_k, DV], strides=[DV, 1],
                                        block_shape=[BN, BDV])
    o_desc = npu.make_tensor_descriptor(o_ptr + batch * n_q * DV, shape=[n_q, DV], strides=[DV, 1],
                                        block_shape=[BM, BDV])
    m_i = npu.full([BM], -float("inf"), dtype=npu.float32)
    l_i = npu.zeros([BM], dtype=npu.float32)
    acc = npu.zeros([BM, BDV], dtype=npu.float32)
    q = q_desc.load([m0, 0])
    if CAUSAL:  # keys up to the block's last query; those up to its first need no mask
        hi = min(n_k, m0 + BM)
        unmasked = min(n_k, m0 + 1) // BN * BN
    else:
        hi = n_k
        unmasked = n_k // BN * BN
    acc, l_i, m_i = _attention_blocks(acc, l_i, m_i, q, k_desc, v_desc, m0, 0, unmasked, n_k, qk_scale, False,
                                      CAUSAL, BM, BN, num_stages)
    # the masked blocks (one, or a few on the causal diagonal) single-buffered: their loop's buffers would
    # otherwise crowd L1 out of the room that lets consecutive programs overlap
    acc, l_i, m_i = _attention_blocks(acc, l_i, m_i, q, k_desc, v_desc, m0, unmasked, hi, n_k, qk_scale, True,
                                      CAUSAL, BM, BN, 1)
    o_desc.store([m0, 0], (acc / l_i[:, None]).to(o_ptr.dtype.element_ty))


# The search space npu-tune explores: query rows per program BM (the cube's M; the vector work per key block
# grows with it, the K and V traffic does not), key block BN, and the key loop's pipelining depth. The key is
# the per-batch problem and the mask; a call with more batches uses its per-batch problem's record.
ATTENTION = TunedKernel("attention", _attention_kernel, {"BM": [32, 64, 128], "BN": [64, 128, 256],
                                                         "num_stages": [2, 3]},
                        key=["n_q", "n_k", "D", "DV", "CAUSAL"])


def _heuristic(n_q: int, n_k: int) -> list[dict[str, Any]]:
    """The rule: 64 query rows × 128 keys, triple-buffered, else smaller blocks; blocks no more than twice the
    problem's Sq and Sk (short sequences take short blocks)."""
    blocks = [(64, 128, 3), (64, 128, 2), (64, 64, 2), (32, 64, 2), (32, 32, 2), (16, 32, 1)]
    fitting = [b for b in blocks if b[0] <= 2 * max(16, n_q) and b[1] <= 2 * max(32, n_k)] or blocks[-1:]
    return [{"BM": bm, "BN": bn, "num_stages": st} for bm, bn, st in fitting]


def unmasked_pairs(n_q: int, n_k: int, causal: bool) -> int:
    """(query, key) pairs the softmax weighs: all of them, or with the top-left causal mask those with j ≤ i."""
    if not causal:
        return n_q * n_k
    full = min(n_q, n_k)  # rows 0..full-1 see i + 1 keys, the rest all n_k
    return full * (full + 1) // 2 + (n_q - full) * n_k


@dataclass(frozen=True)
class AttentionCall:
    """One checked attention launch: [batches, S, D] operands (batch strides 0 where shared) and the output."""

    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    out: np.ndarray
    batches: int
    strides: tuple[int, int, int]  # elements between batches of q, k, v
    scale: float
    causal: bool

    def problem(self) -> Problem:
        """This launch as a tuned-kernel problem (npu-tune tunes the same)."""
        n_q, d = self.q.shape[-2:]
        n_k, dv = self.v.shape[-2:]
        args = (self.q, self.k, self.v, self.out, n_q, n_k, d, dv, abs(self.scale) * LOG2E, *self.strides)
        flags = {"CAUSAL": self.causal, "BD": -(-d // 16) * 16, "BDV": -(-dv // 16) * 16}
        macs = self.batches * unmasked_pairs(n_q, n_k, self.causal) * (d + dv)
        spec = npu.get_machine()
        rate = spec.cube_macs_per_cycle(dtype="f32" if self.q.dtype == np.float32 else "f16")
        batches = self.batches
        return Problem(ATTENTION, lambda meta: (batches, npu.cdiv(n_q, meta["BM"])), args, flags,
                       _heuristic(n_q, n_k), macs / (rate * spec.cores), "cube", 2 * macs,
                       f"{batches}x{n_q}x{n_k}x{d}")


def _batched(x: np.ndarray, batch: tuple[int, ...]) -> tuple[np.ndarray, int]:
    """x as [batches, S, D] and its batch stride: its own batches, one shared by all (stride 0), or broadcast
    on the host (a copy outside the simulated cycles) when only some dimensions are shared."""
    rows, cols = x.shape[-2:]
    if int(np.prod(x.shape[:-2], dtype=np.int64)) == 1:
        return x.reshape(1, rows, cols), 0
    if x.shape[:-2] != batch:
        x = np.ascontiguousarray(np.broadcast_to(x, (*batch, rows, cols)))
    return x.reshape(-1, rows, cols), rows * cols


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, *, causal: bool = False,
              scale: float | None = None) -> np.ndarray:
    """softmax(q @ kᵀ · scale [+ causal mask]) @ v, as torch's `scaled_dot_product_attention`.

    q is [..., Sq, D], k [..., Sk, D] and v [..., Sk, Dv], leading (batch, head) dimensions broadcast
    together; the result is [..., Sq, Dv] in the inputs' dtype (float16, bfloat16 or float32, all three
    the same). `scale` defaults to 1/sqrt(D). `causal=True` lets query i see keys j ≤ i (top-left
    aligned, as torch's `is_causal`). The softmax and the accumulation run in fp32; the S × S scores never
    reach GM.
    """
    op = "attention"
    q = arguments.array(op, "q", q, min_ndim=2)
    k = arguments.array(op, "k", k, min_ndim=2)
    v = arguments.array(op, "v", v, min_ndim=2)
    arguments.same_dtype(op, q=q, k=k, v=v)
    if not isinstance(causal, (bool, np.bool_)):
        raise OperatorError(f"kernel_lib.{op}: causal must be True or False, got {causal!r}")
    if q.shape[-1] != k.shape[-1]:
        raise OperatorError(f"kernel_lib.{op}: q and k must share the head dimension D (the last), got q "
                            f"{q.shape} and k {k.shape}")
    if k.shape[-2] != v.shape[-2]:
        raise OperatorError(f"kernel_lib.{op}: k and v must have as many keys (dimension -2), got k {k.shape} and "
                            f"v {v.shape}")
    try:
        batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except ValueError:
        raise OperatorError(f"kernel_lib.{op}: the leading dimensions of q {q.shape}, k {k.shape} and v {v.shape} "
                            f"do not broadcast") from None
    if scale is None:
        scale = 1 / math.sqrt(q.shape[-1])
    elif isinstance(scale, bool) or not isinstance(scale, (int, float, np.floating, np.integer)) \
            or not math.isfinite(scale):
        raise OperatorError(f"kernel_lib.{op}: scale must be a finite number or None, got {scale!r}")
    if scale < 0:  # the kernel takes max(s) · scale as the row max: negate q instead (exact) and use |scale|
        q = -q
    (q3, sq), (k3, sk), (v3, sv) = (_batched(x, batch) for x in (q, k, v))
    batches = int(np.prod(batch, dtype=np.int64))
    out = np.empty((batches, q.shape[-2], v.shape[-1]), q.dtype)
    AttentionCall(q3, k3, v3, out, batches, (sq, sk, sv), float(scale), bool(causal)).problem().launch()
    return out.reshape(*batch, q.shape[-2], v.shape[-1])

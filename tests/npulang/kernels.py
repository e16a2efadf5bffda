"""Kernels only the tests use: reductions, elementwise math, transposes and strided copies.

The ported Triton tutorials live in `examples/tutorials.py`.
"""

from __future__ import annotations

import npulang as npu


# -- reductions and elementwise math over 2-D tiles ----------------------------------------------


@npu.jit
def reduce_rows_kernel(x_ptr, out_ptr, M, N, stride_m, BM: npu.constexpr, BN: npu.constexpr,
                       OP: npu.constexpr,
                       AXIS: npu.constexpr):
    """Reduce an [M, N] array (one [BM, BN] tile) along AXIS with OP into out (masked)."""
    rm = npu.arange(0, BM)
    rn = npu.arange(0, BN)
    mask = (rm[:, None] < M) & (rn[None, :] < N)
    if OP == "max" or OP == "argmax":
        fill = -float("inf")
    elif OP == "min" or OP == "argmin":
        fill = float("inf")
    else:
        fill = 0.0
    x = npu.load(x_ptr + rm[:, None] * stride_m + rn[None, :], mask=mask, other=fill)
    if OP == "sum":
        r = npu.sum(x, axis=AXIS)
    elif OP == "max":
        r = npu.max(x, axis=AXIS)
    elif OP == "min":
        r = x.min(axis=AXIS)
    elif OP == "argmax":
        r = npu.argmax(x, axis=AXIS)
    else:
        r = x.argmin(AXIS)
    if AXIS == 0:
        npu.store(out_ptr + rn, r, mask=rn < N)
    else:
        npu.store(out_ptr + rm, r, mask=rm < M)


@npu.jit
def unary_kernel(x_ptr, out_ptr, n, BLOCK: npu.constexpr, OP: npu.constexpr):
    offs = npu.program_id(0) * BLOCK + npu.arange(0, BLOCK)
    mask = offs < n
    x = npu.load(x_ptr + offs, mask=mask, other=1.0)
    if OP == "exp":
        y = npu.exp(x)
    elif OP == "exp2":
        y = npu.exp2(x)
    elif OP == "log":
        y = npu.log(x)
    elif OP == "log2":
        y = npu.log2(x)
    elif OP == "sqrt":
        y = npu.sqrt(x)
    elif OP == "rsqrt":
        y = npu.rsqrt(x)
    elif OP == "abs":
        y = npu.abs(x)
    elif OP == "erf":
        y = npu.erf(x)
    elif OP == "tanh":
        y = npu.tanh(x)
    elif OP == "sigmoid":
        y = npu.sigmoid(x)
    elif OP == "floor":
        y = npu.floor(x)
    elif OP == "ceil":
        y = npu.ceil(x)
    elif OP == "sin":
        y = npu.sin(x)
    elif OP == "cos":
        y = npu.cos(x)
    else:
        y = -x
    npu.store(out_ptr + offs, y, mask=mask)


@npu.jit
def binary_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: npu.constexpr, OP: npu.constexpr):
    offs = npu.program_id(0) * BLOCK + npu.arange(0, BLOCK)
    mask = offs < n
    x = npu.load(x_ptr + offs, mask=mask, other=1)
    y = npu.load(y_ptr + offs, mask=mask, other=1)
    if OP == "add":
        z = x + y
    elif OP == "sub":
        z = x - y
    elif OP == "mul":
        z = x * y
    elif OP == "div":
        z = x / y
    elif OP == "floordiv":
        z = x // y
    elif OP == "mod":
        z = x % y
    elif OP == "maximum":
        z = npu.maximum(x, y)
    elif OP == "minimum":
        z = npu.minimum(x, y)
    elif OP == "where":
        z = npu.where(x < y, x, y * 2)
    elif OP == "and":
        z = x & y
    elif OP == "or":
        z = x | y
    elif OP == "shl":
        z = x << (y & 7)
    elif OP == "shr":
        z = x >> (y & 7)
    else:
        z = x ^ y
    npu.store(out_ptr + offs, z, mask=mask)


@npu.jit
def transpose_kernel(x_ptr, out_ptr, M, N, BM: npu.constexpr, BN: npu.constexpr):
    """out[N, M] = x[M, N].T, one [BM, BN] tile per program, ragged edges masked."""
    rm = npu.program_id(0) * BM + npu.arange(0, BM)
    rn = npu.program_id(1) * BN + npu.arange(0, BN)
    mask = (rm[:, None] < M) & (rn[None, :] < N)
    x = npu.load(x_ptr + rm[:, None] * N + rn[None, :], mask=mask)
    npu.store(out_ptr + rn[:, None] * M + rm[None, :], x.T, mask=mask.T)


@npu.jit
def strided_copy_kernel(x_ptr, out_ptr, n, stride, offset, BLOCK: npu.constexpr):
    """out[i] = x[offset + i * stride] for i < n."""
    i = npu.program_id(0) * BLOCK + npu.arange(0, BLOCK)
    v = npu.load(x_ptr + offset + i * stride, mask=i < n, other=0)
    npu.store(out_ptr + i, v, mask=i < n)

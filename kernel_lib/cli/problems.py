"""The problems `npu-tune` tunes: an operator name and a shape string in, the operator's `Problem` out.

Each builder makes the same `Problem` the library call makes for that shape (zero-filled operands: tuning
runs timing-only, and a winner's verification compares the compiled kernel with the interpreter on them),
so a config tuned here is the one `kernel_lib.<op>(...)` then finds in the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import ml_dtypes
import numpy as np

from kernel_lib import activations, elementwise, normalization, pooling
from kernel_lib.attention import AttentionCall
from kernel_lib.batch_norm import problem as batch_norm_problem
from kernel_lib.conv2d import problem as conv2d_problem
from kernel_lib.gemm import GemmCall
from kernel_lib.softmax import problems as softmax_problems
from kernel_lib.tuning import Problem, first_fitting
from kernel_lib.workloads import bert_base, resnet50

DTYPES = {"fp16": np.dtype(np.float16), "bf16": np.dtype(ml_dtypes.bfloat16), "fp32": np.dtype(np.float32),
          "int8": np.dtype(np.int8)}


@dataclass(frozen=True)
class OpSpec:
    """How npu-tune reads a shape for an operator and builds its problem."""

    dims: int  # numbers in a shape: 3 for gemm (MxNxK), 2 for rows x columns, 1 for a length, 7 for conv2d
    form: str  # the shape as the help shows it
    dtypes: tuple[str, ...]
    build: Callable[[tuple[Any, ...], np.dtype], Problem]
    parse: Callable[[str], tuple[Any, ...]] | None = None  # the shape's own reader, when not `dims` numbers


def _gemm(shape: tuple[int, ...], dtype: np.dtype, batches: int = 1) -> Problem:
    m, n, k = shape
    out = np.int32 if dtype == np.int8 else dtype
    a, b, y = np.zeros((batches, m, k), dtype), np.zeros((batches, k, n), dtype), np.zeros((batches, m, n), out)
    strides = (m * k, k * n, 0, m * n) if batches > 1 else (0, 0, 0, 0)
    return GemmCall(a, b, y, m, n, k, batches=batches, batch_strides=strides).problem()


def _conv2d(shape: tuple[int, ...], dtype: np.dtype) -> Problem:
    n, c, h, w, k, r, s, stride, pad = (*shape, 1, 0)[:9] if len(shape) == 7 else (*shape, 0)[:9]
    x, filt = np.zeros((n, h, w, c), dtype), np.zeros((k, c, r, s), dtype)  # NHWC: the layout the cube reads fast
    oh, ow = (h + 2 * pad - r) // stride + 1, (w + 2 * pad - s) // stride + 1
    out = np.int32 if dtype == np.int8 else dtype
    return conv2d_problem(x, filt, None, np.empty((n, oh, ow, k), out), stride, pad, 1, None, "NHWC")


def _softmax(log: bool) -> Callable[[tuple[int, ...], np.dtype], Problem]:
    def build(shape: tuple[int, ...], dtype: np.dtype) -> Problem:
        x = np.zeros(shape, dtype)
        return first_fitting(softmax_problems(x, np.empty_like(x), log))
    return build


def _norm(rms: bool) -> Callable[[tuple[int, ...], np.dtype], Problem]:
    def build(shape: tuple[int, ...], dtype: np.dtype) -> Problem:
        x = np.zeros(shape, dtype)
        w = np.zeros(shape[-1], dtype)
        return first_fitting(normalization.problems(x, w, None if rms else w, np.empty_like(x), shape[-1], 1e-5, rms))
    return build


def _activation(name: str) -> Callable[[tuple[int, ...], np.dtype], Problem]:
    def build(shape: tuple[int, ...], dtype: np.dtype) -> Problem:
        x = np.zeros(shape, dtype)
        return activations.problem(name, name, x, np.empty_like(x))
    return build


def _attention(causal: bool) -> Callable[[tuple[int, ...], np.dtype], Problem]:
    def build(shape: tuple[int, ...], dtype: np.dtype) -> Problem:
        b, h, s, d = shape  # q, k, v [B, H, S, D] as the library call sees them: B·H batches of [S, D]
        x = np.zeros((b * h, s, d), dtype)
        return AttentionCall(x, x, x, np.empty_like(x), b * h, (s * d,) * 3, d ** -0.5, causal).problem()
    return build


def _numbers(text: str, sep: str, counts: tuple[int, ...], form: str, op: str) -> tuple[int, ...]:
    """The integers of `text` (only a pooling's padding, its 8th, may be 0), or a ValueError."""
    parts = text.split(sep)
    if len(parts) not in counts or not all(p.strip().isdigit() and (int(p) > 0 or i == 7) for i, p in enumerate(parts)):
        raise ValueError(f"bad shape {text!r} for {op}: expected {form} with positive integers")
    return tuple(int(p) for p in parts)


def _layout(text: str) -> tuple[str, str]:
    """`8x64x56x56` (NCHW) or `8x56x56x64:nhwc`: the dimensions and the layout."""
    body, _, suffix = text.lower().partition(":")
    if suffix not in ("", "nhwc", "nchw"):
        raise ValueError(f"bad layout {suffix!r} in {text!r}: write nothing (NCHW) or ':nhwc'")
    return body, "NHWC" if suffix == "nhwc" else "NCHW"


def _parse_batch_norm(text: str) -> tuple[Any, ...]:
    body, layout = _layout(text)
    return _numbers(body, "x", (2, 3, 4, 5), BATCH_NORM_FORM, "batch_norm"), layout


def _batch_norm(parsed: tuple[Any, ...], dtype: np.dtype) -> Problem:
    shape, layout = parsed
    x = np.zeros(shape, dtype)
    c = np.ones(shape[1] if layout == "NCHW" else shape[-1], dtype)
    return batch_norm_problem(x, c, c, c, c, np.empty_like(x), 1e-5, layout)


def _parse_pool(text: str) -> tuple[Any, ...]:
    body, layout = _layout(text)
    n, c, h, w, r, s, *rest = _numbers(body, ",", (6, 7, 8), POOL_FORM, "max_pool2d/avg_pool2d")
    stride, pad = (*rest, r, 0)[:2] if len(rest) != 1 else (rest[0], 0)  # stride defaults to the window
    if layout == "NHWC":
        c, h, w = w, c, h  # written N,H,W,C
    oh, ow = (h + 2 * pad - r) // stride + 1, (w + 2 * pad - s) // stride + 1
    if stride < 1 or 2 * pad > min(r, s) or oh < 1 or ow < 1:
        raise ValueError(f"bad shape {text!r} for max_pool2d/avg_pool2d: a {r}x{s} window with stride {stride} "
                         f"and padding {pad} (at most half the window) must fit the {h}x{w} input")
    return (n, c, h, w), (r, s), stride, pad, layout, (oh, ow)


def _pool(is_max: bool) -> Callable[[tuple[Any, ...], np.dtype], Problem]:
    def build(parsed: tuple[Any, ...], dtype: np.dtype) -> Problem:
        (n, c, h, w), window, stride, pad, layout, (oh, ow) = parsed
        nchw = layout == "NCHW"
        x = np.zeros((n, c, h, w) if nchw else (n, h, w, c), dtype)
        y = np.empty((n, c, oh, ow) if nchw else (n, oh, ow, c), dtype)
        return pooling.problem("max_pool2d" if is_max else "avg_pool2d", x, y, window, stride, pad, 1, layout, is_max)
    return build


def _parse_binary(text: str) -> tuple[Any, ...]:
    a, _, b = text.lower().partition(":")
    shapes = [_numbers(part, "x", tuple(range(1, 9)), BINARY_FORM, "add/mul") for part in (a, b or a)]
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(f"bad shape {text!r} for add/mul: {shapes[0]} and {shapes[1]} do not broadcast") from None
    return tuple(shapes)


def _binary(op: str) -> Callable[[tuple[Any, ...], np.dtype], Problem]:
    def build(parsed: tuple[Any, ...], dtype: np.dtype) -> Problem:
        a, b = (np.zeros(shape, dtype) for shape in parsed)
        return elementwise.problem(op, a, b, np.empty(np.broadcast_shapes(a.shape, b.shape), dtype))
    return build


BATCH_NORM_FORM = "NxCxHxW[:nhwc]"
POOL_FORM = "N,C,H,W,R,S[,stride[,pad]][:nhwc]"
BINARY_FORM = "SHAPE[:SHAPE_B]"  # e.g. 4096x4096, or 8x64x56x56:64x1x1 (b broadcast against a)
FLOATS = ("fp16", "bf16", "fp32")
OPS: dict[str, OpSpec] = {
    "gemm": OpSpec(3, "MxNxK", (*FLOATS, "int8"), _gemm),
    "conv2d": OpSpec(7, "N,C,H,W,K,R,S[,stride[,pad]]", ("fp16", "bf16", "int8"), _conv2d),
    "softmax": OpSpec(2, "ROWSxCOLS", FLOATS, _softmax(False)),
    "log_softmax": OpSpec(2, "ROWSxCOLS", FLOATS, _softmax(True)),
    "layer_norm": OpSpec(2, "ROWSxCOLS", FLOATS, _norm(False)),
    "rms_norm": OpSpec(2, "ROWSxCOLS", FLOATS, _norm(True)),
    **{name: OpSpec(1, "N", FLOATS, _activation(name)) for name in ("relu", "gelu", "silu", "sigmoid", "tanh")},
    "batch_norm": OpSpec(0, BATCH_NORM_FORM, FLOATS, _batch_norm, _parse_batch_norm),
    "max_pool2d": OpSpec(0, POOL_FORM, FLOATS, _pool(True), _parse_pool),
    "avg_pool2d": OpSpec(0, POOL_FORM, FLOATS, _pool(False), _parse_pool),
    "add": OpSpec(0, BINARY_FORM, FLOATS, _binary("add"), _parse_binary),
    "mul": OpSpec(0, BINARY_FORM, FLOATS, _binary("mul"), _parse_binary),
    "attention": OpSpec(4, "BxHxSxD", FLOATS, _attention(False)),
    "attention_causal": OpSpec(4, "BxHxSxD", FLOATS, _attention(True)),
}
WORKLOADS = {"bert-base": "gemm", "resnet50": "conv2d"}  # --workload: the operator its shapes are for


def parse_shape(op: str, text: str) -> tuple[Any, ...]:
    """`1024x1024x1024` (conv2d: `4,64,56,56,64,3,3,1,1`) as ints, or a ValueError saying what the
    operator's shapes look like."""
    spec = OPS[op]
    if spec.parse is not None:
        return spec.parse(text.strip())
    parts = text.lower().split("," if op == "conv2d" else "x")
    counts = (7, 8, 9) if op == "conv2d" else (spec.dims,)
    if len(parts) not in counts or not all(p.strip().isdigit() and (int(p) > 0 or i == 8)
                                           for i, p in enumerate(parts)):
        raise ValueError(f"bad shape {text!r} for {op}: expected {spec.form} with positive integers")
    return tuple(int(p) for p in parts)


def workload(name: str, dtype: np.dtype) -> list[tuple[str, Problem]]:
    """(label, problem) for every layer of the workload: BERT-base's GEMMs (batch 8 of 128 tokens) or
    ResNet-50's convolutions (batch 4)."""
    if name == "resnet50":
        return [(f"{c.name} {c.n},{c.c},{c.h},{c.w},{c.k},{c.r},{c.s},{c.stride},{c.pad}",
                 _conv2d((c.n, c.c, c.h, c.w, c.k, c.r, c.s, c.stride, c.pad), dtype)) for c in resnet50()]
    return [(f"{layer.name} {layer.m}x{layer.n}x{layer.k}" + (f" x{layer.batch}" if layer.batch > 1 else ""),
             _gemm((layer.m, layer.n, layer.k), dtype, layer.batch)) for layer in bert_base()]

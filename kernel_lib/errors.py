"""The error every kernel_lib operator raises for a call it cannot run, before anything is compiled."""

from __future__ import annotations

from npulang import NpuError


class OperatorError(NpuError, ValueError):
    """A call an operator cannot run: wrong shape, dtype, layout or an unsupported combination.

    The message names the operator, the argument and what to change, e.g.
    `kernel_lib.softmax: x has dtype int8; softmax takes float16, bfloat16 or float32`.
    It is a `ValueError`, as NumPy's own argument errors are, and an `npu.NpuError`.
    """

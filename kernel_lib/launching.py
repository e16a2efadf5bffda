"""Launching an operator's kernel with the first configuration that fits the machine.

Until an operator has a tuned configuration, it tries its heuristic candidates in order of preference
(largest tiles first); a candidate the compiler rejects for lack of on-chip space (`npu.ResourceError`,
raised while compiling, before any output is written) moves on to the next one.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import npulang as npu
from kernel_lib.errors import OperatorError

Meta = dict[str, Any]


def launch_first_fitting(op: str, kernel: npu.JITFunction, grid: Callable[[Meta], tuple[int, ...]],
                         args: Sequence[Any], candidates: Sequence[Meta]) -> npu.RunRecord:
    """Launch `kernel` with the first of `candidates` (constexprs and launch options) that compiles."""
    failure: npu.ResourceError | None = None
    for meta in candidates:
        try:
            return kernel[grid](*args, **meta)
        except npu.ResourceError as exc:
            failure = exc
    raise OperatorError(f"kernel_lib.{op}: none of its {len(candidates)} configurations fits this machine's "
                        f"on-chip buffers; the smallest failed with: {failure.message if failure else '-'}")


def cores() -> int:
    """Cores of the current machine: persistent kernels launch one program per core."""
    return npu.get_machine().cores


def pow2_at_least(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()

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
    """The smallest power of two >= n (1 for n <= 1)."""
    return 1 << max(0, n - 1).bit_length()


def row_rules(n_cols: int) -> tuple[list[Meta], list[Meta]]:
    """The rule of the row operators (softmax, norms): one pass with the most rows per block (BR) that keeps
    a block within 8192 elements, so short rows still move large DMA blocks, double-buffered, else single-
    buffered (the first that compiles is used: a block whose fp32 temporaries overflow UB does not); rows too
    long for one pass on chip go in chunks (BN) of 4096, else 2048, else 1024, double-buffered."""
    bn = pow2_at_least(n_cols)
    one_pass = [{"BR": br, "num_stages": stages} for br in (32, 16, 8, 4, 2, 1) if br * bn <= 8192 or br == 1
                for stages in (2, 1)]
    return one_pass, [{"BN": b, "num_stages": 2} for b in (4096, 2048, 1024)]


# The search spaces of the row kernels (npu-tune): rows per block BR of the one-pass kernel (its BN, the
# row padded to a power of two, follows from the shape), the chunk width BN of the chunked kernel, and
# the pipelining depth of each loop.
ROWS_SPACE = {"BR": [1, 2, 4, 8, 16, 32], "num_stages": [1, 2, 3]}
CHUNKS_SPACE = {"BN": [1024, 2048, 4096, 8192], "num_stages": [1, 2, 3]}

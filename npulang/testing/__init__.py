"""npulang.testing: property-test your own kernels against numpy.

- `check_kernel(kernel, grid, make_args, reference, **meta)` runs a kernel compiled and interpreted and
  your numpy reference on the same inputs, and says which layer disagrees.
- `assert_close(actual, expected, ...)` compares with per-dtype tolerances (`tolerance`, derived from
  the dtype's epsilon and the accumulation length), nan/inf aware, and names the worst elements.
- `shapes`, `arrays`, `blocks`: Hypothesis strategies for kernel inputs (need `hypothesis` installed;
  imported on first use, so the rest works without it).
- The pytest plugin (`npulang.testing.pytest_plugin`, registered as an entry point) adds
  `--npu-interpret`, the `npu_device` fixture and Hypothesis profiles.

This package sits on top of `npulang.runtime`; nothing else in npulang imports it.
"""

from __future__ import annotations

import importlib
from typing import Any

from npulang.testing.check import KernelCheck, KernelMismatch, check_kernel
from npulang.testing.compare import assert_close
from npulang.testing.tolerances import Tolerance, eps, tolerance

_STRATEGIES = ("arrays", "blocks", "shapes")


def __getattr__(name: str) -> Any:
    """The strategies, imported on first use: Hypothesis is needed only by those who draw from them."""
    if name in _STRATEGIES:
        return getattr(importlib.import_module("npulang.testing.strategies"), name)
    raise AttributeError(f"module 'npulang.testing' has no attribute {name!r}")


__all__ = ["KernelCheck", "KernelMismatch", "Tolerance", "arrays", "assert_close", "blocks", "check_kernel",
           "eps", "shapes", "tolerance"]

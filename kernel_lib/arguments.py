"""Argument checks shared by the operators: one place that turns a bad call into an `OperatorError`.

Every operator validates its arrays here before anything is compiled, so a mistake is reported in
the caller's terms (operator, argument, shape, dtype) and never as a compiler or simulator error.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import ml_dtypes
import numpy as np

from kernel_lib.errors import OperatorError


FLOAT_DTYPES: tuple[np.dtype, ...] = (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16), np.dtype(np.float32))


def dtype_names(dtypes: Sequence[np.dtype]) -> str:
    """The dtypes as an error message lists them: `float16, bfloat16 or float32`."""
    names = [str(d) for d in dtypes]
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]


def array(op: str, name: str, x: Any, dtypes: Sequence[np.dtype] = FLOAT_DTYPES, *,
          min_ndim: int = 0, ndim: int | None = None) -> np.ndarray:
    """`x` as a C-contiguous numpy array of an accepted dtype, or an `OperatorError` saying why not.

    A non-contiguous array is copied on the host (that copy is not part of the simulated cycles).
    """
    if not isinstance(x, np.ndarray):
        raise OperatorError(f"kernel_lib.{op}: {name} must be a numpy array, got {type(x).__name__}")
    if x.dtype not in dtypes:
        raise OperatorError(f"kernel_lib.{op}: {name} has dtype {x.dtype}; {op} takes {dtype_names(dtypes)}"
                            f" (convert with {name}.astype(...))")
    if ndim is not None and x.ndim != ndim:
        raise OperatorError(f"kernel_lib.{op}: {name} must have {ndim} dimensions, got shape {x.shape}")
    if x.ndim < min_ndim:
        raise OperatorError(f"kernel_lib.{op}: {name} must have at least {min_ndim} dimension(s), "
                            f"got shape {x.shape}")
    if x.size == 0:
        raise OperatorError(f"kernel_lib.{op}: {name} is empty (shape {x.shape})")
    return np.ascontiguousarray(x)


def same_dtype(op: str, **arrays: np.ndarray | None) -> None:
    """All given arrays share one dtype (the operators do not promote silently)."""
    given = {name: a for name, a in arrays.items() if a is not None}
    dtypes = {a.dtype for a in given.values()}
    if len(dtypes) > 1:
        listed = ", ".join(f"{name} {a.dtype}" for name, a in given.items())
        raise OperatorError(f"kernel_lib.{op}: arguments must share one dtype, got {listed}")


def shape(op: str, name: str, x: np.ndarray | None, expected: tuple[int, ...]) -> None:
    """Raise OperatorError unless `x` is None or has exactly the `expected` shape."""
    if x is not None and x.shape != expected:
        raise OperatorError(f"kernel_lib.{op}: {name} must have shape {expected}, got {x.shape}")


def axis(op: str, value: Any, ndim: int) -> int:
    """A NumPy-style axis (negative counts from the end) as a non-negative int."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise OperatorError(f"kernel_lib.{op}: axis must be an int, got {value!r}")
    if not -ndim <= value < ndim:
        raise OperatorError(f"kernel_lib.{op}: axis {value} is out of range for an array of {ndim} dimension(s)")
    return int(value) % ndim


def positive_float(op: str, name: str, value: Any) -> float:
    """`value` as a float; OperatorError naming the operator and argument unless it is a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) or not value > 0 \
            or not math.isfinite(value):
        raise OperatorError(f"kernel_lib.{op}: {name} must be a positive number, got {value!r}")
    return float(value)


def int_pair(op: str, name: str, value: Any, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints (a window's size, stride, padding...) as (h, w), each >= minimum."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else \
        tuple(value) if isinstance(value, (tuple, list, np.ndarray)) else ()
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum for v in pair):
        raise OperatorError(f"kernel_lib.{op}: {name} must be an int >= {minimum} or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])

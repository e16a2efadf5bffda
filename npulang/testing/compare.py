"""`assert_close`: compare a kernel's result with the expected one, per-dtype tolerances, nan/inf aware.

The message is for the person whose kernel just failed: how many elements are off, the tolerance
used (and where it came from), and the worst elements with their indices, both values, the
difference and how many times the tolerance it is. Values of every dtype (bfloat16 included) are
compared and printed in float64, so nothing is rounded away in the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from npulang.testing.tolerances import Tolerance, float_info, resolve_dtype, tolerance

WORST_SHOWN = 5  # elements listed in a failure message


@dataclass(frozen=True)
class Mismatch:
    """Why two arrays are not close: a one-line summary and the table of the worst elements."""

    summary: str
    worst: str
    worst_index: tuple[int, ...] | None  # the single worst element, None for a shape mismatch

    def __str__(self) -> str:
        return f"{self.summary}\n{self.worst}" if self.worst else self.summary


def assert_close(actual: Any, expected: Any, *, dtype: Any = None, rtol: float | None = None,
                 atol: float | None = None, ulps: float | None = None, accumulation: int = 1,
                 scale: float | None = None, equal_nan: bool = True, name: str | None = None) -> None:
    """Assert `actual` (a kernel's output) is close to `expected` (the numpy reference's), elementwise.

    Args:
        actual, expected: arrays (or scalars) of the same shape; `expected` may have any dtype (float64
            is usual for a reference), a scalar `expected` is compared with every element.
        dtype: whose tolerance to use; default `actual`'s dtype (the kernel's output type).
        rtol, atol: override the defaults of `npulang.testing.tolerance(dtype, accumulation=...)`.
        ulps: allow this many units in the last place of `expected` (in `dtype`); when given alone,
            rtol and atol default to 0.
        accumulation: how many terms each result sums (K of a matmul, the row length of a reduction);
            widens the default tolerance by one float32 rounding per term.
        scale: the magnitude the default atol is relative to (the size of the values the result was
            computed from); default the largest finite |expected|.
        equal_nan: nan in both at the same index counts as equal. Infinities must match exactly.
        name: what is compared (an argument name), for the message.

    Raises:
        AssertionError: naming the worst elements, their indices, the tolerance and how far off they are.
    """
    mismatch = find_mismatch(actual, expected, dtype=dtype, rtol=rtol, atol=atol, ulps=ulps,
                             accumulation=accumulation, scale=scale, equal_nan=equal_nan, name=name)
    if mismatch is not None:
        raise AssertionError(str(mismatch))


def find_mismatch(actual: Any, expected: Any, *, dtype: Any = None, rtol: float | None = None,
                  atol: float | None = None, ulps: float | None = None, accumulation: int = 1,
                  scale: float | None = None, equal_nan: bool = True, name: str | None = None) -> Mismatch | None:
    """What `assert_close` would report, or None when the arrays are close."""
    a, e = np.asarray(actual), np.asarray(expected)
    label = f"{name}: " if name else ""
    if a.shape != e.shape and e.shape != ():
        return Mismatch(f"{label}shapes differ: actual {a.shape}, expected {e.shape}", "", None)
    d = resolve_dtype(a.dtype if dtype is None else dtype)
    e = np.broadcast_to(e, a.shape)
    a64, e64 = a.astype(np.float64), e.astype(np.float64)
    tol_scale = largest(e64) if scale is None else scale
    tol = _tolerance(d, tol_scale, rtol=rtol, atol=atol, ulps=ulps, accumulation=accumulation)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(a64 - e64)
        allowed = tol.atol + tol.rtol * np.abs(e64) + tol.ulps * _ulp(e64, d)
        bad = ~(diff <= allowed)  # nan diffs (nan or inf on either side) count as bad here...
    same_special = (a64 == e64) | (equal_nan & np.isnan(a64) & np.isnan(e64))
    bad &= ~same_special  # ...unless both sides hold the same inf, or both nan
    if not bad.any():
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(np.isfinite(diff), diff / np.where(allowed > 0, allowed, np.nan), np.inf)
    ratio = np.where(bad, np.nan_to_num(ratio, nan=np.inf), -1.0)
    order = np.argsort(-ratio, axis=None, kind="stable")[:min(WORST_SHOWN, int(bad.sum()))]
    indices = [tuple(int(i) for i in np.unravel_index(k, a.shape)) for k in order]
    given = [k for k, v in (("rtol", rtol), ("atol", atol), ("ulps", ulps)) if v is not None]
    origin = "given" if ulps is not None or len(given) == 2 else "; ".join(
        [f"{d.name} default, accumulation {accumulation}, atol scale {tol_scale:.3g}"] + [f"{k} given" for k in given])
    n_bad, size = int(bad.sum()), a.size
    summary = (f"{label}{n_bad:,} of {size:,} elements ({n_bad / size:.1%}) are not close: "
               f"|actual - expected| > atol + rtol*|expected|{' + ulps*ulp(expected)' if tol.ulps else ''} "
               f"with {tol} ({origin})")
    rows = [f"  {'index':<16} {'actual':>14} {'expected':>14} {'|diff|':>11} {'allowed':>10} {'diff/allowed':>14}"]
    for idx in indices:
        r = ratio[idx]
        times = "nan/inf differ" if not np.isfinite(diff[idx]) else "inf" if np.isinf(r) else f"{r:.3g}x"
        limit = f"{allowed[idx]:.3g}" if np.isfinite(allowed[idx]) else "-"
        rows.append(f"  {_index(idx):<16} {_num(a64[idx]):>14} {_num(e64[idx]):>14} {_num(diff[idx]):>11} "
                    f"{limit:>10} {times:>14}")
    worst = f"worst {len(indices)} (most over the tolerance first):\n" + "\n".join(rows)
    return Mismatch(summary, worst, indices[0])


def largest(x: Any) -> float:
    """The largest finite magnitude in `x` (0 if none): the default scale of the absolute tolerance."""
    x = np.asarray(x).astype(np.float64)
    finite = np.abs(x[np.isfinite(x)])
    return float(finite.max()) if finite.size else 0.0


def _tolerance(d: np.dtype, scale: float, *, rtol: float | None, atol: float | None, ulps: float | None,
               accumulation: int) -> Tolerance:
    default = tolerance(d, accumulation=accumulation, scale=scale)
    if ulps is not None:  # ulps alone: no other slack unless asked for
        return Tolerance(rtol=rtol or 0.0, atol=atol or 0.0, ulps=float(ulps))
    return Tolerance(rtol=default.rtol if rtol is None else rtol, atol=default.atol if atol is None else atol)


def _ulp(x: np.ndarray, d: np.dtype) -> np.ndarray:
    """The spacing of `d` at each |x| (the smallest subnormal at zero); 1 for integer dtypes."""
    info = float_info(d)
    if info is None:
        return np.ones_like(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        binade = np.exp2(np.floor(np.log2(np.abs(x))))
    return np.maximum(np.nan_to_num(binade * float(info.eps), nan=0.0, posinf=np.inf),
                      float(info.smallest_subnormal))


def _index(idx: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, idx)) + "]"


def _num(v: float) -> str:
    return f"{v:.8g}"

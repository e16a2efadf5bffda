"""Default comparison tolerances per dtype, derived from the dtype's epsilon and the accumulation length.

An element passes when `|actual - expected| <= atol + rtol * |expected|` (plus `ulps` units in the last
place of `expected`, when asked for). For a float dtype `d` whose kernel accumulates `n` terms
(`accumulation=n`; 1 for elementwise work), npulang accumulates in float32 (the cube and the vector
unit both do, for float16 and bfloat16 inputs too), so:

    rtol = 2 * eps(d)          two roundings to d: the result's own and one more on the way
         + n * eps(float32)    the float32 accumulation, one rounding per term
    atol = n * eps(float32) * scale    cancellation: float32 work is accurate to roundings of its operands,
                                       not of its result (scale: the largest |expected|, or in check_kernel
                                       the largest magnitude among the arguments and the expected values)
         + 2 * ulp0(d)                 two roundings in d's subnormal range (ulp0: the smallest subnormal)

| dtype    | eps                 | rtol at n = 1 | rtol at n = 256 |
|----------|---------------------|---------------|-----------------|
| float16  | 2**-10 ≈ 9.8e-4     | 2.0e-3        | 2.0e-3          |
| bfloat16 | 2**-7  ≈ 7.8e-3     | 1.6e-2        | 1.6e-2          |
| float32  | 2**-23 ≈ 1.2e-7     | 3.6e-7        | 3.1e-5          |

Integer and bool dtypes compare exactly (kernels wrap like the hardware; so must the reference).
The defaults assume float32 computation rounded once to the output dtype (Triton kernels upcast with
`.to(float32)` for this reason). A kernel that accumulates in float16 or bfloat16 instead loses up to
2**-11 or 2**-8 of the partial sum at every step, which these tolerances reject; one that computes in
half precision on purpose needs an explicit `atol`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ml_dtypes
import numpy as np

from isa import dtypes
from npulang import language

# The accumulator of every float computation the machine does (isa.dtypes.accumulator): float32.
ACCUMULATOR_EPS = float(np.finfo(np.float32).eps)


@dataclass(frozen=True, kw_only=True)
class Tolerance:
    """An element is close when `|actual - expected| <= atol + rtol * |expected| + ulps * ulp(expected)`."""

    rtol: float
    atol: float
    ulps: float = 0.0

    def __str__(self) -> str:
        parts = [f"rtol={self.rtol:.3g}", f"atol={self.atol:.3g}"]
        return ", ".join(parts + ([f"ulps={self.ulps:g}"] if self.ulps else []))


def resolve_dtype(dtype: Any) -> np.dtype:
    """The numpy dtype of a numpy dtype or type, an `npu.float16`-style dtype or a name ("bfloat16", "f16")."""
    if isinstance(dtype, language.dtype):
        return dtypes.dtype(dtype.name).np
    if isinstance(dtype, str) and dtype in dtypes.DTYPES:
        return dtypes.dtype(dtype).np
    try:
        return np.dtype(dtype)
    except TypeError:
        raise ValueError(f"{dtype!r} is not a dtype (float16, bfloat16, float32, int8, int32, bool, or any "
                         f"numpy dtype)") from None


def float_info(dtype: Any) -> Any:
    """`ml_dtypes.finfo` of a float dtype (bfloat16 included), None for integers and bool."""
    d = resolve_dtype(dtype)
    return ml_dtypes.finfo(d) if d.kind == "f" or d == dtypes.dtype("bf16").np else None


def eps(dtype: Any) -> float:
    """Machine epsilon of a float dtype: the gap between 1 and the next number (bfloat16: 2**-7)."""
    info = float_info(dtype)
    if info is None:
        raise ValueError(f"{resolve_dtype(dtype)} is not a float dtype")
    return float(info.eps)


def tolerance(dtype: Any, *, accumulation: int = 1, scale: float = 1.0) -> Tolerance:
    """The default tolerance for results of `dtype` from `accumulation`-term sums (see the module docstring).

    `scale` is the magnitude the absolute part is relative to (`assert_close` passes the largest finite
    |expected|). Integer and bool dtypes get an exact comparison.
    """
    info = float_info(dtype)
    if isinstance(accumulation, bool) or not isinstance(accumulation, (int, np.integer)) or accumulation < 1:
        raise ValueError(f"accumulation is the number of terms summed per result, a positive int; "
                         f"got {accumulation!r}")
    if info is None:
        return Tolerance(rtol=0.0, atol=0.0)
    summed = int(accumulation) * ACCUMULATOR_EPS
    return Tolerance(rtol=2 * float(info.eps) + summed,
                     atol=summed * float(scale) + 2 * float(info.smallest_subnormal))

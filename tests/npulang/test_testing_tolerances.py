"""npulang.testing.assert_close and its per-dtype tolerances.

The tolerances must be wide enough for correct float16 and bfloat16 kernels (float32 accumulation,
one rounding of the result) and narrow enough to reject a kernel that drops the low half of its float32
accumulator (rounds it to bfloat16 at every step), the classic half-precision accumulation bug.
"""

from __future__ import annotations

import re

import ml_dtypes
import numpy as np
import pytest
from hypothesis import Phase, given, settings

import npulang as npu
from npulang.testing import arrays, assert_close, eps, shapes, tolerance
from npulang.testing import tolerances as tolerances_module

BF16 = np.dtype(ml_dtypes.bfloat16)


@npu.jit
def rows_times_b(a_ptr, b_ptr, out_ptr, M, K, BK: npu.constexpr, DROP_LOW_HALF: npu.constexpr):
    """out[M, 16] = a[M, K] @ b[K, 16], accumulated in float32 (or, with DROP_LOW_HALF, rounded to bfloat16
    after every K step: the low 16 bits of the float32 accumulator dropped)."""
    rm = npu.arange(0, 16)
    rn = npu.arange(0, 16)
    rk = npu.arange(0, BK)
    acc = npu.zeros([16, 16], dtype=npu.float32)
    for k in range(0, K, BK):
        a = npu.load(a_ptr + rm[:, None] * K + (k + rk)[None, :], mask=(rm[:, None] < M) & ((k + rk)[None, :] < K),
                     other=0.0)
        b = npu.load(b_ptr + (k + rk)[:, None] * 16 + rn[None, :], mask=(k + rk)[:, None] < K, other=0.0)
        acc = npu.dot(a, b, acc)
        if DROP_LOW_HALF:
            acc = acc.to(npu.bfloat16).to(npu.float32)
    npu.store(out_ptr + rm[:, None] * 16 + rn[None, :], acc.to(out_ptr.dtype.element_ty), mask=rm[:, None] < M)


def _check_matmul(dtype: np.dtype, a: np.ndarray, b: np.ndarray, drop: bool) -> None:
    M, K = a.shape
    out = np.zeros((M, 16), dtype)
    rows_times_b[(1,)](a, b, out, M, K, BK=64, DROP_LOW_HALF=drop, interpret=True)
    assert_close(out, a.astype(np.float64) @ b.astype(np.float64), accumulation=K)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.dtype(np.float16), BF16], ids=["float16", "bfloat16"])
def test_correct_half_precision_kernels_pass_1000_random_cases(dtype: np.dtype) -> None:
    cases = []

    @settings(max_examples=1000, database=None)
    @given(a=arrays(dtype, shapes(2, max_side=256).map(lambda s: (s[0] % 16 + 1, s[1]))),
           b_seed=shapes(1, max_side=2**16))
    def correct(a: np.ndarray, b_seed: tuple[int]) -> None:
        b = np.random.default_rng(b_seed[0]).standard_normal((a.shape[1], 16)).astype(dtype)
        cases.append(a.shape)
        _check_matmul(dtype, a, b, drop=False)

    correct()
    assert len(cases) >= 1000 and max(k for _, k in cases) > 200  # long accumulations were among them


@pytest.mark.parametrize("dtype", [np.dtype(np.float16), BF16], ids=["float16", "bfloat16"])
def test_dropping_the_low_half_of_the_accumulator_is_rejected(dtype: np.dtype) -> None:
    @settings(database=None, phases=(Phase.generate,))  # the default example budget
    @given(a=arrays(dtype, shapes(2, max_side=256).map(lambda s: (s[0] % 16 + 1, s[1]))),
           b_seed=shapes(1, max_side=2**16))
    def dropped(a: np.ndarray, b_seed: tuple[int]) -> None:
        b = np.random.default_rng(b_seed[0]).standard_normal((a.shape[1], 16)).astype(dtype)
        _check_matmul(dtype, a, b, drop=True)

    with pytest.raises(AssertionError, match="are not close"):
        dropped()


# -- the tolerances themselves ---------------------------------------------------------------------

def test_defaults_follow_the_documented_formula_and_table() -> None:
    f32 = float(np.finfo(np.float32).eps)
    for name, e in [("float16", 2**-10), ("bfloat16", 2**-7), ("float32", 2**-23)]:
        assert eps(name) == e
        for n in (1, 256):
            tol = tolerance(name, accumulation=n, scale=10.0)
            assert tol.rtol == pytest.approx(2 * e + n * f32)
            assert tol.atol == pytest.approx(n * f32 * 10.0 + 2 * float(ml_dtypes.finfo(name).smallest_subnormal))
    table = re.findall(r"\| (\w+) +\| .*\| ([\d.e-]+) +\| ([\d.e-]+) +\|", tolerances_module.__doc__)
    assert [t[0] for t in table] == ["float16", "bfloat16", "float32"]
    for name, at1, at256 in table:
        assert float(at1) == pytest.approx(tolerance(name).rtol, rel=0.05)
        assert float(at256) == pytest.approx(tolerance(name, accumulation=256).rtol, rel=0.05)
    assert tolerance(np.int8) == tolerance(npu.int32) == tolerance("bool") == tolerances_module.Tolerance(rtol=0,
                                                                                                          atol=0)
    with pytest.raises(ValueError, match="positive int"):
        tolerance("float16", accumulation=0)
    with pytest.raises(ValueError, match="not a dtype"):
        tolerance("float8")


def test_one_rounding_passes_and_eight_epsilons_off_fails_for_every_float_dtype() -> None:
    x = np.random.default_rng(0).standard_normal(4096)
    for dtype in (np.float16, BF16, np.float32):
        assert_close(x.astype(dtype), x)  # one rounding of the exact value
        wrong = (x * (1 + 8 * eps(dtype))).astype(dtype)  # rtol is 2 eps (+ 1 float32 eps)
        with pytest.raises(AssertionError, match="are not close"):
            assert_close(wrong, x)


def test_the_message_shows_the_worst_elements_first_with_indices_values_and_tolerance() -> None:
    expected = np.arange(60, dtype=np.float64).reshape(6, 10)
    actual = expected.astype(BF16)
    actual[2, 3] = 24  # 23 -> 24: about 3x over bfloat16's tolerance
    actual[5, 9] = 0  # 59 -> 0: far over
    with pytest.raises(AssertionError) as info:
        assert_close(actual, expected, name="out")
    lines = str(info.value).splitlines()
    assert lines[0].startswith("out: 2 of 60 elements (3.3%) are not close")
    assert "(bfloat16 default, accumulation 1, atol scale 59)" in lines[0]
    assert f"rtol={tolerance(BF16).rtol:.3g}" in lines[0]
    assert re.match(r"\s+\[5, 9\]\s+0\s+59\s+59\s+0.922\s+64x", lines[3])  # the worst first
    assert re.match(r"\s+\[2, 3\]\s+24\s+23\s+1\s+0.359\s+2.78x", lines[4])


def test_nan_and_inf_must_match_exactly_and_nan_equals_nan() -> None:
    e = np.array([1.0, np.nan, np.inf, -np.inf, 0.0])
    assert_close(e.astype(np.float16), e)
    with pytest.raises(AssertionError, match=r"\[1\] +1 +nan +nan"):
        assert_close(np.array([1.0, 1.0, np.inf, -np.inf, 0.0], np.float32), e)
    with pytest.raises(AssertionError, match=r"\[2\] +-inf +inf"):
        assert_close(np.array([1.0, np.nan, -np.inf, -np.inf, 0.0], np.float32), e)
    with pytest.raises(AssertionError, match=r"\[4\] +nan +0 "):
        assert_close(np.array([1.0, np.nan, np.inf, -np.inf, np.nan], np.float32), e)
    with pytest.raises(AssertionError, match=r"\[1\]"):
        assert_close(e.astype(np.float32), e, equal_nan=False)


def test_integers_compare_exactly_and_explicit_tolerances_and_ulps_replace_the_defaults() -> None:
    assert_close(np.array([1, 2, 3], np.int8), np.array([1, 2, 3]))
    with pytest.raises(AssertionError, match=r"\[2\] +4 +3 +1 +0 +inf"):
        assert_close(np.array([1, 2, 4], np.int32), np.array([1, 2, 3]))
    assert_close(np.array([1, 2, 4], np.int32), np.array([1, 2, 3]), atol=1)
    one_ulp_off = np.nextafter(np.float32(1.5), np.float32(2))
    assert_close(np.array([one_ulp_off]), np.array([1.5]), dtype=np.float32, ulps=1)
    with pytest.raises(AssertionError, match=r"ulps=0.5 \(given\)"):
        assert_close(np.array([one_ulp_off]), np.array([1.5]), dtype=np.float32, ulps=0.5)
    with pytest.raises(AssertionError, match=r"rtol=0.1, atol=0 \(given\)"):
        assert_close(np.array([1.0]), np.array([1.2]), rtol=0.1, atol=0)
    with pytest.raises(AssertionError, match=r"rtol=0.1, atol=1.43e-07 \(float64 default, accumulation 1, atol scale "
                                             r"1.2; rtol given\)"):
        assert_close(np.array([1.0]), np.array([1.2]), rtol=0.1)


def test_shapes_must_match_and_a_scalar_expected_is_broadcast() -> None:
    with pytest.raises(AssertionError, match=r"shapes differ: actual \(2, 3\), expected \(3, 2\)"):
        assert_close(np.zeros((2, 3)), np.zeros((3, 2)))
    assert_close(np.full((2, 3), 7, np.float16), 7.0)


def test_the_absolute_slack_scales_with_the_operands_when_a_result_cancels() -> None:
    x, alpha = np.float32([1.117622, -1.3871249, 0.3]), np.float32(-1.03125)
    out = alpha * x + x  # float32: alpha * x is rounded, then nearly cancels against x
    exact = np.float64(alpha) * x.astype(np.float64) + x
    with pytest.raises(AssertionError, match=r"\[1\]"):
        assert_close(out, exact)  # relative to the results (|result| <= 0.04), one rounding of 1.4 is too much
    assert_close(out, exact, scale=np.abs(x).max())  # check_kernel passes the largest argument as the scale

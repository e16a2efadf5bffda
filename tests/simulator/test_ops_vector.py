"""Functional semantics of every V-pipe opcode against numpy, with random shapes and strides."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim_harness import run_vector, strided
from isa.asm import assemble
from simulator import Device

SETTINGS = settings(max_examples=25, deadline=None)
FLOATS = {"f32": np.float32, "f16": np.float16, "bf16": ml_dtypes.bfloat16}
INTS = {"i32": np.int32, "i8": np.int8}


@st.composite
def tile(draw: st.DrawFn) -> tuple[int, int, int, int]:
    """rows, cols and (row, column) element strides that may pad, skip or broadcast."""
    rows, cols = draw(st.integers(1, 6)), draw(st.integers(1, 12))
    cs = draw(st.sampled_from([1, 1, 2]))
    rs = draw(st.sampled_from([cols * cs, cols * cs + 3, 0 if rows > 1 else cols * cs]))
    return rows, cols, rs, cs


def values(dt: type, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dt).kind in "iu":
        return rng.integers(-50, 50, n).astype(dt)
    return (rng.standard_normal(n) * 4).astype(dt)


@SETTINGS
@given(dt=st.sampled_from(["f32", "f16", "bf16", "i32", "i8"]),
       op=st.sampled_from(["add", "sub", "mul", "min", "max", "lt", "ge", "eq"]),
       a=tile(), b_scalar=st.booleans(), seed=st.integers(0, 99))
def test_vbin(dt: str, op: str, a: tuple, b_scalar: bool, seed: int) -> None:
    rows, cols, rs, cs = a
    npdt = {**FLOATS, **INTS}[dt]
    xa = values(npdt, rows * max(rs, 1) + cols * cs, seed)
    xb = values(npdt, rows * cols, seed + 1)
    compare = op in ("lt", "ge", "eq")
    out = np.zeros(rows * cols, np.bool_ if compare else npdt)
    b_text = "3" if b_scalar else "{in1}"
    run_vector(f"vbin {op}, {{out}}, {{in0}}, {b_text}, dtype={dt}, rows={rows}, cols={cols}, a_rs={rs}, a_cs={cs}",
               [xa, xb], out)
    wide = np.float32 if dt in FLOATS else np.int64
    lhs = strided(xa, rows, cols, rs, cs).astype(wide)
    rhs = np.asarray(3, wide) if b_scalar else xb.reshape(rows, cols).astype(wide)
    fn = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "min": np.minimum, "max": np.maximum,
          "lt": np.less, "ge": np.greater_equal, "eq": np.equal}[op]
    expected = fn(lhs, rhs)
    expected = expected if compare else expected.astype(npdt)  # ints wrap
    np.testing.assert_array_equal(out.reshape(rows, cols), expected)


def test_vbin_integer_division_truncates_like_c() -> None:
    a = np.array([7, -7, 7, -7, 5, 9], np.int32)
    b = np.array([2, 2, -2, -2, 0, 4], np.int32)
    for op, expected in [("div", [3, -3, -3, 3, 0, 2]), ("rem", [1, -1, 1, -1, 0, 1]),
                         ("fdiv", [3, -3, -3, 3, 2**31 - 1, 2])]:
        out = np.zeros(6, np.int32)
        run_vector(f"vbin {op}, {{out}}, {{in0}}, {{in1}}, dtype=i32, rows=1, cols=6", [a, b], out)
        np.testing.assert_array_equal(out, expected, err_msg=op)


def test_vbin_float_ops_and_bitwise_ints() -> None:
    a = np.array([1.5, -2.0, 9.0, 2.0], np.float32)
    b = np.array([0.5, 4.0, -2.0, 3.0], np.float32)
    for op, ref in [("div", a / b), ("fdiv", a / b), ("rem", np.fmod(a, b)), ("pow", np.power(np.abs(a), b))]:
        out = np.zeros(4, np.float32)
        lhs = np.abs(a) if op == "pow" else a
        run_vector(f"vbin {op}, {{out}}, {{in0}}, {{in1}}, dtype=f32, rows=1, cols=4", [lhs, b], out)
        np.testing.assert_allclose(out, ref, rtol=1e-6, err_msg=op)
    x, y = np.array([12, 10, -1], np.int32), np.array([10, 6, 255], np.int32)
    for op, ref in [("and", x & y), ("or", x | y), ("xor", x ^ y), ("ne", x != y)]:
        out = np.zeros(3, np.bool_ if op == "ne" else np.int32)
        run_vector(f"vbin {op}, {{out}}, {{in0}}, {{in1}}, dtype=i32, rows=1, cols=3", [x, y], out)
        np.testing.assert_array_equal(out, ref, err_msg=op)


UNARY = {
    "neg": np.negative, "abs": np.abs, "exp": np.exp, "exp2": np.exp2, "log": np.log, "log2": np.log2,
    "sqrt": np.sqrt, "rsqrt": lambda x: 1 / np.sqrt(x), "recip": lambda x: 1 / x,
    "erf": np.vectorize(math.erf), "tanh": np.tanh, "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "relu": lambda x: np.maximum(x, 0), "floor": np.floor, "ceil": np.ceil, "sin": np.sin, "cos": np.cos,
}


@SETTINGS
@given(op=st.sampled_from(sorted(UNARY)), dt=st.sampled_from(["f32", "f16"]), a=tile(), seed=st.integers(0, 99))
def test_vun(op: str, dt: str, a: tuple, seed: int) -> None:
    rows, cols, rs, cs = a
    npdt = FLOATS[dt]
    x = values(npdt, rows * max(rs, 1) + cols * cs, seed)
    if op in ("log", "log2", "sqrt", "rsqrt", "recip"):
        x = (np.abs(x.astype(np.float32)) + 0.5).astype(npdt)
    out = np.zeros((rows, cols), npdt)
    run_vector(f"vun {op}, {{out}}, {{in0}}, dtype={dt}, rows={rows}, cols={cols}, a_rs={rs}, a_cs={cs}", [x], out)
    ref = UNARY[op](strided(x, rows, cols, rs, cs).astype(np.float64)).astype(npdt)
    tol = 1e-6 if dt == "f32" else 2e-3
    np.testing.assert_allclose(out.astype(np.float64), ref.astype(np.float64), rtol=tol, atol=tol)


def test_vun_integer_ops() -> None:
    x = np.array([-3, 0, 5, -128], np.int32)
    for op, ref in [("neg", -x), ("abs", np.abs(x)), ("relu", np.maximum(x, 0)), ("not", ~x),
                    ("sqrt", np.trunc(np.sqrt(np.abs(x)))), ]:
        src = np.abs(x) if op == "sqrt" else x
        out = np.zeros(4, np.int32)
        run_vector(f"vun {op}, {{out}}, {{in0}}, dtype=i32, rows=1, cols=4", [src], out)
        np.testing.assert_array_equal(out, ref, err_msg=op)


CASTS = st.sampled_from(["f32", "f16", "bf16", "i32", "i8"])


@SETTINGS
@given(src=CASTS, dst=CASTS, a=tile(), seed=st.integers(0, 99))
def test_vcast(src: str, dst: str, a: tuple, seed: int) -> None:
    rows, cols, rs, cs = a
    types = {**FLOATS, **INTS}
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(rows * max(rs, 1) + cols * cs) * 300).astype(types[src])
    out = np.zeros((rows, cols), types[dst])
    run_vector(f"vcast {{out}}, {{in0}}, from_dtype={src}, dtype={dst}, rows={rows}, cols={cols}, "
               f"a_rs={rs}, a_cs={cs}", [x], out)
    v = strided(x, rows, cols, rs, cs)
    if dst in INTS:  # truncate toward zero, saturate
        info = np.iinfo(types[dst])
        ref = np.clip(np.trunc(v.astype(np.float64)), info.min, info.max).astype(types[dst])
    else:
        ref = v.astype(np.float64).astype(types[dst]) if src in INTS else v.astype(types[dst])
    np.testing.assert_array_equal(out, ref)


@SETTINGS
@given(op=st.sampled_from(["sum", "max", "min", "argmax", "argmin"]), axis=st.sampled_from([0, 1]),
       dt=st.sampled_from(["f32", "f16", "i32"]), a=tile(), seed=st.integers(0, 99))
def test_vred(op: str, axis: int, dt: str, a: tuple, seed: int) -> None:
    rows, cols, rs, cs = a
    npdt = {**FLOATS, **INTS}[dt]
    x = values(npdt, rows * max(rs, 1) + cols * cs, seed)
    n = rows if axis == 1 else cols
    out = np.zeros(n, np.int32 if op.startswith("arg") else npdt)
    run_vector(f"vred {op}, {{out}}, {{in0}}, dtype={dt}, rows={rows}, cols={cols}, axis={axis}, "
               f"a_rs={rs}, a_cs={cs}", [x], out)
    v = strided(x, rows, cols, rs, cs).astype(np.float32 if dt in FLOATS else np.int64)
    ref = getattr(np, op)(v, axis=axis).astype(out.dtype)
    np.testing.assert_allclose(out.astype(np.float64), ref.astype(np.float64), rtol=1e-3 if dt == "f16" else 1e-6)


@SETTINGS
@given(dt=st.sampled_from(["f32", "f16", "bf16"]), a=tile(), b_scalar=st.booleans(), c_row=st.booleans(),
       seed=st.integers(0, 99))
def test_vfma(dt: str, a: tuple, b_scalar: bool, c_row: bool, seed: int) -> None:
    """a * b + c, rounded once: b a tile or a scalar, c a tile or one value per row broadcast (stride 0)."""
    rows, cols, rs, cs = a
    npdt = FLOATS[dt]
    xa = values(npdt, rows * max(rs, 1) + cols * cs, seed)
    xb, xc = values(npdt, rows * cols, seed + 1), values(npdt, rows * cols, seed + 2)
    out = np.zeros(rows * cols, npdt)
    b_text = "-0.75" if b_scalar else "{in1}"
    c_strides = ", c_rs=1, c_cs=0" if c_row else ""
    run_vector(f"vfma {{out}}, {{in0}}, {b_text}, {{in2}}, dtype={dt}, rows={rows}, cols={cols}, a_rs={rs}, "
               f"a_cs={cs}{c_strides}", [xa, xb, xc], out)
    lhs = strided(xa, rows, cols, rs, cs).astype(np.float64)
    mul = np.float64(-0.75) if b_scalar else xb.reshape(rows, cols).astype(np.float64)
    add = (xc[:rows, None] if c_row else xc.reshape(rows, cols)).astype(np.float64)
    np.testing.assert_array_equal(out.reshape(rows, cols), (lhs * mul + add).astype(npdt))


def test_vfma_rounds_once() -> None:
    """(1 + 2^-12)² - 1 in f32: a separate multiply rounds the 2^-24 term away, the fused op keeps it."""
    x = np.full(8, 1 + 2.0 ** -12, np.float32)
    out = np.zeros(8, np.float32)
    run_vector("vfma {out}, {in0}, {in0}, -1.0, dtype=f32, rows=1, cols=8", [x], out)
    np.testing.assert_array_equal(out, np.full(8, 2.0 ** -11 + 2.0 ** -24, np.float32))
    assert float(np.float32(x[0] * x[0]) - 1) != 2.0 ** -11 + 2.0 ** -24


def test_vfma_rejects_integers() -> None:
    with pytest.raises(Exception, match="vfma needs a float dtype, not i32"):
        run_vector("vfma {out}, {in0}, 2, 1, dtype=i32, rows=1, cols=8", [np.zeros(8, np.int32)],
                   np.zeros(8, np.int32))


def test_vsel_vdup_viota_vcopy() -> None:
    c = np.array([1, 0, 1, 0, 0, 1], np.bool_)
    a = np.arange(6, dtype=np.float32)
    out = np.zeros(6, np.float32)
    run_vector("vsel {out}, {in0}, {in1}, -1.5, dtype=f32, rows=2, cols=3", [c, a], out)
    np.testing.assert_array_equal(out, np.where(c, a, -1.5))

    out = np.zeros((3, 4), np.float16)
    run_vector("vdup {out}, 2.25, dtype=f16, rows=2, cols=2, dst_rs=4, dst_cs=2", [], out)
    ref = np.zeros((3, 4), np.float16)
    ref[:2, ::2] = 2.25
    np.testing.assert_array_equal(out, ref)

    out = np.zeros((3, 5), np.int32)
    run_vector("viota {out}, 7, dtype=i32, rows=3, cols=5, row_step=100, col_step=2", [], out)
    np.testing.assert_array_equal(out, 7 + 100 * np.arange(3)[:, None] + 2 * np.arange(5)[None, :])

    m = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = np.zeros((4, 3), np.float32)
    run_vector("vcopy {out}, {in0}, dtype=f32, rows=4, cols=3, a_rs=1, a_cs=4", [m], out)  # a transpose
    np.testing.assert_array_equal(out, m.T)


def test_vprint_and_print() -> None:
    x = np.array([1, 2, 3, 4], np.int32)
    res = run_vector('vprint "tile", {in0}, dtype=i32, rows=2, cols=2', [x], np.zeros(1, np.int32))
    assert res.prints == ["pid (0, 0, 0) tile [[1, 2],\n [3, 4]]"]
    assert run_vector('vprint "tile", {in0}, dtype=i32, rows=2, cols=2', [x], np.zeros(1, np.int32),
                      functional=False).prints == []


def test_vector_cost_uses_the_widest_type() -> None:
    x = np.zeros(512, np.float16)
    narrow = run_vector("vcast {out}, {in0}, from_dtype=f16, dtype=f16, rows=4, cols=128", [x],
                        np.zeros(512, np.float16))
    wide = run_vector("vcast {out}, {in0}, from_dtype=f16, dtype=f32, rows=4, cols=128", [x],
                      np.zeros(512, np.float32))
    assert narrow.pipe_busy["v"] == 512 * 2 // 256 and wide.pipe_busy["v"] == 512 * 4 // 256


def test_ops_reject_bad_dtypes() -> None:
    from simulator import SimError

    with pytest.raises(SimError, match=r"vbin and needs an integer or i1 dtype, not f32"):
        run_vector("vbin and, {out}, {in0}, {in0}, dtype=f32, rows=1, cols=2", [np.zeros(2, np.float32)],
                   np.zeros(2, np.float32))


def test_bound_views_take_each_scalar_operand_afresh() -> None:
    """One vbin runs twice with the same tiles and a divisor of 0.0, then -0.0 (equal as keys): the
    functional launch binds the tile views once per core, but 1 / 0.0 = +inf and 1 / -0.0 = -inf."""
    program = assemble("""
.kernel signed_zero
.arg out ptr f32
    arg s0, 0
    mov s1, 0.0
    mov s2, 0
    mov s3, 0
    vdup ub[0], 1.0, dtype=f32, rows=1, cols=8
loop:
    vbin fdiv, ub[256], ub[0], s1, dtype=f32, rows=1, cols=8
    vcopy ub[s3 + 512], ub[256], dtype=f32, rows=1, cols=8
    mul s1, s1, -1.0
    add s3, s3, 32
    add s2, s2, 1
    lt s4, s2, 2
    bnz s4, loop
    set_flag v, mte3, 0
    wait_flag v, mte3, 0
    store gm[s0], ub[512], dtype=f32, rows=1, cols=16, dst_rs=16
""")
    out = np.zeros(16, np.float32)
    Device().run(program, (1,), [out])
    np.testing.assert_array_equal(out, [np.inf] * 8 + [-np.inf] * 8)

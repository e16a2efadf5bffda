"""Scalar pipe (S): register arithmetic, control flow, kernel arguments and program ids.

Each instruction compiles to a small generated function `step(R, X)`: R is the register list,
X the launch context (`pid`, `grid`, `args`, `print`). A branch returns its target bundle index.
"""

from __future__ import annotations

import math
from typing import Any

from isa import Instr, Label, Reg
from isa.instructions import SCALAR_BINARY
from simulator.errors import SimError
from simulator.ops.base import Env, ScalarOp, rule


def c_div(a: Any, b: Any) -> Any:
    """Integer division truncating toward zero, as in C; true division when either side is a float."""
    if isinstance(a, int) and isinstance(b, int):
        q = abs(a) // abs(b)
        return q if (a < 0) == (b < 0) else -q
    return a / b


def c_rem(a: Any, b: Any) -> Any:
    """Remainder with the sign of the dividend, as in C."""
    if isinstance(a, int) and isinstance(b, int):
        return a - b * c_div(a, b)
    return math.fmod(a, b)


_BINARY = {
    "add": "{a} + {b}", "sub": "{a} - {b}", "mul": "{a} * {b}", "div": "c_div({a}, {b})",
    "rem": "c_rem({a}, {b})", "fdiv": "{a} / {b}", "min": "min({a}, {b})", "max": "max({a}, {b})",
    "and": "{a} & {b}", "or": "{a} | {b}", "xor": "{a} ^ {b}", "shl": "{a} << {b}", "shr": "{a} >> {b}",
    "lt": "int({a} < {b})", "le": "int({a} <= {b})", "gt": "int({a} > {b})", "ge": "int({a} >= {b})",
    "eq": "int({a} == {b})", "ne": "int({a} != {b})",
}
assert set(_BINARY) == set(SCALAR_BINARY)


def _generate(body: str, consts: list[Any]) -> ScalarOp:
    """A step from one statement over R, X and C (our own operand text: register indices, integers)."""
    namespace: dict[str, Any] = {"C": consts, "c_div": c_div, "c_rem": c_rem}
    exec(f"def step(R, X):\n    {body}\n", namespace)  # noqa: S102 - generated from our own table
    return ScalarOp(namespace["step"], source=body, consts=tuple(consts))


def _generate_branch(test: str, target: int, consts: list[Any]) -> ScalarOp:
    """A step returning `target` when `test` holds."""
    op = _generate(f"if {test}: return {target}", consts)
    return ScalarOp(op.step, source=test, consts=op.consts, target=target)


class _Source:
    """Python source text for operands; non-integer immediates go through a constant list."""

    def __init__(self) -> None:
        self.consts: list[Any] = []

    def __call__(self, v: Any) -> str:
        if isinstance(v, Reg):
            return f"R[{v.index}]"
        if type(v) is int:
            return str(v)
        self.consts.append(v)
        return f"C[{len(self.consts) - 1}]"


def _target(instr: Instr, env: Env) -> int:
    label = instr.get("target")
    assert isinstance(label, Label)
    return env.labels[label.name]


@rule("nop")
def _nop(instr: Instr, env: Env) -> ScalarOp:
    return ScalarOp(None)


@rule("barrier")
def _barrier(instr: Instr, env: Env) -> ScalarOp:
    return ScalarOp(None, barrier=True)


@rule("mov")
def _mov(instr: Instr, env: Env) -> ScalarOp:
    src = _Source()
    return _generate(f"R[{instr.args[0].index}] = {src(instr.args[1])}", src.consts)


@rule(*SCALAR_BINARY)
def _binary(instr: Instr, env: Env) -> ScalarOp:
    src = _Source()
    d, a, b = instr.args
    expr = _BINARY[instr.op].format(a=src(a), b=src(b))
    return _generate(f"R[{d.index}] = {expr}", src.consts)


@rule("sel")
def _sel(instr: Instr, env: Env) -> ScalarOp:
    src = _Source()
    d, c, a, b = instr.args
    return _generate(f"R[{d.index}] = {src(a)} if {src(c)} else {src(b)}", src.consts)


@rule("cvt")
def _cvt(instr: Instr, env: Env) -> ScalarOp:
    src = _Source()
    d, a, to = instr.args
    fn = "int" if to == "i32" else "float"  # int() truncates toward zero
    return _generate(f"R[{d.index}] = {fn}({src(a)})", src.consts)


def _axis(instr: Instr) -> int:
    axis = instr.get("axis")
    if not 0 <= axis < 3:
        raise SimError(f"program id axis must be 0, 1 or 2, got {axis}")
    return axis


@rule("pid")
def _pid(instr: Instr, env: Env) -> ScalarOp:
    return _generate(f"R[{instr.args[0].index}] = X.pid[{_axis(instr)}]", [])


@rule("npid")
def _npid(instr: Instr, env: Env) -> ScalarOp:
    return _generate(f"R[{instr.args[0].index}] = X.grid[{_axis(instr)}]", [])


@rule("arg")
def _arg(instr: Instr, env: Env) -> ScalarOp:
    return _generate(f"R[{instr.args[0].index}] = X.args[{instr.args[1]}]", [])


@rule("jmp")
def _jmp(instr: Instr, env: Env) -> ScalarOp:
    return _generate_branch("True", _target(instr, env), [])


@rule("bnz", "bz")
def _branch(instr: Instr, env: Env) -> ScalarOp:
    src = _Source()
    test = src(instr.get("c")) if instr.op == "bnz" else f"not {src(instr.get('c'))}"
    return _generate_branch(test, _target(instr, env), src.consts)


@rule("print")
def _print(instr: Instr, env: Env) -> ScalarOp:
    src = _Source()
    fmt = src(instr.get("fmt"))
    return _generate(f"X.print({fmt}, {src(instr.get('a'))})", src.consts)

"""The block IR verifier: tests run it after every pass, so a broken pass is caught where it broke.

Checks SSA scoping (every operand defined earlier in an enclosing block, every value defined
once), each op's result types against `ir.infer_result_types`, and the structure of regions
(`for`, `if` and `while` end in `yield`s whose types match, the function body ends in `return`).
"""

from __future__ import annotations

from npulang.errors import IRVerifyError
from npulang.ir import (
    I1, I32, Block, ConvDescType, DescType, Function, IRTypeError, Op, OpKind, Value, infer_result_types,
)

_EXPLICIT_TYPES = (OpKind.CONSTANT, OpKind.FOR, OpKind.IF, OpKind.WHILE)
_TERMINATORS = (OpKind.YIELD, OpKind.RETURN)


def _fail(op: Op, message: str) -> IRVerifyError:
    return IRVerifyError(f"{op.kind.value} at {op.loc}: {message}")


def verify(fn: Function) -> None:
    """Raise `IRVerifyError` naming the first op of `fn` that breaks an IR rule."""
    defined: set[int] = set()
    for a in fn.args:
        if a.id in defined:
            raise IRVerifyError(f"function {fn.name}: argument {a.name} defined twice")
        defined.add(a.id)
    body = fn.body
    if not body.ops or body.ops[-1].kind is not OpKind.RETURN:
        raise IRVerifyError(f"function {fn.name}: body must end in return")
    _verify_block(body, [set(defined)], defined, OpKind.RETURN)


def _verify_block(block: Block, scopes: list[set[int]], all_defined: set[int], terminator: OpKind) -> None:
    scope = scopes[-1]
    for i, op in enumerate(block.ops):
        for v in op.operands:
            if not any(v.id in s for s in scopes):
                raise _fail(op, f"operand {v!r} is not defined before use in an enclosing block")
        last = i == len(block.ops) - 1
        if op.kind in _TERMINATORS and (not last or op.kind is not terminator):
            raise _fail(op,
                        f"{op.kind.value} must be the last op of a "
                        f"{'function' if terminator is OpKind.RETURN else 'region'}")
        if last and op.kind is not terminator:
            raise _fail(op, f"block must end in {terminator.value}")
        _verify_op(op)
        for r in op.regions:
            region_scope: set[int] = set()
            for a in r.args:
                _define(op, a, region_scope, all_defined)
            _verify_block(r, scopes + [region_scope], all_defined, OpKind.YIELD)
        for r in op.results:
            _define(op, r, scope, all_defined)


def _define(op: Op, v: Value, scope: set[int], all_defined: set[int]) -> None:
    if v.id in all_defined:
        raise _fail(op, f"value {v!r} defined twice")
    all_defined.add(v.id)
    scope.add(v.id)


def _yield_types(op: Op, region: Block) -> list:
    if not region.ops or region.ops[-1].kind is not OpKind.YIELD:
        raise _fail(op, "each region must end in yield")
    return [v.type for v in region.ops[-1].operands]


def _verify_op(op: Op) -> None:
    result_types = [r.type for r in op.results]
    if op.kind not in _EXPLICIT_TYPES:
        if op.regions:
            raise _fail(op, "only for and if have regions")
        try:
            expected = list(infer_result_types(op.kind, op.operands, op.attrs))
        except (IRTypeError, KeyError) as exc:
            raise _fail(op, str(exc)) from exc
        if expected != result_types:
            raise _fail(op, f"result types {result_types} but operands give {expected}")
        return
    if op.kind is OpKind.CONSTANT:
        value = op.attrs.get("value")
        if op.operands or len(result_types) != 1 or not isinstance(value, (int, float, bool)):
            raise _fail(op, "constant takes no operands, a numeric value and one result")
        if isinstance(result_types[0], (DescType, ConvDescType)):
            raise _fail(op, "constant cannot be a descriptor")
        return
    if op.kind is OpKind.FOR:
        if len(op.operands) < 3 or any(v.type != I32 for v in op.operands[:3]):
            raise _fail(op, "for takes i32 scalar lb, ub, step, then the initial iteration values")
        inits = [v.type for v in op.operands[3:]]
        if len(op.regions) != 1:
            raise _fail(op, "for has exactly one region")
        region = op.regions[0]
        if [a.type for a in region.args] != [I32] + inits:
            raise _fail(op, f"for region args {[str(a.type) for a in region.args]} must be i32 then {inits}")
        if result_types != inits or _yield_types(op, region) != inits:
            raise _fail(op, f"for results and yield must match the initial values {inits}")
        return
    if op.kind is OpKind.WHILE:
        inits = [v.type for v in op.operands]
        if len(op.regions) != 2 or any([a.type for a in r.args] != inits for r in op.regions):
            raise _fail(op, f"while has a cond and a body region, both with args {inits}")
        if _yield_types(op, op.regions[0]) != [I1]:
            raise _fail(op, "the cond region of a while yields one i1 scalar")
        if result_types != inits or _yield_types(op, op.regions[1]) != inits:
            raise _fail(op, f"while results and body yield must match the initial values {inits}")
        return
    # if
    if len(op.operands) != 1 or op.operands[0].type != I1:
        raise _fail(op, "if takes one i1 scalar condition")
    if len(op.regions) != 2 or any(r.args for r in op.regions):
        raise _fail(op, "if has then and else regions without arguments")
    for r in op.regions:
        if _yield_types(op, r) != result_types:
            raise _fail(op, f"if branch yields {_yield_types(op, r)} but results are {result_types}")

"""The Python `ast` visitor that turns a kernel's body into block IR.

Values during compilation are either runtime `ir.Value`s or compile-time Python values
(constexprs: ints, floats, bools, strings, None, npu dtypes, tuples of these). Operations on
constexprs run in Python, so `if BLOCK > 64:` and `npu.static_range` are resolved here; operations
touching runtime values go through `Semantics`, which emits IR. Runtime `for`/`if` become IR
`for`/`if` ops whose loop-carried and branch-merged values are the names they (re)assign.
Other `@npu.jit` functions are inlined with their own source for error locations.

Every visit records the node's location; any error while visiting a node leaves as a
`CompilationError` at that node (the innermost one), with the original cause chained.
"""

from __future__ import annotations

import ast
import builtins as py
import operator
import types
from contextlib import contextmanager
from typing import Any, Iterator

from npulang import errors, ir
from npulang import language as lang
from npulang.frontend import builtin_rules as bi
from npulang.frontend.names import assigned_names, ends_in_bare_return, missing_hint, same_constexpr, unchanged
from npulang.frontend.semantics import Semantics, SemanticError, constexpr_error, describe, type_error
from npulang.frontend.source import BoundCall, KernelDef, KernelSource, is_constexpr_value
from npulang.ir import I32, Block, Loc, OpKind, TileType, Value

_BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.FloorDiv: "floordiv",
           ast.Mod: "mod", ast.Pow: "pow", ast.BitAnd: "and", ast.BitOr: "or", ast.BitXor: "xor",
           ast.LShift: "shl", ast.RShift: "shr"}
_PY_BINOPS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv,
              "floordiv": operator.floordiv, "mod": operator.mod, "pow": operator.pow, "and": operator.and_,
              "or": operator.or_, "xor": operator.xor, "shl": operator.lshift, "shr": operator.rshift}
_CMPOPS = {ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge", ast.Eq: "eq", ast.NotEq: "ne"}
_PY_CMPOPS = {"lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge, "eq": operator.eq,
              "ne": operator.ne}
# Python builtins a kernel may call; all but min/max/abs only on constexprs.
_PY_BUILTINS = {"range", "min", "max", "abs", "len", "int", "float", "bool", "isinstance", "tuple", "list",
                "enumerate", "zip", "print", "getattr", "hasattr", "str"}
_MAX_INLINE_DEPTH = 32
_MAX_UNROLLED_WHILE = 4096
_RETURN_HINT = "return at the end of the function, or exit early with `if cond: return` outside runtime loops"


class BoundMethod:
    """`x.sum` before it is called: a tile method bound to its tile."""

    def __init__(self, name: str, target: Value) -> None:
        self.name = name
        self.target = target


class CodeGenerator(ast.NodeVisitor):
    """Compiles one function body (the kernel's, or an inlined callee's) into the current block."""

    def __init__(self, src: KernelSource, scope: dict[str, Any], builder: ir.Builder, depth: int = 0) -> None:
        self.src = src
        self.scope = scope
        self.b = builder
        self.sem = Semantics(builder)
        self.depth = depth
        self.runtime_depth = 0  # > 0 inside runtime for/if bodies
        self.guard_depth = 0  # how many of those are early exits (`if c: return`), where `return` may stand
        self.returned = False
        self.return_value: Any = None

    # -- locations and errors -----------------------------------------------------------------

    def loc(self, node: ast.AST) -> Loc:
        return Loc(self.src.file, node.lineno + self.src.line_offset, node.col_offset + self.src.col_offset)

    def error(self, cls: type[errors.CompilationError], node: ast.AST, message: str,
              hint: str | None = None) -> errors.CompilationError:
        line = getattr(node, "lineno", self.src.tree.lineno)
        col = getattr(node, "col_offset", 0)
        return cls(self.src.name, self.src.file, line + self.src.line_offset, col + self.src.col_offset,
                   message, source_line=self.src.source_line(line), hint=hint)

    def visit(self, node: ast.AST) -> Any:
        saved = self.b.loc
        if hasattr(node, "lineno"):
            self.b.loc = self.loc(node)
        try:
            return super().visit(node)
        except errors.CompilationError:
            raise
        except SemanticError as exc:
            raise self.error(exc.error_cls, node, exc.message, exc.hint) from exc
        except RecursionError as exc:
            raise self.error(errors.CompilationError, node, "kernel nests too deeply to compile") from exc
        except Exception as exc:
            raise self.error(errors.CompilationError, node,
                             f"internal compiler error: {type(exc).__name__}: {exc}",
                             "please report this; the chained exception has the details") from exc
        finally:
            self.b.loc = saved

    def generic_visit(self, node: ast.AST) -> Any:
        raise self.error(errors.UnsupportedSyntaxError, node,
                         f"unsupported syntax in a kernel: {type(node).__name__}")

    def _unsupported(self, node: ast.AST, what: str, hint: str | None = None) -> errors.CompilationError:
        return self.error(errors.UnsupportedSyntaxError, node, f"{what} is not supported in kernels", hint)

    @contextmanager
    def _in_block(self, block: Block) -> Iterator[None]:
        saved = self.b.block
        self.b.block = block
        try:
            yield
        finally:
            self.b.block = saved

    # -- statements ---------------------------------------------------------------------------

    def visit_body(self, stmts: list[ast.stmt]) -> None:
        for i, stmt in enumerate(stmts):
            if self.returned:
                break
            if isinstance(stmt, ast.If) and ends_in_bare_return(stmt.body):
                saved = self.b.loc
                self.b.loc = self.loc(stmt)
                try:
                    cond = self.visit(stmt.test)
                finally:
                    self.b.loc = saved
                if isinstance(cond, Value):
                    self._guard(stmt, cond, stmts[i + 1:])
                    return
                self.visit_body(stmt.body if cond else stmt.orelse)
                continue
            self.visit(stmt)

    def _guard(self, node: ast.If, cond: Value, rest: list[ast.stmt]) -> None:
        """`if c: ...; return` then `rest`: an early exit, as `if c: ... else: rest` that ends the function.

        Only where every enclosing runtime construct is such a guard (not inside a runtime loop).
        """
        if self.runtime_depth != self.guard_depth:
            raise self._unsupported(node, "return inside a runtime loop or if", _RETURN_HINT)
        if isinstance(cond.type, TileType):
            raise self.error(errors.ShapeMismatchError, node.test,
                             f"an if condition must be a scalar, got {describe(cond)}")
        cond = self.sem.to_bool(cond)
        before, blocks = dict(self.scope), []
        for stmts in (node.body, node.orelse + rest):
            block = Block()
            self.scope, self.returned = dict(before), False
            self.runtime_depth += 1
            self.guard_depth += 1
            with self._in_block(block):
                self.visit_body(stmts)
                self.b.create(OpKind.YIELD)
            self.runtime_depth -= 1
            self.guard_depth -= 1
            blocks.append(block)
        self.scope, self.returned = before, True
        saved = self.b.loc
        self.b.loc = self.loc(node)
        self.b.create(OpKind.IF, (cond,), result_types=(), regions=tuple(blocks))
        self.b.loc = saved

    def visit_Expr(self, node: ast.Expr) -> None:
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return  # docstring
        self.visit(node.value)

    def visit_Pass(self, node: ast.Pass) -> None:
        return None

    def visit_Assign(self, node: ast.Assign) -> None:
        value = self.visit(node.value)
        for target in node.targets:
            self._assign(target, value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is None:
            raise self._unsupported(node, "a bare annotation")
        value = self.visit(node.value)
        if self._is_constexpr_annotation(node.annotation) and isinstance(value, Value):
            raise self.error(errors.ConstexprRequiredError, node.value,
                             "a constexpr variable needs a compile-time value, "
                             f"got a runtime {describe(value)}")
        self._assign(node.target, value)

    def _is_constexpr_annotation(self, annotation: ast.expr) -> bool:
        return self.visit(annotation) is lang.constexpr

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if not isinstance(node.target, ast.Name):
            raise self._unsupported(node.target, "augmented assignment to anything but a name",
                                    "tiles are values: compute a new tile and store it")
        current = self._lookup(node.target.id, node.target)
        self._assign(node.target, self._binop(type(node.op), current, self.visit(node.value), node))

    def _assign(self, target: ast.expr, value: Any) -> None:
        if isinstance(target, ast.Name):
            self.scope[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            if not isinstance(value, (tuple, list)) or len(value) != len(target.elts):
                raise self.error(errors.TypeMismatchError, target,
                                 f"cannot unpack {describe(value)} into {len(target.elts)} names")
            for t, v in zip(target.elts, value):
                self._assign(t, v)
        else:
            raise self._unsupported(target, f"assigning to {type(target).__name__.lower()}",
                                    "tiles are values: compute a new tile, or npu.store it to memory")

    def visit_Return(self, node: ast.Return) -> None:
        if self.runtime_depth and not (node.value is None and self.runtime_depth == self.guard_depth):
            raise self._unsupported(node, "return inside a runtime loop or if", _RETURN_HINT)
        self.return_value = self.visit(node.value) if node.value is not None else None
        self.returned = True

    def visit_Assert(self, node: ast.Assert) -> None:
        cond = self.visit(node.test)
        if isinstance(cond, Value):
            raise self._unsupported(node, "assert on a runtime value", "use npu.static_assert on constexprs")
        if not cond:
            msg = self.visit(node.msg) if node.msg is not None else ""
            raise self.error(errors.CompilationError, node, f"assertion failed: {msg}".rstrip(": "))

    def visit_While(self, node: ast.While) -> None:
        """A constexpr condition unrolls the loop; a runtime one is a `while` op whose carried values are
        the names the body reassigns (found by a dry run, as for `for`)."""
        if node.orelse:
            raise self._unsupported(node, "while ... else")
        before = dict(self.scope)
        self.runtime_depth += 1
        with self._in_block(Block()):  # a dry run: is the condition runtime, now or after one iteration?
            cond = self.visit(node.test)
            self.visit_body(node.body)
            again = self.visit(node.test)
        self.runtime_depth -= 1
        after = self.scope
        if not isinstance(cond, Value) and not isinstance(again, Value):
            self.scope = before
            self._unrolled_while(node, cond)
            return
        assigned = [n for n in assigned_names(node.body) if n in before]
        self.scope = dict(before)
        carried = [n for n in assigned if n in after and not unchanged(before[n], after[n])]
        types = [self._merge_type(node, n, before[n], after[n], loop=True) for n in carried]
        inits = [self._as_type(node, n, before[n], t) for n, t in zip(carried, types)]
        regions = []
        for part in ("cond", "body"):
            block = Block([Value(t, n) for n, t in zip(carried, types)])
            self.scope = dict(before)
            self.scope.update(zip(carried, block.args))
            self.runtime_depth += 1
            with self._in_block(block):
                if part == "cond":
                    cond = self.visit(node.test)
                    if isinstance(cond, Value) and isinstance(cond.type, TileType):
                        raise self.error(errors.ShapeMismatchError, node.test,
                                         f"a while condition must be a scalar, got {describe(cond)}")
                    self.b.create(OpKind.YIELD, [self.sem.to_bool(self.sem.to_value(cond))])
                else:
                    self.visit_body(node.body)
                    self.b.create(OpKind.YIELD, [self._as_type(node, n, self.scope[n], t)
                                                 for n, t in zip(carried, types)])
            self.runtime_depth -= 1
            regions.append(block)
        self.scope = dict(before)
        op = self.b.create(OpKind.WHILE, inits, result_types=tuple(types), regions=tuple(regions))
        for name, result in zip(carried, op.results):
            result.name = name
            self.scope[name] = result

    def _unrolled_while(self, node: ast.While, cond: Any) -> None:
        for _ in range(_MAX_UNROLLED_WHILE):
            if not cond:
                return
            self.visit_body(node.body)
            if self.returned:
                return
            cond = self.visit(node.test)
        raise self.error(errors.CompilationError, node,
                         f"a while loop on a constexpr condition ran {_MAX_UNROLLED_WHILE} times at compile time",
                         "make its condition a runtime value, or loop with range")

    def visit_Break(self, node: ast.Break) -> None:
        raise self._unsupported(node, "break", "use a mask, or a loop bound computed before the loop")

    def visit_Continue(self, node: ast.Continue) -> None:
        raise self._unsupported(node, "continue", "wrap the rest of the loop body in an if")

    def visit_If(self, node: ast.If) -> None:
        cond = self.visit(node.test)
        if not isinstance(cond, Value):
            self.visit_body(node.body if cond else node.orelse)
            return
        if isinstance(cond.type, TileType):
            raise self.error(errors.ShapeMismatchError, node.test,
                             f"an if condition must be a scalar, got {describe(cond)}",
                             "use npu.where(mask, a, b) for a per-element choice")
        self._runtime_if(node, self.sem.to_bool(cond))

    def _runtime_if(self, node: ast.If, cond: Value) -> None:
        before = dict(self.scope)
        branches = []
        for stmts in (node.body, node.orelse):
            block = Block()
            self.scope = dict(before)
            self.runtime_depth += 1
            with self._in_block(block):
                self.visit_body(stmts)
            self.runtime_depth -= 1
            branches.append((block, self.scope))
        (then_block, then_scope), (else_block, else_scope) = branches
        self.scope = dict(before)
        merged: list[tuple[str, Any, Any]] = []
        for name, tv in then_scope.items():
            if name not in else_scope:
                continue  # defined in one branch only: not visible after the if
            ev = else_scope[name]
            if tv is before.get(name) and ev is before.get(name):
                continue
            if not isinstance(tv, Value) and not isinstance(ev, Value) and same_constexpr(tv, ev):
                self.scope[name] = tv
                continue
            merged.append((name, tv, ev))
        result_types = []
        for name, tv, ev in merged:
            t = self._merge_type(node, name, tv, ev)
            result_types.append(t)
        for block, index in ((then_block, 1), (else_block, 2)):
            with self._in_block(block):
                yields = [self._as_type(node, m[0], m[index], t) for m, t in zip(merged, result_types)]
                self.b.create(OpKind.YIELD, yields)
        op = self.b.create(OpKind.IF, (cond,), result_types=tuple(result_types),
                           regions=(then_block, else_block))
        for (name, _, _), result in zip(merged, op.results):
            result.name = name
            self.scope[name] = result

    def _carried_type(self, node: ast.AST, name: str, x: Any) -> ir.Type:
        if isinstance(x, Value):
            if isinstance(x.type, (ir.DescType, ir.ConvDescType)):
                raise self._unsupported(node,
                                        f"reassigning tensor descriptor '{name}' in a runtime loop or if")
            return x.type
        if isinstance(x, (bool, int, float)):
            return self.sem.literal_dtype(x)
        raise self.error(errors.TypeMismatchError, node,
                         f"'{name}' is {describe(x)} in one path and a runtime value in another",
                         "only tiles and scalars can change inside runtime loops and ifs")

    def _merge_type(self, node: ast.AST, name: str, a: Any, b: Any, *, loop: bool = False) -> ir.Type:
        """The one type `name` takes where two paths meet (if branches; before/after a loop body)."""
        ta, tb = self._carried_type(node, name, a), self._carried_type(node, name, b)
        if ta == tb:
            return ta
        if not isinstance(a, Value):
            return tb
        if not isinstance(b, Value):
            return ta
        if loop:
            raise self.error(errors.TypeMismatchError, node,
                             f"loop-carried '{name}' is {ta} before the loop but {tb} after its body",
                             "initialise it before the loop with the type it will have, "
                             "e.g. npu.zeros(shape, dtype=npu.float32)")
        raise self.error(errors.TypeMismatchError, node,
                         f"'{name}' is {ta} in the if branch but {tb} in the else branch",
                         "convert one branch's value with .to(...) so both agree")

    def _as_type(self, node: ast.AST, name: str, x: Any, t: ir.Type) -> Value:
        """`x` as a value of type `t` (a constexpr is materialised; a runtime value must match)."""
        if isinstance(x, Value):
            if x.type != t:
                raise self.error(errors.TypeMismatchError, node,
                                 f"'{name}' changes type from {t} to {x.type} inside the loop",
                                 "initialise it before the loop with the type it will have, "
                                 "e.g. npu.zeros((M, N), dtype=npu.float32)")
            return x
        elem = ir.elem_type(t)
        return self.sem.literal(x, elem, ir.shape_of(t))

    def visit_For(self, node: ast.For) -> None:
        if node.orelse:
            raise self._unsupported(node, "for ... else")
        it = node.iter
        if isinstance(it, ast.Call):
            fn = self.visit(it.func)
            if fn is py.range or fn is lang.static_range or fn is lang.range:
                args = [self.visit(a) for a in it.args]
                kwargs = {k.arg: self.visit(k.value) for k in it.keywords}
                if fn is lang.static_range:
                    if kwargs:
                        raise self._unsupported(it, "keyword arguments to npu.static_range")
                    bounds = [bi.constexpr_int(a, "static_range bound") for a in args]
                    self._unrolled_loop(node, range(*bounds))
                    return
                attrs = {}
                if fn is py.range and kwargs:
                    raise self._unsupported(it, "keyword arguments to range",
                                            "use npu.range(..., num_stages=n)")
                if kwargs.get("num_stages") is not None:
                    attrs["num_stages"] = bi.constexpr_int(kwargs["num_stages"], "num_stages")
                self._runtime_loop(node, args, attrs)
                return
        iterable = self.visit(it)
        if isinstance(iterable, Value):
            raise self._unsupported(it, f"iterating over {describe(iterable)}",
                                    "loop over indices: for i in range(n)")
        try:
            items = list(iterable)
        except TypeError:
            raise self._unsupported(it, f"iterating over {describe(iterable)}") from None
        self._unrolled_loop(node, items)

    def _unrolled_loop(self, node: ast.For, items: Any) -> None:
        for item in items:
            self._assign(node.target, item)
            self.visit_body(node.body)
            if self.returned:
                return

    def _runtime_loop(self, node: ast.For, bounds: list[Any], attrs: dict[str, Any]) -> None:
        if not isinstance(node.target, ast.Name):
            raise self._unsupported(node.target, "unpacking a runtime loop variable")
        if not 1 <= len(bounds) <= 3:
            raise self.error(errors.TypeMismatchError, node.iter,
                             f"range takes 1 to 3 arguments, got {len(bounds)}")
        if len(bounds) == 1:
            bounds = [0, bounds[0]]
        if len(bounds) == 2:
            bounds.append(1)
        if bounds[2] == 0 and not isinstance(bounds[2], Value):
            raise self.error(errors.CompilationError, node.iter, "range step must not be zero")
        lb, ub, step = (self._loop_bound(node, b) for b in bounds)
        target = node.target.id
        before = dict(self.scope)
        assigned = [n for n in assigned_names(node.body) if n in before and n != target]
        # Dry run: compile the body once into a scratch block to learn which names it changes.
        self.scope[target] = Value(I32, target)
        self.runtime_depth += 1
        with self._in_block(Block()):
            self.visit_body(node.body)
        self.runtime_depth -= 1
        after = self.scope
        self.scope = dict(before)
        carried = [n for n in assigned if n in after and not unchanged(before[n], after[n])]
        types = [self._merge_type(node, n, before[n], after[n], loop=True) for n in carried]
        inits = [self._as_type(node, n, before[n], t) for n, t in zip(carried, types)]
        iv = Value(I32, target)
        body = Block([iv] + [Value(t, n) for n, t in zip(carried, types)])
        self.scope[target] = iv
        for name, arg in zip(carried, body.args[1:]):
            self.scope[name] = arg
        self.runtime_depth += 1
        with self._in_block(body):
            self.visit_body(node.body)
            yields = [self._as_type(node, n, self.scope[n], t) for n, t in zip(carried, types)]
            self.b.create(OpKind.YIELD, yields)
        self.runtime_depth -= 1
        self.scope = dict(before)
        op = self.b.create(OpKind.FOR, (lb, ub, step, *inits), attrs, result_types=tuple(types),
                           regions=(body,))
        for name, result in zip(carried, op.results):
            result.name = name
            self.scope[name] = result

    def _loop_bound(self, node: ast.For, x: Any) -> Value:
        v = self.sem.to_value(x)
        if not (isinstance(v.type, ir.ScalarType) and v.type.is_int):
            raise self.error(errors.TypeMismatchError, node.iter,
                             f"range bounds must be integers, got {describe(v)}")
        return self.sem.cast(v, "i32")

    # -- expressions --------------------------------------------------------------------------

    def visit_Constant(self, node: ast.Constant) -> Any:
        return node.value

    def visit_Tuple(self, node: ast.Tuple) -> tuple[Any, ...]:
        return tuple(self.visit(e) for e in node.elts)

    def visit_List(self, node: ast.List) -> list[Any]:
        return [self.visit(e) for e in node.elts]

    def visit_JoinedStr(self, node: ast.JoinedStr) -> str:
        parts = []
        for v in node.values:
            x = self.visit(v.value) if isinstance(v, ast.FormattedValue) else v.value
            if isinstance(x, Value):
                raise self.error(errors.ConstexprRequiredError, v, "f-strings can only format constexprs",
                                 "print runtime values with npu.device_print(prefix, value)")
            parts.append(str(x))
        return "".join(parts)

    def visit_Name(self, node: ast.Name) -> Any:
        return self._lookup(node.id, node)

    def _lookup(self, name: str, node: ast.AST) -> Any:
        if name in self.scope:
            return self.scope[name]
        for table in (self.src.closure, self.src.globals):
            if name in table:
                return self._capture(name, table[name], node)
        if name in _PY_BUILTINS:
            return getattr(py, name)
        raise self.error(errors.CompilationError, node, f"name '{name}' is not defined")

    def _capture(self, name: str, x: Any, node: ast.AST) -> Any:
        """A global or closure value as the kernel sees it, or an error if kernels cannot use it."""
        if isinstance(x, lang.constexpr):
            return x.value
        if is_constexpr_value(x) or isinstance(x, (types.ModuleType, KernelDef, bi.PointerDType)) \
                or hasattr(x, "__npu_builtin__"):
            return x
        if isinstance(x, types.FunctionType) or x is lang.constexpr:
            return x  # calling a plain function is an error that names it (see _call)
        raise self.error(errors.TypeMismatchError, node,
                         f"global '{name}' of type {type(x).__name__} cannot be used in a kernel",
                         "pass it as a kernel argument, or wrap a constant in npu.constexpr(...)")

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        base = self.visit(node.value)
        attr = node.attr
        if isinstance(base, Value):
            return self._value_attr(base, attr, node)
        if isinstance(base, types.ModuleType):
            if not hasattr(base, attr):
                raise self.error(errors.CompilationError, node,
                                 f"module '{base.__name__}' has no attribute '{attr}'", missing_hint(base, attr))
            return self._capture(f"{base.__name__}.{attr}", getattr(base, attr), node)
        if is_constexpr_value(base) or isinstance(base, bi.PointerDType):
            try:
                return getattr(base, attr)
            except AttributeError:
                raise self.error(errors.CompilationError, node,
                                 f"{describe(base)} has no attribute '{attr}'") from None
        raise self._unsupported(node, f"attribute '{attr}' of {describe(base)}")

    def _value_attr(self, v: Value, attr: str, node: ast.AST) -> Any:
        if isinstance(v.type, ir.DescType):
            if attr in ("load", "store"):
                return BoundMethod("desc_" + attr, v)
            raise self.error(errors.CompilationError, node, f"tensor descriptor has no attribute '{attr}'",
                             "use desc.load([offsets]) or desc.store([offsets], value)")
        if isinstance(v.type, ir.ConvDescType):
            if attr == "load":
                return BoundMethod("conv_desc_load", v)
            raise self.error(errors.CompilationError, node, f"convolution descriptor has no attribute '{attr}'",
                             "a convolution descriptor is read-only: use desc.load([m, k])")
        if attr == "T":
            return self.sem.trans(v, None)
        if attr == "shape":
            return ir.shape_of(v.type)
        if attr == "dtype":
            return bi.value_dtype(v)
        if attr in bi.METHODS:
            return BoundMethod(attr, v)
        raise self.error(errors.CompilationError, node, f"{describe(v)} has no attribute '{attr}'")

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        base = self.visit(node.value)
        if not isinstance(base, Value):
            index = self.visit(node.slice)
            if isinstance(index, Value):
                raise self.error(errors.ConstexprRequiredError, node.slice,
                                 f"indexing {describe(base)} needs a constexpr index, got {describe(index)}")
            return base[index]
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        out = base
        axis = 0
        for item in items:
            if isinstance(item, ast.Constant) and item.value is None:
                out = self.sem.expand_dims(out, axis)
                axis += 1
            elif isinstance(item,
                            ast.Slice) and item.lower is None and item.upper is None and item.step is None:
                axis += 1
            else:
                raise self._unsupported(item, "indexing a tile with anything but ':' and None",
                                        "tiles are values: use x[:, None] to add dimensions, npu.where "
                                        "or a reduction to pick elements")
        if axis > len(ir.shape_of(out.type)):
            raise self.error(errors.ShapeMismatchError, node, f"too many indices for {describe(base)}")
        return out

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        return self._binop(type(node.op), self.visit(node.left), self.visit(node.right), node)

    def _binop(self, op_type: type, a: Any, b: Any, node: ast.AST) -> Any:
        if op_type not in _BINOPS:
            raise self._unsupported(node, f"operator {op_type.__name__}", "use npu.dot(a, b) for matmul")
        op = _BINOPS[op_type]
        if not isinstance(a, Value) and not isinstance(b, Value):
            return _PY_BINOPS[op](a, b)
        for x in (a, b):
            if not isinstance(x, (Value, bool, int, float)):
                raise type_error(f"cannot apply {op} to {describe(a)} and {describe(b)}")
        return self.sem.binary(op, a, b)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        x = self.visit(node.operand)
        if not isinstance(x, Value):
            return {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Invert: operator.invert,
                    ast.Not: operator.not_}[type(node.op)](x)
        if isinstance(node.op, ast.UAdd):
            return x
        if isinstance(node.op, ast.Not):
            return self.sem.logical_not(x)
        return self.sem.unary("neg" if isinstance(node.op, ast.USub) else "not", x)

    def visit_BoolOp(self, node: ast.BoolOp) -> Any:
        is_and = isinstance(node.op, ast.And)
        result = self.visit(node.values[0])
        for value_node in node.values[1:]:
            if not isinstance(result, Value):
                if bool(result) != is_and:  # Python short-circuit on a constexpr
                    return result
                result = self.visit(value_node)
                continue
            rhs = self.visit(value_node)
            if not isinstance(rhs, Value) and bool(rhs) == is_and:
                continue
            result = self.sem.binary("and" if is_and else "or", self.sem.to_bool(result),
                                     self.sem.to_bool(rhs))
        return result

    def visit_Compare(self, node: ast.Compare) -> Any:
        left = self.visit(node.left)
        result: Any = True
        for op, right_node in zip(node.ops, node.comparators):
            right = self.visit(right_node)
            one = self._compare(op, left, right, node)
            result = one if result is True else self._binop(ast.BitAnd, result, one, node)
            left = right
        return result

    def _compare(self, op: ast.cmpop, a: Any, b: Any, node: ast.AST) -> Any:
        if isinstance(op, (ast.Is, ast.IsNot)):
            return (a is b) if isinstance(op, ast.Is) else (a is not b)
        if isinstance(op, (ast.In, ast.NotIn)):
            if isinstance(a, Value) or isinstance(b, Value):
                raise self._unsupported(node, "'in' on runtime values")
            return (a in b) if isinstance(op, ast.In) else (a not in b)
        pred = _CMPOPS[type(op)]
        if not isinstance(a, Value) and not isinstance(b, Value):
            return _PY_CMPOPS[pred](a, b)
        return self.sem.compare(pred, a, b)

    def visit_IfExp(self, node: ast.IfExp) -> Any:
        cond = self.visit(node.test)
        if not isinstance(cond, Value):
            return self.visit(node.body if cond else node.orelse)
        return self.sem.where(cond, self.visit(node.body), self.visit(node.orelse))

    def visit_Call(self, node: ast.Call) -> Any:
        fn = self.visit(node.func)
        args: list[Any] = []
        for a in node.args:
            if isinstance(a, ast.Starred):
                seq = self.visit(a.value)
                if isinstance(seq, Value):
                    raise self._unsupported(a, f"unpacking {describe(seq)}")
                args.extend(seq)
            else:
                args.append(self.visit(a))
        kwargs = {}
        for k in node.keywords:
            if k.arg is None:
                raise self._unsupported(k, "**kwargs in a call")
            kwargs[k.arg] = self.visit(k.value)
        return self._call(fn, args, kwargs, node)

    def _call(self, fn: Any, args: list[Any], kwargs: dict[str, Any], node: ast.Call) -> Any:
        if isinstance(fn, BoundMethod):
            return bi.call_builtin(self, fn.name, [fn.target, *args], kwargs)
        if isinstance(fn, KernelDef):
            return self._inline(fn, args, kwargs, node)
        if fn is lang.static_range or fn is lang.range:
            raise self._unsupported(node, f"npu.{fn.__name__} outside a for statement")
        name = getattr(fn, "__npu_builtin__", None)
        if name is not None:
            return bi.call_builtin(self, name, args, kwargs)
        if fn is lang.constexpr:
            return bi.call_builtin(self, "constexpr", args, kwargs)
        if isinstance(fn, py.type(py.len)) and getattr(fn, "__self__", None) is py:
            return self._call_python_builtin(fn, args, kwargs, node)
        if isinstance(fn, py.type) and fn.__name__ in _PY_BUILTINS and getattr(py, fn.__name__) is fn:
            return self._call_python_builtin(fn, args, kwargs, node)
        if isinstance(fn, (types.FunctionType, types.BuiltinFunctionType)):
            raise self.error(errors.UnsupportedSyntaxError, node,
                             f"cannot call Python function '{fn.__name__}' from a kernel",
                             "decorate it with @npu.jit to call it from kernels")
        raise self._unsupported(node, f"calling {describe(fn)}")

    def _call_python_builtin(self, fn: Any, args: list[Any], kwargs: dict[str, Any], node: ast.Call) -> Any:
        name = fn.__name__
        runtime = any(isinstance(a, Value) for a in [*args, *kwargs.values()])
        if name == "print":
            raise self._unsupported(node, "print",
                                    "use npu.device_print(prefix, values...) or npu.static_print")
        if name == "range":
            raise self._unsupported(node, "range outside a for statement")
        if not runtime:
            return fn(*args, **kwargs)
        if name in ("min", "max") and len(args) >= 2 and not kwargs:
            out = args[0]
            for x in args[1:]:
                out = self.sem.binary(name, out, x)
            return out
        if name == "abs" and len(args) == 1:
            return self.sem.unary("abs", args[0])
        if name in ("int", "float", "bool"):
            raise self.error(errors.ConstexprRequiredError, node,
                             f"{name}() needs a constexpr, got a runtime {describe(args[0])}",
                             "convert runtime values with .to(npu.int32) / .to(npu.float32)")
        raise self.error(errors.ConstexprRequiredError, node,
                         f"{name}() only works on constexprs in kernels")

    def _inline(self, callee: Any, args: list[Any], kwargs: dict[str, Any], node: ast.Call) -> Any:
        if self.depth >= _MAX_INLINE_DEPTH:
            raise self.error(errors.UnsupportedSyntaxError, node,
                             f"calls nest deeper than {_MAX_INLINE_DEPTH} "
                             "levels (recursion is not supported)")
        try:
            bound = callee.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise self.error(errors.TypeMismatchError, node,
                             f"bad call to {callee.name}(): {exc}") from None
        bound.apply_defaults()
        for name, value in bound.arguments.items():
            if name in callee.constexpr_params and isinstance(value, Value):
                raise constexpr_error(f"parameter '{name}' of {callee.name} is a constexpr, "
                                      f"got a runtime {describe(value)}")
        src = callee.source
        gen = CodeGenerator(src, dict(bound.arguments), self.b, self.depth + 1)
        saved = self.b.loc
        gen.visit_body(src.tree.body)
        self.b.loc = saved
        return gen.return_value


def build_ir(kernel: KernelDef, call: BoundCall) -> ir.Function:
    """The block IR of `kernel` for one bound call: its runtime argument types and constexpr values."""
    src = kernel.source
    args = [Value(call.types[p], p) for p in kernel.params if p in call.types]
    # an int argument equal to 1 compiles as the constant (Triton's specialisation); it is still passed
    scope: dict[str, Any] = {a.name: 1 if call.specialised.get(a.name) == 1 else a for a in args}
    for name, value in call.constexprs.items():
        if not is_constexpr_value(value):
            raise errors.ConstexprRequiredError(
                src.name, src.file, src.tree.lineno + src.line_offset, src.col_offset,
                f"constexpr parameter '{name}' got {type(value).__name__} {value!r}",
                hint="constexprs are ints, floats, bools, strings, None, npu dtypes, or tuples of these")
        scope[name] = value
    def_loc = Loc(src.file, src.tree.lineno + src.line_offset, src.col_offset)
    body = Block()
    builder = ir.Builder(body, def_loc)
    gen = CodeGenerator(src, scope, builder)
    gen.visit_body(src.tree.body)
    if gen.return_value is not None:
        raise errors.UnsupportedSyntaxError(
            src.name, src.file, def_loc.line, def_loc.col, "a kernel cannot return a value",
            source_line=src.source_line(src.tree.lineno), hint="store results through a pointer argument")
    last = src.tree.body[-1]
    builder.loc = Loc(src.file, (last.end_lineno or last.lineno) + src.line_offset, src.col_offset)
    builder.create(OpKind.RETURN)
    return ir.Function(src.name, args, body, dict(call.constexprs), def_loc, dict(call.specialised))

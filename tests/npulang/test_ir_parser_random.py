"""Hypothesis: random well-typed IR (every op kind, nested loops and ifs, clashing and non-identifier
name hints, extreme constants, any print prefix or constexpr) prints, parses back to IR that verifies,
and prints the same, with and without source lines."""

from __future__ import annotations

from typing import Any, Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npulang import ir
from npulang.ir import I1, I32, Block, Builder, Function, Loc, OpKind, PtrType, ScalarType, Value
from npulang.ir.parser import parse_function
from npulang.ir.verifier import verify

DTYPES = ["f16", "bf16", "f32", "i8", "i32", "i1"]
NAMES = st.one_of(st.none(), st.sampled_from(["x", "acc", "acc_1", "acc_1_1", "_", "t0", "for", "0", "7a",
                                              "a.b", ""]))
SHAPES = [(4,), (1, 4), (4, 1), (2, 4), (2, 1, 2)]
CONSTEXPR = st.one_of(st.integers(), st.floats(), st.text(max_size=8), st.booleans(), st.none(),
                      st.tuples(st.integers(), st.text(max_size=4)))


class _Gen:
    """Draws ops into a builder, each from values already in scope (`pool`), retrying ill-typed picks."""

    def __init__(self, draw: Callable[[Any], Any], x: Value) -> None:
        self.draw = draw
        self.x = x

    def pick(self, pool: list[Value], pred: Callable[[Value], bool] = lambda v: True) -> Value | None:
        options = [v for v in pool if pred(v)]
        return self.draw(st.sampled_from(options)) if options else None

    def make(self, b: Builder, kind: OpKind, operands: tuple[Value, ...], attrs: dict[str, Any]) -> list[Value]:
        """The op's results, or nothing if it does not type-check."""
        try:
            ir.infer_result_types(kind, operands, attrs)
        except (ir.IRTypeError, ValueError, KeyError, TypeError):
            return []
        return list(b.create(kind, operands, attrs, name=self.draw(NAMES)).results)

    def ops(self, b: Builder, pool: list[Value], depth: int) -> None:
        makers = [self.constant, self.grid, self.compute, self.compute, self.compute, self.memory, self.desc,
                  self.dot, self.print]
        if depth < 2:
            makers += [self.loop, self.branch]
        for _ in range(self.draw(st.integers(0, 6))):
            if self.draw(st.booleans()):
                b.loc = Loc("k.py", self.draw(st.integers(1, 10**6)))
            pool.extend(self.draw(st.sampled_from(makers))(b, pool, depth))

    def constant(self, b: Builder, pool: list[Value], depth: int) -> list[Value]:
        dtype = self.draw(st.sampled_from(DTYPES))
        value = (self.draw(st.booleans()) if dtype == "i1" else
                 self.draw(st.integers(-2**31, 2**31 - 1)) if dtype in ("i8", "i32") else
                 self.draw(st.floats(allow_nan=True, allow_infinity=True)))
        shape = self.draw(st.sampled_from([(), *SHAPES]))
        t = ir.make_type(shape, ScalarType(dtype))
        return list(b.create(OpKind.CONSTANT, (), {"value": value}, result_types=(t,), name=self.draw(NAMES)).results)

    def grid(self, b: Builder, pool: list[Value], depth: int) -> list[Value]:
        kind = self.draw(st.sampled_from([OpKind.PROGRAM_ID, OpKind.NUM_PROGRAMS, OpKind.ARANGE]))
        if kind is OpKind.ARANGE:
            start = self.draw(st.integers(0, 3))
            return self.make(b, kind, (), {"start": start, "end": start + self.draw(st.integers(1, 4))})
        return self.make(b, kind, (), {"axis": self.draw(st.integers(0, 2))})

    def compute(self, b: Builder, pool: list[Value], depth: int) -> list[Value]:
        for _ in range(6):  # most random picks do not type-check
            made = self.compute_once(b, pool)
            if made:
                return made
        return []

    def compute_once(self, b: Builder, pool: list[Value]) -> list[Value]:
        v = self.pick(pool, lambda u: not isinstance(u.type, ir.DescType))
        if v is None:
            return []
        w = self.pick(pool, lambda u: u.type == v.type)
        c = self.pick(pool, lambda u: u.type == ir.with_elem(v.type, I1)) or v
        rank = len(ir.shape_of(v.type))
        d = self.draw
        kind, operands, attrs = d(st.sampled_from([
            (OpKind.BINARY, (v, w), {"op": d(st.sampled_from(ir.BINARY_OPS))}),
            (OpKind.CMP, (v, w), {"pred": d(st.sampled_from(ir.CMP_PREDS))}),
            (OpKind.UNARY, (v,), {"op": d(st.sampled_from(ir.UNARY_OPS))}),
            (OpKind.CAST, (v,), {"dtype": d(st.sampled_from(DTYPES))}),
            (OpKind.WHERE, (c, v, w), {}),
            (OpKind.SPLAT, (v,), {"shape": d(st.sampled_from(SHAPES))}),
            (OpKind.BROADCAST, (v,), {"shape": d(st.sampled_from(SHAPES))}),
            (OpKind.RESHAPE, (v,), {"shape": d(st.sampled_from(SHAPES))}),
            (OpKind.EXPAND_DIMS, (v,), {"axis": d(st.integers(0, 2))}),
            (OpKind.TRANS, (v,), {"perm": tuple(d(st.permutations(range(rank))))}),
            (OpKind.REDUCE, (v,), {"op": d(st.sampled_from(ir.REDUCE_OPS)), "axis": d(st.integers(0, 1))}),
        ]))
        return self.make(b, kind, operands, attrs)

    def memory(self, b: Builder, pool: list[Value], depth: int) -> list[Value]:
        off = self.pick(pool, lambda u: ir.elem_type(u.type) == I32 if not isinstance(u.type, ir.DescType) else 0)
        if off is None:
            return []
        shape = ir.shape_of(off.type)
        base = b.value(OpKind.SPLAT, (self.x,), shape=shape) if shape else self.x
        ptr = b.value(OpKind.ADDPTR, (base, off))
        mask = self.pick(pool, lambda u: u.type == ir.make_type(shape, I1))
        loaded = b.value(OpKind.LOAD, (ptr,) if mask is None else (ptr, mask))
        b.create(OpKind.STORE, (ptr, loaded) if mask is None else (ptr, loaded, mask))
        return [ptr, loaded]

    def desc(self, b: Builder, pool: list[Value], depth: int) -> list[Value]:
        n = self.pick(pool, lambda u: u.type == I32)
        block = self.draw(st.sampled_from(SHAPES))
        desc = b.value(OpKind.MAKE_DESC, (self.x, *[n] * (2 * len(block))), block_shape=block)
        tile = b.value(OpKind.DESC_LOAD, (desc, *[n] * len(block)))
        b.create(OpKind.DESC_STORE, (desc, *[n] * len(block), tile))
        return [desc, tile]

    def dot(self, b: Builder, pool: list[Value], depth: int) -> list[Value]:
        dt = ScalarType(self.draw(st.sampled_from(["f16", "bf16", "i8"])))
        a = b.constant(1, ir.TileType((2, 4), dt))
        c = b.constant(2, ir.TileType((4, 2), dt))
        out = "i32" if dt.dtype == "i8" else "f32"
        return self.make(b, OpKind.DOT, (a, c), {"out_dtype": out})

    def print(self, b: Builder, pool: list[Value], depth: int) -> list[Value]:
        values = self.draw(st.lists(st.sampled_from(pool), max_size=3))
        b.create(OpKind.PRINT, tuple(values), {"prefix": self.draw(st.text(max_size=10))})
        return []

    def region(self, b: Builder, pool: list[Value], depth: int, args: list[Value], types: list[ir.Type]) -> Block:
        """A region over `args` whose body draws from the enclosing values and ends in a yield of `types`."""
        region = Block(args)
        inner = Builder(region, b.loc)
        scope = pool + args
        self.ops(inner, scope, depth + 1)
        inner.create(OpKind.YIELD, tuple(self.pick(scope, lambda u, t=t: u.type == t) for t in types))
        return region

    def loop(self, b: Builder, pool: list[Value], depth: int) -> list[Value]:
        bounds = [self.pick(pool, lambda u: u.type == I32) for _ in range(3)]
        inits = self.draw(st.lists(st.sampled_from(pool), max_size=2))
        types = [v.type for v in inits]
        args = [Value(I32, self.draw(NAMES))] + [Value(t, self.draw(NAMES)) for t in types]
        body = self.region(b, pool, depth, args, types)
        attrs = {"num_stages": self.draw(st.integers(1, 4))} if self.draw(st.booleans()) else {}
        return list(b.create(OpKind.FOR, (*bounds, *inits), attrs, result_types=tuple(types), regions=(body,),
                             name=self.draw(NAMES)).results)

    def branch(self, b: Builder, pool: list[Value], depth: int) -> list[Value]:
        cond = self.pick(pool, lambda u: u.type == I1) or b.value(OpKind.CMP, (pool[0], pool[0]), pred="lt")
        types = [v.type for v in self.draw(st.lists(st.sampled_from(pool), max_size=2))]
        then, other = (self.region(b, pool, depth, [], types) for _ in range(2))
        return list(b.create(OpKind.IF, (cond,), result_types=tuple(types), regions=(then, other),
                             name=self.draw(NAMES)).results)


@st.composite
def functions(draw: Callable[[Any], Any]) -> Function:
    x = Value(PtrType(draw(st.sampled_from(DTYPES))), draw(NAMES))
    n = Value(I32, draw(NAMES))
    body = Block()
    b = Builder(body, Loc("k.py", 1))
    _Gen(draw, x).ops(b, [n], 0)
    b.create(OpKind.RETURN)
    keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,4}", fullmatch=True)
    return Function("k", [x, n], body, draw(st.dictionaries(keys, CONSTEXPR, max_size=3)), Loc("k.py", 1))


@given(functions())
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_ir_prints_parses_and_prints_the_same(fn: Function) -> None:
    verify(fn)  # the generator builds valid IR
    for locs in (False, True):
        text = ir.print_function(fn, locs=locs)
        parsed = parse_function(text)
        verify(parsed)
        assert ir.print_function(parsed, locs=locs) == text
        if locs:
            assert [op.loc.line for op in ir.walk(parsed.body)] == [op.loc.line for op in ir.walk(fn.body)]

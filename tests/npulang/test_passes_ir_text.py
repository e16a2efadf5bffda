"""Each generic pass on hand-written IR text: input text -> pass -> the expected text, as MLIR's FileCheck
and xDSL tests do. A case names the rule it shows; the pass runs under the PassManager, so its output is
verified too. (tests/npulang/test_passes_golden.py runs the passes on frontend output.)"""

from __future__ import annotations

import numpy as np
import pytest

from npulang import ir
from npulang.ir.parser import parse_function
from npulang.passes import CSE, DCE, Canonicalize, Fold, Pass, PassManager

# x + -0.0 is x for every float x, x + 0.0 is not (-0.0 + 0.0 is 0.0)
CANONICALIZE_IDENTITIES = ("""
func @f(%n: i32, %x: f32) {
  %zero = constant {value=0} : i32
  %one = constant {value=1} : i32
  %pzero = constant {value=0.0} : f32
  %nzero = constant {value=-0.0} : f32
  %a = binary.add %n, %zero : i32
  %b = binary.mul %one, %a : i32
  %c = binary.floordiv %b, %one : i32
  %keep = binary.add %x, %pzero : f32
  %gone = binary.add %x, %nzero : f32
  %s = binary.sub %keep, %gone : f32
  print %c, %s {prefix='r '}
  return
}
""", """
func @f(%n: i32, %x: f32) {
  %zero = constant {value=0} : i32
  %one = constant {value=1} : i32
  %pzero = constant {value=0.0} : f32
  %nzero = constant {value=-0.0} : f32
  %keep = binary.add %x, %pzero : f32
  %s = binary.sub %keep, %x : f32
  print %n, %s {prefix='r '}
  return
}
""")

# trans of trans that composes to the identity, a broadcast to the same shape and where(c, v, v) vanish;
# a splat of a constant becomes a constant tile; a broadcast of a splat becomes one splat
CANONICALIZE_SHAPES = ("""
func @f(%p: ptr<f32>, %n: i32) {
  %r = arange {start=0, end=8} : tile<8xi32>
  %col = expand_dims %r {axis=1} : tile<8x1xi32>
  %t1 = trans %col {perm=[1, 0]} : tile<1x8xi32>
  %t2 = trans %t1 {perm=[1, 0]} : tile<8x1xi32>
  %same = broadcast %t2 {shape=[8, 1]} : tile<8x1xi32>
  %two = constant {value=2} : i32
  %twos = splat %two {shape=[8, 1]} : tile<8x1xi32>
  %sn = splat %n {shape=[1, 1]} : tile<1x1xi32>
  %bn = broadcast %sn {shape=[8, 1]} : tile<8x1xi32>
  %m = binary.mul %same, %twos : tile<8x1xi32>
  %o = binary.add %m, %bn : tile<8x1xi32>
  %ps = splat %p {shape=[8, 1]} : tile<8x1xptr<f32>>
  %pp = addptr %ps, %o : tile<8x1xptr<f32>>
  %c = cmp.lt %o, %bn : tile<8x1xi1>
  %v = load %pp : tile<8x1xf32>
  %w = where %c, %v, %v : tile<8x1xf32>
  store %pp, %w
  return
}
""", """
func @f(%p: ptr<f32>, %n: i32) {
  %r = arange {start=0, end=8} : tile<8xi32>
  %col = expand_dims %r {axis=1} : tile<8x1xi32>
  %t1 = trans %col {perm=[1, 0]} : tile<1x8xi32>
  %two = constant {value=2} : i32
  %0 = constant {value=2} : tile<8x1xi32>
  %sn = splat %n {shape=[1, 1]} : tile<1x1xi32>
  %1 = splat %n {shape=[8, 1]} : tile<8x1xi32>
  %m = binary.mul %col, %0 : tile<8x1xi32>
  %o = binary.add %m, %1 : tile<8x1xi32>
  %ps = splat %p {shape=[8, 1]} : tile<8x1xptr<f32>>
  %pp = addptr %ps, %o : tile<8x1xptr<f32>>
  %c = cmp.lt %o, %1 : tile<8x1xi1>
  %v = load %pp : tile<8x1xf32>
  store %pp, %v
  return
}
""")

# constants fold through binary, cmp, cast and unary with f32 rounding; an if on a folded condition is
# replaced by the ops of the branch taken (already folded) and its yield
EXP2 = float(np.exp2(np.float32(3.5)))
FOLD = ("""
func @f(%p: ptr<f32>, %n: i32) {
  %three = constant {value=3} : i32
  %four = constant {value=4} : i32
  %seven = binary.add %three, %four : i32
  %big = cmp.gt %seven, %four : i1
  %f = cast %seven {dtype='f32'} : f32
  %half = constant {value=0.5} : f32
  %e = binary.mul %f, %half : f32
  %ex = unary.exp2 %e : f32
  %r = if %big : f32 {
    %x = binary.add %ex, %ex : f32
    yield %x
  } else {
    yield %ex
  }
  %q = addptr %p, %n : ptr<f32>
  store %q, %r
  return
}
""", f"""
func @f(%p: ptr<f32>, %n: i32) {{
  %three = constant {{value=3}} : i32
  %four = constant {{value=4}} : i32
  %0 = constant {{value=7}} : i32
  %1 = constant {{value=True}} : i1
  %2 = constant {{value=7.0}} : f32
  %half = constant {{value=0.5}} : f32
  %3 = constant {{value=3.5}} : f32
  %4 = constant {{value={EXP2!r}}} : f32
  %5 = constant {{value={float(np.float32(EXP2) * 2)!r}}} : f32
  %q = addptr %p, %n : ptr<f32>
  store %q, %5
  return
}}
""")

# pure duplicates merge with a dominating op, also from inside a region; True and 1 are different
# constants; loads never merge; nothing merges with a sibling branch or with an op inside a region
CSE_SCOPES = ("""
func @f(%p: ptr<f32>, %n: i32) {
  %a = binary.mul %n, %n : i32
  %b = binary.mul %n, %n : i32
  %t = constant {value=True} : i1
  %u = constant {value=1} : i1
  %q = addptr %p, %a : ptr<f32>
  %l1 = load %q : f32
  %l2 = load %q : f32
  %c = cmp.lt %n, %b : i1
  %r = if %c : i32 {
    %in_then = binary.mul %n, %n : i32
    %dup = binary.add %in_then, %n : i32
    yield %dup
  } else {
    %in_else = binary.add %a, %n : i32
    yield %in_else
  }
  %after = binary.add %a, %n : i32
  %s = binary.add %l1, %l2 : f32
  %w = addptr %p, %after : ptr<f32>
  store %w, %s
  print %t, %u, %r {prefix=''}
  return
}
""", """
func @f(%p: ptr<f32>, %n: i32) {
  %a = binary.mul %n, %n : i32
  %t = constant {value=True} : i1
  %u = constant {value=1} : i1
  %q = addptr %p, %a : ptr<f32>
  %l1 = load %q : f32
  %l2 = load %q : f32
  %c = cmp.lt %n, %a : i1
  %r = if %c : i32 {
    %dup = binary.add %a, %n : i32
    yield %dup
  } else {
    %in_else = binary.add %a, %n : i32
    yield %in_else
  }
  %after = binary.add %a, %n : i32
  %s = binary.add %l1, %l2 : f32
  %w = addptr %p, %after : ptr<f32>
  store %w, %s
  print %t, %u, %r {prefix=''}
  return
}
""")

# an unused value, a loop whose results are unused and whose body has no effect, and unused values
# inside a loop that stores go; the store and what it uses stay
DCE_LOOPS = ("""
func @f(%p: ptr<f32>, %n: i32) {
  %zero = constant {value=0} : i32
  %one = constant {value=1} : i32
  %f0 = constant {value=0.0} : f32
  %unused = binary.mul %n, %n : i32
  %sum = for %zero, %n, %one, %f0 : f32 {
  ^(%i: i32, %acc: f32):
    %x = cast %i {dtype='f32'} : f32
    %y = binary.add %acc, %x : f32
    yield %y
  }
  for %zero, %n, %one {num_stages=2} {
  ^(%j: i32):
    %dead = binary.add %j, %j : i32
    %q = addptr %p, %j : ptr<f32>
    %v = load %q : f32
    store %q, %f0
    yield
  }
  return
}
""", """
func @f(%p: ptr<f32>, %n: i32) {
  %zero = constant {value=0} : i32
  %one = constant {value=1} : i32
  %f0 = constant {value=0.0} : f32
  for %zero, %n, %one {num_stages=2} {
  ^(%j: i32):
    %q = addptr %p, %j : ptr<f32>
    store %q, %f0
    yield
  }
  return
}
""")

CASES = [
    ("canonicalize-identities", Canonicalize(), CANONICALIZE_IDENTITIES),
    ("canonicalize-shapes", Canonicalize(), CANONICALIZE_SHAPES),
    ("fold", Fold(), FOLD),
    ("cse-scopes", CSE(), CSE_SCOPES),
    ("dce-loops", DCE(), DCE_LOOPS),
]


@pytest.mark.parametrize("p, texts", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_pass_on_ir_text(p: Pass, texts: tuple[str, str]) -> None:
    before, expected = (t.lstrip("\n") for t in texts)
    fn = parse_function(before)
    out = PassManager([p]).run(fn)  # verifies the input and the output
    assert ir.print_function(out) == expected
    assert ir.print_function(fn) == before  # the pass did not touch its input

"""Golden IR text: each generic pass on a small kernel, in tests/npulang/golden/<pass>.txt.

Each file holds the kernel's frontend IR ("// before <pass>") and the pass's output ("// after <pass>").
The pass is tested on the text alone (parse the input, run the pass, print, compare with the output),
as MLIR's FileCheck and xDSL tests are; a second test checks that the frontend still emits the input.
Run with NPU_UPDATE_GOLDEN=1 to rewrite the files from the kernels after an intended change (then
review the diff).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import npulang as npu
from npulang import ir
from npulang.ir.parser import parse_function
from npulang.passes import CSE, DCE, Canonicalize, Fold, Pass, PassManager

GOLDEN = Path(__file__).parent / "golden"
X = np.zeros(16, np.float32)


@npu.jit
def canonicalize_kernel(x_ptr, n, BLOCK: npu.constexpr):
    offs = npu.arange(0, BLOCK)
    x = npu.load(x_ptr + offs + 0)
    y = (x * 1 + npu.zeros([BLOCK], dtype=npu.float32)) / 1.0
    z = npu.where(offs < n, y, y)
    t = npu.trans(npu.trans(z[:, None]))
    npu.store(x_ptr + offs, npu.reshape(t, (BLOCK,)))


@npu.jit
def fold_kernel(x_ptr, n, BLOCK: npu.constexpr):
    offs = npu.arange(0, BLOCK)
    three = npu.full([BLOCK], 3, dtype=npu.int32)
    seven = three * 2 + 1
    scale = seven.to(npu.float32) / 2.0
    npu.store(x_ptr + offs, npu.exp2(scale - 3.5) * npu.load(x_ptr + offs), mask=three < n)


@npu.jit
def cse_kernel(x_ptr, n, BLOCK: npu.constexpr):
    a = npu.program_id(0) * BLOCK + npu.arange(0, BLOCK)
    b = npu.program_id(0) * BLOCK + npu.arange(0, BLOCK)
    acc = npu.zeros([BLOCK], dtype=npu.float32)
    for i in range(n):
        acc += npu.load(x_ptr + (npu.program_id(0) * BLOCK + npu.arange(0, BLOCK)))
    npu.store(x_ptr + a, acc + npu.load(x_ptr + b))


@npu.jit
def dce_kernel(x_ptr, n, BLOCK: npu.constexpr):
    offs = npu.arange(0, BLOCK)
    unused = npu.load(x_ptr + offs) * 2
    total = 0.0
    for i in range(n):
        total += 1.0
    if n > 3:
        npu.device_print("big ", n)
    npu.store(x_ptr + offs, offs.to(npu.float32))


CASES = [("canonicalize", canonicalize_kernel, Canonicalize()), ("fold", fold_kernel, Fold()),
         ("cse", cse_kernel, CSE()), ("dce", dce_kernel, DCE())]


def _golden_text(kernel: npu.JITFunction, p: Pass) -> str:
    fn, _ = kernel.specialize(X, 16, BLOCK=8)
    pm = PassManager([p])
    pm.run(fn)
    before, after = (s.text for s in pm.stages)
    return f"// before {p.name}\n{before}\n// after {p.name}\n{after}"


def _golden(name: str, kernel: npu.JITFunction, p: Pass) -> tuple[str, str]:
    """The (input, output) IR texts of golden/<name>.txt (rewritten first under NPU_UPDATE_GOLDEN)."""
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("NPU_UPDATE_GOLDEN"):
        path.write_text(_golden_text(kernel, p))
    text = path.read_text()
    head, after = text.split(f"\n// after {p.name}\n")
    before = head.removeprefix(f"// before {p.name}\n")
    return before, after


@pytest.mark.parametrize("name, kernel, p", CASES, ids=[c[0] for c in CASES])
def test_pass_golden(name: str, kernel: npu.JITFunction, p: Pass) -> None:
    before, after = _golden(name, kernel, p)
    out = PassManager([p]).run(parse_function(before, filename=f"golden/{name}.txt"))  # verified after the pass
    assert ir.print_function(out) == after, f"IR after {name} changed; NPU_UPDATE_GOLDEN=1 rewrites golden/{name}.txt"


@pytest.mark.parametrize("name, kernel, p", CASES, ids=[c[0] for c in CASES])
def test_frontend_emits_the_golden_input(name: str, kernel: npu.JITFunction, p: Pass) -> None:
    before, _ = _golden(name, kernel, p)
    fn, _ = kernel.specialize(X, 16, BLOCK=8)
    assert ir.print_function(fn) == before, f"frontend IR changed; NPU_UPDATE_GOLDEN=1 rewrites golden/{name}.txt"


def test_frontend_golden() -> None:
    from examples.tutorials import add_kernel

    fn, _ = add_kernel.specialize(X, X, X, 16, BLOCK_SIZE=8)
    text = ir.print_function(fn)
    path = GOLDEN / "frontend_vector_add.txt"
    if os.environ.get("NPU_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


@pytest.mark.parametrize("name, kernel, p", CASES, ids=[c[0] for c in CASES])
def test_each_pass_preserves_results(name: str, kernel: npu.JITFunction, p: Pass) -> None:
    from npulang.ir.interpreter import interpret

    fn, _ = kernel.specialize(X, 16, BLOCK=8)
    after = PassManager([p]).run(fn)
    outs = []
    for f in (fn, after):
        x = np.linspace(-1, 1, 16, dtype=np.float32)
        interpret(f, (2, 1, 1), [x, 5])
        outs.append(x)
    np.testing.assert_array_equal(outs[0], outs[1])

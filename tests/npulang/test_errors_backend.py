"""Kernels the frontend accepts and the backend cannot lower: the exact error, at the kernel's line and column."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from isa import MachineSpec
from npulang.compiler import compile_ir
from npulang.errors import CompilationError
from tests.npulang import invalid_kernels
from tests.npulang.invalid_kernels import BACKEND_CASES, Case

X = np.zeros(64, np.float32)


@pytest.mark.parametrize("case", BACKEND_CASES, ids=lambda c: c.kernel.__name__)
def test_backend_invalid_kernel_gives_its_exact_error(case: Case) -> None:
    fn, _ = case.kernel.specialize(X, 8, BLOCK=8)
    with pytest.raises(CompilationError) as info:
        compile_ir(fn, MachineSpec.load())
    err = info.value
    lines, first = inspect.getsourcelines(case.kernel.fn)
    marked = next(i for i, text in enumerate(lines) if "# <-" in text)
    text = lines[marked].rstrip("\n")
    assert (type(err), err.message, err.hint) == (case.error, case.message, case.hint)
    assert (err.file, err.line, err.col) == (invalid_kernels.__file__, first + marked, text.index(case.at))
    assert str(err).splitlines()[1:3] == ["    " + text.rstrip(), "    " + " " * err.col + "^"]

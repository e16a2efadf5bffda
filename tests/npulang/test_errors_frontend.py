"""User mistakes give npulang errors at the kernel's own file, line and column, never a traceback."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import npulang as npu
from npulang import errors
from npulang.frontend.semantics import Semantics
from tests.npulang import invalid_kernels
from tests.npulang.invalid_kernels import CASES, Case

X = np.zeros(64, np.float32)


def _marked_line(case: Case) -> tuple[int, str]:
    """The file line and text of the `# <-` line, in the kernel or the callee it names."""
    for fn in (case.kernel.fn, invalid_kernels.exp_of.fn):
        lines, first = inspect.getsourcelines(fn)
        for i, line in enumerate(lines):
            if "# <-" in line and case.at in line:
                return first + i, line.rstrip("\n")
    raise AssertionError(f"no '# <-' line containing {case.at!r} in {case.kernel.__name__}")


def test_there_are_enough_invalid_kernels() -> None:
    assert len(CASES) >= 20
    assert len({c.kernel.__name__ for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.kernel.__name__)
def test_invalid_kernel_gives_its_exact_error(case: Case) -> None:
    with pytest.raises(errors.CompilationError) as info:
        case.kernel.specialize(X, 8, BLOCK=8)
    err = info.value
    assert type(err) is case.error
    assert err.message == case.message
    if case.hint is not None:
        assert err.hint == case.hint
    line, text = _marked_line(case)
    assert err.file == invalid_kernels.__file__
    assert err.line == line
    assert err.col == text.index(case.at)
    rendered = str(err).splitlines()
    assert rendered[0] == f"{err.file}:{line}:{err.col + 1}: {case.message}"
    assert rendered[1] == "    " + text.rstrip()
    assert rendered[2] == "    " + " " * err.col + "^"


def test_errors_chain_their_cause_and_name_the_kernel() -> None:
    case = next(c for c in CASES if c.kernel.__name__ == "dot_2d_with_1d")
    with pytest.raises(errors.ShapeMismatchError) as info:
        case.kernel.specialize(X, 8, BLOCK=8)
    assert info.value.__cause__ is not None
    assert "in kernel 'dot_2d_with_1d'" in str(info.value)
    assert "hint: reshape a 1-D tile" in str(info.value)


def test_an_internal_failure_still_points_at_the_kernel_line(monkeypatch) -> None:
    @npu.jit
    def kernel(x_ptr, n, BLOCK: npu.constexpr):
        offs = npu.arange(0, BLOCK)
        npu.store(x_ptr + offs, npu.where(offs < n, 1.0, 2.0))

    def broken(self, *args):
        raise RuntimeError("boom")

    monkeypatch.setattr(Semantics, "where", broken)
    with pytest.raises(errors.CompilationError) as info:
        kernel.specialize(X, 8, BLOCK=8)
    err = info.value
    assert err.message == "internal compiler error: RuntimeError: boom"
    assert err.line == inspect.getsourcelines(kernel.fn)[1] + 3
    assert isinstance(err.__cause__, RuntimeError)


def test_constexpr_parameters_need_compile_time_values() -> None:
    with pytest.raises(npu.NpuError, match="constexpr parameter 'BLOCK' needs a compile-time value"):
        invalid_kernels.while_on_a_tile.specialize(X, 8, BLOCK=X)


def test_out_of_bounds_access_names_the_line_and_array() -> None:
    @npu.jit
    def unmasked(x_ptr, n, BLOCK: npu.constexpr):
        offs = npu.program_id(0) * BLOCK + npu.arange(0, BLOCK)
        npu.store(x_ptr + offs, npu.load(x_ptr + offs) * 2)

    x = np.arange(10, dtype=np.float32)
    with pytest.raises(errors.OutOfBoundsError) as info:
        unmasked[(2,)](x, 10, BLOCK=8, interpret=True)
    line = inspect.getsourcelines(unmasked.fn)[1] + 3
    message = str(info.value)
    assert f"test_errors_frontend.py:{line}:" in message
    expected = "load from 'x_ptr' at element offset 15, outside its 10 elements (6 lanes out of bounds)"
    assert expected in message
    assert "program (1, 0, 0)" in message and "hint: mask the access" in message
    np.testing.assert_array_equal(x[:8], 2 * np.arange(8))  # the first program ran; the second never stored
    np.testing.assert_array_equal(x[8:], [8, 9])

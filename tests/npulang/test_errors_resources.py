"""Resource errors (a config too big for the machine): one base class a tuner can catch, each pointing at
the statement that allocates, with a hint, printed once (no "During handling of the above exception")."""

from __future__ import annotations

import traceback

import numpy as np
import pytest

import npulang as npu
from examples import tutorials
from npulang.compiler import compile_ir
from tests.npulang.backend_kernels import SPEC

TUTORIALS = tutorials.__file__


def _matmul(bm: int = 32, bn: int = 32, bk: int = 16):
    a = np.zeros((64, 64), np.float16)
    c = np.zeros((64, 64), np.float32)
    fn, _ = tutorials.matmul_kernel.specialize(a, a, c, 64, 64, 64, 64, 1, 64, 1, 64, 1, BLOCK_SIZE_M=bm,
                                               BLOCK_SIZE_N=bn, BLOCK_SIZE_K=bk, GROUP_SIZE_M=2, ACTIVATION="",
                                               ACC_DTYPE=npu.float32)
    return fn


def _line_of(text: str) -> int:
    """The line of examples/tutorials.py's matmul_kernel that holds `text`."""
    lines = open(TUTORIALS).read().splitlines()
    start = next(i for i, s in enumerate(lines) if s.startswith("def matmul_kernel"))
    return next(i + 1 for i, s in enumerate(lines) if i > start and text in s)


def _raised(kind: type[npu.ResourceError], fn, spec) -> str:
    with pytest.raises(kind) as err:
        compile_ir(fn, spec)
    exc = err.value
    assert isinstance(exc, npu.ResourceError) and isinstance(exc, npu.CompilationError)
    printed = "".join(traceback.format_exception(exc))
    assert exc.__context__ is None and "During handling" not in printed
    assert printed.count(exc.message) == 1
    return str(exc)


def test_buffer_overflow_points_at_the_accumulator_and_prints_once() -> None:
    bm, bn = 256, 256
    capacity = SPEC.buffer_bytes("l0c")
    assert bm * bn * 4 > capacity  # an f32 accumulator of 256x256 does not fit L0C
    text = _raised(npu.BufferOverflowError, _matmul(bm, bn, 64), SPEC)
    line = _line_of("accumulator = npu.zeros(")
    assert text.startswith(f"{TUTORIALS}:{line}:5: tile 'accumulator1' needs {bm * bn * 4} bytes of L0C "
                           f"but only {capacity} of its {capacity} bytes are available")
    assert "\n        accumulator = npu.zeros((BLOCK_SIZE_M, BLOCK_SIZE_N), dtype=ACC_DTYPE)\n" in text
    assert text.endswith("hint: use smaller BLOCK_* sizes or a lower num_stages")


def test_event_id_exhaustion_is_a_resource_error_at_the_loop() -> None:
    spec = SPEC.replace(sync={"event_ids": 1})
    text = _raised(npu.EventIdOverflowError, _matmul(), spec)
    line = _line_of("for k in range(")
    assert text.startswith(f"{TUTORIALS}:{line}:5: 2 flags from mte1 to mte2 would be outstanding at once, "
                           f"but the machine has 1 event id(s) per pipe pair")
    assert "hint: use a lower num_stages or fewer tiles in flight" in text


def test_register_exhaustion_is_a_resource_error_at_the_statement() -> None:
    registers = 6
    spec = SPEC.replace(scalar={"registers": registers})
    text = _raised(npu.RegisterOverflowError, _matmul(), spec)
    line = _line_of("pid = npu.program_id(axis=0)")
    assert text.startswith(f"{TUTORIALS}:{line}:5: the kernel needs more than the machine's {registers} "
                           f"scalar registers at once")
    assert "hint: simplify the scalar arithmetic" in text


def test_the_default_machine_compiles_the_same_kernel() -> None:
    """The three configs above fail for the resource alone: the kernel itself compiles."""
    assert compile_ir(_matmul(), SPEC).program.bundles

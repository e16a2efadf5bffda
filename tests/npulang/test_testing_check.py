"""npulang.testing.check_kernel: wrong kernels are caught and the layer that disagrees is named.

The compiler and interpreter layers are made to disagree by fault injection: a `Runtime` that
corrupts one element of the output after the compiled (or the interpreted) run, standing in for a
compiler (or interpreter) bug that the real layers, being correct, cannot show.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import npulang as npu
from npulang.runtime import RUNTIME, JITFunction, Runtime
from npulang.testing import KernelMismatch, arrays, check_kernel, shapes

FAST_FAIL = settings(database=None, phases=(Phase.generate,))  # the default budget, no shrinking (faster)


def _scaled_add(x_ptr, y_ptr, out_ptr, n, scale, BLOCK: npu.constexpr):
    offs = npu.program_id(0) * BLOCK + npu.arange(0, BLOCK)
    mask = offs < n
    x = npu.load(x_ptr + offs, mask=mask, other=0.0)
    y = npu.load(y_ptr + offs, mask=mask, other=0.0)
    npu.store(out_ptr + offs, (x + y) * scale, mask=mask)


scaled_add = npu.jit(_scaled_add)


@npu.jit
def off_by_one_mask(x_ptr, y_ptr, out_ptr, n, scale, BLOCK: npu.constexpr):
    offs = npu.program_id(0) * BLOCK + npu.arange(0, BLOCK)
    mask = offs < n - 1  # the bug: the last element is never written
    x = npu.load(x_ptr + offs, mask=mask, other=0.0)
    y = npu.load(y_ptr + offs, mask=mask, other=0.0)
    npu.store(out_ptr + offs, (x + y) * scale, mask=mask)


@npu.jit
def missing_scale(x_ptr, y_ptr, out_ptr, n, scale, BLOCK: npu.constexpr):
    offs = npu.program_id(0) * BLOCK + npu.arange(0, BLOCK)
    mask = offs < n
    x = npu.load(x_ptr + offs, mask=mask, other=0.0)
    y = npu.load(y_ptr + offs, mask=mask, other=0.0)
    npu.store(out_ptr + offs, x + y, mask=mask)  # the bug: `* scale` forgotten


def reference(x, y, out, n, scale):
    return (x.astype(np.float64) + y) * scale


class CorruptingRuntime(Runtime):
    """Adds 1 to out[0] after every compiled (or interpreted) launch: a stand-in for a bug in that layer."""

    def __init__(self, layer: str) -> None:
        super().__init__(cache=RUNTIME.cache)
        self.layer = layer

    def launch(self, kernel: Any, grid: Any, call: Any, options: Any, launch_kwargs: dict[str, Any]) -> Any:
        run = super().launch(kernel, grid, call, options, launch_kwargs)
        if options.interpret == (self.layer == "interpreted"):
            call.runtime["out_ptr"].reshape(-1)[0] += 1
        return run


def _args(n: int, seed: int = 0, scale: float = 0.5) -> tuple[Any, ...]:
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    return x, y, np.zeros(n, np.float32), n, scale


Tried = list[tuple[np.ndarray, np.ndarray, float]]  # the (x, y, scale) of each example run


def _caught(kernel: JITFunction, min_side: int = 1) -> tuple[KernelMismatch, Tried]:
    """Run a property test of `kernel` with the default example budget; return its failure and the inputs tried."""
    tried: Tried = []

    @FAST_FAIL
    @given(x=arrays(np.float32, shapes(1, min_side=min_side, max_side=300, multiple_of=64)), data=st.data(),
           scale=st.floats(0.25, 4.0))
    def test(x: np.ndarray, data: st.DataObject, scale: float) -> None:
        n = x.size
        y = data.draw(arrays(np.float32, n))
        tried.append((x, y, scale))
        check_kernel(kernel, (npu.cdiv(n, 64),), (x, y, np.zeros(n, np.float32), n, scale), reference,
                     outputs="out_ptr", BLOCK=64)

    with pytest.raises(KernelMismatch) as info:
        test()
    return info.value, tried


@pytest.mark.npu_compiled
def test_a_correct_kernel_passes_the_default_budget() -> None:
    @settings(database=None)
    @given(x=arrays(np.float32, shapes(1, max_side=300, multiple_of=64)), scale=st.floats(0.25, 4.0))
    def test(x: np.ndarray, scale: float) -> None:
        n = x.size
        y = x[::-1].copy()
        run = check_kernel(scaled_add, (npu.cdiv(n, 64),), (x, y, np.zeros(n, np.float32), n, scale), reference,
                           outputs="out_ptr", BLOCK=64)
        assert run.record.cycles > 0 and run.compiled["out_ptr"].shape == (n,)

    test()


def test_an_off_by_one_mask_is_caught_and_the_message_names_the_last_element() -> None:
    err, tried = _caught(off_by_one_mask)
    x, y, scale = tried[-1]
    n = x.size
    assert err.layer == "reference" and err.worst_index == (n - 1,)
    assert "the kernel disagrees with your reference" in str(err)
    assert f"out_ptr (interpreted vs reference): 1 of {n:,} elements" in str(err)
    assert f"[{n - 1}]" in str(err).splitlines()[-1]  # the worst element's row: its index,
    assert f"{float((np.float64(x[-1]) + y[-1]) * scale):.8g}" in str(err)  # ...the value it should have had


def test_a_missing_scale_is_caught_and_the_worst_element_is_the_furthest_over_its_tolerance() -> None:
    err, tried = _caught(missing_scale, min_side=64)
    x, y, scale = tried[-1]
    actual, expected = (x + y).astype(np.float64), (x.astype(np.float64) + y) * scale
    assert err.layer == "reference" and len(tried) <= 100 and x.size >= 64
    # every element is off by the same factor, so the largest is the furthest over atol + rtol*|expected|
    worst = int(np.argmax(np.abs(expected)))
    assert err.worst_index == (worst,)
    row = next(line for line in str(err).splitlines() if line.strip().startswith(f"[{worst}]"))
    assert f"{actual[worst]:.8g}" in row and f"{expected[worst]:.8g}" in row
    assert f"{x.size:,} of {x.size:,} elements (100.0%) are not close" in str(err)


@pytest.mark.parametrize("layer, verdict", [
    ("compiled", "the compiled run disagrees with the interpreter and your reference, which agree"),
    ("interpreted", "the interpreter disagrees with the compiled run and your reference, which agree"),
])
@pytest.mark.npu_compiled
def test_the_layer_that_disagrees_is_named(layer: str, verdict: str) -> None:
    kernel = JITFunction(_scaled_add, runtime=CorruptingRuntime(layer))
    with pytest.raises(KernelMismatch) as info:
        check_kernel(kernel, (2,), _args(100), reference, outputs="out_ptr", BLOCK=64)
    assert info.value.layer == layer and verdict in str(info.value) and info.value.worst_index == (0,)


@pytest.mark.npu_compiled
def test_a_wrong_kernel_with_a_wrong_compiled_run_names_all_three() -> None:
    def _wrong(x_ptr, y_ptr, out_ptr, n, scale, BLOCK: npu.constexpr):
        offs = npu.program_id(0) * BLOCK + npu.arange(0, BLOCK)
        npu.store(out_ptr + offs, npu.load(x_ptr + offs, mask=offs < n) * scale, mask=offs < n)

    kernel = JITFunction(_wrong, runtime=CorruptingRuntime("compiled"))
    with pytest.raises(KernelMismatch, match="all three disagree") as info:
        check_kernel(kernel, (2,), _args(100), reference, outputs="out_ptr", BLOCK=64)
    assert info.value.layer == "all"
    assert "out_ptr (interpreted vs reference)" in str(info.value)
    assert "out_ptr (compiled vs interpreted): 1 of 100" in str(info.value)


def test_the_reference_may_write_in_place_or_return_a_dict_and_inputs_are_compared_too() -> None:
    def in_place(x, y, out, n, scale):
        out[:] = (x + y) * np.float32(scale)

    checked = check_kernel(scaled_add, (2,), _args(100), in_place, BLOCK=64)
    assert set(checked.expected) == {"x_ptr", "y_ptr", "out_ptr"}
    checked = check_kernel(scaled_add, (2,), lambda: _args(100),
                           lambda x, y, out, n, scale: {"out_ptr": (x + y) * scale}, BLOCK=64)
    assert set(checked.expected) == {"out_ptr"}

    def scribbles_on_an_input(x, y, out, n, scale):
        in_place(x, y, out, n, scale)
        y[3] = 7

    with pytest.raises(KernelMismatch, match=r"y_ptr \(interpreted vs reference\): 1 of 100") as info:
        check_kernel(scaled_add, (2,), _args(100), scribbles_on_an_input, BLOCK=64)
    assert info.value.worst_index == (3,)


def test_misuse_gets_a_clear_error() -> None:
    with pytest.raises(ValueError, match="name the argument"):
        check_kernel(scaled_add, (2,), _args(100), reference, BLOCK=64)
    with pytest.raises(ValueError, match=r"out is not an array argument .* x_ptr, y_ptr, out_ptr"):
        check_kernel(scaled_add, (2,), _args(100), reference, outputs="out", BLOCK=64)
    with pytest.raises(ValueError, match="names 2 arguments but the reference returned 1"):
        check_kernel(scaled_add, (2,), _args(100), reference, outputs=("out_ptr", "x_ptr"), BLOCK=64)
    with pytest.raises(ValueError, match="do not pass interpret="):
        check_kernel(scaled_add, (2,), _args(100), reference, outputs="out_ptr", BLOCK=64, interpret=True)
    with pytest.raises(TypeError, match="@npu.jit kernel"):
        check_kernel(_scaled_add, (2,), _args(100), reference, outputs="out_ptr", BLOCK=64)


def test_a_failing_launch_says_which_run_failed() -> None:
    @npu.jit
    def unmasked(x_ptr, y_ptr, out_ptr, n, scale, BLOCK: npu.constexpr):
        offs = npu.arange(0, BLOCK)
        npu.store(out_ptr + offs, npu.load(x_ptr + offs))

    with pytest.raises(npu.OutOfBoundsError) as info:
        check_kernel(unmasked, (1,), _args(10), reference, outputs="out_ptr", BLOCK=64)
    assert "check_kernel: in the interpreted run of kernel 'unmasked'" in info.value.__notes__


def test_an_interpreted_session_skips_the_compiled_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NPU_INTERPRET", "1")
    checked = check_kernel(scaled_add, (2,), _args(100), reference, outputs="out_ptr", BLOCK=64)
    assert checked.compiled is None and checked.record is None
    with pytest.raises(KernelMismatch, match="the kernel disagrees with your reference"):
        check_kernel(missing_scale, (2,), _args(100), reference, outputs="out_ptr", BLOCK=64)

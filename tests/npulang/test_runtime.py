"""The runtime's contract: checks on every launch, one bind, one record type, cold L2 on request."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import npulang as npu
from examples import tutorials as T
from npulang.frontend import KernelDef
from npulang.runtime import RUNTIME, LaunchOptions


@npu.jit
def axpy(x_ptr, out_ptr, n, BLOCK: npu.constexpr):
    """out = 2 x + 1 where in bounds."""
    offs = npu.program_id(0) * BLOCK + npu.arange(0, BLOCK)
    mask = offs < n
    npu.store(out_ptr + offs, 2.0 * npu.load(x_ptr + offs, mask=mask) + 1.0, mask=mask)


@npu.jit
def weighted(x_ptr, out_ptr, WEIGHTS: npu.constexpr, BLOCK: npu.constexpr):
    offs = npu.arange(0, BLOCK)
    x = npu.load(x_ptr + offs)
    npu.store(out_ptr + offs, x * WEIGHTS[0] + WEIGHTS[1])


def _grid(n: int):
    return lambda meta: (npu.cdiv(n, meta["BLOCK"]),)


def test_argument_checks_run_on_a_cache_hit_too():
    x, out = np.zeros(64, np.float32), np.zeros(64, np.float32)
    axpy[_grid(64)](x, out, 64, BLOCK=64)
    with pytest.raises(npu.NpuError, match="does not fit in int32"):
        axpy[_grid(64)](x, out, 2**40, BLOCK=64)
    with pytest.raises(npu.NpuError, match="not a contiguous array"):
        axpy[_grid(64)](np.zeros(128, np.float32)[::2], out, 64, BLOCK=64)
    with pytest.raises(npu.NpuError, match="float64 has no NPU equivalent"):
        axpy[_grid(64)](np.zeros(64, np.float64), out, 64, BLOCK=64)
    with pytest.raises(npu.NpuError, match="missing a required argument: 'n'"):
        axpy[_grid(64)](x, out, BLOCK=64)


@pytest.mark.parametrize("interpret", [False, True])
def test_list_and_tuple_constexprs_compile_and_give_the_interpreters_result(interpret):
    x = np.arange(16, dtype=np.float32)
    for weights in ([3.0, 1.0], (3.0, 1.0), [2.0, 5.0]):
        out = np.zeros_like(x)
        weighted[(1,)](x, out, weights, BLOCK=16, interpret=interpret)
        np.testing.assert_array_equal(out, x * weights[0] + weights[1])


def test_constexprs_equal_in_python_but_of_other_types_are_other_specialisations():
    x = np.zeros(16, np.float32)
    calls = [weighted.bind((x, x, w), {"BLOCK": 16}).signature() for w in ([1, 1], (1, 1), [1.0, 1.0], [True, 1])]
    assert len(set(calls)) == 4


@pytest.mark.parametrize("interpret", [False, True])
def test_a_launch_binds_its_arguments_once(monkeypatch, interpret):
    RUNTIME.cache.clear()  # a cold launch: compile (or interpret) after the bind
    binds = []
    original = KernelDef.bind
    monkeypatch.setattr(KernelDef, "bind", lambda self, *a: binds.append(1) or original(self, *a))
    x, out = np.zeros(100, np.float32), np.zeros(100, np.float32)
    axpy[_grid(100)](x, out, 100, BLOCK=32, interpret=interpret)
    assert binds == [1]


def test_interpreted_and_compiled_launches_return_the_same_record_type():
    x = np.arange(100, dtype=np.float32)
    with npu.profile() as prof:
        runs = [axpy[_grid(100)](x, np.zeros_like(x), 100, BLOCK=32, interpret=i) for i in (True, False)]
    interpreted, compiled = runs
    assert type(interpreted) is type(compiled) is npu.RunRecord
    assert interpreted.cycles is None and interpreted.seconds is None and interpreted.profile == {}
    assert "interpreted" in interpreted.report()
    assert compiled.cycles > 0 and interpreted.grid == compiled.grid == (4, 1, 1)
    assert prof.launches == runs and prof.cycles is None
    assert "interpreted" in prof.summary()
    assert all(f.name != "result" for f in dataclasses.fields(npu.RunRecord))  # no raw simulator result


@pytest.mark.npu_compiled
def test_cold_l2_cycles_do_not_depend_on_what_ran_before():
    # a memory-bound kernel: 8 MiB of reads, so whether they hit in L2 shows in the makespan
    n = 1 << 20
    x, y, out = (np.zeros(n, np.float32) for _ in range(3))

    def launch(block: int, **options):
        return T.add_kernel[(npu.cdiv(n, block),)](x, y, out, n, BLOCK_SIZE=block, timing_only=True,
                                                   **options).cycles

    alone = launch(4096, l2="cold")
    launch(2048)  # another config leaves x and y in L2
    warm = launch(4096)
    after_other = launch(4096, l2="cold")
    assert after_other == alone
    assert warm < alone  # the warm state is real, so asking for a cold one matters


def test_launch_options_are_a_frozen_keyword_only_dataclass_checked_on_launch():
    opts = LaunchOptions(num_stages=3, l2="cold")
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.num_stages = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        LaunchOptions(3)  # type: ignore[misc]
    x, out = np.zeros(8, np.float32), np.zeros(8, np.float32)
    with pytest.raises(npu.NpuError, match="l2 must be"):
        axpy[(1,)](x, out, 8, BLOCK=8, l2="lukewarm")
    with pytest.raises(npu.NpuError, match="trace must be True or False"):
        axpy[(1,)](x, out, 8, BLOCK=8, trace="yes")  # a truthy string is not silently taken as True
    with pytest.raises(npu.NpuError, match="num_stages"):
        axpy[(1,)](x, out, 8, BLOCK=8, num_stages=0)


def test_a_jitted_kernel_keeps_its_source_and_function():
    assert inspect.getsource(axpy).startswith("@npu.jit\ndef axpy(")
    assert axpy.src == inspect.getsource(axpy.fn)
    assert axpy.__wrapped__ is axpy.fn and axpy.__doc__ == "out = 2 x + 1 where in bounds."
    assert inspect.signature(axpy) == inspect.signature(axpy.fn)


def test_module_names_are_modules():
    assert inspect.ismodule(importlib.import_module("npulang.runtime.jit"))
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("npulang.jit")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("npulang.inspect")


def test_threads_launching_cached_kernels_cold_get_the_serial_cycles():
    size = 128
    a, b = np.ones((size, size), np.float16), np.ones((size, size), np.float16)

    def launch(block: int) -> int:
        c = np.zeros((size, size), np.float16)
        grid = (npu.cdiv(size, block), npu.cdiv(size, block))
        return T.matmul_desc_kernel[grid](a, b, c, size, size, size, BM=block, BN=block, BK=32, timing_only=True,
                                          l2="cold").cycles

    serial = {block: launch(block) for block in (32, 64)}  # compiled here, before the threads
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(launch, [32, 64] * 8))
    assert results == [serial[32], serial[64]] * 8


def test_leaving_a_nested_profile_closes_that_profile_even_when_both_recorded_the_same():
    x = np.zeros(8, np.float32)
    with npu.profile() as outer:
        with npu.profile() as inner:
            pass  # both empty, so equal as data
        run = axpy[(1,)](x, x, 8, BLOCK=8, timing_only=True)
    assert outer.launches == [run] and inner.launches == []


OFFSET = 1.0  # a global constant read by `add_offset`; the test below rebinds it


@npu.jit
def add_offset(x_ptr, out_ptr, BLOCK: npu.constexpr):
    offs = npu.arange(0, BLOCK)
    npu.store(out_ptr + offs, npu.load(x_ptr + offs) + OFFSET)


@pytest.mark.parametrize("interpret", [False, True])
def test_rebinding_a_global_constant_after_a_launch_recompiles(monkeypatch, interpret):
    """A cached launch must not run code built for a global's old value (both modes agree)."""
    x = np.arange(16, dtype=np.float32)
    for offset in (1.0, 5.0):
        monkeypatch.setitem(globals(), "OFFSET", offset)
        out = np.zeros_like(x)
        add_offset[(1,)](x, out, BLOCK=16, interpret=interpret)
        np.testing.assert_array_equal(out, x + np.float32(offset))


def test_a_grid_callable_asking_for_a_missing_name_and_a_wrong_machine_are_clear_errors():
    x = np.zeros(64, np.float32)
    with pytest.raises(npu.NpuError, match=r"grid callable asked for 'BLOCK'.*it has: x_ptr, y_ptr, output_ptr"):
        T.add_kernel[lambda meta: (npu.cdiv(64, meta["BLOCK"]),)](x, x, np.empty_like(x), 64, BLOCK_SIZE=32)
    with pytest.raises(npu.NpuError, match="set_machine takes a preset name, a TOML path or an isa.MachineSpec, "
                                           "got int 3"):
        npu.set_machine(3)

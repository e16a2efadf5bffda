"""The compiled launch path: results, cycles, the run record, profile, caches, inspect and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import isa
import npulang as npu
from isa.asm import assemble
from npulang.runtime import RUNTIME, launch
from npulang.runtime.cache import KernelCache, ProgramKey


@npu.jit
def scale_add(x_ptr, y_ptr, out_ptr, n, alpha, BLOCK: npu.constexpr):
    pid = npu.program_id(0)
    offs = pid * BLOCK + npu.arange(0, BLOCK)
    mask = offs < n
    x = npu.load(x_ptr + offs, mask=mask)
    y = npu.load(y_ptr + offs, mask=mask)
    npu.store(out_ptr + offs, alpha * x + y, mask=mask)


@npu.jit
def unmasked_copy(x_ptr, out_ptr, BLOCK: npu.constexpr):
    offs = npu.program_id(0) * BLOCK + npu.arange(0, BLOCK)
    npu.store(out_ptr + offs, npu.load(x_ptr + offs))


def _arrays(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random(n, np.float32), rng.random(n, np.float32), np.zeros(n, np.float32)


def _launch(x, y, out, **meta):
    n = x.size
    return scale_add[lambda m: (npu.cdiv(n, m["BLOCK"]),)](x, y, out, n, 2.0, BLOCK=256, **meta)


@pytest.mark.npu_compiled
def test_results_match_numpy_and_cycles_respect_the_hbm_roofline():
    x, y, out = _arrays(10_000)
    RUNTIME.device().flush_l2()
    run = _launch(x, y, out)
    np.testing.assert_allclose(out, 2.0 * x + y, rtol=1e-6)
    spec = RUNTIME.get_machine()
    # cold L2: every byte read and written crosses HBM, so no launch can beat bytes / bandwidth
    assert run.cycles >= 3 * x.nbytes / spec.hbm_bytes_per_cycle
    assert run.grid == (40, 1, 1)
    assert run.seconds == pytest.approx(run.cycles / 1.8e9)
    assert 0 < run.utilisation["mte2"] <= 1


@pytest.mark.npu_compiled
def test_cycles_are_deterministic_on_a_cold_device_and_timing_only_agrees():
    x, y, out = _arrays(5000)
    RUNTIME.device().flush_l2()
    first = _launch(x, y, out).cycles
    RUNTIME.device().flush_l2()
    out2 = np.zeros_like(out)
    timing = _launch(x, y, out2, timing_only=True).cycles
    assert timing == first
    assert not out2.any()  # timing-only does no numpy work


@pytest.mark.npu_compiled
def test_profile_records_every_launch_and_sums_cycles():
    x, y, out = _arrays(3000)
    with npu.profile() as prof:
        a = _launch(x, y, out)
        with npu.profile() as inner:
            b = _launch(x, y, out)
    assert prof.launches == [a, b]
    assert inner.launches == [b]
    assert prof.cycles == a.cycles + b.cycles
    assert "scale_add" in prof.summary()


@pytest.mark.npu_compiled
def test_run_profile_attributes_cycles_to_kernel_lines_and_report_shows_source():
    x, y, out = _arrays(3000)
    run = _launch(x, y, out)
    assert run.profile and all(":" in k for k in run.profile)
    assert "npu.store(out_ptr + offs, alpha * x + y, mask=mask)" in run.report()


@pytest.mark.npu_compiled
def test_trace_is_written_when_asked_and_explains_itself_otherwise(tmp_path):
    x, y, out = _arrays(2000)
    run = _launch(x, y, out, trace=True)
    path = run.write_trace(tmp_path / "t.json")
    events = json.loads(path.read_text())
    events = events["traceEvents"] if isinstance(events, dict) else events
    assert any(e.get("ph") == "X" for e in events)
    with pytest.raises(npu.NpuError, match="trace=True"):
        _launch(x, y, out).write_trace(tmp_path / "none.json")


def test_memory_cache_hit_skips_compilation(monkeypatch):
    x, y, out = _arrays(1000)
    _launch(x, y, out)
    calls = []
    monkeypatch.setattr(launch, "compile_ir", lambda *a, **k: calls.append(a))
    _launch(x, y, out)
    assert calls == []


def test_disk_cache_round_trips_and_recovers_from_a_corrupt_entry(tmp_path):
    program = assemble(".kernel k\n    nop\n")
    cache = KernelCache(tmp_path, use_disk=True)
    key = ProgramKey("k", 1, "machine")
    built = []
    assert cache.program(key, lambda: built.append(1) or program) == program
    fresh = KernelCache(tmp_path, use_disk=True)  # another process
    assert fresh.program(key, lambda: pytest.fail("should come from disk")) == program
    (tmp_path / "kernels" / f"{key.digest()}.s").write_text("garbage {{{")
    again = KernelCache(tmp_path, use_disk=True)
    assert again.program(key, lambda: program) == program
    assert (tmp_path / "kernels" / f"{key.digest()}.s").read_text().startswith(".kernel k")


def test_cache_key_changes_with_machine_and_num_stages():
    spec = isa.MachineSpec.load()
    other = spec.replace(cores=8)
    key = ProgramKey("k", 2, spec.fingerprint)
    assert key.digest() != ProgramKey("k", 2, other.fingerprint).digest()
    assert key.digest() != ProgramKey("k", 1, spec.fingerprint).digest()
    assert key.digest() != ProgramKey("k", 2, spec.fingerprint, compiler="another").digest()


def test_inspect_shows_each_stage_and_assembly_that_round_trips():
    x, y, out = _arrays(1000)
    ins = scale_add.inspect(x, y, out, x.size, 2.0, BLOCK=256)
    names = [name for name, _ in ins.stages]
    assert names[0] == "frontend" and "cse" in names and "lower" in names
    assert assemble(ins.asm) == ins.program
    assert "ub" in ins.buffer_map()
    assert "// ---- assembly ----" in str(ins)


@pytest.mark.npu_compiled
def test_another_machine_changes_the_cycles():
    x, y, out = _arrays(50_000)
    base = RUNTIME.get_machine()
    try:
        RUNTIME.set_machine(base.replace(cores=4))
        RUNTIME.device().flush_l2()
        few = _launch(x, y, out).cycles
    finally:
        RUNTIME.set_machine(base)
    RUNTIME.device().flush_l2()
    assert _launch(x, y, out).cycles < few


def test_out_of_bounds_access_names_the_kernel_and_line():
    x = np.zeros(100, np.float32)
    out = np.zeros(100, np.float32)
    with pytest.raises(npu.OutOfBoundsError) as info:
        unmasked_copy[(1,)](x, out, BLOCK=128)
    text = str(info.value)
    assert "unmasked_copy" in text and "test_launch.py" in text and "hint: mask" in text


@pytest.mark.npu_compiled
def test_moving_a_kernel_to_another_line_recompiles_with_the_new_locations(tmp_path, monkeypatch):
    """Compiled code carries file:line locations, so the cache key must cover where the source stands."""
    import importlib.util

    body = ("import npulang as npu\n\n@npu.jit\ndef fill(out_ptr, BLOCK: npu.constexpr):\n"
            "    npu.store(out_ptr + npu.arange(0, BLOCK), 1.0)\n")
    monkeypatch.setenv("NPU_CACHE_DIR", str(tmp_path / "cache"))
    lines = []
    for i, prefix in enumerate(("", "\n\n\n")):
        path = tmp_path / f"mod{i}.py"
        path.write_text(prefix + body)
        spec = importlib.util.spec_from_file_location(f"mod{i}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        out = np.zeros(16, np.float32)
        run = mod.fill[(1,)](out, BLOCK=16)
        lines.append({loc.rsplit(":", 1)[1] for loc in run.profile})
    assert lines[0] != lines[1]


def test_launch_options_are_accepted_in_both_modes():
    x, y, out = _arrays(300)
    for interpret in (True, False):
        out[:] = 0
        _launch(x, y, out, trace=True, num_stages=1, interpret=interpret)
        np.testing.assert_allclose(out, 2.0 * x + y, rtol=1e-6)


def test_a_runtime_argument_passed_by_keyword_stays_runtime():
    """As in Triton, only npu.constexpr parameters specialise the kernel; n=... by keyword does not."""
    x, y, out = _arrays(700)
    scale_add[(3,)](x, y, out, n=700, alpha=2.0, BLOCK=256)
    fn_a, key_a = scale_add.specialize(x, y, out, n=700, alpha=2.0, BLOCK=256)
    fn_b, key_b = scale_add.specialize(x, y, out, n=500, alpha=3.0, BLOCK=256)
    assert key_a == key_b and fn_a.constexprs == {"BLOCK": 256}
    np.testing.assert_allclose(out, 2.0 * x + y, rtol=1e-6)


@npu.jit
def add_scalar(x_ptr, out_ptr, s, BLOCK: npu.constexpr):
    offs = npu.arange(0, BLOCK)
    npu.store(out_ptr + offs, npu.load(x_ptr + offs) + s)


@pytest.mark.parametrize("s", [np.float16(2.5), np.int8(-3), np.float32(2.5), np.int32(7), True, np.bool_(False)],
                         ids=lambda s: type(s).__name__)
def test_every_scalar_argument_type_compiles_and_matches_the_interpreter(s):
    """A runtime scalar of any accepted type (f16, i8, bool: i1) compiles and runs like the interpreter."""
    x = np.arange(16, dtype=np.float32)
    want = x + np.float32(s)
    for interpret in (True, False):
        out = np.zeros_like(x)
        add_scalar[(1,)](x, out, s, BLOCK=16, interpret=interpret)
        np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("interpret", [False, True])
def test_storing_to_a_read_only_array_says_so_in_both_modes(interpret):
    """The hint is about the array, not about masking (the access is in bounds)."""
    x, out = np.zeros(256, np.float32), np.zeros(256, np.float32)
    out.setflags(write=False)
    with pytest.raises(npu.NpuRuntimeError) as err:
        unmasked_copy[(1,)](x, out, BLOCK=256, interpret=interpret)
    text = str(err.value)
    assert "out_ptr" in text and "read-only array" in text and "test_launch.py" in text
    assert "hint: pass a writeable array" in text and "hint: mask" not in text

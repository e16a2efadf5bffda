"""Profiles end to end: verdicts on kernels whose bound is known, stall reasons and buffers in reports,
`prof.summary()`, plots, the merged Chrome trace, and `npu-prof` as a command."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import npulang as npu
from npulang.profiler import plot_profile, write_profile_trace
from npulang.profiler import cli
from profiled_kernels import add, matmul, repeated_dot, repeated_exp, stream

HERE = Path(__file__).resolve().parent
NPU_PROF = Path(sys.executable).parent / "npu-prof"


def check_bounds(run) -> None:
    """No unit's bound may exceed the measured cycles: that would be a figure beating its roofline."""
    v = run.verdict
    assert all(b <= run.cycles for b in v.bounds.values()), v.bounds
    assert v.limiter == "latency" or v.bounds[v.limiter] == max(v.bounds.values())


def test_an_hbm_streaming_kernel_is_hbm_bound() -> None:
    with npu.profile() as prof:
        stream()
    (run,) = prof.launches
    check_bounds(run)
    v = run.verdict
    assert v.limiter == "HBM" and v.bounds["HBM"] == run.hbm_bytes / run.machine.hbm_bytes_per_cycle
    assert v.advice.startswith(f"HBM-bound ({v.utilisation['HBM']:.0%} of {run.cycles:,} cycles): moves "
                               f"{run.hbm_bytes / 2**20:.2f} MiB from HBM")
    assert run.hbm_bytes >= 3 * 4 * (1 << 20)  # two inputs read, one output written, each once at least
    # MTE2's own bound leaves out its waits on HBM, core by core: the busiest core's time at the pipe's rate
    assert v.bounds["MTE2"] == max(b["mte2"] - w.get("mte2", 0) for b, w in zip(run.core_busy, run.core_bandwidth))
    assert sum(w.get("mte2", 0) for w in run.core_bandwidth) == sum(
        s.cycles for s in run.stalls if (s.pipe, s.reason) == ("mte2", "bandwidth")) > 0


def test_a_matmul_with_a_tiny_block_k_is_mte2_bound_and_told_to_lengthen_its_loads() -> None:
    M = N = K = 1024
    a = np.zeros((M, K), np.float16)
    b = np.zeros((K, N), np.float16)
    c = np.zeros((M, N), np.float32)
    with npu.profile():
        run = matmul[(M // 128, N // 128)](a, b, c, M, N, K, BM=128, BN=128, BK=16, timing_only=True)
    check_bounds(run)
    v = run.verdict
    assert v.limiter == "MTE2" and v.bounds["MTE2"] > v.bounds["cube"]
    loads, load_cycles = run.op_cycles["mte2"]["load"]
    assert loads == (M // 128) * (N // 128) * (K // 16) * 2  # an A and a B tile per K step
    assert f"{loads:,} loads of {load_cycles / loads:.0f} cycles on average" in v.advice
    assert "larger BLOCK_K" in v.advice  # short loads: the set-up is a large share, so longer loads help
    untraced = dataclasses.replace(run, stalls=None, core_bandwidth=[])  # as a launch outside npu.profile()
    assert untraced.verdict.limiter == "MTE2" and "(untraced: this pipe's busy time includes" in untraced.verdict.advice


def test_a_verdict_outside_a_profile_gives_no_per_instruction_figures_it_does_not_have() -> None:
    n = 1024
    a, b, c = np.zeros((n, n), np.float16), np.zeros((n, n), np.float16), np.zeros((n, n), np.float32)
    run = matmul[(n // 128, n // 128)](a, b, c, n, n, n, BM=128, BN=128, BK=16, timing_only=True)
    assert not run.op_cycles and run.verdict.limiter == "MTE2"
    assert "0 loads" not in run.verdict.advice and " 0 cycles on average" not in run.verdict.advice


def test_a_kernel_multiplying_resident_tiles_is_cube_bound() -> None:
    B, P, R = 128, 24, 16
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, P * B * B)).astype(np.float16)
    c = np.zeros(P * B * B, np.float32)
    with npu.profile():
        run = repeated_dot[(P,)](a, b, c, R, B=B)
    ref = a.reshape(P, B, B).astype(np.float32) @ b.reshape(P, B, B).astype(np.float32) * R
    np.testing.assert_allclose(c.reshape(P, B, B), ref, rtol=1e-3, atol=1e-2)
    check_bounds(run)
    assert run.verdict.limiter == "cube"
    assert run.op_cycles["m"]["mmad"][0] == P * R


def test_repeated_elementwise_work_is_vector_bound_and_a_lone_small_program_is_latency_bound() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal(24 * 4096).astype(np.float32)
    out = np.empty_like(x)
    with npu.profile():
        vec = repeated_exp[(24,)](x, out, 16, BLOCK=4096)
        small = repeated_exp[(1,)](x, out, 1, BLOCK=1024)
    check_bounds(vec)
    assert vec.verdict.limiter == "vector"
    check_bounds(small)
    v = small.verdict
    assert v.limiter == "latency" and max(v.utilisation.values()) < 0.5
    assert f"1 of {small.machine.cores} cores used" in v.advice
    top = small.stalls[0]
    assert top.reason == "flag" and f"{top.pipe} waits most on flag {top.flag} from {top.source}" in v.advice


def test_a_profile_records_stall_reasons_buffers_and_names_the_slowest_launch() -> None:
    x = np.ones(1 << 16, np.float32)
    out = np.empty_like(x)
    plain = add[(16,)](x, x, out, x.size, BLOCK=4096)
    assert plain.stalls is None and plain.trace_writer is None  # outside a profile: no trace, no reasons
    with npu.profile() as prof:
        small = add[(1,)](x, x, out, 4096, BLOCK=4096)
        big = add[(16,)](x, x, out, x.size, BLOCK=4096)
    assert big.cycles == plain.cycles  # tracing for the profile changes no cycle
    assert prof.slowest is big and big.cycles > small.cycles
    flags = {(s.pipe, s.source, s.flag) for s in big.stalls if s.reason == "flag"}
    assert ("v", "mte2", "mte2->v #0") in flags
    stalled = {p: sum(s.cycles for s in big.stalls if s.pipe == p and s.reason == "flag") for p in big.pipe_stall}
    assert {p: c for p, c in stalled.items() if p != "s"} == {p: c for p, c in big.pipe_stall.items() if p != "s"}
    usage = add.inspect(x, x, out, x.size, BLOCK=4096, persistent=False).usage  # the compiler's own account
    assert big.buffers == {s: used for s, used in usage.items() if used} and big.buffers["ub"] >= 2 * 4096 * 4
    assert [sum(c[p] for c in big.core_busy) for p in big.pipe_busy] == list(big.pipe_busy.values())
    summary = prof.summary()
    assert summary.splitlines()[-1] == f"slowest: add[16, 1, 1], {big.cycles:,} cycles; {big.verdict}"
    report = big.report()
    assert f"verdict: {big.verdict}" in report and str(big.stalls[0]) in report
    assert f"ub {big.buffers['ub']:,}/{big.machine.buffers.ub:,} B" in report
    mte2 = [c["mte2"] for c in big.core_busy[:16]]
    assert "per core, fewest-most over the 16 cores used:" in report and \
        f"    mte2  busy {min(mte2):,}-{max(mte2):,}  stalled " in report


def test_the_merged_trace_keeps_flows_paired_and_lays_launches_end_to_end(tmp_path) -> None:
    x = np.ones(8192, np.float32)
    out = np.empty_like(x)
    with npu.profile() as prof:
        first = add[(2,)](x, x, out, x.size, BLOCK=4096)
        add[(2,)](x, x, out, x.size, BLOCK=4096)
    events = json.loads(write_profile_trace(prof.launches, tmp_path / "t.json").read_text())["traceEvents"]
    starts = [e for e in events if e["ph"] == "s"]
    ends = {e["id"]: e for e in events if e["ph"] == "f"}
    assert len({e["id"] for e in starts}) == len(starts) == len(ends) > 0 and {e["id"] for e in starts} == set(ends)
    names = {e["args"]["name"] for e in events if e["name"] == "process_name"}
    assert names == {"add #0 core 0", "add #0 core 1", "add #1 core 0", "add #1 core 1"}
    second = [e for e in events if e["ph"] == "X" and e["pid"] >= 1000]
    assert second and min(e["ts"] for e in second) >= first.cycles


@pytest.mark.parametrize("suffix,magic", [(".png", b"\x89PNG"), (".svg", b"<?xml")])
def test_plots_are_written(tmp_path, suffix: str, magic: bytes) -> None:
    with npu.profile() as prof:
        stream(1 << 16)
    path = plot_profile(prof.launches, tmp_path / f"roofline{suffix}")
    assert path.stat().st_size > 1000 and path.read_bytes().startswith(magic)


def test_npu_prof_runs_a_file_function_and_writes_the_trace_and_the_plot(tmp_path) -> None:
    result = subprocess.run([str(NPU_PROF), f"{HERE / 'profiled_kernels.py'}:stream", "65536", "2048",
                             "--trace", str(tmp_path / "t.json"), "--plot", str(tmp_path / "p.png")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "add[32, 1, 1]:" in result.stdout and "verdict: " in result.stdout
    assert "\nslowest: add[32, 1, 1]" in result.stdout
    assert json.loads((tmp_path / "t.json").read_text())["traceEvents"]
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_npu_prof_explains_bad_targets(tmp_path, capsys) -> None:
    assert cli.main(["nosuchop", "--shape", "64x64x64"]) == 2
    assert "unknown target 'nosuchop': give path/to/file.py:function, or a registered target" in capsys.readouterr().err
    assert cli.main([f"{HERE / 'profiled_kernels.py'}:nope"]) == 2
    assert "has no function 'nope' (it has: " in capsys.readouterr().err
    assert cli.main([f"{tmp_path / 'missing.py'}:f"]) == 2
    assert "no file" in capsys.readouterr().err
    (tmp_path / "quiet.py").write_text("def f():\n    return 1\n")
    assert cli.main([f"{tmp_path / 'quiet.py'}:f"]) == 2
    assert "launched no kernel" in capsys.readouterr().err


class _EntryPoint:
    def __init__(self, fn) -> None:
        self.fn = fn

    def load(self):
        return self.fn


def test_a_registered_target_gets_its_own_arguments(monkeypatch, capsys) -> None:
    seen = []

    def vadd(argv: list[str]) -> None:  # what kernel_lib would register as `gemm`, `conv2d`
        seen.append(argv)
        stream(int(argv[1]))

    monkeypatch.setattr(cli, "registered_targets", lambda: {"vadd": _EntryPoint(vadd)})
    assert cli.main(["vadd", "--n", "8192"]) == 0
    assert seen == [["--n", "8192"]] and "slowest: add[2, 1, 1]" in capsys.readouterr().out

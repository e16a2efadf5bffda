"""`npu-tune` as users run it: the console script in a subprocess, on tiny shapes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from kernel_lib.gemm import GemmCall
from tuning_db import open_store

NPU_TUNE = str(Path(sys.executable).parent / "npu-tune")


def npu_tune(*args: str, db: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NPU_TUNING_DB": db}
    return subprocess.run([NPU_TUNE, *args], capture_output=True, text=True, env=env, timeout=600)


def results(proc: subprocess.CompletedProcess) -> list[dict]:
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_json_output_one_object_per_shape_and_the_library_then_uses_the_tuned_config(tuning_db):
    out = results(npu_tune("gemm", "--shapes", "32x48x64,64x32x32", "--trials", "2", "--json", db=tuning_db))
    assert [r["shape"] for r in out] == ["32x48x64", "64x32x32"]
    for r in out:
        assert {"op", "shape", "dtype", "machine", "config", "cycles", "roofline_cycles", "efficiency",
                "trials"} <= set(r)
        assert (r["op"], r["dtype"], r["machine"], r["trials"], r["evaluated"]) == ("gemm", "fp16", "davinci", 2, 2)
        assert r["cycles"] >= r["roofline_cycles"] > 0 and r["efficiency"] == pytest.approx(
            r["roofline_cycles"] / r["cycles"])
        assert set(r["config"]) == {"BM", "BN", "BK", "GROUP_M", "num_stages"}
    m, n, k = 32, 48, 64
    problem = GemmCall(np.zeros((m, k), np.float16), np.zeros((k, n), np.float16), np.zeros((m, n), np.float16),
                       m, n, k).problem()
    assert problem.candidates()[0] == (out[0]["config"], "tuned")


def test_a_rerun_resumes_and_a_larger_budget_adds_only_new_trials(tuning_db):
    first = results(npu_tune("softmax", "--shapes", "48x100", "--trials", "2", "--json", db=tuning_db))[0]
    again = results(npu_tune("softmax", "--shapes", "48x100", "--trials", "2", "--json", db=tuning_db))[0]
    more = results(npu_tune("softmax", "--shapes", "48x100", "--trials", "4", "--json", db=tuning_db))[0]
    assert (first["evaluated"], again["evaluated"], more["evaluated"]) == (2, 0, 2)
    assert more["trials"] == 4 and more["cycles"] <= first["cycles"] == again["cycles"]


def test_conv2d_shapes_and_the_library_call_then_uses_the_tuned_config(tuning_db):
    out = results(npu_tune("conv2d", "--shapes", "1,16,8,8,16,3,3,1,1;1,3,16,16,8,7,7,2,3", "--trials", "2",
                           "--json", db=tuning_db))
    assert [r["shape"] for r in out] == ["1,16,8,8,16,3,3,1,1", "1,3,16,16,8,7,7,2,3"]
    assert all(r["trials"] == 2 and set(r["config"]) == {"BM", "BN", "BK"} for r in out)
    from kernel_lib.cli.problems import DTYPES, OPS

    problem = OPS["conv2d"].build((1, 3, 16, 16, 8, 7, 7, 2, 3), DTYPES["fp16"])
    assert problem.candidates()[0] == (out[1]["config"], "tuned")


def test_the_table_and_two_jobs_sharing_one_store(tuning_db):
    proc = npu_tune("relu", "--shapes", "1000,3000", "--trials", "2", "--jobs", "2", db=tuning_db)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("| op | shape | dtype | best config | cycles | TFLOPS | % of roofline | trials |")
    assert [line.split(" | ")[1] for line in lines[2:]] == ["1000", "3000"]
    with open_store(tuning_db) as store:
        assert len(store.all_best()) == 2


def _sigint_default() -> None:
    """A suite started in the background (`cmd &`) ignores SIGINT, and so would npu-tune: restore Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_an_interrupted_run_keeps_its_trials_and_the_rerun_resumes(tuning_db):
    env = {**os.environ, "NPU_TUNING_DB": tuning_db}
    # 128³'s grid (264 configs, about 20 s) outlasts any delay in reading the store while it writes; 64³'s
    # (6 s) once finished before a loaded CI machine saw two trials done
    proc = subprocess.Popen([NPU_TUNE, "gemm", "--shapes", "128x128x128", "--sampler", "grid", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=_sigint_default)
    done = 0
    deadline = time.monotonic() + 300
    while done < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if Path(tuning_db).exists():
            with open_store(tuning_db) as store:
                done = sum(1 for key in store.keys() for t in store.trials(key) if t.state == "done")
    assert proc.poll() is None, "npu-tune finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "re-run to resume" in err
    with open_store(tuning_db) as store:
        kept = sum(1 for key in store.keys() for t in store.trials(key) if t.state == "done")
    assert kept >= 2
    rerun = results(npu_tune("gemm", "--shapes", "128x128x128", "--sampler", "grid", "--json", db=tuning_db))[0]
    assert rerun["trials"] == kept + rerun["evaluated"]


@pytest.mark.parametrize("args,message", [
    (["conv3d", "--shapes", "1x1x1"], "argument OP: invalid choice: 'conv3d'"),
    (["gemm", "--shapes", "64x64"], "bad shape '64x64' for gemm: expected MxNxK with positive integers"),
    (["gemm", "--shapes", "0x4x4"], "bad shape '0x4x4' for gemm"),
    (["conv2d", "--shapes", "1,3,8,8,4,3"], "bad shape '1,3,8,8,4,3' for conv2d: expected N,C,H,W,K,R,S["),
    (["gemm"], "give exactly one of --shapes and --workload"),
    (["softmax", "--shapes", "4x4", "--dtype", "int8"], "softmax takes --dtype fp16, bf16, fp32, not int8"),
    (["gemm", "--shapes", "4x4x4", "--trials", "0"], "--trials must be a positive integer, got 0"),
    (["gemm", "--shapes", "4x4x4", "--jobs", "0"], "--jobs must be a positive integer, got 0"),
    (["softmax", "--workload", "bert-base"], "--workload bert-base has gemm shapes, not softmax"),
    (["gemm", "--shapes", "4x4x4", "--machine", "nosuch"], "--machine nosuch:"),
])
def test_bad_arguments_are_one_line_and_exit_2(tuning_db, args, message):
    proc = npu_tune(*args, db=tuning_db)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("npu-tune: error: ") and message in lines[0], proc.stderr


def test_a_corrupt_database_is_a_one_line_error(tmp_path):
    path = tmp_path / "bad.db"
    path.write_bytes(b"not a database" * 64)
    proc = npu_tune("gemm", "--shapes", "16x16x16", "--trials", "1", db=str(path))
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1 and str(path) in proc.stderr
    assert path.read_bytes() == b"not a database" * 64


def test_the_bert_workload_gives_the_problems_the_library_calls_make():
    from kernel_lib.cli.problems import DTYPES, workload
    from kernel_lib.workloads import bert_base

    problems = workload("bert-base", DTYPES["fp16"])
    layers = bert_base()
    assert [label.split()[0] for label, _ in problems] == [layer.name for layer in layers]
    for (_, problem), layer in zip(problems, layers):
        assert problem.shape == f"{layer.m}x{layer.n}x{layer.k}" and problem.flops == 2 * layer.macs
        assert problem.grid({"BM": 128, "BN": 128})[1] == layer.batch

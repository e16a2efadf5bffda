"""batch_norm, add/mul and pooling are tuned kernels: npu-tune's problem for a shape is the one the library
call builds, so after tuning the call launches the tuned config (else the nearest tuned shape's, else its
rule), and the results still match numpy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import isa
import kernel_lib as kl
import npulang as npu
from autotune import Config
from kernel_lib.batch_norm import BATCH_NORM
from kernel_lib.cli.problems import DTYPES, OPS, parse_shape
from kernel_lib.elementwise import BINARY
from kernel_lib.pooling import NCHW, NHWC
from tuning_db import open_store


def rand(shape, dtype=np.float32, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def ref_pool(x: np.ndarray, k: int, stride: int, pad: int, is_max: bool) -> np.ndarray:
    """NCHW pooling in numpy (padding -inf for max, zeros counted for the average)."""
    n, c, h, w = x.shape
    xp = np.pad(x.astype(np.float32), ((0, 0), (0, 0), (pad, pad), (pad, pad)),
                constant_values=-np.inf if is_max else 0.0)
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    taps = [xp[:, :, r:r + stride * oh:stride, s:s + stride * ow:stride] for r in range(k) for s in range(k)]
    return np.max(taps, axis=0) if is_max else np.mean(taps, axis=0)


def bn_call(shape: str):
    x = rand((2, 24, 7, 7))
    mean, var, w, b = rand(24, seed=1), np.abs(rand(24, seed=2)) + 0.5, rand(24, seed=3), rand(24, seed=4)
    expected = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5) * w[:, None, None] + b[:, None, None]
    return BATCH_NORM, lambda: kl.batch_norm(x, mean, var, w, b), expected


def pool_call(is_max: bool):
    x = rand((2, 8, 15, 15))
    fn = kl.max_pool2d if is_max else kl.avg_pool2d
    return (NCHW, lambda: fn(x, 3, stride=2, padding=1), ref_pool(x, 3, 2, 1, is_max))


def binary_call(op: str):
    a, b = rand((8, 16, 5, 5)), rand((16, 1, 1), seed=1)
    return BINARY, lambda: getattr(kl, op)(a, b), a + b if op == "add" else a * b


CASES = {  # op, npu-tune shape, (kernel, the library call on data of that shape, numpy's result)
    "batch_norm": ("batch_norm", "2x24x7x7", lambda: bn_call("2x24x7x7")),
    "max_pool2d": ("max_pool2d", "2,8,15,15,3,3,2,1", lambda: pool_call(True)),
    "avg_pool2d": ("avg_pool2d", "2,8,15,15,3,3,2,1", lambda: pool_call(False)),
    "add": ("add", "8x16x5x5:16x1x1", lambda: binary_call("add")),
    "mul": ("mul", "8x16x5x5:16x1x1", lambda: binary_call("mul")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_library_call_uses_the_config_tuned_for_its_shape(case, tuning_db, launches_of):
    op, shape, make = CASES[case]
    problem = OPS[op].build(parse_shape(op, shape), DTYPES["fp32"])
    assert [source for _, source in problem.candidates()] == ["heuristic"] * len(problem.heuristic)
    report = problem.tune(tuning_db, trials=3, verify=False)
    assert report.source == "tuned" and len(report.evaluated) == 3
    best = report.best
    assert problem.candidates()[0] == (best.all_kwargs(), "tuned")
    assert problem.roofline > 0 and problem.bound == "HBM" and report.cycles >= problem.roofline
    kernel, call, expected = make()
    launches = launches_of(kernel.kernel)
    got = call()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert len(launches) == 1
    assert Config.from_dict({k: launches[0][k] for k in best.all_kwargs()}) == best


def test_an_untuned_shape_takes_the_nearest_tuned_shapes_config_then_the_rule(tuning_db):
    tuned = OPS["batch_norm"].build(parse_shape("batch_norm", "2x24x7x7"), DTYPES["fp16"])
    best = tuned.tune(tuning_db, trials=2, verify=False).best
    other = OPS["batch_norm"].build(parse_shape("batch_norm", "2x24x9x9"), DTYPES["fp16"])
    candidates = other.candidates()
    assert candidates[0] == (best.all_kwargs(), "nearest")
    assert {source for _, source in candidates[1:]} == {"heuristic"}
    nhwc = OPS["max_pool2d"].build(parse_shape("max_pool2d", "2,7,7,8,3,3:nhwc"), DTYPES["fp16"])
    assert nhwc.tuned is NHWC and nhwc.args[2:] == (2, 7, 7, 8, 2, 2)  # N, H, W, C, OH, OW


@pytest.mark.parametrize("op,text,message", [
    ("batch_norm", "2x0x7x7", "expected NxCxHxW[:nhwc] with positive integers"),
    ("batch_norm", "2x8x7x7:nchwc", "bad layout 'nchwc'"),
    ("max_pool2d", "1,1,2,2,3,3", "a 3x3 window with stride 3 and padding 0"),
    ("avg_pool2d", "1,1,8,8,3,3,1,2", "padding 2 (at most half the window)"),
    ("add", "3x4:5", "(3, 4) and (5,) do not broadcast"),
    ("mul", "3xx4", "expected SHAPE[:SHAPE_B]"),
])
def test_bad_shapes_say_what_the_operator_takes(op, text, message):
    with pytest.raises(ValueError) as info:
        parse_shape(op, text)
    assert message in str(info.value)


def npu_tune(*args: str, db: str) -> list[dict]:
    proc = subprocess.run([str(Path(sys.executable).parent / "npu-tune"), *args, "--json", "--db", db],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_npu_tune_reports_the_hbm_roofline_of_the_new_operators(tuning_db):
    out = npu_tune("max_pool2d", "--shapes", "2,8,16,16,3,3,2,1;2,16,16,8,2,2:nhwc", "--trials", "2", db=tuning_db)
    out += npu_tune("add", "--shapes", "64x300,64x300:300", "--trials", "2", db=tuning_db)
    out += npu_tune("batch_norm", "--shapes", "2x24x7x7", "--trials", "2", db=tuning_db)
    assert [r["shape"] for r in out] == ["2,8,16,16,3,3,2,1", "2,16,16,8,2,2:nhwc", "64x300", "64x300:300",
                                         "2x24x7x7"]
    for r in out:
        assert r["bound"] == "HBM" and r["tflops"] is None and r["trials"] == 2
        assert r["cycles"] >= r["roofline_cycles"] > 0 and r["efficiency"] == pytest.approx(
            r["roofline_cycles"] / r["cycles"])
    bn = OPS["batch_norm"].build(parse_shape("batch_norm", "2x24x7x7"), DTYPES["fp16"])
    assert bn.candidates()[0] == (out[-1]["config"], "tuned")
    moved = 2 * (2 * 24 * 49) * 2 + 4 * 24 * 2  # x read and y written, the four [C] vectors read (fp16)
    assert bn.roofline == pytest.approx(moved / npu.get_machine().hbm_bytes_per_cycle)


def test_npu_tune_with_a_users_machine_file_keys_records_by_that_machine(tuning_db, tmp_path):
    davinci = (Path(isa.__file__).parent / "presets" / "davinci.toml").read_text()
    path = tmp_path / "mybox.toml"
    path.write_text(davinci.replace('name = "davinci"', 'name = "mybox"').replace("cores = 24", "cores = 6"))
    mine = isa.MachineSpec.load(path)
    out = npu_tune("relu", "--shapes", "5000", "--trials", "2", "--machine", str(path), db=tuning_db)
    assert out[0]["machine"] == "mybox"
    with open_store(tuning_db) as store:
        assert [k.machine for k in store.keys()] == [mine.fingerprint] != [npu.get_machine().fingerprint]
    problem = OPS["relu"].build((5000,), DTYPES["fp16"])
    assert problem.candidates()[0][1] == "heuristic"  # on davinci nothing is tuned
    npu.set_machine(str(path))
    try:
        problem = OPS["relu"].build((5000,), DTYPES["fp16"])
        assert problem.candidates()[0] == (out[0]["config"], "tuned")
    finally:
        npu.set_machine("davinci")

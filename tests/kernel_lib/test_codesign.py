"""`npu-codesign` (machine variants, the comparison, its table, JSON and plot) and `npu-tune --plot`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import isa
from kernel_lib.cli import codesign, tune
from kernel_lib.cli.variants import VariantError, machine_fields, parse_value, resolve, variants
from npulang.profiler import RooflinePoint, Roofs
from npulang.profiler.plots import intensity_and_tflops
from tuning_db import open_store

BIN = Path(sys.executable).parent
DAVINCI = isa.MachineSpec.load("davinci")


def command(name: str, *args: str, db: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NPU_TUNING_DB": db}
    return subprocess.run([str(BIN / name), *args], capture_output=True, text=True, env=env, timeout=900)


def stored_best(db: str) -> dict[str, list[int]]:
    """The best cycles in the store, by machine fingerprint."""
    out: dict[str, list[int]] = {}
    with open_store(db) as store:
        for key in store.keys():
            best = store.best(key)
            if best is not None:
                out.setdefault(key.machine, []).append(best.cycles)
    return out


# -- variants ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,path", [("ub", "buffers.ub"), ("l0c", "buffers.l0c"), ("buffers.ub", "buffers.ub"),
                                       ("alignment.ub", "alignment.ub"), ("bytes_per_second", "hbm.bytes_per_second"),
                                       ("cores", "cores"), ("cube", "cube")])
def test_a_field_is_its_dotted_path_a_unique_bare_name_or_a_buffer_capacity(name, path):
    assert resolve(name) == path


@pytest.mark.parametrize("path,text,value", [
    ("buffers.ub", "128KiB", 131072), ("buffers.ub", "196608", 196608), ("buffers.l1", "1MiB", 1 << 20),
    ("hbm.bytes_per_second", "1.5e12", 1.5e12), ("hbm.bytes_per_second", "3T", 3e12), ("clock_ghz", "2", 2.0),
    ("cube.model", "systolic", "systolic")])
def test_values_take_units_and_exponents(path, text, value):
    parsed = parse_value(path, text)
    assert parsed == value and type(parsed) is machine_fields()[path]


def test_one_change_at_a_time_or_the_cross_product_and_a_base_value_is_the_base_machine():
    one = variants(DAVINCI, ["ub=128KiB,192KiB", "hbm.bytes_per_second=3e12"], ["systolic128"])
    assert [v.name for v in one] == ["davinci (base)", "ub=128KiB", "ub=192KiB", "hbm.bytes_per_second=3e12",
                                     "systolic128"]
    assert one[1].spec.buffers.ub == 131072 and one[1].spec.hbm == DAVINCI.hbm
    assert one[2].spec.fingerprint == DAVINCI.fingerprint  # 192 KiB is davinci's UB: the same store records
    assert one[3].spec.hbm.bytes_per_second == 3e12 and one[3].spec.buffers == DAVINCI.buffers
    assert one[4].spec == isa.MachineSpec.load("systolic128")
    cross = variants(DAVINCI, ["ub=128KiB,256KiB", "hbm.bytes_per_second=1.5e12,3e12"], cross=True)
    assert [v.name for v in cross[1:]] == [f"ub={u}, hbm.bytes_per_second={h}" for u in ("128KiB", "256KiB")
                                           for h in ("1.5e12", "3e12")]
    assert cross[4].changes == {"buffers.ub": 262144, "hbm.bytes_per_second": 3e12}


def test_a_section_from_a_preset_replaces_only_that_section():
    spec = variants(DAVINCI, ["cube=systolic128"])[1].spec
    assert spec.cube == isa.MachineSpec.load("systolic128").cube
    others = [name for name in machine_fields() if "." not in name and name != "cube"]
    assert others and all(getattr(spec, name) == getattr(DAVINCI, name) for name in others)
    assert spec.cube_macs_per_cycle() == 128 * 128


def test_bad_values_say_what_is_wrong():
    with pytest.raises(VariantError, match="'latency' could be cube.latency or vector.latency or mte2.latency"):
        resolve("latency")
    with pytest.raises(VariantError, match=r"buffers.ub = 100 B is not a multiple of its alignment \(32 B\)"):
        variants(DAVINCI, ["ub=100"])


# -- the command line --------------------------------------------------------------------------------------
@pytest.mark.parametrize("args,message", [
    (["--vary", "ub2=1"], "no machine field 'ub2'; fields: cores, clock_ghz, scalar, scalar.registers,"),
    (["--vary", "ub=0"], "variant ub=0: field buffers.ub must be positive, got 0"),
    (["--vary", "ub=12x"], "buffers.ub=12x: not a number (e.g. 196608, 192KiB, 1.5e12)"),
    (["--vary", "cores=2.5"], "cores=2.5: cores is a whole number, got 2.5"),
    (["--vary", "ub"], "--vary ub: give FIELD=VALUE[,VALUE...]"),
    (["--vary", "cube.model=foo"], "cube.model must be one of fractal, systolic, got 'foo'"),
    (["--vary", "cube=nosuch"], "cube=nosuch: no machine preset named 'nosuch'"),
    (["--variant", "nosuch"], "--variant nosuch: no machine preset named 'nosuch'"),
    ([], "nothing to compare: give --vary FIELD=VALUES or --variant MACHINE"),
    (["--vary", "ub=128KiB", "--plot", "out.pdf"], "--plot out.pdf: give a file ending in .png or .svg"),
    (["--vary", "ub=128KiB", "--plot", "/dev/null/out.png"], "--plot /dev/null/out.png: /dev/null is not a writable"),
    (["--vary", "ub=128KiB", "--trials", "0"], "--trials must be a positive integer, got 0"),
    (["--vary", "ub=128KiB", "--machine", "nosuch"], "--machine nosuch: no machine preset named 'nosuch'"),
])
def test_bad_arguments_are_one_line_and_exit_2(capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        codesign.main(["--op", "gemm", "--shapes", "64x64x64", *args])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.splitlines()) == 1
    assert err.startswith("npu-codesign: error: ") and message in err, err


@pytest.mark.parametrize("args,message", [
    (["--workload", "resnet50", "--op", "gemm", "--shapes", "4x4x4"], "give --workload NAME, or --op OP with --shapes"),
    (["--op", "gemm"], "give --workload NAME, or --op OP with --shapes"),
    (["--op", "gemm", "--shapes", "4x4"], "bad shape '4x4' for gemm: expected MxNxK"),
    (["--workload", "bert-base", "--dtype", "int8"], None),
    (["--workload", "resnet50", "--dtype", "fp32"], "conv2d takes --dtype fp16, bf16, int8, not fp32"),
])
def test_the_workload_or_shapes_are_checked_first(capsys, args, message):
    if message is None:  # int8 GEMMs are fine: the error is the missing variant, after the workload's checks
        message = "nothing to compare"
    with pytest.raises(SystemExit) as exit_:
        codesign.main(args)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err, err


def test_help_says_variants_are_one_change_at_a_time(capsys):
    with pytest.raises(SystemExit):
        codesign.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default: one change at a time" in text and "--cross" in text


# -- end to end --------------------------------------------------------------------------------------------
def test_a_tiny_sweep_reports_the_stored_cycles_and_resumes(tuning_db, tmp_path):
    args = ["--op", "gemm", "--shapes", "64x64x64,128x64x32", "--vary", "ub=256KiB",
            "--vary", "hbm.bytes_per_second=3e12", "--trials", "2"]
    proc = command("npu-codesign", *args, "--json", "--plot", str(tmp_path / "c.png"), db=tuning_db)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["variant"] for r in rows] == ["davinci (base)", "ub=256KiB", "hbm.bytes_per_second=3e12"]
    assert {"variant", "machine", "fingerprint", "clock_ghz", "changes", "layers", "total_cycles", "total_seconds",
            "speedup", "change_percent"} <= set(rows[0])
    assert rows[2]["changes"] == {"hbm.bytes_per_second": 3e12} and rows[0]["speedup"] == 1.0
    stored = stored_best(tuning_db)
    assert set(stored) == {r["fingerprint"] for r in rows}
    base = rows[0]
    for r in rows:
        cycles = [layer["cycles"] for layer in r["layers"]]
        assert sorted(cycles) == sorted(stored[r["fingerprint"]])  # what the store holds for this machine
        assert r["total_cycles"] == sum(cycles) and r["total_seconds"] == pytest.approx(sum(cycles) / 1.8e9)
        assert r["speedup"] == pytest.approx(base["total_cycles"] / r["total_cycles"])
        assert r["change_percent"] == pytest.approx(100 * (r["total_cycles"] / base["total_cycles"] - 1))
        for layer, b in zip(r["layers"], base["layers"]):
            assert layer["speedup"] == pytest.approx(b["cycles"] / layer["cycles"])
            assert set(layer["config"]) == {"BM", "BN", "BK", "GROUP_M", "num_stages"}
    assert (tmp_path / "c.png").read_bytes().startswith(b"\x89PNG") and (tmp_path / "c.png").stat().st_size > 5000
    trials = _trial_count(tuning_db)

    again = command("npu-codesign", *args, "--plot", str(tmp_path / "c.svg"), db=tuning_db)  # the table
    assert again.returncode == 0, again.stderr
    assert _trial_count(tuning_db) == trials  # nothing simulated twice
    lines = again.stdout.splitlines()
    assert lines[0] == "| layer | count | davinci (base) | ub=256KiB | hbm.bytes_per_second=3e12 |"
    for line, j in zip(lines[2:4], range(2)):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[:2] == [["64x64x64", "128x64x32"][j], "1"]
        assert [int(c.split(" ")[0].replace(",", "")) for c in cells[2:]] == [r["layers"][j]["cycles"] for r in rows]
    assert lines[4].startswith("| **total** (Σ count × cycles) | | ") and f"{rows[1]['total_cycles']:,} (" in lines[4]
    assert (tmp_path / "c.svg").read_bytes().startswith(b"<?xml")


def _trial_count(db: str) -> int:
    with open_store(db) as store:
        return sum(len(store.trials(key)) for key in store.keys())


def test_more_ub_or_faster_hbm_never_slows_an_hbm_bound_problem(tuning_db):
    # every config of the space (grid): the best on a variant is over the same configs, or more
    proc = command("npu-codesign", "--op", "softmax", "--shapes", "64x2048,8x8192", "--dtype", "fp32",
                   "--vary", "ub=256KiB", "--vary", "hbm.bytes_per_second=3e12", "--sampler", "grid", "--json",
                   db=tuning_db)
    assert proc.returncode == 0, proc.stderr
    base, more_ub, faster = (json.loads(line) for line in proc.stdout.splitlines())
    for j in range(2):
        assert more_ub["layers"][j]["cycles"] <= base["layers"][j]["cycles"]
        assert faster["layers"][j]["cycles"] <= base["layers"][j]["cycles"]
    assert faster["speedup"] > 1.2  # HBM-bound: most of the doubled bandwidth shows


def test_npu_tune_plots_its_run_on_the_roofline_and_no_shape_beats_it(tuning_db, tmp_path):
    proc = command("npu-tune", "gemm", "--shapes", "64x64x64,256x128x256", "--trials", "2", "--no-verify", "--json",
                   "--plot", str(tmp_path / "r.svg"), db=tuning_db)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "r.svg").read_bytes().startswith(b"<?xml") and "plot: " in proc.stderr
    roofs = Roofs.of(DAVINCI)
    for r in map(json.loads, proc.stdout.splitlines()):
        m, n, k = map(int, r["shape"].split("x"))
        assert r["flops"] == 2 * m * n * k and r["hbm_bytes"] == 2 * (m * k + k * n + m * n)
        x, tflops = intensity_and_tflops(DAVINCI, RooflinePoint(r["shape"], r["flops"], r["hbm_bytes"], r["cycles"]))
        assert tflops == pytest.approx(r["tflops"]) and 0 < tflops <= roofs.attainable(x)


def test_npu_tune_plot_to_a_file_in_place_of_its_folder_is_refused_before_tuning(tuning_db, tmp_path):
    (tmp_path / "taken").write_text("")
    proc = command("npu-tune", "add", "--shapes", "64x64", "--trials", "1", "--plot", str(tmp_path / "taken" / "r.png"),
                   db=tuning_db)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"npu-tune: error: --plot {tmp_path / 'taken' / 'r.png'}: {tmp_path / 'taken'} is "
                                  "not a writable folder") and proc.stdout == ""


def test_a_plot_that_fails_to_write_after_tuning_is_a_one_line_error(capsys):
    parser = codesign._parser()

    def refuse() -> Path:
        raise PermissionError(13, "Permission denied")
    with pytest.raises(SystemExit) as exit_:
        tune.write_plot(parser, Path("/ro/r.png"), refuse)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err == "npu-codesign: error: --plot /ro/r.png: Permission denied\n"

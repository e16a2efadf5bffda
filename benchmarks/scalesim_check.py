"""Cross-check the `systolic128` cube against SCALE-Sim 3.0: square GEMMs on one array, side by side.

SCALE-Sim (PyPI `scalesim`, which needs numpy<2.4) is installed on demand into its own venv,
`.bench-venvs/scalesim` (gitignored), and run there in a subprocess with a config made from our preset:
the array's rows, cols and dataflow, L0A/L0B/L0C as the ifmap/filter/ofmap SRAMs, and bandwidth in
CALC mode (SCALE-Sim sizes it so the array never stalls). Our figure is one core running the GEMM
with its operands resident in L0A/L0B: as many mmads as the L0 capacities require, timing only.
The figures SCALE-Sim prints are the reference numbers kept in tests/simulator/test_cube_systolic.py.

    python benchmarks/scalesim_check.py                      # os and ws, M = N = K = 256, 512, 1024
    python benchmarks/scalesim_check.py --sizes 256 --dataflow ws
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from isa import MachineSpec  # noqa: E402
from isa.asm import assemble  # noqa: E402
from simulator import Device, SimOptions  # noqa: E402

VENV = ROOT / ".bench-venvs" / "scalesim"
REQUIREMENTS = ("scalesim==3.0.0", "numpy<2.4")
BF16 = 2

SCALESIM_CONFIG = """\
[general]
run_name = {name}

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: {l0a_kb}
FilterSramSzkB: {l0b_kb}
OfmapSramSzkB: {l0c_kb}
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Dataflow: {dataflow}
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""

# Runs inside the SCALE-Sim venv: argv = config, topology, layout, output dir; prints {layer: compute cycles}.
WORKER = textwrap.dedent("""
    import csv, json, sys
    from pathlib import Path
    from scalesim.scale_sim import scalesim
    cfg, topo, layout, out = sys.argv[1:5]
    scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=layout,
             input_type_gemm=True).run_scale(top_path=out)
    report = next(Path(out).glob("*/COMPUTE_REPORT.csv"))
    rows = list(csv.reader(report.open()))
    names = [line.split(",")[0].strip() for line in Path(topo).read_text().splitlines()[1:] if line.strip()]
    print(json.dumps({n: int(r[2]) for n, r in zip(names, rows[1:])}))
""")


def ensure_venv() -> Path:
    """The SCALE-Sim venv's python, creating the venv and installing SCALE-Sim the first time."""
    python = VENV / "bin" / "python"
    if not python.exists():
        print(f"installing {' '.join(REQUIREMENTS)} into {VENV.relative_to(ROOT)} ...", flush=True)
        venv.create(VENV, with_pip=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *REQUIREMENTS], check=True)
    return python


def scalesim_cycles(spec: MachineSpec, sizes: list[int]) -> dict[int, int]:
    """SCALE-Sim's compute cycles for each size^3 GEMM on the spec's array."""
    cube, buf = spec.cube, spec.buffers
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "arch.cfg").write_text(SCALESIM_CONFIG.format(
            name=f"{spec.name}_{cube.dataflow}", rows=cube.rows, cols=cube.cols, dataflow=cube.dataflow,
            l0a_kb=buf.l0a // 1024, l0b_kb=buf.l0b // 1024, l0c_kb=buf.l0c // 1024))
        (work / "gemm.csv").write_text("Layer, M, N, K,\n" + "".join(f"g{s}, {s}, {s}, {s},\n" for s in sizes))
        (work / "layout.csv").write_text("Layer name, unused,\n")
        out = subprocess.run([str(ensure_venv()), "-c", WORKER, str(work / "arch.cfg"), str(work / "gemm.csv"),
                              str(work / "layout.csv"), str(work / "out")], check=True, capture_output=True,
                             text=True).stdout
    by_name = json.loads(out.strip().splitlines()[-1])
    return {s: by_name[f"g{s}"] for s in sizes}


def largest_fold_multiple(limit: int, fold: int, dim: int) -> int:
    """The largest multiple of `fold` that divides `dim` and is at most `limit` (at least one fold)."""
    return max([t for t in range(fold, dim + 1, fold) if dim % t == 0 and t <= limit], default=fold)


def our_cycles(spec: MachineSpec, size: int) -> tuple[int, str]:
    """One core's cycles for a size^3 bf16 GEMM with resident operands, and the mmad tiling used.
    Output-stationary keeps K whole in each mmad, weight-stationary keeps M whole (as a fold streams it)."""
    cube, buf = spec.cube, spec.buffers
    if cube.dataflow == "os":
        m = largest_fold_multiple(buf.l0a // (size * BF16), cube.rows, size)
        n = largest_fold_multiple(min(buf.l0b // (size * BF16), buf.l0c // (m * 4)), cube.cols, size)
        k = size
    else:
        m, k = size, largest_fold_multiple(buf.l0a // (size * BF16), cube.rows, size)
        n = largest_fold_multiple(min(buf.l0b // (k * BF16), buf.l0c // (size * 4)), cube.cols, size)
    count = (size // m) * (size // n) * (size // k)
    mmad = f"    mmad l0c[0], l0a[0], l0b[0], dtype=bf16, m={m}, n={n}, k={k}, init={int(k == size)}"
    program = assemble("\n".join([".kernel gemm"] + [mmad] * count) + "\n")
    cycles = Device(spec).run(program, (1,), [], SimOptions(functional=False)).cycles
    return cycles, f"{count} x mmad {m}x{n}x{k}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machine", default="systolic128")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--dataflow", nargs="+", choices=("os", "ws"), default=["os", "ws"])
    args = parser.parse_args()
    base = MachineSpec.load(args.machine)
    if base.cube.model != "systolic":
        sys.exit(f"machine {base.name!r} has a {base.cube.model} cube; SCALE-Sim models systolic arrays")
    print("| dataflow | M=N=K | SCALE-Sim cycles | ours | ours / SCALE-Sim | our mmads |")
    print("|---|---:|---:|---:|---:|---|")
    for dataflow in args.dataflow:
        spec = base.replace(cube={"dataflow": dataflow})
        reference = scalesim_cycles(spec, args.sizes)
        for size in args.sizes:
            ours, tiling = our_cycles(spec, size)
            print(f"| {dataflow} | {size} | {reference[size]:,} | {ours:,} | {ours / reference[size]:.4f} | {tiling} |",
                  flush=True)


if __name__ == "__main__":
    main()

"""`npu-codesign`: what a hardware change is worth. Re-tune a workload on variants of a machine and compare.

    npu-codesign --workload resnet50 --vary ub=128KiB,256KiB --vary hbm.bytes_per_second=3e12 \\
                 --vary cube=systolic128 [--variant systolic128] [--machine davinci] [--cross]
                 [--trials N] [--sampler ...] [--seed N] [--db URL] [--jobs N] [--json] [--plot out.png|out.svg]
    npu-codesign --op gemm --shapes 1024x1024x1024,4096x1024x4096 --vary ub=128KiB
    npu-codesign --workload bert-base --vary mte2.bytes_per_cycle=256

Each value of each `--vary` makes one variant of the base machine, one change at a time (`--cross`: one
variant per combination of a value from every --vary); `--variant` adds a whole machine (a preset or TOML
file). Every layer is tuned on the base and on every variant by npu-tune's own path, into one store keyed
by the machine's fingerprint, so a re-run (or an npu-tune run on the same machine) reuses what was found.
The table gives each layer's tuned cycles per machine and its speedup over the base machine (base time /
variant time at each machine's clock: the cycle ratio when the clock is the same), and the whole
workload's (Σ occurrences x cycles) with its % change in time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, NoReturn, Sequence

import isa
from kernel_lib.cli.problems import DTYPES, OPS, WORKLOADS, parse_shape, workload
from kernel_lib.cli.tune import Request, Result, check_plot_path, run, write_plot
from kernel_lib.cli.variants import Variant, VariantError, variants
from kernel_lib.workloads import resnet50
from npulang.profiler import plot_speedups
from tuning_db import TuningDBError

DEFAULT_TRIALS = 4  # simulations per layer and machine: a full ResNet-50 sweep stays a coffee break


@dataclass(frozen=True)
class Layer:
    """One shape of the workload and how often the network runs it."""

    label: str
    shape: str  # as Request.shape: the shape string, or "<workload>:<row>"
    count: int = 1

    @classmethod
    def of(cls, op: str, shape: str, count: int = 1) -> Layer:
        """A layer from a shape as npu-tune takes it (`"1024x768x768"`; conv2d `"4,64,56,56,64,3,3,1,1"`);
        a ValueError says what the operator's shapes look like."""
        parse_shape(op, shape)
        return cls(shape, shape, count)


@dataclass(frozen=True)
class LayerResult:
    """One layer's best tuned cycles on one machine, and its speedup over the base machine."""

    layer: str
    count: int
    cycles: int | None  # None: tuning failed on this machine
    config: Mapping[str, Any] | None
    speedup: float | None  # base time / this machine's time


@dataclass(frozen=True)
class VariantResult:
    """One machine's row of the comparison (what --json prints per line)."""

    variant: str
    machine: str
    fingerprint: str
    clock_ghz: float
    changes: Mapping[str, Any]
    layers: list[LayerResult]
    total_cycles: int | None  # Σ count x cycles; None when a layer failed
    total_seconds: float | None
    speedup: float | None
    change_percent: float | None  # time change against the base (negative: faster)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """A one-line error and exit status 2, without the usage block."""
        self.exit(2, f"npu-codesign: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="npu-codesign", description="Re-tune a workload on variants of a machine and compare "
                                                      "cycles per layer and in total with the base machine.")
    parser.add_argument("--workload", choices=sorted(WORKLOADS),
                        help="resnet50 (its convolutions, batch 4) or bert-base (one encoder layer's GEMMs)")
    parser.add_argument("--op", choices=sorted(OPS), help="with --shapes: an operator, as npu-tune's OP")
    parser.add_argument("--shapes", help="with --op: shapes as npu-tune takes them")
    parser.add_argument("--dtype", default="fp16", choices=sorted(DTYPES))
    parser.add_argument("--machine", default=None, help="the base machine: a preset name or a TOML file "
                                                        "(default: $NPU_MACHINE, else davinci)")
    parser.add_argument("--vary", action="append", default=[], metavar="FIELD=V1,V2",
                        help="a machine field by dotted path (hbm.bytes_per_second, buffers.ub; a buffer's bare "
                             "name is its capacity: ub=128KiB) and its values, one variant per value; a section "
                             "takes a preset's (cube=systolic128). Repeatable")
    parser.add_argument("--variant", action="append", default=[], metavar="MACHINE",
                        help="a whole machine (preset name or TOML file) as one more variant. Repeatable")
    parser.add_argument("--cross", action="store_true",
                        help="one variant per combination of the --vary values (default: one change at a time)")
    parser.add_argument("--trials", type=int, default=DEFAULT_TRIALS,
                        help=f"simulations per layer and machine (default {DEFAULT_TRIALS})")
    parser.add_argument("--sampler", default="auto", choices=["auto", "tpe", "random", "grid"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--db", metavar="URL", help="SQLAlchemy URL or file (default: $NPU_TUNING_DB, else the "
                                                    "user cache's tuning.db)")
    parser.add_argument("--jobs", type=int, default=1, help="processes tuning at once, into one store")
    parser.add_argument("--json", action="store_true", help="one JSON object per machine instead of the table")
    parser.add_argument("--plot", type=Path, metavar="FILE", help="write the speedups per layer and in total "
                                                                  "(.png or .svg)")
    parser.add_argument("--verify", action="store_true",
                        help="check each winner against the interpreter (a functional run per layer and machine)")
    return parser


def _layers(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[str, list[Layer]]:
    """The operator and the layers to tune, from --workload or --op/--shapes."""
    if (args.workload is None) == (args.shapes is None) or (args.shapes is None) != (args.op is None):
        parser.error("give --workload NAME, or --op OP with --shapes")
    op = args.op or WORKLOADS[args.workload]
    if args.dtype not in OPS[op].dtypes:
        parser.error(f"{op} takes --dtype {', '.join(OPS[op].dtypes)}, not {args.dtype}")
    if args.workload is not None:
        labels = [label for label, _ in workload(args.workload, DTYPES[args.dtype])]
        counts = [c.count for c in resnet50()] if args.workload == "resnet50" else [1] * len(labels)
        return op, [Layer(label, f"{args.workload}:{i}", count) for i, (label, count) in enumerate(zip(labels, counts))]
    shapes = [s.strip() for s in args.shapes.split(";" if op == "conv2d" else ",") if s.strip()]
    if not shapes:
        parser.error("--shapes is empty")
    try:
        return op, [Layer.of(op, s) for s in shapes]
    except ValueError as exc:
        parser.error(str(exc))


def _machines(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Variant]:
    """The base machine first, then its variants."""
    try:
        base = isa.MachineSpec.load(args.machine or os.environ.get("NPU_MACHINE", "davinci"))
    except isa.MachineSpecError as exc:
        parser.error(f"--machine {args.machine}: {str(exc).splitlines()[0]}")
    try:
        machines = variants(base, args.vary, args.variant, cross=args.cross)
    except VariantError as exc:
        parser.error(str(exc))
    if len(machines) == 1:
        parser.error("nothing to compare: give --vary FIELD=VALUES or --variant MACHINE")
    return machines


def sweep(machines: Sequence[Variant], op: str, layers: Sequence[Layer], *, dtype: str = "fp16",
          trials: int | None = DEFAULT_TRIALS, sampler: str = "auto", seed: int = 0, db: str | None = None,
          jobs: int = 1, verify: bool = False, quiet: bool = False) -> tuple[list[VariantResult], list[str]]:
    """Tune every layer on every machine (`trials=None`: every config of the space) into the store `db`
    and compare them with machines[0]. Returns the comparison and the one-line reasons of what failed."""
    requests = [Request(op=op, label=layer.label, shape=layer.shape, dtype=dtype, machine=m.spec, db=db,
                        trials=trials, sampler=sampler, seed=seed, verify=verify) for m in machines for layer in layers]
    outcomes = run(requests, db, jobs, "npu-codesign", (lambda _: None) if quiet else None)
    failures = [f"{m.name}: {o}" for i, m in enumerate(machines)
                for o in outcomes[i * len(layers):(i + 1) * len(layers)] if isinstance(o, str)]
    return compare(machines, layers, outcomes), failures


def compare(machines: Sequence[Variant], layers: Sequence[Layer],
            outcomes: Sequence[Result | str]) -> list[VariantResult]:
    """The comparison from the tuning outcomes, machine-major (`outcomes[i * len(layers) + j]` is layer j on
    machine i), speedups against machines[0]."""
    def seconds(cycles: int | None, spec: isa.MachineSpec) -> float | None:
        return None if cycles is None else cycles / (spec.clock_ghz * 1e9)

    base_cycles = [o.cycles if isinstance(o, Result) else None for o in outcomes[:len(layers)]]
    base_total = _total(base_cycles, layers)
    out = []
    for i, machine in enumerate(machines):
        rows = outcomes[i * len(layers):(i + 1) * len(layers)]
        cycles = [o.cycles if isinstance(o, Result) else None for o in rows]
        total = _total(cycles, layers)
        base_s, total_s = seconds(base_total, machines[0].spec), seconds(total, machine.spec)
        out.append(VariantResult(
            machine.name, machine.spec.name, machine.spec.fingerprint, machine.spec.clock_ghz, dict(machine.changes),
            [LayerResult(layer.label, layer.count, c, o.config if isinstance(o, Result) else None,
                         _ratio(seconds(b, machines[0].spec), seconds(c, machine.spec)))
             for layer, c, b, o in zip(layers, cycles, base_cycles, rows)],
            total, total_s, _ratio(base_s, total_s),
            None if base_s is None or total_s is None else 100 * (total_s / base_s - 1)))
    return out


def _total(cycles: Sequence[int | None], layers: Sequence[Layer]) -> int | None:
    return None if None in cycles else sum(c * layer.count for c, layer in zip(cycles, layers))


def _ratio(base: float | None, this: float | None) -> float | None:
    return None if base is None or this is None else base / this


def table(results: Sequence[VariantResult]) -> str:
    """The comparison as a Markdown table: a row per layer, a column per machine (the base first)."""
    def cell(cycles: int | None, speedup: float | None, change: float | None = None, base: bool = False) -> str:
        if cycles is None:
            return "failed"
        if base or speedup is None:
            return f"{cycles:,}"
        return f"{cycles:,} ({speedup:.2f}×" + ("" if change is None else f", {change:+.1f} %") + ")"

    rows = ["| layer | count | " + " | ".join(r.variant for r in results) + " |",
            "|---|---:|" + "---:|" * len(results)]
    for j, layer in enumerate(results[0].layers):
        rows.append(f"| {layer.layer} | {layer.count} | " + " | ".join(
            cell(r.layers[j].cycles, r.layers[j].speedup, base=i == 0) for i, r in enumerate(results)) + " |")
    rows.append("| **total** (Σ count × cycles) | | " + " | ".join(
        cell(r.total_cycles, r.speedup, r.change_percent, base=i == 0) for i, r in enumerate(results)) + " |")
    rows.append("| time at the clock | | " + " | ".join(
        "-" if r.total_seconds is None else f"{r.total_seconds * 1e6:,.1f} µs ({r.clock_ghz:g} GHz)"
        for r in results) + " |")
    return "\n".join(rows)


def plot(results: Sequence[VariantResult], path: str | Path, title: str = "") -> Path:
    """Each variant's speedup per layer and in total (layers that failed on a variant are drawn at 0)."""
    layers = [layer.layer for layer in results[0].layers]
    speedups = {r.variant: [layer.speedup or 0.0 for layer in r.layers] for r in results[1:]}
    return plot_speedups(layers, speedups, {r.variant: r.speedup or 0.0 for r in results[1:]}, path, title=title)


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: 0 when every layer was tuned on every machine, 1 when one failed, 2 for bad
    arguments, 130 when interrupted (what was evaluated is in the store; a re-run resumes)."""
    parser = _parser()
    args = parser.parse_args(argv)
    op, layers = _layers(args, parser)
    if args.trials < 1:
        parser.error(f"--trials must be a positive integer, got {args.trials}")
    if args.jobs < 1:
        parser.error(f"--jobs must be a positive integer, got {args.jobs}")
    check_plot_path(args.plot, parser)
    machines = _machines(args, parser)
    grid = args.sampler == "grid"
    try:
        results, failures = sweep(machines, op, layers, dtype=args.dtype, trials=None if grid else args.trials,
                                  sampler="auto" if grid else args.sampler, seed=args.seed, db=args.db,
                                  jobs=args.jobs, verify=args.verify, quiet=args.json)
    except TuningDBError as exc:
        parser.error(str(exc).splitlines()[0])
    except KeyboardInterrupt:
        print("npu-codesign: interrupted; every finished evaluation is in the store, re-run to resume",
              file=sys.stderr)
        return 130
    if args.json:
        for r in results:
            print(json.dumps(asdict(r)), flush=True)
    else:
        print(table(results))
    if args.plot:
        title = f"{args.workload or f'{op} {args.shapes}'}: speedup over {machines[0].name}"
        print(f"plot: {write_plot(parser, args.plot, lambda: plot(results, args.plot, title))}",
              file=sys.stderr if args.json else sys.stdout)
    for failure in failures:
        print(f"npu-codesign: error: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

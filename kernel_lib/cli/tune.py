"""`npu-tune`: tune kernel_lib operators offline into the tuning database, then print what was found.

    npu-tune gemm --shapes 1024x1024x1024,4096x1024x4096 [--dtype fp16] [--trials N]
             [--sampler auto|tpe|random|grid] [--seed N] [--machine davinci|FILE.toml] [--db URL]
             [--jobs N] [--json] [--no-verify] [--plot out.png|out.svg]
    npu-tune gemm --workload bert-base
    npu-tune conv2d --shapes "4,64,56,56,64,3,3,1,1;4,3,224,224,64,7,7,2,3"   (N,C,H,W,K,R,S[,stride[,pad]])
    npu-tune conv2d --workload resnet50
    npu-tune softmax --shapes 4096x4096          (also log_softmax, layer_norm, rms_norm: ROWSxCOLS;
                                                  relu, gelu, silu, sigmoid, tanh: N elements)
    npu-tune batch_norm --shapes 8x256x56x56     (NxCxHxW, or NxHxWxC:nhwc)
    npu-tune max_pool2d --shapes "8,64,112,112,3,3,2,1"   (also avg_pool2d: N,C,H,W,R,S[,stride[,pad]][:nhwc])
    npu-tune add --shapes 4096x4096,8x64x56x56:64x1x1     (also mul: a's shape[:b's shape])

Every evaluation is recorded in the store as it finishes, so an interrupted run keeps what it found and a
re-run resumes (a config is never simulated twice); several npu-tune processes (`--jobs N` here, or on
other machines through one PostgreSQL URL) share one store. The table gives each shape's best config, its
cycles, TFLOPS at the machine's clock (operators that do arithmetic), the % of its roofline (cube for
gemm, HBM for the memory-bound operators), the evaluations behind it and this run's wall time. `--plot`
places every shape on the machine's roofline (FLOPs per byte of its compulsory HBM traffic, achieved TFLOPS).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, NoReturn, Sequence

import numpy as np

import isa
import npulang as npu
from kernel_lib.cli.problems import DTYPES, OPS, WORKLOADS, parse_shape, workload
from kernel_lib.tuning import Problem
from npulang.profiler import RooflinePoint, plot_roofline
from tuning_db import TuningDBError, TuningStore, open_store

DEFAULT_TRIALS = 20  # simulations per shape unless --trials or --sampler grid says otherwise


@dataclass(frozen=True)
class Request:
    """One shape to tune, as a worker process receives it (plain data: problems are rebuilt there)."""

    op: str
    label: str
    shape: str  # the shape as given, or the workload's row
    dtype: str
    machine: str | isa.MachineSpec  # a preset name or TOML file, or the spec itself (npu-codesign's variants)
    db: str | None
    trials: int | None  # None: every config (grid)
    sampler: str
    seed: int
    verify: bool


@dataclass(frozen=True)
class Result:
    """What the table and --json show for one shape."""

    op: str
    shape: str
    dtype: str
    machine: str
    config: Mapping[str, Any]
    cycles: int
    roofline_cycles: float
    efficiency: float  # roofline / cycles
    bound: str
    tflops: float | None
    flops: int  # 0 for the memory-bound operators
    hbm_bytes: int  # compulsory HBM traffic: every distinct operand read or written once
    trials: int  # simulations in the store for this shape (this run's and earlier ones')
    evaluated: int  # simulations this run added
    seconds: float


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """A one-line error and exit status 2, as argparse's own but without the usage block."""
        self.exit(2, f"npu-tune: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="npu-tune", description="Tune kernel_lib operators into the tuning database.")
    parser.add_argument("op", choices=sorted(OPS), metavar="OP", help=f"one of: {', '.join(sorted(OPS))}")
    parser.add_argument("--shapes", help="comma-separated shapes: MxNxK (gemm), ROWSxCOLS (softmax, norms), "
                                         "N (activations), NxCxHxW[:nhwc] (batch_norm), SHAPE[:SHAPE_B] (add, "
                                         "mul); separated by ';': conv2d N,C,H,W,K,R,S[,stride[,pad]], pooling "
                                         "N,C,H,W,R,S[,stride[,pad]][:nhwc]")
    parser.add_argument("--workload", choices=sorted(WORKLOADS),
                        help="the layer shapes of a network: bert-base (gemm), resnet50 (conv2d, batch 4)")
    parser.add_argument("--dtype", default="fp16", choices=sorted(DTYPES))
    parser.add_argument("--trials", type=int, help=f"simulations per shape (default {DEFAULT_TRIALS})")
    parser.add_argument("--sampler", default="auto", choices=["auto", "tpe", "random", "grid"],
                        help="auto: cost model + TPE; grid: every config of the space")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--machine", default=None, help="a preset name or a TOML file (default: $NPU_MACHINE, "
                                                        "else davinci)")
    parser.add_argument("--db", metavar="URL", help="SQLAlchemy URL or file (default: $NPU_TUNING_DB, else the "
                                                    "user cache's tuning.db)")
    parser.add_argument("--jobs", type=int, default=1, help="processes tuning shapes at once, into one store")
    parser.add_argument("--json", action="store_true", help="one JSON object per shape instead of the table")
    parser.add_argument("--no-verify", dest="verify", action="store_false",
                        help="skip running the winner against the interpreter (saves a functional run)")
    parser.add_argument("--plot", type=Path, metavar="FILE", help="write a roofline of the tuned shapes "
                                                                  "(.png or .svg, by the file's suffix)")
    return parser


PLOT_SUFFIXES = (".png", ".svg")


def check_plot_path(path: Path | None, parser: argparse.ArgumentParser) -> None:
    """Refuse a --plot file matplotlib would not write before tuning, not after."""
    if path is None:
        return
    if path.suffix.lower() not in PLOT_SUFFIXES:
        parser.error(f"--plot {path}: give a file ending in {' or '.join(PLOT_SUFFIXES)}")
    folder = path.absolute().parent  # the plot makes missing folders: the nearest existing one must take them
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        parser.error(f"--plot {path}: {folder} is not a writable folder")


def write_plot(parser: argparse.ArgumentParser, path: Path, draw: Callable[[], Path]) -> Path:
    """`draw()` (which writes the --plot file), a write the early check could not foresee as a one-line error."""
    try:
        return draw()
    except OSError as exc:
        parser.error(f"--plot {path}: {exc.strerror or exc}")


def _requests(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Request]:
    if (args.shapes is None) == (args.workload is None):
        parser.error("give exactly one of --shapes and --workload")
    if args.dtype not in OPS[args.op].dtypes:
        parser.error(f"{args.op} takes --dtype {', '.join(OPS[args.op].dtypes)}, not {args.dtype}")
    if args.trials is not None and args.trials < 1:
        parser.error(f"--trials must be a positive integer, got {args.trials}")
    if args.jobs < 1:
        parser.error(f"--jobs must be a positive integer, got {args.jobs}")
    check_plot_path(args.plot, parser)
    try:
        npu.set_machine(args.machine) if args.machine else npu.get_machine()
    except (npu.NpuError, isa.MachineSpecError, OSError) as exc:
        parser.error(f"--machine {args.machine}: {str(exc).splitlines()[0]}")
    trials = None if args.sampler == "grid" else args.trials or DEFAULT_TRIALS
    sampler = "auto" if args.sampler == "grid" else args.sampler
    common = dict(op=args.op, dtype=args.dtype, machine=npu.get_machine(), db=args.db,
                  trials=trials, sampler=sampler, seed=args.seed, verify=args.verify)
    if args.workload is not None:
        if WORKLOADS[args.workload] != args.op:
            parser.error(f"--workload {args.workload} has {WORKLOADS[args.workload]} shapes, not {args.op}")
        labels = [label for label, _ in workload(args.workload, DTYPES[args.dtype])]
        return [Request(label=label, shape=f"{args.workload}:{i}", **common) for i, label in enumerate(labels)]
    shapes = [s.strip() for s in args.shapes.split(";" if "," in OPS[args.op].form else ",") if s.strip()]
    if not shapes:
        parser.error("--shapes is empty")
    for s in shapes:
        try:
            parse_shape(args.op, s)
        except ValueError as exc:
            parser.error(str(exc))
    return [Request(label=s, shape=s, **common) for s in shapes]


def _problem(request: Request) -> Problem:
    dtype = DTYPES[request.dtype]
    name, _, index = request.shape.partition(":")
    if name in WORKLOADS:  # "bert-base:3": a workload's row (a shape may hold ":" too, as "64x300:300")
        return workload(name, dtype)[int(index)][1]
    return OPS[request.op].build(parse_shape(request.op, request.shape), dtype)


def tune_one(request: Request, store: TuningStore | None = None) -> Result:
    """Tune one shape (in this process) and describe its best config."""
    wanted = request.machine if isinstance(request.machine, isa.MachineSpec) else isa.MachineSpec.load(
        request.machine)
    if wanted.fingerprint != npu.get_machine().fingerprint:  # variants of one machine share its name
        npu.set_machine(wanted)
    start = time.monotonic()
    problem = _problem(request)
    own = store is None
    store = store or open_store(request.db)  # one connection for the search and the summary
    try:
        report = problem.tune(store, trials=request.trials, seed=request.seed,
                              sampler=request.sampler, verify=request.verify)  # type: ignore[arg-type]
        best = store.best(report.key)
        simulated = sum(1 for t in store.trials(report.key) if t.state == "done")
    finally:
        if own:
            store.close()
    cycles = best.cycles if best is not None else int(report.cycles or 0)
    spec = npu.get_machine()
    seconds = cycles / (spec.clock_ghz * 1e9)
    return Result(request.op, request.label, request.dtype, spec.name, report.best.as_dict(), cycles,
                  problem.roofline, problem.roofline / cycles, problem.bound,
                  problem.flops / seconds / 1e12 if problem.flops else None, problem.flops, compulsory_bytes(problem),
                  simulated, len(report.evaluated), time.monotonic() - start)


def compulsory_bytes(problem: Problem) -> int:
    """Bytes every launch of `problem` must move to or from HBM: each distinct operand array once."""
    arrays = {id(a): a for a in problem.args if isinstance(a, np.ndarray)}
    return sum(a.nbytes for a in arrays.values())


ROOFLINE_DTYPES = {"fp16": "f16", "bf16": "bf16", "fp32": "f32", "int8": "i8"}


def plot(results: Sequence[Result], path: Path) -> Path:
    """The roofline of a run: each tuned shape at its FLOPs per compulsory HBM byte and achieved TFLOPS."""
    points = [RooflinePoint(f"{r.op} {r.shape}", r.flops, r.hbm_bytes, r.cycles) for r in results]
    skipped = sum(1 for p in points if not p.flops)
    note = f"{skipped} shape(s) of operators without a FLOP count (memory-bound) not drawn" if skipped else ""
    return plot_roofline(npu.get_machine(), points, path, dtype=ROOFLINE_DTYPES[results[0].dtype],
                         title=f"npu-tune {results[0].op} on {results[0].machine}", note=note)


def table(results: Sequence[Result]) -> str:
    """The results as a Markdown table."""
    rows = ["| op | shape | dtype | best config | cycles | TFLOPS | % of roofline | trials | wall s |",
            "|---|---|---|---|---:|---:|---:|---:|---:|"]
    for r in results:
        config = " ".join(f"{k}={v}" for k, v in r.config.items())
        tflops = "-" if r.tflops is None else f"{r.tflops:.1f}"
        rows.append(f"| {r.op} | {r.shape} | {r.dtype} | {config} | {r.cycles:,} | {tflops} | "
                    f"{100 * r.efficiency:.1f} % ({r.bound}) | {r.trials} | {r.seconds:.1f} |")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: 0 when every shape was tuned, 1 when one failed, 2 for bad arguments,
    130 when interrupted (what was evaluated is in the store; a re-run resumes)."""
    parser = _parser()
    args = parser.parse_args(argv)
    requests = _requests(args, parser)
    try:
        outcomes = run(requests, args.db, args.jobs, f"npu-tune {args.op}",
                       (lambda r: print(json.dumps(asdict(r)), flush=True)) if args.json else None)
    except TuningDBError as exc:
        parser.error(str(exc).splitlines()[0])
    except KeyboardInterrupt:
        print("npu-tune: interrupted; every finished evaluation is in the store, re-run to resume", file=sys.stderr)
        return 130
    results = [o for o in outcomes if isinstance(o, Result)]
    failures = [o for o in outcomes if isinstance(o, str)]
    if not args.json and results:
        print(table(results))
    if args.plot and results:
        print(f"plot: {write_plot(parser, args.plot, lambda: plot(results, args.plot))}",
              file=sys.stderr if args.json else sys.stdout)
    for failure in failures:
        print(f"npu-tune: error: {failure}", file=sys.stderr)
    return 1 if failures else 0


def run(requests: Sequence[Request], db: str | None, jobs: int, desc: str,
        on_result: Callable[[Result], None] | None = None) -> list[Result | str]:
    """Tune `requests` in order (`jobs` > 1: in that many processes sharing the store) under a progress bar,
    which `on_result` (e.g. printing JSON) silences. Returns, for each request in order, its result or the
    one-line reason it failed. A bad store raises `TuningDBError` before any tuning."""
    from tqdm import tqdm  # comes with optuna

    one = jobs == 1
    per_shape = requests[0].trials
    bar = tqdm(total=len(requests) * per_shape if one and per_shape else len(requests), file=sys.stderr,
               desc=desc, unit="sim" if one else "shape", disable=True if on_result else None)
    outcomes: list[Result | str] = []
    store = None
    try:
        store = _Ticking(db, bar) if one else None
        if store is not None:
            for request in requests:
                bar.set_postfix_str(request.label)
                outcomes.append(_attempt(request, store))
                _report(outcomes[-1], on_result)
        else:
            with multiprocessing.get_context("spawn").Pool(jobs) as pool:
                for outcome in pool.imap(_attempt, requests):
                    outcomes.append(outcome)
                    _report(outcome, on_result)
                    bar.update()
    finally:
        bar.close()
        if store is not None:
            store.close()
    return outcomes


class _Ticking(TuningStore):
    """The tuning store, advancing the progress bar at every simulation it records."""

    def __init__(self, url: str | None, bar: Any) -> None:
        super().__init__(url)
        self.bar = bar

    def record_trial(self, key: Any, config: Mapping[str, Any], **kw: Any) -> Any:
        trial = super().record_trial(key, config, **kw)
        if kw.get("cycles") is not None:
            self.bar.update()
        return trial


def _attempt(request: Request, store: TuningStore | None = None) -> Result | str:
    """`tune_one`, or the one-line reason it failed (worker processes report failures as data)."""
    try:
        return tune_one(request, store)
    except (npu.NpuError, TuningDBError) as exc:
        return f"{request.label}: {str(exc).splitlines()[0]}"


def _report(outcome: Result | str, on_result: Callable[[Result], None] | None) -> None:
    if on_result is not None and isinstance(outcome, Result):
        on_result(outcome)


if __name__ == "__main__":
    sys.exit(main())

"""kernel_lib's performance table: library calls with tuned configs against their rooflines, cold L2.

    python benchmarks/library.py [--trials N] [--db URL] [--quick] [--only gemm,bert-base,resnet50,row-ops,attention]

For each row the script first makes sure the tuning database has a config for the shape (it tunes the
operator's problem with `--trials` simulations when it has none: the same search as `npu-tune`), then
calls the library function itself (`kernel_lib.gemm(a, b)`, `kernel_lib.softmax(x)`...) inside
`npu.launch_defaults(timing_only=True, l2="cold")`: the call looks its config up as any user's call does,
and runs timing-only on a cold L2 (no numpy work: a functional 4096³ GEMM would take minutes of wall time
for the same cycles). Rooflines: the cube's peak MAC rate over all cores for GEMMs, the bytes every call
must move (inputs read once, outputs written once) at HBM bandwidth for the memory-bound operators. The
BERT-base row is FLOP-weighted: the sum of its GEMMs' rooflines over the sum of their cycles (batch 8 of 128
tokens; the attention GEMMs batched over 96 heads); for each of its GEMMs the script also prints the time
its compulsory HBM traffic takes (inputs read once, output written once, at HBM bandwidth), since the
per-head attention GEMMs are bound by that, not by the cube. Prints the Markdown table the README quotes
(`--only` prints some of its parts: the whole table is the default).

The ResNet-50 rows are FLOP-weighted too (batch 4, fp16 NHWC: each distinct convolution tuned and timed once,
weighted by how often it occurs; the 3×3 body, the 1×1 layers, the 7×7/2 stem and all 53 apart, each with its %
of the HBM roofline and of max(cube, HBM) beside).

The attention rows (fp16, B=1, H=24, S=2048, D=128) count the cube's MACs of its two matmuls (causal: only
the (query, key) pairs the mask keeps).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import kernel_lib as kl  # noqa: E402
import npulang as npu  # noqa: E402
from kernel_lib.cli.problems import DTYPES, OPS, workload  # noqa: E402
from kernel_lib.tuning import Problem  # noqa: E402
from kernel_lib.workloads import resnet50  # noqa: E402
from tuning_db import open_store  # noqa: E402
from tuning_db.connection import ENV  # noqa: E402

GEMMS = ["1024x1024x1024", "2048x2048x2048", "4096x4096x4096", "4096x1024x4096", "1000x3000x777"]
TARGETS = {"1024x1024x1024": 0.80, "2048x2048x2048": 0.90, "4096x4096x4096": 0.95, "4096x1024x4096": 0.90,
           "1000x3000x777": 0.75, "bert-base": 0.90, "resnet50": 0.80, "softmax": 0.90,
           "layer_norm": 0.90, "rms_norm": 0.90}
ROW_OPS = ["softmax", "layer_norm", "rms_norm"]
ATTENTION = (1, 24, 2048, 128)  # B, H, S, D: 24 heads fill the 24 cores
ATTENTION_TARGET = 0.50
PARTS = ("gemm", "bert-base", "resnet50", "row-ops", "attention")


@dataclass
class Row:
    name: str
    problem: str
    config: str
    cycles: int
    roofline: float
    bound: str
    target: float
    seconds: float  # wall time of tuning (if needed) and the timed call

    @property
    def efficiency(self) -> float:
        return self.roofline / self.cycles


def ensure_tuned(problem: Problem, trials: int, label: str) -> str:
    """Tune `problem` unless the database has its config; returns the config the library call will use."""
    source = problem.candidates()[0][1]
    if source != "tuned":
        print(f"  tuning {label} ({trials} simulations)...", file=sys.stderr, flush=True)
        with open_store(os.environ[ENV]) as store:  # one connection for the whole search
            problem.tune(store, trials=trials, verify=False)
        source = problem.candidates()[0][1]
    assert source == "tuned", f"{label}: the library call would not use a tuned config"
    return " ".join(f"{k}={v}" for k, v in problem.candidates()[0][0].items())


def timed(call: Callable[[], object]) -> int:
    """The cycles of every launch `call` makes, timing-only on a cold L2."""
    with npu.profile() as prof, npu.launch_defaults(timing_only=True, l2="cold"):
        call()
    return int(prof.cycles)


def gemm_row(shape: str, trials: int) -> Row:
    start = time.monotonic()
    m, n, k = (int(d) for d in shape.split("x"))
    problem = OPS["gemm"].build((m, n, k), DTYPES["fp16"])
    config = ensure_tuned(problem, trials, f"gemm {shape}")
    a, b = np.zeros((m, k), np.float16), np.zeros((k, n), np.float16)
    cycles = timed(lambda: kl.gemm(a, b))
    return Row("gemm", f"fp16 {shape}", config, cycles, problem.roofline, "cube", TARGETS[shape],
               time.monotonic() - start)


def bert_row(trials: int) -> Row:
    start = time.monotonic()
    roof, cycles = 0.0, 0
    for label, problem in workload("bert-base", DTYPES["fp16"]):
        ensure_tuned(problem, trials, label)
        a, b = problem.args[0], problem.args[1]
        layer = timed(lambda a=a, b=b: kl.matmul(a, b) if a.ndim == 3 and a.shape[0] > 1 else kl.gemm(a[0], b[0]))
        print(f"  {label}: {layer:,} cycles, {100 * problem.roofline / layer:.1f} % of the cube roofline; "
              f"compulsory HBM traffic alone takes {hbm_cycles(a, b):,.0f} cycles", file=sys.stderr, flush=True)
        cycles += layer
        roof += problem.roofline
    return Row("gemm (BERT-base, 6 GEMMs)", "fp16, batch 8 × 128 tokens", "tuned per GEMM", cycles, roof, "cube",
               TARGETS["bert-base"], time.monotonic() - start)


def hbm_cycles(a: np.ndarray, b: np.ndarray) -> float:
    """Cycles to read a and b once and write a @ b (a's dtype) once at the machine's HBM bandwidth."""
    out = a.shape[:-1] + b.shape[-1:]
    total = (a.size + b.size + int(np.prod(out))) * a.itemsize
    return total / npu.get_machine().hbm_bytes_per_cycle


def resnet_rows(trials: int) -> list[Row]:
    """ResNet-50's convolutions at batch 4, fp16 NHWC, each distinct shape tuned once and timed once, FLOP-weighted
    by how often it occurs: the 3×3 body, the 1×1 layers, the 7×7/2 stem and the whole network. Beside the % of
    the cube roofline (the target's), each row gives its % of the HBM roofline and of the larger of the two
    per layer (what the layer can reach at best: most 1×1 layers and the stem are memory-bound at batch 4)."""
    start = time.monotonic()
    parts: dict[str, list[float]] = {"3×3 body": [0, 0, 0, 0], "1×1 layers": [0, 0, 0, 0], "7×7/2 stem": [0, 0, 0, 0]}
    hbm_rate = npu.get_machine().hbm_bytes_per_cycle
    for layer, (label, problem) in zip(resnet50(), workload("resnet50", DTYPES["fp16"])):
        ensure_tuned(problem, trials, label)
        x, w = problem.args[0], np.zeros((layer.k, layer.c, layer.r, layer.s), np.float16)
        cycles = timed(lambda x=x, w=w, c=layer: kl.conv2d(x, w, stride=c.stride, padding=c.pad, layout="NHWC"))
        hbm = (x.nbytes + w.nbytes + problem.args[-1].nbytes) / hbm_rate  # x, w read once, y written once
        print(f"  {label} ×{layer.count}: {cycles:,} cycles, {100 * problem.roofline / cycles:.1f} % of the cube "
              f"roofline, {100 * hbm / cycles:.1f} % of the HBM roofline", file=sys.stderr, flush=True)
        part = parts["7×7/2 stem" if layer.r == 7 else "1×1 layers" if layer.r == 1 else "3×3 body"]
        for i, v in enumerate((cycles, problem.roofline, hbm, max(problem.roofline, hbm))):
            part[i] += layer.count * v
    rows = []
    total = [sum(p[i] for p in parts.values()) for i in range(4)]
    for name, (cycles, roof, hbm, best) in [*parts.items(), ("all 53 convolutions", total)]:
        rows.append(Row(f"conv2d (ResNet-50, {name})", f"fp16 NHWC, batch 4 (HBM roofline {100 * hbm / cycles:.0f} %, "
                        f"max(cube, HBM) {100 * best / cycles:.0f} %)", "tuned per shape", int(cycles), roof, "cube",
                        TARGETS["resnet50"], 0.0))
    rows[-1].seconds = time.monotonic() - start
    return rows


def row_op(op: str, dtype: str, trials: int) -> Row:
    start = time.monotonic()
    problem = OPS[op].build((4096, 4096), DTYPES[dtype])
    config = ensure_tuned(problem, trials, f"{op} {dtype}")
    x = np.zeros((4096, 4096), DTYPES[dtype])
    w = np.ones(4096, DTYPES[dtype])
    call = {"softmax": lambda: kl.softmax(x), "layer_norm": lambda: kl.layer_norm(x, 4096, w, w),
            "rms_norm": lambda: kl.rms_norm(x, 4096, w)}[op]
    cycles = timed(call)
    return Row(op, f"{dtype} 4096×4096", config, cycles, problem.roofline, "HBM", TARGETS[op],
               time.monotonic() - start)


def attention_row(causal: bool, trials: int) -> Row:
    """fp16 attention, B=1, H=24, S=2048, D=128; the roofline is the cube's on its two matmuls, 4·B·H·S²·D
    FLOPs, causal: only the (query, key) pairs the mask keeps (S·(S+1)/2 per head)."""
    start = time.monotonic()
    op = "attention_causal" if causal else "attention"
    problem = OPS[op].build(ATTENTION, DTYPES["fp16"])
    shape = "x".join(map(str, ATTENTION))
    config = ensure_tuned(problem, trials, f"{op} {shape}")
    q = np.zeros(ATTENTION, np.float16)
    cycles = timed(lambda: kl.attention(q, q, q, causal=causal))
    return Row(op.replace("_", ", "), "fp16 B=1 H=24 S=2048 D=128", config, cycles, problem.roofline, "cube",
               ATTENTION_TARGET, time.monotonic() - start)


def table(rows: list[Row]) -> str:
    out = ["| operator | problem | config (tuned) | cycles | roofline | % of roofline | target |",
           "|---|---|---|---:|---:|---:|---|"]
    for r in rows:
        met = "met" if r.efficiency >= r.target else "missed"
        out.append(f"| {r.name} | {r.problem} | {r.config} | {r.cycles:,} | {r.roofline:,.0f} ({r.bound}) | "
                   f"{100 * r.efficiency:.1f} % | ≥ {100 * r.target:.0f} % {met} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="simulations per shape when it needs tuning")
    parser.add_argument("--db", help="tuning database (default: $NPU_TUNING_DB, else the user cache's)")
    parser.add_argument("--quick", action="store_true", help="only the 1024³ and 2048³ GEMMs and the fp16 rows")
    parser.add_argument("--only", type=lambda s: s.split(","), default=list(PARTS),
                        help=f"comma-separated parts of the table to produce: {', '.join(PARTS)} (default: all)")
    args = parser.parse_args()
    if set(args.only) - set(PARTS):
        parser.error(f"--only takes {', '.join(PARTS)}, got {','.join(args.only)}")
    if args.db:
        os.environ[ENV] = args.db
    elif ENV not in os.environ:
        from tuning_db.connection import default_path

        os.environ[ENV] = str(default_path())
    rows = []
    for shape in (GEMMS[:2] if args.quick else GEMMS) if "gemm" in args.only else []:
        rows.append(gemm_row(shape, args.trials))
        print(f"  {rows[-1].problem}: {100 * rows[-1].efficiency:.1f} %", file=sys.stderr, flush=True)
    if not args.quick and "bert-base" in args.only:
        rows.append(bert_row(args.trials))
    if not args.quick and "resnet50" in args.only:
        rows += resnet_rows(args.trials)
    for dtype in (("fp16",) if args.quick else ("fp32", "fp16")) if "row-ops" in args.only else ():
        for op in ROW_OPS:
            rows.append(row_op(op, dtype, args.trials))
            print(f"  {op} {dtype}: {100 * rows[-1].efficiency:.1f} %", file=sys.stderr, flush=True)
    for causal in (False, True) if "attention" in args.only and not args.quick else ():
        rows.append(attention_row(causal, args.trials))
        print(f"  {rows[-1].name}: {100 * rows[-1].efficiency:.1f} %", file=sys.stderr, flush=True)
    assert all(r.cycles >= r.roofline for r in rows), "a figure beats its roofline: the model or roofline is wrong"
    print(table(rows))
    print(f"\n(tuning database: {os.environ[ENV]}; wall time {sum(r.seconds for r in rows):.0f} s)")


if __name__ == "__main__":
    main()

"""The autotuner's search against the exhaustive optimum, on real GEMM spaces, as a Markdown table.

Two kernels of `examples/tutorials.py`: the descriptor matmul (BM, BN in {32, 64, 128, 256}, BK in
{16, 32, 64, 128}, num_stages in {1..4}: 256 configs) on six shapes, and the grouped matmul of Triton's
tutorial 03 (BLOCK_SIZE_M/N in {32..256}, BLOCK_SIZE_K in {16, 32, 64}, GROUP_SIZE_M in {1, 8},
num_stages in {1, 2, 3}: 288 configs) on three. For each (kernel, shape) the whole space is simulated once
by the autotuner itself (timing only, cold L2) into a tuning database under this directory
(`benchmarks/tuner_exhaustive.db`, reused by later runs: the cycles are deterministic). Each strategy is
then replayed against those stored cycles, seed by seed, counting simulations until the first config
within 2 % of the exhaustive optimum. Configs that do not compile are pruned by compiling only and are
not counted for any strategy (the baselines get the same pruning).

Strategies: ours (`autotune.search.ModelGuided`: cost-model order corrected by results; after the first
16, every other proposal explores: warm-start configs, then TPE), the same exploring after 8, with a warm
start (the same kernel's best configs of the other shapes, nearest first), the corrected model order
alone, TPE from the first step, ours and the model's order with the estimates spoiled by noise, random
search, and Optuna's TPE with default settings. The last line is the wall time per evaluation of the
real tuner at 2048^3.

    python benchmarks/tuner.py                 # all shapes, 3 seeds (the first run simulates the spaces)
    python benchmarks/tuner.py --seeds 5 --shapes 512x512x512,200x1000x640 --grouped-shapes ""
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import npulang as npu  # noqa: E402
from autotune import Autotuner, Config, ModelGuided, PlainTPE, RandomSearch, expand_space  # noqa: E402
from autotune.search import Strategy  # noqa: E402
from examples.tutorials import matmul_desc_kernel, matmul_kernel  # noqa: E402
from npulang.runtime.jit import JITFunction  # noqa: E402

SPACE = {"BM": [32, 64, 128, 256], "BN": [32, 64, 128, 256], "BK": [16, 32, 64, 128], "num_stages": [1, 2, 3, 4]}
GROUPED_SPACE = {"BLOCK_SIZE_M": [32, 64, 128, 256], "BLOCK_SIZE_N": [32, 64, 128, 256], "BLOCK_SIZE_K": [16, 32, 64],
                 "GROUP_SIZE_M": [1, 8], "num_stages": [1, 2, 3]}
SHAPES = ["512x512x512", "1024x256x768", "200x1000x640", "1000x700x333", "256x256x4096", "4096x64x256"]
GROUPED_SHAPES = ["512x512x512", "1000x700x333", "4096x64x256"]
CACHE = Path(__file__).resolve().parent / "tuner_exhaustive.db"
WITHIN = 1.02
NOISE = 0.3  # a deliberately worse model: each estimate times exp(N(0, NOISE)), to test the exploration


@dataclass(frozen=True, eq=False)  # compared by identity: two kernels, one object each
class Gemm:
    """A GEMM kernel of examples/tutorials.py with its space: how to call it for an M x N x K problem."""

    name: str
    fn: JITFunction
    space: dict[str, list[int]]
    m_name: str  # the constexpr names of the M and N tile sizes (for the grid)
    n_name: str

    def args(self, m: int, n: int, k: int) -> tuple[tuple, dict]:
        a, b = np.zeros((m, k), np.float16), np.zeros((k, n), np.float16)
        if self.fn is matmul_desc_kernel:
            return (a, b, np.zeros((m, n), np.float16), m, n, k), {}
        c = np.zeros((m, n), np.float32)  # the grouped tutorial matmul, as run_matmul calls it
        return (a, b, c, m, n, k, k, 1, n, 1, n, 1), {"ACTIVATION": "", "ACC_DTYPE": npu.float32}

    def grid(self, m: int, n: int) -> Callable[[dict], tuple[int, ...]]:
        if self.fn is matmul_desc_kernel:
            return lambda meta: (npu.cdiv(m, meta[self.m_name]), npu.cdiv(n, meta[self.n_name]))
        return lambda meta: (npu.cdiv(m, meta[self.m_name]) * npu.cdiv(n, meta[self.n_name]),)

    def tuner(self, db: str, **kw: object) -> Autotuner:
        return Autotuner(self.fn, space=self.space, key=["M", "N", "K"], db=db, verify=False, warm_start=False,
                         seed=0, **kw)


DESC = Gemm("descriptor matmul", matmul_desc_kernel, SPACE, "BM", "BN")
GROUPED = Gemm("grouped matmul", matmul_kernel, GROUPED_SPACE, "BLOCK_SIZE_M", "BLOCK_SIZE_N")


def exhaustive(gemm: Gemm, shape: str, db: str) -> tuple[dict[str, int], dict[str, int | None], float]:
    """Every config's stored cycles (simulating what is missing), the cost model's estimates, and the
    seconds the tuning call took in this run."""
    m, n, k = map(int, shape.split("x"))
    full = gemm.tuner(db, trials="all")
    args, kwargs = gemm.args(m, n, k)
    report = full.tune(gemm.grid(m, n), args, kwargs)
    key = full.tuning_key(args, kwargs)
    cycles = {Config.from_dict(t.config).ident(): t.cycles for t in full.store.trials(key) if t.state == "done"}
    ranked, _ = full._rank(gemm.grid(m, n), args, kwargs, full.configs)
    return cycles, {c.ident(): e for c, e in ranked}, report.seconds


def spearman(cycles: dict[str, int], estimates: dict[str, int | None]) -> float:
    """Rank correlation of the model's estimates with the simulated cycles over the ranked configs."""
    idents = [i for i in estimates if i in cycles and estimates[i] is not None]
    return float(np.corrcoef(*(_ranks([table[i] for i in idents]) for table in (cycles, estimates)))[0, 1])


def _ranks(values: list[float]) -> np.ndarray:
    """Ranks with ties averaged (Spearman's definition)."""
    v = np.asarray(values, float)
    ordinal = np.empty(len(v))
    ordinal[np.argsort(v, kind="stable")] = np.arange(len(v))
    _, group = np.unique(v, return_inverse=True)
    return np.bincount(group, ordinal)[group] / np.bincount(group)[group]


def replay(strategy: Strategy, cycles: dict[str, int]) -> int:
    """Simulations until the first config within 2 % of the optimum (the table stands in for the simulator)."""
    target = WITHIN * min(cycles.values())
    for n in range(1, len(cycles) + 1):
        config = strategy.propose()
        if config is None:
            break
        got = cycles[config.ident()]
        strategy.tell(config, got)
        if got <= target:
            return n
    return len(cycles)


def warm_configs(case: tuple[Gemm, str], bests: dict[tuple[Gemm, str], Config]) -> list[Config]:
    """The same kernel's best configs of the other shapes, nearest (log distance over M, N, K) first, as
    `nearest_best` gives them."""
    gemm, shape = case
    here = [math.log(int(x)) for x in shape.split("x")]

    def dist(other: tuple[Gemm, str]) -> float:
        return sum((a - math.log(int(b))) ** 2 for a, b in zip(here, other[1].split("x")))

    others = [c for c in bests if c[0] is gemm and c != case]
    return [bests[c] for c in sorted(others, key=dist)[:4]]


def wall_per_evaluation(evaluations: int) -> tuple[float, float, float]:
    """The real tuner on 2048^3: (compile and rank the space, s; mean s per simulation; the tuning call's
    s per evaluation, with the compiled programs only on disk)."""
    with tempfile.TemporaryDirectory() as tmp:
        t = Autotuner(DESC.fn, space=SPACE, key=["M", "N", "K"], db=f"sqlite:///{tmp}/wall.db",
                      trials=evaluations)  # verify=True: the winner is checked as in real use
        args, _ = DESC.args(2048, 2048, 2048)
        t0 = time.monotonic()
        t._rank(DESC.grid(2048, 2048), args, {}, t.configs)
        rank = time.monotonic() - t0
        t.fn.runtime.cache.clear()
        report = t.tune(DESC.grid(2048, 2048), args, {})
        sims = [x.wall_seconds for x in t.store.trials(report.key) if x.state == "done"]
        return rank, statistics.mean(sims), report.seconds / max(1, len(report.evaluated))


Table = tuple[dict[str, int], dict[str, int | None]]  # a case's simulated cycles and the model's estimates


def strategies(tables: dict[tuple[Gemm, str], Table]) -> dict[str, Callable[[tuple[Gemm, str], int], Strategy]]:
    """The strategies compared, each a maker of a fresh search for (case, seed)."""
    bests = {c: _config(min(t[0], key=t[0].get)) for c, t in tables.items()}

    def feasible(case: tuple[Gemm, str]) -> list[Config]:
        """The compilable configs in the space's order (the estimates' keys are in the model's order)."""
        order = {c.ident(): n for n, c in enumerate(expand_space(case[0].space))}
        cycles, estimates = tables[case]
        return sorted((_config(i) for i in estimates if i in cycles), key=lambda c: order[c.ident()])

    return {
        "ours (cost model + TPE, cold start)": lambda c, seed: ModelGuided(feasible(c), tables[c][1], seed=seed),
        "ours, warm start (other shapes' best)": lambda c, seed: ModelGuided(
            feasible(c), tables[c][1], seed=seed, warm=warm_configs(c, bests)),
        "cost model order only (corrected, no exploration)": lambda c, seed: ModelGuided(
            feasible(c), tables[c][1], seed=seed, head=10**9),
        "ours, exploring after 8": lambda c, seed: ModelGuided(feasible(c), tables[c][1], seed=seed, head=8),
        "ours, TPE from the first step (head 0)": lambda c, seed: ModelGuided(feasible(c), tables[c][1],
                                                                            seed=seed, head=0),
        f"ours, model estimates x noise (sigma {NOISE})": lambda c, seed: ModelGuided(
            feasible(c), _noisy(tables[c][1], seed), seed=seed),
        "cost model order only, same noise": lambda c, seed: ModelGuided(
            feasible(c), _noisy(tables[c][1], seed), seed=seed, head=10**9),
        "random search": lambda c, seed: RandomSearch(feasible(c), seed=seed),
        "Optuna TPE (defaults)": lambda c, seed: PlainTPE(feasible(c), seed=seed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--shapes", default=",".join(SHAPES), help="descriptor matmul shapes, MxNxK,...")
    parser.add_argument("--grouped-shapes", default=",".join(GROUPED_SHAPES), help="grouped matmul shapes ('' none)")
    parser.add_argument("--db", default=f"sqlite:///{CACHE}", help="where the exhaustive results are kept")
    parser.add_argument("--wall-evals", type=int, default=3, help="simulations timed at 2048^3 (0: skip)")
    opts = parser.parse_args()
    cases = [(DESC, s) for s in opts.shapes.split(",") if s] + \
        [(GROUPED, s) for s in opts.grouped_shapes.split(",") if s]
    tables: dict[tuple[Gemm, str], Table] = {}
    started = time.monotonic()
    for gemm, shape in cases:
        cycles, estimates, seconds = exhaustive(gemm, shape, opts.db)
        tables[(gemm, shape)] = (cycles, estimates)
        best = min(cycles.values())
        print(f"{gemm.name} {shape}: {len(estimates)} of {len(expand_space(gemm.space))} configs compile, optimum "
              f"{best:,} cycles, {sum(1 for c in cycles.values() if c <= WITHIN * best)} within 2 %; cost model "
              f"rank correlation (Spearman) {spearman(cycles, estimates):.4f}; tuning in this run: {seconds:.0f} s",
              file=sys.stderr)
    print("| strategy | median | worst | " + " | ".join(f"{g.name.split()[0]} {s}" for g, s in cases) + " |")
    print("|---|---:|---:|" + "---|" * len(cases))
    for name, make in strategies(tables).items():
        runs = {c: [replay(make(c, seed), tables[c][0]) for seed in range(opts.seeds)] for c in cases}
        flat = [n for r in runs.values() for n in r]
        cells = " | ".join("/".join(map(str, r)) for r in runs.values())
        print(f"| {name} | {statistics.median(flat):g} | {max(flat)} | {cells} |")
    print(f"\n(simulations to reach within 2 % of the exhaustive optimum; per case one figure per seed "
          f"0..{opts.seeds - 1}; {time.monotonic() - started:.0f} s)")
    if opts.wall_evals:
        rank, sim, per = wall_per_evaluation(opts.wall_evals)
        print(f"\n2048^3, {opts.wall_evals} evaluations by the real tuner: compiling and ranking all "
              f"{len(expand_space(SPACE))} configs {rank:.1f} s; a simulation (timing only, cold L2) {sim:.2f} s "
              f"per evaluation; the whole tuning call (ranking again from the disk compile cache, the "
              f"simulations, the store, verifying the winner) {per:.2f} s per evaluation")


def _noisy(estimates: dict[str, int | None], seed: int) -> dict[str, int | None]:
    rng = np.random.default_rng(1000 + seed)
    return {i: None if e is None else int(e * math.exp(rng.normal(0, NOISE))) for i, e in estimates.items()}


def _config(ident: str) -> Config:
    return Config.from_dict(json.loads(ident))


if __name__ == "__main__":
    main()

"""The autotuner's search against the exhaustive optimum, on real GEMM spaces, as a Markdown table.

For each GEMM shape the whole space (the descriptor matmul of `examples/tutorials.py`: BM, BN in
{32, 64, 128, 256}, BK in {16, 32, 64, 128}, num_stages in {1..4}: 256 configs) is simulated once by the
autotuner itself (timing only, cold L2) into a tuning database under this directory
(`benchmarks/tuner_exhaustive.db`, reused by later runs: the cycles are deterministic). Each strategy is
then replayed against those stored cycles, seed by seed, counting simulations until the first config
within 2 % of the exhaustive optimum. Configs that do not compile are pruned by compiling only and are
not counted for any strategy (the baselines get the same pruning).

Strategies: ours (`autotune.search.ModelGuided`: cost-model order corrected by results, TPE exploration
after the first 8), the same from a warm start (the best configs of the other shapes, nearest first),
the cost model's order alone, random search, and Optuna's TPE with default settings. The last table is
the wall time per evaluation of the real tuner at 2048^3.

    python benchmarks/tuner.py                 # all shapes, 3 seeds (the first run simulates the spaces)
    python benchmarks/tuner.py --seeds 5 --shapes 512x512x512,200x1000x640
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import npulang as npu  # noqa: E402
from autotune import Autotuner, Config, ModelGuided, PlainTPE, RandomSearch, expand_space  # noqa: E402
from autotune.search import Strategy  # noqa: E402
from examples.tutorials import matmul_desc_kernel  # noqa: E402

SPACE = {"BM": [32, 64, 128, 256], "BN": [32, 64, 128, 256], "BK": [16, 32, 64, 128], "num_stages": [1, 2, 3, 4]}
SHAPES = ["512x512x512", "1024x256x768", "200x1000x640", "1000x700x333", "256x256x4096", "4096x64x256"]
_ORDER = {c.ident(): n for n, c in enumerate(expand_space(SPACE))}  # the space's own order
CACHE = Path(__file__).resolve().parent / "tuner_exhaustive.db"
WITHIN = 1.02
NOISE = 0.3  # a deliberately worse model: each estimate times exp(N(0, NOISE)), to test the exploration


def gemm_args(m: int, n: int, k: int) -> tuple:
    a = np.zeros((m, k), np.float16)
    b = np.zeros((k, n), np.float16)
    c = np.zeros((m, n), np.float16)
    return a, b, c, m, n, k


def grid_of(m: int, n: int) -> Callable[[dict], tuple[int, int]]:
    return lambda meta: (npu.cdiv(m, meta["BM"]), npu.cdiv(n, meta["BN"]))


def tuner(db: str, **kw: object) -> Autotuner:
    return Autotuner(matmul_desc_kernel, space=SPACE, key=["M", "N", "K"], db=db, verify=False,
                     warm_start=False, seed=0, **kw)


def exhaustive(shape: str, db: str) -> tuple[dict[str, int], dict[str, int | None], float]:
    """Every config's stored cycles (simulating what is missing), the cost model's estimates, and the
    seconds spent simulating in this run."""
    m, n, k = map(int, shape.split("x"))
    full = tuner(db, trials="all")
    args = gemm_args(m, n, k)
    report = full.tune(grid_of(m, n), args, {})
    key = full.tuning_key(args, {})
    cycles = {Config.from_dict(t.config).ident(): t.cycles for t in full.store.trials(key) if t.state == "done"}
    ranked, _ = full._rank(grid_of(m, n), args, {}, full.configs)
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


def warm_configs(shape: str, bests: dict[str, Config]) -> list[Config]:
    """The other shapes' best configs, nearest (log distance over M, N, K) first, as `nearest_best` gives."""
    here = [math.log(int(x)) for x in shape.split("x")]

    def dist(other: str) -> float:
        return sum((a - math.log(int(b))) ** 2 for a, b in zip(here, other.split("x")))

    return [bests[s] for s in sorted((s for s in bests if s != shape), key=dist)[:4]]


def wall_per_evaluation(evaluations: int) -> tuple[float, float, float]:
    """The real tuner on 2048^3: (compile and rank the space, s; mean s per simulation; the tuning call's
    s per evaluation, with the compiled programs only on disk)."""
    with tempfile.TemporaryDirectory() as tmp:
        t = Autotuner(matmul_desc_kernel, space=SPACE, key=["M", "N", "K"], db=f"sqlite:///{tmp}/wall.db",
                      trials=evaluations)  # verify=True: the winner is checked as in real use
        args = gemm_args(2048, 2048, 2048)
        t0 = time.monotonic()
        t._rank(grid_of(2048, 2048), args, {}, t.configs)
        rank = time.monotonic() - t0
        t.fn.runtime.cache.clear()
        report = t.tune(grid_of(2048, 2048), args, {})
        sims = [x.wall_seconds for x in t.store.trials(report.key) if x.state == "done"]
        return rank, statistics.mean(sims), report.seconds / max(1, len(report.evaluated))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--db", default=f"sqlite:///{CACHE}", help="where the exhaustive results are kept")
    parser.add_argument("--wall-evals", type=int, default=3, help="simulations timed at 2048^3 (0: skip)")
    opts = parser.parse_args()
    shapes = opts.shapes.split(",")
    tables, started = {}, time.monotonic()
    for shape in shapes:
        cycles, estimates, seconds = exhaustive(shape, opts.db)
        tables[shape] = (cycles, estimates)
        best = min(cycles.values())
        print(f"{shape}: {len(estimates)} of {len(tuner(opts.db).configs)} configs compile, optimum {best:,} "
              f"cycles, {sum(1 for c in cycles.values() if c <= WITHIN * best)} within 2 %; cost model rank "
              f"correlation (Spearman) {spearman(cycles, estimates):.4f}; tuning in this run: {seconds:.0f} s",
              file=sys.stderr)
    bests = {s: _config(min(t[0], key=t[0].get)) for s, t in tables.items()}
    strategies: dict[str, Callable[[str, int], Strategy]] = {
        "ours (cost model + TPE, cold start)": lambda s, seed: ModelGuided(_feasible(tables[s]), tables[s][1],
                                                                         seed=seed),
        "ours, warm start (other shapes' best)": lambda s, seed: ModelGuided(
            _feasible(tables[s]), tables[s][1], seed=seed, warm=warm_configs(s, bests)),
        "cost model order only": lambda s, seed: ModelGuided(_feasible(tables[s]), tables[s][1], seed=seed,
                                                             head=10**9, neighbours=1),
        "ours, TPE from the first step (head 0)": lambda s, seed: ModelGuided(_feasible(tables[s]), tables[s][1],
                                                                            seed=seed, head=0),
        f"ours, model estimates x noise (sigma {NOISE})": lambda s, seed: ModelGuided(
            _feasible(tables[s]), _noisy(tables[s][1], seed), seed=seed),
        "cost model order only, same noise": lambda s, seed: ModelGuided(
            _feasible(tables[s]), _noisy(tables[s][1], seed), seed=seed, head=10**9, neighbours=1),
        "random search": lambda s, seed: RandomSearch(_feasible(tables[s]), seed=seed),
        "Optuna TPE (defaults)": lambda s, seed: PlainTPE(_feasible(tables[s]), seed=seed),
    }
    print("| strategy | median | worst | " + " | ".join(shapes) + " |")
    print("|---|---:|---:|" + "---|" * len(shapes))
    for name, make in strategies.items():
        per_shape = {s: [replay(make(s, seed), tables[s][0]) for seed in range(opts.seeds)] for s in shapes}
        flat = [n for runs in per_shape.values() for n in runs]
        cells = " | ".join("/".join(map(str, runs)) for runs in per_shape.values())
        print(f"| {name} | {statistics.median(flat):g} | {max(flat)} | {cells} |")
    print(f"\n(simulations to reach within 2 % of the exhaustive optimum; per shape one figure per seed "
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


def _feasible(table: tuple[dict[str, int], dict[str, int | None]]) -> list[Config]:
    """The compilable configs, in the space's order (the estimates' keys are in the model's order)."""
    cycles, estimates = table
    return sorted((_config(i) for i in estimates if i in cycles), key=lambda c: _ORDER[c.ident()])


if __name__ == "__main__":
    main()

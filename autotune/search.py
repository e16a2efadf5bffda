"""Search strategies: which config to simulate next, given what is known.

A strategy proposes configs from a fixed candidate list (the compilable configs of the space) and is told
each result; it never proposes a config it was told about, so nothing is evaluated twice. The tuner
(`autotune.tuner`) and the benchmark (`benchmarks/tuner.py`) drive the same classes.

- `ModelGuided` (the tuner's): the candidates in the order of the analytic cost model
  (`autotune.costmodel`), re-ranked as results arrive by the ratio of simulated to estimated cycles of the
  nearest evaluated configs; after `head` evaluations every other proposal explores where the model may
  be wrong: first the warm-start configs (the best of the nearest tuned keys), then what a seeded Optuna
  TPE sampler that has been told every result proposes. `head` is 16 and the correction uses the 3
  nearest results: on `benchmarks/tuner.py` exploring earlier (after 8 or 12) or correcting with 1 or 5
  neighbours needed more evaluations in the worst case, and warm-start configs proposed first cost more
  than the model's order.
- `RandomSearch` and `PlainTPE`: the baselines the benchmark compares against.
"""

from __future__ import annotations

import math
import random
from typing import Mapping, Sequence

import optuna

from autotune.config import Config, Scalar

_TPE_ASKS = 64  # proposals of an already-known config before falling back to the next by the model


class Strategy:
    """Proposes candidates one at a time; `tell` gives back a result (cycles, or None: it failed)."""

    def __init__(self, candidates: Sequence[Config]) -> None:
        self.candidates = list(candidates)
        self.by_ident = {c.ident(): c for c in self.candidates}
        self.results: dict[str, int | None] = {}  # ident -> cycles (None: failed), told so far
        self.skipped: set[str] = set()  # proposed but taken by someone else (not told)
        self.pending: set[str] = set()  # proposed, not told yet

    def taken(self) -> set[str]:
        """Candidates that must not be proposed again: told, skipped or pending."""
        return set(self.results) | self.skipped | self.pending

    def open(self) -> list[Config]:
        """Candidates not taken, in candidate order."""
        taken = self.taken()
        return [c for c in self.candidates if c.ident() not in taken]

    def propose(self) -> Config | None:
        """The next config to evaluate (never one proposed before), or None when none is left."""
        config = self._choose()
        if config is not None:
            self.pending.add(config.ident())
        return config

    def tell(self, config: Config, cycles: int | None) -> None:
        self.results[config.ident()] = cycles
        self.pending.discard(config.ident())

    def skip(self, config: Config) -> None:
        """Another process is evaluating `config`: do not propose it again in this run."""
        self.skipped.add(config.ident())
        self.pending.discard(config.ident())

    def _choose(self) -> Config | None:
        raise NotImplementedError


class RandomSearch(Strategy):
    """Uniform over the open candidates, seeded."""

    def __init__(self, candidates: Sequence[Config], seed: int = 0) -> None:
        super().__init__(candidates)
        self.rng = random.Random(seed)

    def _choose(self) -> Config | None:
        left = self.open()
        return self.rng.choice(left) if left else None


class _Tpe:
    """An in-memory Optuna study over the candidates' parameters, rebuilt from our results (Optuna is the
    sampler; the tuning database is the record)."""

    def __init__(self, candidates: Sequence[Config], seed: int, n_startup_trials: int) -> None:
        values: dict[str, list[Scalar]] = {}
        for c in candidates:
            for name, v in c.as_dict().items():
                if v not in values.setdefault(name, []):
                    values[name].append(v)
        self.dists = {n: optuna.distributions.CategoricalDistribution(vs) for n, vs in values.items()}
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is noise here
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials)
        self.study = optuna.create_study(direction="minimize", sampler=sampler)
        self.told: set[str] = set()

    def add(self, config: Config, cycles: int | None, penalty: float) -> None:
        ident = config.ident()
        if ident in self.told:
            return
        self.told.add(ident)
        params = config.as_dict()
        if set(params) != set(self.dists):
            return
        value = float(cycles) if cycles is not None else penalty
        self.study.add_trial(optuna.trial.create_trial(params=params, distributions=self.dists, value=value))

    def ask(self, by_ident: Mapping[str, Config], results: Mapping[str, int | None], taken: set[str],
            penalty: float) -> Config | None:
        """The sampler's next open candidate. A proposal that is known is told its result again, one that
        cannot compile the penalty, one taken otherwise (pending, another process's) nothing; then the
        sampler is asked again."""
        for _ in range(_TPE_ASKS):
            trial = self.study.ask(self.dists)
            ident = Config.from_dict(trial.params).ident()
            if ident in by_ident and ident not in taken:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)  # a placeholder: `add` records it
                return by_ident[ident]
            if ident in taken and ident not in results:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                known = results.get(ident)
                self.study.tell(trial, float(known) if known is not None else penalty)
        return None


class PlainTPE(Strategy):
    """Optuna's TPE with its default settings over the space, seeded (the baseline)."""

    def __init__(self, candidates: Sequence[Config], seed: int = 0) -> None:
        super().__init__(candidates)
        self.tpe = _Tpe(candidates, seed, n_startup_trials=10)
        self.rng = random.Random(seed)

    def _choose(self) -> Config | None:
        penalty = _penalty(self.results)
        for config in self.candidates:
            if config.ident() in self.results:
                self.tpe.add(config, self.results[config.ident()], penalty)
        found = self.tpe.ask(self.by_ident, self.results, self.taken(), penalty)
        if found is None:
            left = self.open()
            return self.rng.choice(left) if left else None
        return found


class ModelGuided(Strategy):
    """Cost-model order, corrected by results, with TPE exploration (see the module docstring).

    `estimates` maps a candidate's ident to the model's cycles (None: the model declined to rank it; such
    candidates come last). `warm` configs (the best of the nearest tuned shapes) are the first explorations.
    """

    def __init__(self, candidates: Sequence[Config], estimates: Mapping[str, int | None], *, seed: int = 0,
                 warm: Sequence[Config] = (), head: int = 16, neighbours: int = 3) -> None:
        super().__init__(candidates)
        self.estimates = dict(estimates)
        self.warm = [c for c in warm if c.ident() in self.by_ident]
        self.head, self.neighbours = head, neighbours
        self.tpe = _Tpe(candidates, seed, n_startup_trials=0)
        self.proposed = 0
        self.coords = _coordinates(self.candidates)

    def _choose(self) -> Config | None:
        taken = self.taken()
        explore = self.proposed >= self.head and (self.proposed - self.head) % 2 == 1
        self.proposed += 1
        if explore:
            for config in self.warm:  # the nearest tuned keys' best: the first places to look beyond the model
                if config.ident() not in taken:
                    return config
            penalty = _penalty(self.results)
            for ident, cycles in self.results.items():
                self.tpe.add(self.by_ident[ident], cycles, penalty)
            found = self.tpe.ask(self.by_ident, self.results, taken, penalty)
            if found is not None:
                return found
        ranked = self.ranking()
        return ranked[0] if ranked else None

    def ranking(self) -> list[Config]:
        """Open candidates, best first: the model's estimate times the simulated/estimated ratio of the
        nearest evaluated configs (1 until there is a result)."""
        measured = [(self.coords[i], cycles / self.estimates[i]) for i, cycles in self.results.items()
                     if cycles is not None and self.estimates.get(i)]
        scored = []
        for n, config in enumerate(self.open()):
            est = self.estimates.get(config.ident())
            if est is None:
                scored.append((math.inf, n, config))
                continue
            scored.append((est * _local_ratio(self.coords[config.ident()], measured, self.neighbours), n, config))
        scored.sort(key=lambda t: (t[0], t[1]))
        return [c for _, _, c in scored]


def _penalty(results: Mapping[str, int | None]) -> float:
    """The value Optuna is told for a config that cannot run: twice the worst seen."""
    seen = [c for c in results.values() if c is not None]
    return 2.0 * max(seen) if seen else 1e12


def _coordinates(candidates: Sequence[Config]) -> dict[str, tuple[float, ...]]:
    """Each candidate as a point: per parameter, the log of a numeric value, else the index of its choice."""
    names = sorted({n for c in candidates for n in c.as_dict()})
    choices: dict[str, list[Scalar]] = {n: [] for n in names}
    for c in candidates:
        for n, v in c.as_dict().items():
            if v not in choices[n]:
                choices[n].append(v)

    def coord(name: str, v: Scalar | None) -> float:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
            return math.log2(v)
        return float(choices[name].index(v)) if v in choices[name] else -1.0

    return {c.ident(): tuple(coord(n, c.as_dict().get(n)) for n in names) for c in candidates}


def _local_ratio(point: tuple[float, ...], measured: Sequence[tuple[tuple[float, ...], float]], k: int) -> float:
    """Geometric mean of the sim/model ratios of the `k` evaluated configs nearest to `point`."""
    if not measured:
        return 1.0
    near = sorted(measured, key=lambda m: sum((a - b) ** 2 for a, b in zip(point, m[0])))[:k]
    return math.exp(sum(math.log(r) for _, r in near) / len(near))

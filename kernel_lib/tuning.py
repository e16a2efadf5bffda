"""Which config an operator launches with: the tuning database, else the nearest tuned shape, else a rule.

Every tunable operator kernel is a `TunedKernel`: an `@npu.jit` kernel with a documented search space
(`space`, tuned by `npu-tune` through `autotune.Autotuner`) and the kernel arguments that key a record
(the problem's shape and the flags that change the kernel's work). A library call describes its launch as
a `Problem` (grid, arguments, the constexpr flags the call fixes, the operator's rule) and `Problem.launch`
tries, in order, the first that compiles on the current machine:

1. the config tuned for exactly this key (shape, dtypes, machine, kernel source, compiler version) in the
   tuning database: `$NPU_TUNING_DB`, else the user cache's `tuning.db` if it exists;
2. the best configs of the nearest tuned shapes of the same kernel, dtypes and machine (log-distance);
3. the operator's rule: its heuristic candidates, best guess first.

A library call never tunes and never simulates a config to choose one (`Autotuner.lookup`); `npu-tune`
does (`Problem.tune`). A database that is corrupt or not ours raises `tuning_db.TuningDBError` naming
the file, which is left untouched.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import npulang as npu
from autotune import Autotuner, Config, TuneReport
from autotune.tuner import Sampler
from kernel_lib.launching import Meta, launch_first_fitting
from tuning_db import TuningStore
from tuning_db.connection import ENV, default_path

Prune = Callable[[list[Config], dict[str, Any]], list[Config]]


class TunedKernel:
    """An operator kernel, its search space and its tuning key; holds one lookup tuner per database URL."""

    def __init__(self, op: str, kernel: npu.JITFunction, space: Mapping[str, Sequence[Any]], key: Sequence[str],
                 prune: Prune | None = None) -> None:
        self.op, self.kernel, self.space, self.key, self.prune = op, kernel, dict(space), tuple(key), prune
        # (database URL, thread) -> the tuner that reads it: its store stays open, one per thread as
        # tuning_db requires
        self._lookups: dict[tuple[str, int], Autotuner] = {}

    def autotuner(self, db: str | TuningStore | None = None, **options: Any) -> Autotuner:
        """An `Autotuner` over this kernel's space (options: trials, seconds, seed, sampler, verify)."""
        prune = None if self.prune is None else {"early_config_prune": lambda configs, named, **_: self.prune(
            list(configs), named)}
        return Autotuner(self.kernel, space=self.space, key=self.key, db=db, prune_configs_by=prune, **options)

    def known(self, args: Sequence[Any], flags: Mapping[str, Any]) -> list[tuple[Config, str]]:
        """The tuned config of this call's key ("tuned"), then the nearest tuned shapes' ("nearest")."""
        url = os.environ.get(ENV) or (str(default_path()) if default_path().exists() else None)
        if url is None:
            return []  # nothing was ever tuned here: no database is created by a library call
        where = (url, threading.get_ident())
        if where not in self._lookups:
            self._lookups[where] = self.autotuner(db=url)
        tuner = self._lookups[where]
        found = tuner.lookup(*args, **flags)
        out = [] if found is None else [(found, "tuned")]
        for record in tuner.store.nearest_best(tuner.tuning_key(tuple(args), flags)):
            config = Config.from_dict(record.config)
            if config in tuner.configs and all(config != c for c, _ in out):
                out.append((config, "nearest"))
        return out


@dataclass(frozen=True)
class Problem:
    """One launch of a tuned kernel: grid, arguments, the flags the call fixes and the operator's rule."""

    tuned: TunedKernel
    grid: Callable[[Meta], tuple[int, ...]]
    args: tuple[Any, ...]
    flags: Mapping[str, Any]
    heuristic: Sequence[Meta]  # the rule: configs of the space's parameters, best guess first
    roofline: float  # cycles no launch of this problem can beat on the current machine
    bound: str  # what the roofline is: "cube" or "HBM"
    flops: int = 0  # floating-point (or integer) operations, for TFLOPS; 0 for memory-bound operators
    shape: str = field(default="")  # the problem as npu-tune writes it, e.g. "1024x1024x1024"
    op: str = ""  # the operator named in errors, when not the kernel's (log_softmax, rms_norm, matmul)

    def candidates(self) -> list[tuple[Meta, str]]:
        """Configs to try, in order, each with where it came from ("tuned", "nearest", "heuristic")."""
        out = [(c.all_kwargs(), source) for c, source in self.tuned.known(self.args, self.flags)]
        out += [(dict(meta), "heuristic") for meta in self.heuristic if all(meta != m for m, _ in out)]
        return out

    def launch(self, **options: Any) -> npu.RunRecord:
        """Launch with the first candidate that compiles (launch options, e.g. `trace=True`, pass through)."""
        metas = [{**self.flags, **meta, **options} for meta, _ in self.candidates()]
        return launch_first_fitting(self.op or self.tuned.op, self.tuned.kernel, self.grid, self.args, metas)

    def tune(self, db: str | TuningStore | None = None, *, trials: int | None = None, seconds: float | None = None,
             seed: int = 0, sampler: Sampler = "auto", verify: bool = True) -> TuneReport:
        """Search the space for this problem by simulated cycles (cold L2) and save the best in the database.
        `trials=None` evaluates every config that compiles (an exhaustive search)."""
        tuner = self.tuned.autotuner(db=db, trials="all" if trials is None else trials, seconds=seconds, seed=seed,
                                     sampler=sampler, verify=verify)
        return tuner.tune(self.grid, self.args, dict(self.flags))


def first_fitting(problems: Sequence[Problem]) -> Problem:
    """The first problem whose rule compiles on this machine (an operator's one-pass kernel, else its
    chunked one), checked by compiling only."""
    for problem in problems[:-1]:
        for meta in problem.heuristic:
            try:
                problem.tuned.kernel.inspect(*problem.args, **problem.flags, **meta)
                return problem
            except npu.ResourceError:
                continue
    return problems[-1]

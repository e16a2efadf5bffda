"""`@npu.autotune`: pick a kernel's config per key by simulated cycles, remember it, share it.

A launch `kernel[grid](*args, **kwargs)` of an autotuned kernel computes its tuning key (the `key=`
arguments' values, the array dtypes, the machine, the kernel's source and the compiler version) and uses
the config found for it: from this object's memory, else from the tuning database when the search over
the current space is complete there, else by tuning now (unless `NPU_AUTOTUNE=0`, which takes the
database's record or the cost model's choice without simulating). Tuning:

1. compiles every config of the space (compile only: a config that does not fit the machine is recorded
   as failed with its reason and never simulated) and ranks the rest with the analytic cost model;
2. simulates configs in the order `autotune.search.ModelGuided` proposes (warm-started from the best of
   the nearest tuned shapes), each claimed in the store first and recorded as soon as it finishes, timing
   only on a cold L2, until the budget (trials and/or seconds) is spent or the space is exhausted;
3. runs the winner once functionally and compares every array with the IR interpreter's, then saves it.

Every evaluation is in the store, so a config is never simulated twice (not by a re-run, not by a second
process), an interrupted search resumes where it stopped, and a widened space costs only the new configs.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Literal, Mapping, Sequence

import numpy as np

import isa
from autotune import costmodel
from autotune.config import Config, Scalar, expand_space
from autotune.search import ModelGuided, PlainTPE, RandomSearch, Strategy
from npulang import errors
from npulang.runtime.cache import COMPILER_VERSION
from npulang.runtime.jit import LAUNCH_KEYWORDS, JITFunction
from npulang.runtime.launch import Grid, device_args, resolve_grid
from npulang.runtime.record import RunRecord
from tuning_db import TuningKey, TuningStore, open_store

Ranked = tuple[Config, int | None]  # a compilable config and its estimate (None: not ranked)
DEFAULT_SPACE_TRIALS = 20  # a `space=` search stops after this many simulations unless told otherwise
Sampler = Literal["auto", "tpe", "random"]  # auto: ModelGuided; tpe and random: the baselines (autotune.search)


def tuning_enabled() -> bool:
    """NPU_AUTOTUNE turns tuning off with 0, false, off or no (any case); unset or anything else leaves it on."""
    return os.environ.get("NPU_AUTOTUNE", "1").strip().lower() not in ("0", "false", "off", "no")


@dataclass
class TuneReport:
    """What one tuning did: the winner and how it was found."""

    key: TuningKey
    best: Config
    cycles: int | None  # None: chosen without simulating (NPU_AUTOTUNE=0, heuristic)
    source: str  # "database", "tuned", "heuristic" (memory hits make no report)
    evaluated: list[tuple[Config, int]] = field(default_factory=list)  # simulated by this call, in order
    pruned: list[tuple[Config, str]] = field(default_factory=list)  # could not compile, with the reason
    seconds: float = 0.0


class Autotuner:
    """An autotuned kernel: launch it as `kernel[grid](*args, **kwargs)`, as the kernel it wraps."""

    def __init__(self, fn: JITFunction, *, configs: Sequence[Config] | None = None,
                 space: Mapping[str, Iterable[Scalar]] | None = None,
                 constraint: Callable[[dict[str, Scalar]], bool] | None = None, key: Sequence[str] = (),
                 prune_configs_by: Mapping[str, Any] | None = None, reset_to_zero: Sequence[str] = (),
                 restore_value: Sequence[str] = (), trials: int | Literal["all"] | None = None,
                 seconds: float | None = None, db: str | TuningStore | None = None, seed: int = 0,
                 verify: bool = True, warm_start: bool = True, sampler: Sampler = "auto") -> None:
        if not isinstance(fn, JITFunction):
            raise errors.NpuError(f"@npu.autotune must decorate an @npu.jit kernel (put @npu.autotune above "
                                  f"@npu.jit), got {type(fn).__name__}")
        if (configs is None) == (space is None):
            raise errors.NpuError(f"@npu.autotune on {fn.name}: give exactly one of configs=[npu.Config(...)] "
                                  "or space={name: [choices]}")
        self.fn = fn
        self.configs = list(configs) if configs is not None else expand_space(space or {}, constraint)
        if not self.configs:
            raise errors.NpuError(f"@npu.autotune on {fn.name}: configs is empty")
        unknown = [n for n in (*key, *reset_to_zero, *restore_value) if n not in fn.params]
        if unknown:
            raise errors.NpuError(f"@npu.autotune on {fn.name}: {', '.join(map(repr, unknown))} "
                                  f"not an argument of the kernel (arguments: {', '.join(fn.params)})")
        tuned = {name for c in self.configs for name in c.kwargs}
        stray = sorted(tuned - set(fn.params))
        if stray:
            raise errors.NpuError(f"@npu.autotune on {fn.name}: configs name {', '.join(map(repr, stray))}, not a "
                                  f"parameter of the kernel (parameters: {', '.join(fn.params)})")
        chosen = [n for n in key if n in tuned]
        if chosen:
            raise errors.NpuError(f"@npu.autotune on {fn.name}: key names {', '.join(map(repr, chosen))}, which the "
                                  "autotuner chooses; key on the launch's own arguments (the problem's sizes)")
        prune = dict(prune_configs_by or {})
        extra = set(prune) - {"early_config_prune", "perf_model", "top_k"}
        if extra:
            raise errors.NpuError(f"@npu.autotune on {fn.name}: prune_configs_by takes early_config_prune, "
                                  f"perf_model and top_k, not {', '.join(sorted(extra))}")
        self.early_config_prune = prune.get("early_config_prune")
        self.perf_model = prune.get("perf_model")
        self.top_k = prune.get("top_k")
        self.key = list(key)
        self.reset_to_zero, self.restore_value = list(reset_to_zero), list(restore_value)
        if trials is None:
            trials = "all" if configs is not None else DEFAULT_SPACE_TRIALS
        if trials != "all" and (isinstance(trials, bool) or not isinstance(trials, int) or trials < 1):
            raise errors.NpuError(f"@npu.autotune on {fn.name}: trials must be a positive int or 'all', got {trials!r}")
        self.trials: int | None = None if trials == "all" else trials  # None: no limit
        self.seconds = seconds
        if sampler not in ("auto", "tpe", "random"):
            raise errors.NpuError(f"@npu.autotune on {fn.name}: sampler must be 'auto', 'tpe' or 'random', "
                                  f"got {sampler!r}")
        self.seed, self.verify, self.warm_start, self.sampler = seed, verify, warm_start, sampler
        self._db = db
        self._store: TuningStore | None = db if isinstance(db, TuningStore) else None
        self.cache: dict[TuningKey, Config] = {}  # the memory level: key -> chosen config
        self.last: TuneReport | None = None  # what the last tuning call did (for people and tests)
        self.__name__, self.__doc__ = fn.name, fn.__doc__

    def __repr__(self) -> str:
        return f"Autotuner({self.fn!r}, {len(self.configs)} configs, key={self.key})"

    # -- launching --------------------------------------------------------------------------------
    def __getitem__(self, grid: Grid) -> Callable[..., RunRecord]:
        def launcher(*args: Any, **kwargs: Any) -> RunRecord:
            return self.run(grid, *args, **kwargs)

        return launcher

    def run(self, grid: Grid, *args: Any, **kwargs: Any) -> RunRecord:
        """Launch with the config chosen for this call's key (tuning first if it is new)."""
        config = self.choose(grid, args, kwargs)
        if config.pre_hook is not None:
            config.pre_hook(self._named(args, kwargs))
        return self.fn.run(grid, *args, **kwargs, **config.all_kwargs())

    def best_config(self, *args: Any, grid: Grid | None = None, **kwargs: Any) -> Config:
        """The config a launch with these arguments uses (tuned now if needed; `grid` is needed then)."""
        key = self.tuning_key(args, kwargs)
        if key in self.cache:
            return self.cache[key]
        if grid is None:
            stored = self._stored_best(key)
            if stored is not None:
                return stored[0]
            raise errors.NpuError(f"autotuned kernel {self.fn.name}: no config chosen yet for {dict(key.key)}; "
                                  "launch it once, or pass grid= to tune now")
        return self.choose(grid, args, kwargs)

    def lookup(self, *args: Any, **kwargs: Any) -> Config | None:
        """The config known for this call's key (this object's memory, else the tuning database's record
        in the space), or None. Never compiles, simulates or tunes: for callers that must not tune
        implicitly (kernel_lib's operators)."""
        key = self.tuning_key(args, kwargs)
        if key in self.cache:
            return self.cache[key]
        stored = self._stored_best(key)
        return stored[0] if stored is not None else None

    def choose(self, grid: Grid, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Config:
        """The config for this call: memory, then the database, then tuning (see the module docstring)."""
        clash = sorted(set(kwargs) & {n for c in self.configs for n in c.as_dict()})
        if clash:
            raise errors.NpuError(f"autotuned kernel {self.fn.name}: {', '.join(clash)} chosen by the autotuner; "
                                  "do not pass them to the launch")
        key = self.tuning_key(args, kwargs)
        if key in self.cache:
            return self.cache[key]
        report = self.tune(grid, args, kwargs, key=key)
        self.last = report
        if not kwargs.get("interpret"):  # an interpreted launch's untested choice must not stop later tuning
            self.cache[key] = report.best
        return report.best

    # -- the key ----------------------------------------------------------------------------------
    def _named(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        try:
            bound = self.fn.signature.bind_partial(
                *args, **{k: v for k, v in kwargs.items() if k not in LAUNCH_KEYWORDS or k in self.fn.params})
        except TypeError as exc:
            raise errors.NpuError(f"bad arguments for autotuned kernel {self.fn.name}: {exc}") from None
        return dict(bound.arguments)

    def tuning_key(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> TuningKey:
        """What a record is about: key values, array dtypes, machine, source and compiler version."""
        named = self._named(args, kwargs)
        values: dict[str, Scalar] = {}
        for name in self.key:
            v = named.get(name)
            if isinstance(v, np.ndarray):
                values[name] = "x".join(map(str, v.shape))
            elif isinstance(v, (bool, int, float, str, np.generic)):
                values[name] = v.item() if isinstance(v, np.generic) else v
            else:
                raise errors.NpuError(f"autotuned kernel {self.fn.name}: key argument {name!r} is "
                                      f"{type(v).__name__}; key on ints, floats, strings or arrays (their shape)")
        dtypes = tuple(str(v.dtype) for v in named.values() if isinstance(v, np.ndarray))
        spec = self.fn.runtime.get_machine()
        return TuningKey(kernel=f"{self.fn.fn.__module__}.{self.fn.fn.__qualname__}",
                         source_hash=self.fn.source_hash(), key=values, dtypes=dtypes, machine=spec.fingerprint,
                         compiler_version=COMPILER_VERSION)

    # -- the store --------------------------------------------------------------------------------
    @property
    def store(self) -> TuningStore:
        """The tuning database: `db=` (a URL or a store), else `$NPU_TUNING_DB`, else the user cache."""
        if self._store is None:
            self._store = open_store(self._db if isinstance(self._db, str) else None)
        return self._store

    def _stored_best(self, key: TuningKey) -> tuple[Config, int] | None:
        """The database's best for `key` and its cycles, if the current space holds that config."""
        best = self.store.best(key)
        config = self._member(Config.from_dict(best.config)) if best is not None else None
        return (config, best.cycles) if config is not None else None

    def _member(self, config: Config) -> Config | None:
        """The space's own config equal to `config` (with its pre_hook), or None if the space lacks it."""
        for c in self.configs:
            if c == config:
                return c
        return None

    # -- tuning -----------------------------------------------------------------------------------
    def tune(self, grid: Grid, args: tuple[Any, ...], kwargs: dict[str, Any], *,
             key: TuningKey | None = None) -> TuneReport:
        """Choose the config for this call's key; see the module docstring for the steps."""
        start = time.monotonic()
        key = key or self.tuning_key(args, kwargs)
        candidates = self._candidates(args, kwargs)
        offline = not tuning_enabled() or kwargs.get("interpret") \
            or os.environ.get("NPU_INTERPRET", "") not in ("", "0")
        stored = self._stored_best(key)
        if offline:
            if stored is not None:
                return TuneReport(key, *stored, "database")
            ranked, pruned = self._rank(grid, args, kwargs, candidates)
            if not ranked:
                raise self._nothing_compiles(pruned)
            return TuneReport(key, ranked[0][0], None, "heuristic", pruned=pruned)
        spec = self.fn.runtime.get_machine()
        store = self.store
        store.register_machine(spec.name, spec.fingerprint, json.dumps(spec.to_dict(), sort_keys=True))
        known = {Config.from_dict(t.config).ident(): t for t in store.trials(key) if t.state != "running"}
        idents = {c.ident() for c in candidates}
        done = sum(1 for i, t in known.items() if i in idents and t.state == "done")
        if stored is not None and (idents <= set(known) or (self.trials is not None and done >= self.trials)):
            return TuneReport(key, *stored, "database", seconds=time.monotonic() - start)
        report = TuneReport(key, candidates[0], None, "tuned")
        self._search(grid, args, kwargs, key, candidates, known, done, report, start)
        report.best, report.cycles = self._finish(grid, args, kwargs, key, candidates)
        report.seconds = time.monotonic() - start
        return report

    def _candidates(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Config]:
        configs = self.configs
        if self.early_config_prune is not None:
            configs = list(self.early_config_prune(configs, self._named(args, kwargs), **kwargs))
            if not configs:
                raise errors.NpuError(f"autotuned kernel {self.fn.name}: early_config_prune left no config")
        return configs

    def _compile(self, grid: Grid, args: tuple[Any, ...], kwargs: dict[str, Any],
                 config: Config) -> tuple[isa.Program, list[Any], tuple[int, int, int]] | str:
        """Compile only the program a launch with `config` runs (through the launches' cache), or say why it
        cannot compile; return the one-program-per-grid-point form, its device arguments and grid, which
        the cost model walks (a persistent program loops over all of a core's programs: too long to walk)."""
        merged = {**kwargs, **config.all_kwargs()}
        options, launch, kernel_kwargs = self.fn.split(merged)
        call = self.fn.bind(args, kernel_kwargs)
        runtime = self.fn.runtime
        spec = runtime.get_machine()
        grid3 = resolve_grid(self.fn.name, grid, lambda: {**call.runtime, **call.constexprs, **launch})
        programs = grid3[0] * grid3[1] * grid3[2]
        # as Runtime._simulate decides: a grid larger than the machine runs as a persistent loop per core
        persistent = programs > spec.cores if options.persistent is None else bool(options.persistent) and programs > 0
        try:
            program = runtime.program(self.fn, call, options.num_stages, spec, persistent)
            if persistent:
                program = runtime.program(self.fn, call, options.num_stages, spec, False)
        except errors.CompilationError as exc:
            return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
        return program, device_args(call), grid3

    def _rank(self, grid: Grid, args: tuple[Any, ...], kwargs: dict[str, Any], candidates: Sequence[Config],
              skip: Mapping[str, Any] | None = None) -> tuple[list[Ranked], list[tuple[Config, str]]]:
        """Compile every candidate not in `skip`; the compilable ones with their estimate (best first; the
        user's perf_model if given, else the cost model) and the others with their reason."""
        spec = self.fn.runtime.get_machine()
        ranked: list[Ranked] = []
        pruned: list[tuple[Config, str]] = []
        for config in candidates:
            if skip and config.ident() in skip:
                continue
            compiled = self._compile(grid, args, kwargs, config)
            if isinstance(compiled, str):
                pruned.append((config, compiled))
                continue
            if self.perf_model is not None:
                est = self.perf_model(**{**self._named(args, kwargs), **kwargs, **config.all_kwargs()})
            else:
                found = costmodel.estimate(compiled[0], spec, compiled[1], compiled[2])
                est = found.cycles if found is not None else None
            ranked.append((config, est))
        ranked.sort(key=lambda ce: (ce[1] is None, ce[1] or 0))
        if self.top_k is not None:
            k = int(self.top_k * len(ranked)) if isinstance(self.top_k, float) and self.top_k <= 1 else self.top_k
            ranked = ranked[:max(1, int(k))]
        return ranked, pruned

    def _nothing_compiles(self, pruned: Sequence[tuple[Config, str]]) -> errors.NpuError:
        reasons = "\n".join(f"  {c}: {why}" for c, why in list(pruned)[:5])
        return errors.NpuError(f"autotuned kernel {self.fn.name}: no config of the space compiles for this call "
                               f"({len(pruned)} tried); the first reasons:\n{reasons}")

    def _warm(self, key: TuningKey) -> list[Config]:
        if not self.warm_start:
            return []
        records = self.store.nearest_best(key) + self.store.similar_machine_best(key)
        return [Config.from_dict(r.config) for r in records]

    def _search(self, grid: Grid, args: tuple[Any, ...], kwargs: dict[str, Any], key: TuningKey,
                candidates: Sequence[Config], known: Mapping[str, Any], done: int, report: TuneReport,
                start: float) -> None:
        store = self.store
        ranked, pruned = self._rank(grid, args, kwargs, candidates, skip=known)
        for config, why in pruned:  # compile-only pruning, recorded with the reason, never simulated
            if store.claim(key, config.as_dict()):
                store.record_trial(key, config.as_dict(), cycles=None, failure=why)
        report.pruned = pruned
        feasible = [c for c, _ in ranked] + [c for c in candidates if c.ident() in known
                                              and known[c.ident()].state == "done"]
        estimates = {c.ident(): e for c, e in ranked}
        strategy: Strategy
        if self.sampler == "auto":
            strategy = ModelGuided(feasible, estimates, seed=self.seed, warm=self._warm(key))
        else:
            strategy = (PlainTPE if self.sampler == "tpe" else RandomSearch)(feasible, seed=self.seed)
        for ident, trial in known.items():
            if ident in strategy.by_ident:
                strategy.tell(strategy.by_ident[ident], trial.cycles)
        while self.trials is None or done < self.trials:
            if self.seconds is not None and time.monotonic() - start >= self.seconds:
                break
            config = strategy.propose()
            if config is None:
                break
            if not store.claim(key, config.as_dict()):
                strategy.skip(config)  # another process has it (or has finished it)
                continue
            try:
                cycles = self._evaluate(grid, args, kwargs, key, config)
            except BaseException:  # Ctrl-C or an error mid-evaluation: give the claim back, keep the rest
                store.release(key, config.as_dict())
                raise
            strategy.tell(config, cycles)
            if cycles is not None:
                done += 1
                report.evaluated.append((config, cycles))

    def _evaluate(self, grid: Grid, args: tuple[Any, ...], kwargs: dict[str, Any], key: TuningKey,
                  config: Config) -> int | None:
        """One simulation (timing only, cold L2), recorded in the store as soon as it finishes."""
        t0 = time.monotonic()
        launch = {k: v for k, v in kwargs.items() if k not in ("timing_only", "l2", "trace", "interpret")}
        try:
            run = self.fn.run(grid, *args, **launch, **config.all_kwargs(), timing_only=True, l2="cold")
        except errors.NpuRuntimeError as exc:
            self.store.record_trial(key, config.as_dict(), cycles=None, failure=f"{type(exc).__name__}: {exc}",
                                    wall_seconds=time.monotonic() - t0)
            return None
        self.store.record_trial(key, config.as_dict(), cycles=int(run.cycles), wall_seconds=time.monotonic() - t0)
        return int(run.cycles)

    def _finish(self, grid: Grid, args: tuple[Any, ...], kwargs: dict[str, Any], key: TuningKey,
                candidates: Sequence[Config]) -> tuple[Config, int]:
        """The best stored evaluation in the space (this process's or another's), verified, then saved."""
        by_ident = {c.ident(): c for c in candidates}
        results = sorted((t.cycles, Config.from_dict(t.config).ident()) for t in self.store.trials(key)
                         if t.state == "done" and Config.from_dict(t.config).ident() in by_ident)
        mismatches = []
        for cycles, ident in results:
            config = by_ident[ident]
            problem = self._verify(grid, args, kwargs, config) if self.verify else None
            if problem is None:
                self.store.save_best(key, config.as_dict(), cycles)
                return config, cycles
            mismatches.append(f"  {config}: {problem}")
        if mismatches:
            raise errors.NpuError(f"autotuned kernel {self.fn.name}: no evaluated config gives the interpreter's "
                                  "results:\n" + "\n".join(mismatches[:5]))
        raise errors.NpuError(f"autotuned kernel {self.fn.name}: no config of the space could be evaluated "
                              "(all failed to compile or to run); see the tuning database's failed trials")

    def _verify(self, grid: Grid, args: tuple[Any, ...], kwargs: dict[str, Any], config: Config) -> str | None:
        """Run `config` functionally and in the IR interpreter, on copies of the arrays; None when every
        array ends equal, else what differs. `reset_to_zero` arrays are zeroed first, as before a benchmark
        in Triton; the caller's arrays are never touched (so `restore_value` holds by construction)."""
        launch = {k: v for k, v in kwargs.items() if k not in ("timing_only", "l2", "trace", "interpret")}
        outs = []
        for interpret in (False, True):
            named = {k: (np.array(v, copy=True) if isinstance(v, np.ndarray) else v)
                     for k, v in self._named(args, launch).items()}
            for name in self.reset_to_zero:
                named[name][...] = 0
            extra = {k: v for k, v in launch.items() if k not in named}
            self.fn.run(grid, **named, **extra, **config.all_kwargs(), interpret=interpret)
            outs.append({k: v for k, v in named.items() if isinstance(v, np.ndarray)})
        for name, compiled in outs[0].items():
            if not np.array_equal(compiled, outs[1][name], equal_nan=compiled.dtype.kind == "f"):
                return f"array {name!r} differs from the interpreter's"
        return None


def autotune(configs: Sequence[Config] | None = None, key: Sequence[str] = (), *,
             space: Mapping[str, Iterable[Scalar]] | None = None,
             constraint: Callable[[dict[str, Scalar]], bool] | None = None,
             prune_configs_by: Mapping[str, Any] | None = None, reset_to_zero: Sequence[str] = (),
             restore_value: Sequence[str] = (), trials: int | Literal["all"] | None = None,
             seconds: float | None = None, db: str | TuningStore | None = None, seed: int = 0, verify: bool = True,
             warm_start: bool = True, sampler: Sampler = "auto") -> Callable[[JITFunction], Autotuner]:
    """Decorate an `@npu.jit` kernel to choose its config per `key` by simulated cycles (Triton's
    `@triton.autotune`, plus `space=`, `constraint=` and a budget of `trials` and/or `seconds`).

    Args:
        configs: the configs to choose from (`npu.Config({...}, num_stages=2)`); or `space=` instead.
        key: argument names whose values (an array's: its shape) select the record; a new key tunes.
        space: a grid of choices per parameter (`num_stages` is the launch option); `constraint(config)`
            keeps only the combinations it returns True for.
        prune_configs_by: Triton's `early_config_prune(configs, named_args, **kwargs)`, `perf_model(**args)`
            (replaces the built-in cost model's ranking) and `top_k` (keep that many, or that fraction).
        reset_to_zero, restore_value: Triton's; tuning runs timing-only (outputs untouched) and verifies
            the winner on copies, so they only affect the verification run.
        trials, seconds: the budget: simulations (an int, or "all") and/or seconds of this run. `configs=`
            defaults to "all" (as Triton), `space=` to 20.
        db: a SQLAlchemy URL or an open `TuningStore`; default `$NPU_TUNING_DB`, else the user cache.
        seed: seeds the search (runs are reproducible); verify: compare the winner with the interpreter.
        sampler: "auto" (the cost model's order with TPE exploration), or the baselines "tpe" (Optuna's TPE
            alone) and "random"; an exhaustive search is `trials="all"`.
    """
    def decorate(fn: JITFunction) -> Autotuner:
        return Autotuner(fn, configs=configs, space=space, constraint=constraint, key=key,
                         prune_configs_by=prune_configs_by, reset_to_zero=reset_to_zero,
                         restore_value=restore_value, trials=trials, seconds=seconds, db=db, seed=seed,
                         verify=verify, warm_start=warm_start, sampler=sampler)

    return decorate

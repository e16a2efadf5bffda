"""`@npu.autotune`: memory, database, tuning; compile-only pruning; nothing evaluated twice; resume; keys."""

from __future__ import annotations

import numpy as np
import pytest

import npulang as npu
from autotune import Autotuner, Config, expand_space
from tests.autotune.kernels import SPACE, gemm, grid, matmul, reference
from tuning_db import open_store

SHAPE = (96, 64, 160)


def tuned(db: str, **kw) -> Autotuner:
    return npu.autotune(space=kw.pop("space", SPACE), key=["M", "N", "K"], db=db, **kw)(matmul)


def launch(kernel: Autotuner, shape=SHAPE, seed: int = 0, **kw):
    args = gemm(*shape, seed=seed)
    run = kernel[grid(*shape[:2])](*args, **kw)
    return args, run


def test_a_new_key_tunes_then_memory_then_the_database_answer(db, launches):
    kernel = tuned(db, trials=6)
    (a, b, c, *_), run = launch(kernel)
    np.testing.assert_allclose(c, reference(a, b), rtol=1e-2, atol=1e-2)
    report = kernel.last
    assert report.source == "tuned" and len(report.evaluated) == 6 == len(launches.timed)
    assert len(set(launches.timed)) == 6
    best_config, best_cycles = min(report.evaluated, key=lambda e: e[1])
    assert (report.best, report.cycles) == (best_config, best_cycles)
    assert kernel.best_config(*gemm(*SHAPE)) == best_config
    assert run.cycles is not None  # the user's launch is a normal functional one, with the best config
    assert launches.interpreted == [best_config.ident()]  # verified once against the interpreter
    stored = open_store(db).best(report.key)
    assert Config.from_dict(stored.config) == best_config and stored.cycles == best_cycles

    before = len(launches.all)
    launch(kernel, seed=1)  # same key: memory, nothing but the launch itself
    assert len(launches.all) == before + 1 and kernel.last is report

    again = tuned(db, trials=6)  # a new process would start like this: the database answers
    (a, b, c, *_), _ = launch(again, seed=2)
    np.testing.assert_allclose(c, reference(a, b), rtol=1e-2, atol=1e-2)
    assert again.last.source == "database" and again.last.best == best_config
    assert len(launches.timed) == 6


def test_configs_that_cannot_compile_are_pruned_without_simulating_and_recorded(db, launches):
    kernel = tuned(db, trials="all")
    launch(kernel)
    report = kernel.last
    pruned = {c.ident() for c, _ in report.pruned}
    assert pruned == {Config({"BM": 256, "BN": bn, "BK": 1024}, num_stages=s).ident()
                      for bn in (32, 64) for s in (1, 2)}
    assert all(why.startswith("BufferOverflowError: ") and "bytes of L1" in why for _, why in report.pruned)
    assert not pruned & set(launches.timed)
    assert sorted(launches.timed) == sorted(c.ident() for c in expand_space(SPACE) if c.ident() not in pruned)
    trials = open_store(db).trials(report.key)
    failed = {Config.from_dict(t.config).ident(): t.failure for t in trials if t.state == "failed"}
    assert set(failed) == pruned and all("bytes of L1 but only 0" in f for f in failed.values())
    assert {t.state for t in trials} == {"done", "failed"}


def test_no_config_is_evaluated_twice_across_runs_a_bigger_budget_or_a_wider_space(db, launches):
    launch(tuned(db, trials=4))
    first = list(launches.timed)
    launch(tuned(db, trials=9))  # the budget counts what is stored: 5 more
    assert len(launches.timed) == 9 and len(set(launches.timed)) == 9
    wider = {**SPACE, "BN": [32, 64, 128]}
    kernel = tuned(db, space=wider, trials="all")
    launch(kernel)
    assert len(set(launches.timed)) == len(launches.timed)  # every simulation was of a new config
    assert launches.timed[:4] == first
    trials = open_store(db).trials(kernel.last.key)
    assert len({Config.from_dict(t.config).ident() for t in trials}) == len(trials) == len(expand_space(wider))
    assert sum(t.state == "done" for t in trials) == len(launches.timed)


def test_an_interrupted_search_keeps_its_evaluations_and_resumes(db, launches, monkeypatch):
    kernel = tuned(db, trials=7)
    original = Autotuner._evaluate

    def interrupted(self, *args, **kw):
        if len(launches.timed) == 3:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the fourth evaluation
        return original(self, *args, **kw)

    monkeypatch.setattr(Autotuner, "_evaluate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        launch(kernel)
    key = kernel.tuning_key(gemm(*SHAPE), {})
    assert [t.state for t in open_store(db).trials(key)].count("done") == 3
    assert "running" not in {t.state for t in open_store(db).trials(key)}  # the interrupted claim is released
    monkeypatch.setattr(Autotuner, "_evaluate", original)
    launch(tuned(db, trials=7))  # a new run (here: a new store, as a new process would have)
    assert len(launches.timed) == 7 == len(set(launches.timed))


def test_keys_and_machines_are_separate_records(db, launches):
    kernel = tuned(db, trials=3)
    launch(kernel)
    launch(kernel, shape=(64, 96, 160))  # another key tunes on its own
    assert len(launches.timed) == 6
    spec = npu.get_machine()
    try:
        npu.set_machine(spec.replace(cores=4))
        launch(kernel)  # the same shape on another machine is another record
        small = kernel.last
    finally:
        npu.set_machine(spec)
    assert small.source == "tuned" and len(launches.timed) == 9
    store = open_store(db)
    key = kernel.tuning_key(gemm(*SHAPE), {})
    assert small.key.machine != key.machine and small.key.key == key.key
    assert store.best(key) is not None and store.best(small.key) is not None
    assert store.best(key).cycles != store.best(small.key).cycles
    assert dict(kernel.tuning_key(gemm(64, 96, 160), {}).key) == {"M": 64, "N": 96, "K": 160}


def test_a_winner_that_disagrees_with_the_interpreter_is_not_saved(db, launches, monkeypatch):
    kernel = tuned(db, trials=4)
    original = matmul.run
    bad: list[str] = []

    def wrong_when_interpreted(grid_, *args, **kw):  # as if the compiled kernel were wrong for one config
        run = original(grid_, *args, **kw)
        if kw.get("interpret") and not bad:
            bad.append(Config.from_dict({k: kw[k] for k in ("BM", "BN", "BK", "num_stages")}).ident())
            kw["c_ptr"][0, 0] += 1
        return run

    monkeypatch.setattr(matmul, "run", wrong_when_interpreted)
    launch(kernel)
    ranked = sorted(kernel.last.evaluated, key=lambda e: e[1])
    assert bad == [ranked[0][0].ident()] and kernel.last.best == ranked[1][0]
    assert Config.from_dict(open_store(db).best(kernel.last.key).config) == ranked[1][0]


def test_tuning_off_uses_the_database_or_the_cost_model_without_simulating(db, launches, monkeypatch):
    monkeypatch.setenv("NPU_AUTOTUNE", "0")
    kernel = tuned(db)
    (a, b, c, *_), _ = launch(kernel)
    np.testing.assert_allclose(c, reference(a, b), rtol=1e-2, atol=1e-2)
    assert kernel.last.source == "heuristic" and kernel.last.cycles is None and not launches.timed
    assert open_store(db).best(kernel.last.key) is None
    monkeypatch.delenv("NPU_AUTOTUNE")
    launch(tuned(db, trials=3))
    monkeypatch.setenv("NPU_AUTOTUNE", "0")
    offline = tuned(db)
    launch(offline)
    assert offline.last.source == "database" and len(launches.timed) == 3


@pytest.mark.parametrize("value,enabled", [("0", False), ("false", False), ("OFF", False), ("no", False),
                                           ("1", True), ("", True), ("yes", True)])
def test_npu_autotune_off_spellings(monkeypatch, value, enabled):
    from autotune.tuner import tuning_enabled

    monkeypatch.setenv("NPU_AUTOTUNE", value)
    assert tuning_enabled() is enabled


def test_triton_surface_configs_pruning_and_perf_model(db, launches):
    configs = [Config({"BM": bm, "BN": 32, "BK": 32}, num_stages=2) for bm in (32, 64, 256)]
    kernel = npu.autotune(configs=configs, key=["M"], db=db,
                          prune_configs_by={"early_config_prune": lambda cs, named, **kw: cs[:2]})(matmul)
    launch(kernel)
    assert sorted(launches.timed) == sorted(c.ident() for c in configs[:2])  # configs= defaults to all
    perf = npu.autotune(space=SPACE, key=["M"], db=db, trials="all", prune_configs_by={
        "perf_model": lambda **kw: kw["BM"] * 1000 + kw["BK"], "top_k": 3})(matmul)
    launches.timed.clear()
    launch(perf, shape=(64, 64, 64))
    top3 = [Config({"BM": 32, "BN": bn, "BK": 32}, num_stages=s).ident() for bn, s in ((32, 1), (32, 2), (64, 1))]
    assert sorted(launches.timed) == sorted(top3)  # perf_model's three best (ties in the space's order)


def test_mistakes_are_clear_errors(db):
    with pytest.raises(npu.NpuError, match="exactly one of configs"):
        npu.autotune(key=["M"])(matmul)
    with pytest.raises(npu.NpuError, match=r"'Q' not an argument of the kernel \(arguments: a_ptr, b_ptr"):
        npu.autotune(space=SPACE, key=["Q"])(matmul)
    with pytest.raises(npu.NpuError, match="must decorate an @npu.jit kernel"):
        npu.autotune(space=SPACE)(lambda x: x)
    with pytest.raises(npu.NpuError, match="trials must be a positive int or 'all', got 0"):
        npu.autotune(space=SPACE, trials=0)(matmul)
    with pytest.raises(npu.NpuError, match="BM chosen by the autotuner; do not pass them"):
        launch(tuned(db), BM=32)
    with pytest.raises(npu.NpuError, match="prune_configs_by takes early_config_prune, perf_model and top_k"):
        npu.autotune(space=SPACE, prune_configs_by={"topk": 2})(matmul)
    with pytest.raises(npu.NpuError, match="the constraint rejects every combination"):
        npu.autotune(space=SPACE, constraint=lambda c: False)(matmul)
    with pytest.raises(npu.NpuError, match=r"configs name 'BLOCK_M', not a parameter of the kernel \(parameters: "
                                           r"a_ptr"):
        npu.autotune(configs=[Config({"BLOCK_M": 32, "BN": 32, "BK": 32})], key=["M"])(matmul)
    with pytest.raises(npu.NpuError, match="key names 'BM', which the autotuner chooses; key on the launch's "
                                           "own arguments"):
        npu.autotune(space=SPACE, key=["M", "BM"])(matmul)


def test_the_best_of_the_nearest_tuned_key_is_the_first_exploration(db, launches):
    kernel = tuned(db, trials=2, space={**SPACE, "BM": [32, 64]})
    launch(kernel, shape=(64, 32, 64))
    nearest_best = kernel.last.best
    other = tuned(db, trials=18, verify=False)
    launch(other)
    evaluated = [c for c, _ in other.last.evaluated]
    assert nearest_best in evaluated
    if nearest_best not in evaluated[:17]:  # the model's first 16 and one more, then the first exploration
        assert evaluated[17] == nearest_best


def test_npulang_reexports_the_decorator_lazily():
    import subprocess
    import sys

    import autotune

    assert npu.autotune is autotune.autotune and npu.Config is autotune.Config
    code = "import sys, npulang; assert 'autotune' not in sys.modules and 'optuna' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
    with pytest.raises(AttributeError, match="no attribute 'autotuner'"):
        npu.autotuner  # noqa: B018


def test_launch_options_pass_through_an_autotuned_launch(db, launches):
    """`interpret=True` chooses without simulating (as NPU_INTERPRET=1 does) and runs interpreted; the other
    launch options reach the user's launch. They were refused as 'unexpected keyword argument'."""
    kernel = tuned(db, trials=2)
    (a, b, c, *_), run = launch(kernel, interpret=True)
    assert run.cycles is None and kernel.last.source == "heuristic" and launches.timed == []
    np.testing.assert_allclose(c, reference(a, b), rtol=1e-2, atol=1e-2)
    (a, b, c, *_), run = launch(kernel, l2="cold", trace=True, persistent=False)
    assert kernel.last.source == "tuned" and run.cycles is not None and not run.persistent
    np.testing.assert_allclose(c, reference(a, b), rtol=1e-2, atol=1e-2)


def test_perf_model_sees_arguments_passed_by_keyword_once(db):
    seen = []
    perf = npu.autotune(space=SPACE, key=["M"], db=db, trials=1, verify=False, prune_configs_by={
        "perf_model": lambda **kw: seen.append(kw["K"]) or kw["BM"]})(matmul)
    a, b, c, m, n, k = gemm(*SHAPE)
    perf[grid(m, n)](a, b, c, m, n, K=k)  # K both a named argument and a launch keyword: once in perf_model
    assert seen and set(seen) == {k}

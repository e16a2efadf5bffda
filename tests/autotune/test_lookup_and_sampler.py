"""`Autotuner.lookup` (the record or nothing, never a simulation) and the `sampler=` choice of strategy."""

from __future__ import annotations

import pytest

import npulang as npu
from autotune import Autotuner
from tests.autotune.kernels import SPACE, gemm, grid, matmul

SHAPE = (96, 64, 160)


def tuned(db: str, **kw) -> Autotuner:
    return npu.autotune(space=SPACE, key=["M", "N", "K"], db=db, **kw)(matmul)


def test_lookup_answers_from_the_database_and_never_launches(db, launches):
    assert tuned(db).lookup(*gemm(*SHAPE)) is None
    assert launches.all == []  # no record: None, nothing compiled into a launch or simulated
    kernel = tuned(db, trials=3)
    kernel[grid(*SHAPE[:2])](*gemm(*SHAPE))
    best = kernel.last.best
    count = len(launches.all)
    fresh = tuned(db, trials=3)
    assert fresh.lookup(*gemm(*SHAPE)) == best
    assert fresh.lookup(*gemm(64, 64, 64)) is None  # another key
    assert len(launches.all) == count


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_the_baseline_samplers_evaluate_distinct_configs_within_the_budget(db, launches, sampler):
    kernel = tuned(db, trials=4, sampler=sampler, verify=False)
    kernel[grid(*SHAPE[:2])](*gemm(*SHAPE))
    assert len(launches.timed) == 4 == len(set(launches.timed))
    assert kernel.last.cycles == min(c for _, c in kernel.last.evaluated)


def test_an_unknown_sampler_is_refused():
    with pytest.raises(npu.NpuError, match="sampler must be 'auto', 'tpe' or 'random', got 'grid'"):
        tuned("sqlite://", sampler="grid")

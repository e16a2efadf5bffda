"""Operators take the tuned config for their key, else the nearest tuned shape's, else their rule; a library
call never tunes; a bad database is a clear error and stays untouched."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

import kernel_lib as kl
from autotune import Config
from kernel_lib.gemm import GEMM, GemmCall
from tuning_db import TuningDBError


def gemm_problem(m: int, n: int, k: int):
    a, b = np.zeros((m, k), np.float16), np.zeros((k, n), np.float16)
    return GemmCall(a, b, np.zeros((m, n), np.float16), m, n, k).problem()


@pytest.fixture
def launches(launches_of) -> list[dict]:
    """The keyword arguments of every launch of the gemm kernel."""
    return launches_of(GEMM.kernel)


def config_of(kw: dict) -> Config:
    return Config.from_dict({k: kw[k] for k in ("BM", "BN", "BK", "GROUP_M", "num_stages")})


def test_without_a_record_the_rule_decides_and_nothing_is_simulated_to_choose(launches):
    problem = gemm_problem(64, 96, 128)
    assert [source for _, source in problem.candidates()] == ["heuristic"] * len(problem.heuristic)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((64, 128)).astype(np.float16), rng.standard_normal((128, 96)).astype(np.float16)
    y = kl.gemm(a, b)
    np.testing.assert_allclose(y.astype(np.float32), a.astype(np.float32) @ b.astype(np.float32), rtol=2e-2, atol=2e-2)
    assert len(launches) == 1 and not launches[0].get("timing_only")  # one functional launch: the call itself
    assert config_of(launches[0]) == Config.from_dict(problem.heuristic[0])


def test_a_tuned_config_is_used_for_its_key_and_the_nearest_shape_for_others(tuning_db, launches):
    report = gemm_problem(64, 96, 128).tune(tuning_db, trials=3, verify=False)
    assert report.source == "tuned" and len(report.evaluated) == 3
    tuned = report.best
    launches.clear()
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((64, 128)).astype(np.float16), rng.standard_normal((128, 96)).astype(np.float16)
    y = kl.gemm(a, b)
    np.testing.assert_allclose(y.astype(np.float32), a.astype(np.float32) @ b.astype(np.float32), rtol=2e-2, atol=2e-2)
    assert len(launches) == 1 and config_of(launches[0]) == tuned and not launches[0].get("timing_only")

    other = gemm_problem(80, 96, 128)  # an untuned shape: the nearest tuned one's config first, then the rule
    candidates = other.candidates()
    assert candidates[0] == (tuned.all_kwargs(), "nearest")
    assert {source for _, source in candidates[1:]} == {"heuristic"}
    launches.clear()
    kl.gemm(np.ones((80, 128), np.float16), np.ones((128, 96), np.float16))
    assert len(launches) == 1 and config_of(launches[0]) == tuned


def test_a_tuned_softmax_config_is_used(tuning_db):
    from kernel_lib.softmax import problems

    x = np.zeros((48, 200), np.float32)
    rows, _ = problems(x, np.empty_like(x), False)
    report = rows.tune(tuning_db, trials=2, verify=False)
    assert rows.candidates()[0] == (report.best.all_kwargs(), "tuned")
    data = np.random.default_rng(2).standard_normal((48, 200)).astype(np.float32)
    e = np.exp(data - data.max(axis=1, keepdims=True))
    np.testing.assert_allclose(kl.softmax(data), e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("content", ["garbage", "foreign"])
def test_a_corrupt_or_foreign_database_is_a_clear_error_and_left_untouched(tmp_path, monkeypatch, content):
    path = tmp_path / f"{content}.db"
    if content == "garbage":
        path.write_bytes(b"this is not a database\n" * 100)
    else:
        with sqlite3.connect(path) as conn:
            conn.execute("create table playlists (id integer primary key, name text)")
            conn.execute("insert into playlists (name) values ('mine')")
    before = path.read_bytes()
    monkeypatch.setenv("NPU_TUNING_DB", str(path))
    with pytest.raises(TuningDBError) as info:
        kl.gemm(np.ones((16, 16), np.float16), np.ones((16, 16), np.float16))
    assert str(path) in str(info.value)
    assert path.read_bytes() == before

"""Fixtures: a fresh SQLite tuning database per test, and a record of the launches a test caused."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from autotune import Config
from tests.autotune.kernels import matmul


@pytest.fixture
def db(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'tuning.db'}"


@dataclass
class Launches:
    """The configs of `matmul`'s launches: timing-only ones (tuning evaluations), interpreted ones (the
    winner's verification) and all of them."""

    timed: list[str] = field(default_factory=list)
    interpreted: list[str] = field(default_factory=list)
    all: list[str] = field(default_factory=list)


@pytest.fixture
def launches(monkeypatch) -> Launches:
    seen = Launches()
    original = matmul.run

    def run(grid, *args, **kw):
        config = Config.from_dict({k: kw[k] for k in ("BM", "BN", "BK", "num_stages") if k in kw}).ident()
        seen.all.append(config)
        if kw.get("timing_only"):
            seen.timed.append(config)
        if kw.get("interpret"):
            seen.interpreted.append(config)
        return original(grid, *args, **kw)

    monkeypatch.setattr(matmul, "run", run)
    return seen

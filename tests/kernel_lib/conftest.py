"""Every kernel_lib test reads its own, empty tuning database (never the user's cache)."""

from __future__ import annotations

import pytest

from tuning_db.connection import ENV


@pytest.fixture(autouse=True)
def tuning_db(tmp_path, monkeypatch) -> str:
    path = str(tmp_path / "tuning.db")
    monkeypatch.setenv(ENV, path)
    return path


@pytest.fixture
def launches_of(monkeypatch):
    """`launches_of(kernel)`: a list that gets the keyword arguments of every launch of `kernel` from then on."""
    def watch(kernel) -> list[dict]:
        seen: list[dict] = []
        original = kernel.run

        def run(grid, *args, **kw):
            seen.append(kw)
            return original(grid, *args, **kw)

        monkeypatch.setattr(kernel, "run", run)
        return seen
    return watch

"""Every kernel_lib test reads its own, empty tuning database (never the user's cache)."""

from __future__ import annotations

import pytest

from tuning_db.connection import ENV


@pytest.fixture(autouse=True)
def tuning_db(tmp_path, monkeypatch) -> str:
    path = str(tmp_path / "tuning.db")
    monkeypatch.setenv(ENV, path)
    return path

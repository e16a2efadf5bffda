"""The suite never reads or writes the developer's own tuning database or caches.

Tests that tune without naming a store would otherwise add records to ~/.cache/npulang/tuning.db, and a
developer's `NPU_TUNING_DB` would leak their tuned configs into tests of the rule-based fallbacks.
"""

from __future__ import annotations

import os
import shutil
import tempfile


def pytest_configure(config) -> None:
    """Point the user cache (and subprocesses') at a directory of this run's own."""
    os.environ.pop("NPU_TUNING_DB", None)
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="npulang-tests-cache-")


def pytest_unconfigure(config) -> None:
    """Remove this run's cache directory."""
    cache = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.basename(cache).startswith("npulang-tests-cache-"):
        shutil.rmtree(cache, ignore_errors=True)

"""The README's tuning-database example runs as written (against a file of the test's own)."""

from __future__ import annotations

import re
from pathlib import Path

from tuning_db import TuningKey, open_store

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_example_stores_and_reads_back(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("NPU_TUNING_DB", str(tmp_path / "t.db"))
    section = README.read_text().split("## The tuning database", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), scope)
    key = scope["key"]
    assert isinstance(key, TuningKey)
    with open_store() as store:
        assert [t.cycles for t in store.trials(key)] == [48_211]

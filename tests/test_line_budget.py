"""No Python source file over 800 lines: a file that grows past it holds more than one thing."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUDGET = 800
SKIP = {".venv", ".bench-venvs", "build", ".git"}  # .bench-venvs: the benchmarks' peer venvs (vs_triton, SCALE-Sim)


def long_files(root: Path) -> list[str]:
    """`path: lines` for every .py file under `root` (virtualenvs and builds left out) over the budget."""
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if SKIP.intersection(rel.parts) or any(p.endswith(".egg-info") for p in rel.parts):
            continue
        lines = len(path.read_text().splitlines())
        if lines > BUDGET:
            out.append(f"{rel.as_posix()}: {lines} lines")
    return out


def test_every_source_file_is_within_the_line_budget() -> None:
    assert not long_files(ROOT), f"over {BUDGET} lines:\n" + "\n".join(long_files(ROOT))


def test_the_budget_check_counts_lines(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "big.py").write_text("x = 1\n" * (BUDGET + 1))
    (tmp_path / "pkg" / "ok.py").write_text("x = 1\n" * BUDGET)
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "dep.py").write_text("x = 1\n" * (BUDGET + 1))
    (tmp_path / ".bench-venvs" / "triton").mkdir(parents=True)
    (tmp_path / ".bench-venvs" / "triton" / "dep.py").write_text("x = 1\n" * (BUDGET + 1))
    assert long_files(tmp_path) == [f"pkg/big.py: {BUDGET + 1} lines"]

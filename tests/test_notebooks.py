"""Every notebook runs top to bottom in a real Jupyter kernel (nbclient), so the notebooks stay true.

Each runs in a fresh temporary working directory (whatever it writes lands there) with a per-cell timeout;
a cell that raises fails the test with the cell's traceback. The kernel is `python3`, which jupyter_client
starts with the interpreter running the tests (`sys.executable`: the project's `.venv` under `make test`).
Committed notebooks carry no outputs, so a diff shows only what was written.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 120  # seconds for one cell; each notebook is meant to run in well under a minute


def execute(nb: nbformat.NotebookNode, cwd: Path) -> nbformat.NotebookNode:
    """Run every cell of `nb` in a new python3 kernel started in `cwd`; raises CellExecutionError on an error."""
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    return client.execute()


def test_there_are_notebooks():
    assert [p.name for p in NOTEBOOKS][:3] == ["01_first_kernel.ipynb", "02_tuning_a_gemm.ipynb",
                                               "03_resnet_bottleneck.ipynb"]


def test_the_kernel_is_this_interpreter(tmp_path: Path):
    """The notebooks see the project's venv (its npulang, its packages), not some other Jupyter python."""
    cell = nbformat.v4.new_code_cell("import os, sys; print(sys.executable, os.getcwd())")
    nb = nbformat.v4.new_notebook(cells=[cell])
    out = execute(nb, tmp_path).cells[0].outputs[0]["text"].split()
    assert Path(out[0]).resolve() == Path(sys.executable).resolve() and Path(out[1]).resolve() == tmp_path.resolve()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code"), \
        f"{path.name}: clear the outputs before committing (Jupyter: Kernel > Restart & Clear Output)"
    monkeypatch.setenv("NPU_TUNING_DB", str(tmp_path / "tuning.db"))  # the kernel inherits it: not the user's store
    executed = execute(nb, tmp_path)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors  # nbclient raises on the first error; this guards cells marked raises-exception

"""The README's first-kernel example runs as written, so the quickstart stays true."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_first_kernel_example_runs(tmp_path, monkeypatch):
    section = README.read_text().split("## Your first kernel", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    script = tmp_path / "first_kernel.py"  # a real file, so @npu.jit can read the kernel's source
    script.write_text(code)
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(script), run_name="__main__")  # the example asserts its own result

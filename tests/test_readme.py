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


def test_assembly_example_runs_on_the_simulator():
    import numpy as np

    from isa.asm import assemble
    from simulator import Device

    text = re.search(r'our "PTX":\n\n```\n(.*?)```', README.read_text(), re.S).group(1)
    x = np.random.default_rng(0).standard_normal(1024).astype(np.float32)
    out = np.zeros_like(x)
    assert Device().run(assemble(text), grid=(1,), args=[x, out]).cycles > 0
    np.testing.assert_array_equal(out, np.maximum(x, 0))


def test_testing_example_is_a_passing_pytest_file(tmp_path):
    """The property test a newcomer copies runs in pytest as written (the plugin loads from its entry point)."""
    import subprocess
    import sys

    section = README.read_text().split("## Testing your own kernels", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    (tmp_path / "test_my_kernel.py").write_text(code)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_kernel.py"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "1 passed" in result.stdout, result.stdout + result.stderr

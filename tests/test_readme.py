"""Every code example in README.md is executed, so the README stays true.

- Every ```python block runs standalone, as written, in a fresh temporary directory (`run_name="__main__"`,
  a tuning database of its own there); blocks assert their own results. Some blocks' printed output is
  checked too (`EXPECTED_OUTPUT`).
- Every command line in the other blocks that starts with `npu-*`, `make` or `python benchmarks/` must be
  covered by `COMMANDS`: run here on tiny inputs (the same program, in this process, through its
  console-script entry point), run as written by another test, or listed with the reason it is not run. A
  new command in the README fails `test_every_command_is_covered` until it is added there.
- The newcomer path ("From a fresh clone to a tuned conv2d") runs as a shell script.
"""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import npulang as npu

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BIN = Path(sys.executable).parent  # the venv's console scripts (npu-tune, npu-prof, npu-db)
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)
COMMAND = re.compile(r"^(?:[A-Z_]+=\S+ )*(npu-[a-z]+|make|python benchmarks/)")
NEWCOMER = "## From a fresh clone to a tuned conv2d"

# Printed output an example must show (beyond the asserts inside it): a line of the block -> what it prints.
EXPECTED_OUTPUT = {"print(prof.summary())   # one row per launch": ["verdict: HBM-bound", "\nslowest: add[256, 1, 1]"]}


@dataclass(frozen=True)
class Block:
    """One fenced block of README.md: its language tag, its text, the line it starts on and its section."""

    lang: str
    text: str
    line: int
    section: str


def blocks() -> list[Block]:
    """The README's fenced blocks in order, each with the `## ` heading it sits under."""
    text = README.read_text()
    found = []
    for m in FENCE.finditer(text):
        head = text[: m.start()]
        headings = re.findall(r"^## .*$", head, re.M)
        found.append(Block(m.group(1), m.group(2), head.count("\n") + 1, headings[-1] if headings else ""))
    return found


PYTHON = [b for b in blocks() if b.lang == "python"]


@pytest.mark.parametrize("block", PYTHON, ids=lambda b: f"line{b.line}")
def test_python_block_runs(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]):
    script = tmp_path / "example.py"  # a real file, so @npu.jit can read the kernel's source
    script.write_text(block.text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NPU_TUNING_DB", str(tmp_path / "tuning.db"))  # never the user's own database
    machine = npu.get_machine()
    try:
        runpy.run_path(str(script), run_name="__main__")  # the example asserts its own result
    finally:
        npu.set_machine(machine)
    out = capsys.readouterr().out
    for expected in [e for line, outputs in EXPECTED_OUTPUT.items() if line in block.text for e in outputs]:
        assert expected in out, f"README line {block.line}: {expected!r} not in the output:\n{out}"


def test_python_blocks_are_found():
    sections = {b.section for b in PYTHON}
    assert {"## Your first kernel", "## Profiling", "## Autotuning", "## The tuning database"} <= sections
    assert all(sum(line in b.text for b in PYTHON) == 1 for line in EXPECTED_OUTPUT)


def test_testing_example_is_a_passing_pytest_file(tmp_path):
    """The property test a newcomer copies runs in pytest as written (the plugin loads from its entry point)."""
    (code,) = [b.text for b in PYTHON if b.section == "## Testing your own kernels"]
    (tmp_path / "test_my_kernel.py").write_text(code)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_kernel.py"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "1 passed" in result.stdout, result.stdout + result.stderr


# -- command lines -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """Run `command` (the README's command on tiny inputs) in a temp dir; its output must contain `expect`."""

    command: str
    expect: str


@dataclass(frozen=True)
class Elsewhere:
    """A README command run as written by another test (`test`)."""

    test: str


@dataclass(frozen=True)
class NotRun:
    """A README command this test does not run, and why."""

    reason: str


BENCH = "a benchmark: minutes of simulation (make bench regenerates the README tables from them)"
# README command (a regex matched at the start of the line) -> how it is covered
COMMANDS: dict[str, Run | Elsewhere | NotRun] = {
    r"make demo": NotRun("builds .venv and runs examples/demo.py (tunes and simulates for a minute); make test "
                         "runs in the venv it builds"),
    r"make test": NotRun("this is make test"),
    r"make bench": NotRun("runs every benchmark (tens of minutes); tests/test_readme_tables.py checks what it "
                          "rewrites"),
    r"python benchmarks/readme_tables\.py --check": Elsewhere("tests/test_readme_tables.py"),
    r"python benchmarks/": NotRun(BENCH),
    r"npu-prof path/to/file\.py:function": Run("npu-prof prof_target.py:launch 4096 --trace t.json --plot p.svg",
                                               "slowest: add["),
    r"npu-prof gemm --shape": Run("npu-prof gemm --shape 64x64x64 --dtype fp16", "verdict:"),
    r"npu-prof conv2d --shape": Run("npu-prof conv2d --shape 1,16,8,8,16,3,3,1,1 --dtype fp16", "verdict:"),
    r"npu-prof softmax\|layer_norm\|rms_norm": Run("npu-prof rms_norm --shape 64x256", "verdict:"),
    r"npu-tune gemm --shapes": Run("npu-tune gemm --shapes 64x64x64 --trials 2 --db tune.db --json", '"op": "gemm"'),
    r"npu-tune gemm --workload bert-base": NotRun("tunes six BERT-base GEMMs: minutes"),
    r"npu-tune conv2d --shapes": Run("npu-tune conv2d --shapes 1,16,8,8,16,3,3,1,1 --trials 2 --db tune.db",
                                     "| conv2d | 1,16,8,8,16,3,3,1,1 | fp16 |"),
    r"npu-tune conv2d --workload resnet50": NotRun("tunes ResNet-50's convolutions: an hour"),
    r"npu-tune softmax --shapes": Run("npu-tune softmax --shapes 64x256 --trials 2 --db tune.db", "| softmax |"),
    r"npu-tune batch_norm --shapes": Run("npu-tune batch_norm --shapes 1x16x8x8 --trials 2 --db tune.db",
                                        "| batch_norm |"),
    r"npu-tune max_pool2d --shapes": Run("npu-tune max_pool2d --shapes 1,8,8,16,3,3,2,1:nhwc --trials 2 --db tune.db",
                                        "| max_pool2d |"),
    r"npu-tune add --shapes": Run("npu-tune add --shapes 64x64:64 --trials 2 --db tune.db", "| add |"),
    r"npu-prof attention\|attention_causal": Run("npu-prof attention_causal --shape 1x2x64x32", "verdict:"),
    r"npu-tune attention --shapes": Run("npu-tune attention --shapes 1x2x64x32 --trials 2 --db tune.db",
                                        "| attention | 1x2x64x32 | fp16 |"),
    r"npu-codesign --op gemm": Run("npu-codesign --op gemm --shapes 64x64x64 --vary ub=128KiB --trials 2 "
                                   "--db tune.db", "total"),
    r"npu-codesign --workload": NotRun("re-tunes a whole network on each variant: minutes (bert-base) to an hour"),
    r"npu-codesign --machine davinci --vary": NotRun("the issue's ResNet-50 sweep: an hour of simulation"),
    r"npu-db list": Run("npu-db list --db tune.db", "kernel_lib."),
    r"npu-db show": Run("npu-db show kernel_lib.softmax._softmax_rows --db tune.db", "best"),
    r"npu-db export": Run("npu-db export out.json --db tune.db", ""),
    r"npu-db import": Run("npu-db import out.json --db copy.db", ""),
    r"npu-db prune": Run("npu-db prune --stale-claims --db tune.db", "deleted"),
    r"npu-tune conv2d --shapes \S+ --trials": Elsewhere("test_newcomer_path"),
    r"npu-prof conv2d --shape \S+ --plot": Elsewhere("test_newcomer_path"),
}
PROF_TARGET = '''import numpy as np
import npulang as npu

@npu.jit
def add(x_ptr, out_ptr, BLOCK: npu.constexpr):
    offs = npu.program_id(0) * BLOCK + npu.arange(0, BLOCK)
    npu.store(out_ptr + offs, npu.load(x_ptr + offs) + 1.0)

def launch(n):
    x = np.ones(n, np.float32)
    add[(n // 1024,)](x, np.empty_like(x), BLOCK=1024)
'''


def command_lines() -> list[tuple[int, str]]:
    """(README line, command) for every command in a non-python block, `# comments` and `$ ` prompts dropped."""
    found = []
    for block in blocks():
        if block.lang == "python":
            continue
        for i, line in enumerate(block.text.splitlines()):
            line = line.split(" #")[0].strip().removeprefix("$ ")
            if COMMAND.match(line):
                found.append((block.line + 1 + i, line))
    return found


def coverage(line: str) -> list[str]:
    """The COMMANDS patterns a README command line matches (after any VAR=value prefixes)."""
    bare = re.sub(r"^(?:[A-Z_]+=\S+ )+", "", line)
    return [p for p in COMMANDS if re.match(p, bare)]


def test_every_command_is_covered():
    lines = command_lines()
    assert len(lines) > 15
    uncovered = [f"README line {n}: {line}" for n, line in lines if not coverage(line)]
    assert not uncovered, "run these in COMMANDS (tiny inputs) or list them as NotRun with the reason:\n" + \
        "\n".join(uncovered)
    used = {p for _, line in lines for p in coverage(line)}
    stale = {p for p, c in COMMANDS.items() if not isinstance(c, NotRun)} - used
    assert not stale, f"COMMANDS entries run here that match no README line: {stale}"


def shell(script: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """Run `script` with bash in `cwd`, the venv's console scripts first on PATH, no user tuning database."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "NPU_TUNING_DB": str(cwd / "user.db"),
           "MPLBACKEND": "Agg"}
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def console_script(command: str) -> tuple[int, str]:
    """Run an installed console script (`npu-tune ...`) in this process through its entry point, as its
    wrapper script would: (exit status, stdout). In-process, so the dozen commands share one import."""
    import contextlib
    import io
    import shlex
    from importlib.metadata import entry_points

    name, *argv = shlex.split(command)
    (script,) = entry_points(group="console_scripts", name=name)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            status = script.load()(argv)
        except SystemExit as exc:
            status = exc.code
    return status or 0, out.getvalue()


def test_commands_run_on_tiny_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """In COMMANDS' order: each finds what the ones before wrote (npu-db reads npu-tune's store)."""
    (tmp_path / "prof_target.py").write_text(PROF_TARGET)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NPU_TUNING_DB", str(tmp_path / "user.db"))
    machine = npu.get_machine()
    for pattern, run in COMMANDS.items():
        if not isinstance(run, Run):
            continue
        assert run.command.split()[0] == pattern.split()[0], f"{run.command!r} is not the README's {pattern!r}"
        status, out = console_script(run.command)
        npu.set_machine(machine)
        assert status == 0 and run.expect in out, f"$ {run.command}\nexit {status}\n{out}"
    assert (tmp_path / "p.svg").read_text().lstrip().startswith("<?xml") and (tmp_path / "t.json").stat().st_size


def test_newcomer_path(tmp_path: Path):
    """From a fresh clone to a tuned conv2d: the section's commands, as written, after `make demo` built the venv.
    npu-prof must profile the very config npu-tune stored (its cycles and grid), and say what limits it."""
    (script,) = [b.text for b in blocks() if b.section == NEWCOMER and b.lang in ("sh", "bash")]
    lines = [line for line in script.splitlines() if not re.match(r"(make demo|source \.venv)", line)]
    result = shell("\n".join(lines), tmp_path)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    tuned = re.search(r"^\| conv2d \| (\S+) \| fp16 \| BM=(\d+) BN=(\d+) BK=\d+ \| ([\d,]+) \|", out, re.M)
    assert tuned, out
    n, c, h, w, k, r, s, stride, pad = map(int, tuned.group(1).split(","))
    rows = n * ((h + 2 * pad - r) // stride + 1) * ((w + 2 * pad - s) // stride + 1)
    grid = [-(-rows // int(tuned.group(2))), -(-k // int(tuned.group(3))), 1]
    assert f"_conv2d_kernel{grid}: {tuned.group(4)} cycles" in out, out  # the tuned config, not the rule
    assert "\n  verdict: cube-bound (" in out and "\nslowest: _conv2d_kernel" in out, out  # as the README says
    assert (tmp_path / "conv.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

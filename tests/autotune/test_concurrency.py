"""Four tuning processes into one SQLite file (three shapes, two processes on the same one), one killed
with SIGKILL in the middle of its search and run again: every shape ends with a best record, every
finished evaluation is stored, and no config of a shape is evaluated twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from autotune import Autotuner, Config
from tests.autotune.kernels import SPACE, gemm, matmul
from tuning_db import open_store

ROOT = Path(__file__).resolve().parents[2]

# One tuning process: tunes `shape` with every config of the space, printing each finished evaluation
# (after it is stored) as one JSON line. With `hold` >= 0 it stops in its evaluation number `hold`, holding
# the claim, and says so: the test kills it there.
WORKER = """
import json, sys, time
import npulang as npu
from autotune import Autotuner
from tests.autotune.kernels import SPACE, gemm, grid, matmul

m, n, k = map(int, sys.argv[2].split("x"))
hold = int(sys.argv[3])
finished = []

class Logged(Autotuner):
    def _evaluate(self, grid_, args, kwargs, key, config):
        if len(finished) == hold:
            print("HOLDING " + config.ident(), flush=True)
            time.sleep(600)
        cycles = super()._evaluate(grid_, args, kwargs, key, config)
        finished.append(config)
        print(json.dumps({"config": config.ident(), "cycles": cycles}), flush=True)
        return cycles

kernel = Logged(matmul, space=SPACE, key=["M", "N", "K"], db=sys.argv[1], trials="all", seed=int(sys.argv[4]))
kernel[grid(m, n)](*gemm(m, n, k))
print("DONE", flush=True)
"""

SHAPES = ["64x64x96", "96x64x64", "64x96x64"]


def _start(db: str, shape: str, seed: int, hold: int = -1) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", WORKER, db, shape, str(hold), str(seed)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _read_until(process: subprocess.Popen, prefix: str) -> list[str]:
    """The configs of the evaluations a worker prints, up to and including its first line starting with
    `prefix` (for "HOLDING ", the held config is the last item)."""
    seen: list[str] = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"the worker ended early: {process.stderr.read()}")
        if line.startswith("{"):
            seen.append(json.loads(line)["config"])
        elif line.startswith("HOLDING "):
            seen.append(line.split(" ", 1)[1].strip())
        if line.startswith(prefix):
            return seen
    raise AssertionError("the worker did not get there in 240 s")


def _evaluations(out: str) -> list[str]:
    return [json.loads(line)["config"] for line in out.splitlines() if line.startswith("{")]


def test_four_processes_one_killed_and_rerun_lose_nothing_and_repeat_nothing(tmp_path):
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    victim = _start(db, SHAPES[0], seed=1, hold=2)  # stops in its third evaluation, holding the claim
    others = [_start(db, SHAPES[1], seed=0), _start(db, SHAPES[2], seed=0)]
    seen = _read_until(victim, "HOLDING ")
    held = seen.pop()
    twin = _start(db, SHAPES[0], seed=2)  # the same shape while the victim lives and holds its claim
    twin_seen = _read_until(twin, "{")
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert len(seen) == 2 and held not in seen
    outs = [p.communicate(timeout=300) for p in [twin, *others]]
    for p, (out, err) in zip([twin, *others], outs):
        assert p.returncode == 0 and out.rstrip().endswith("DONE"), err
    rerun = _start(db, SHAPES[0], seed=3)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0 and out.rstrip().endswith("DONE"), err

    store = open_store(db)
    per_shape = {SHAPES[0]: seen + twin_seen + _evaluations(outs[0][0]) + _evaluations(out),
                 SHAPES[1]: _evaluations(outs[1][0]), SHAPES[2]: _evaluations(outs[2][0])}
    for shape, evaluated in per_shape.items():
        m, n, k = map(int, shape.split("x"))
        key = Autotuner(matmul, space=SPACE, key=["M", "N", "K"], db=db).tuning_key(gemm(m, n, k), {})
        trials = store.trials(key)
        done = {Config.from_dict(t.config).ident(): t.cycles for t in trials if t.state == "done"}
        if shape == SHAPES[0]:
            done_first = done
        assert len(evaluated) == len(set(evaluated)), f"{shape}: a config was evaluated twice"
        assert set(evaluated) == set(done), f"{shape}: an evaluation was lost (or one stored was not made)"
        assert {t.state for t in trials} <= {"done", "failed"}  # the victim's claim was taken over and finished
        assert len(trials) == 24  # every config of the space: done, or pruned by compiling only
        best = store.best(key)
        assert best is not None and best.cycles == min(done.values())
    # the dead process's claim was taken over (by the twin once the victim was gone, or by the re-run)
    assert held in done_first and held in per_shape[SHAPES[0]]

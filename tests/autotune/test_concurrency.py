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

from autotune import Config
from tests.autotune.kernels import SPACE, gemm
from tuning_db import open_store

ROOT = Path(__file__).resolve().parents[2]

# One tuning process: tunes `shape` with every config of the space, printing each finished evaluation
# (after it is stored) as one JSON line, and slowing each one down so the test can kill it in the middle.
WORKER = """
import json, sys, time
import npulang as npu
from autotune import Autotuner
from tests.autotune.kernels import SPACE, gemm, grid, matmul

m, n, k = map(int, sys.argv[2].split("x"))
pause = float(sys.argv[3])

class Logged(Autotuner):
    def _evaluate(self, grid_, args, kwargs, key, config):
        cycles = super()._evaluate(grid_, args, kwargs, key, config)
        print(json.dumps({"config": config.ident(), "cycles": cycles}), flush=True)
        time.sleep(pause)
        return cycles

kernel = Logged(matmul, space=SPACE, key=["M", "N", "K"], db=sys.argv[1], trials="all", seed=int(sys.argv[4]))
kernel[grid(m, n)](*gemm(m, n, k))
print("DONE", flush=True)
"""

SHAPES = ["64x64x96", "96x64x64", "64x96x64"]


def _start(db: str, shape: str, pause: float, seed: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", WORKER, db, shape, str(pause), str(seed)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _evaluations(out: str) -> list[str]:
    return [json.loads(line)["config"] for line in out.splitlines() if line.startswith("{")]


def test_four_processes_one_killed_and_rerun_lose_nothing_and_repeat_nothing(tmp_path):
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    victim = _start(db, SHAPES[0], 0.5, seed=1)  # slow: killed after its first stored evaluations
    others = [_start(db, SHAPES[0], 0.05, seed=2), _start(db, SHAPES[1], 0.0, seed=0),
              _start(db, SHAPES[2], 0.0, seed=0)]
    seen: list[str] = []
    deadline = time.monotonic() + 120
    while len(seen) < 2 and time.monotonic() < deadline:
        line = victim.stdout.readline()
        if line.startswith("{"):
            seen.append(json.loads(line)["config"])
    victim.send_signal(signal.SIGKILL)  # mid-run: it holds a claim and has evaluations stored
    victim.wait()
    assert len(seen) == 2, victim.stderr.read()
    outs = [p.communicate(timeout=300) for p in others]
    for p, (out, err) in zip(others, outs):
        assert p.returncode == 0 and out.rstrip().endswith("DONE"), err
    rerun = _start(db, SHAPES[0], 0.0, seed=3)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0 and out.rstrip().endswith("DONE"), err

    store = open_store(db)
    per_shape = {SHAPES[0]: seen + _evaluations(outs[0][0]) + _evaluations(out),
                 SHAPES[1]: _evaluations(outs[1][0]), SHAPES[2]: _evaluations(outs[2][0])}
    for shape, evaluated in per_shape.items():
        m, n, k = map(int, shape.split("x"))
        from tests.autotune.kernels import matmul
        from autotune import Autotuner
        key = Autotuner(matmul, space=SPACE, key=["M", "N", "K"], db=db).tuning_key(gemm(m, n, k), {})
        trials = store.trials(key)
        done = {Config.from_dict(t.config).ident(): t.cycles for t in trials if t.state == "done"}
        assert len(evaluated) == len(set(evaluated)), f"{shape}: a config was evaluated twice"
        assert set(evaluated) == set(done), f"{shape}: an evaluation was lost (or one stored was not made)"
        assert {t.state for t in trials} <= {"done", "failed"}  # the victim's claim was taken over and finished
        assert len(trials) == 24  # every config of the space: done, or pruned by compiling only
        best = store.best(key)
        assert best is not None and best.cycles == min(done.values())

"""Several processes on one SQLite file: nothing lost, nothing evaluated twice, a killed process's
claims taken over by the next run (the store-level half of issue 9's concurrency test)."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path

from db_worker import config_cycles, evaluations, finish, spawn, start_together

from tuning_db import TuningKey, open_store

CONFIGS = 48
KEY = TuningKey(kernel="kernels.matmul", source_hash="s0", key={"M": 512, "N": 512, "K": 512},
                dtypes=("float16", "float16", "float32"), machine="fp", compiler_version="c1")


def all_configs() -> set[str]:
    return {json.dumps({"BM": i // 8, "BN": i % 8}, sort_keys=True) for i in range(CONFIGS)}


def check_store(url: str, key: TuningKey = KEY) -> None:
    """Every config stored once, done, with its own cycles; the best record is the minimum."""
    with open_store(url) as store:
        trials = store.trials(key)
        assert sorted(json.dumps(dict(t.config), sort_keys=True) for t in trials) == sorted(all_configs())
        assert all(t.state == "done" and t.cycles == config_cycles(dict(t.config)) for t in trials)
        best = store.best(key)
        assert best is not None and best.cycles == min(t.cycles for t in trials) and best.trials == CONFIGS


def wait_for(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_four_processes_share_the_work_and_repeat_nothing(tmp_path: Path):
    url = str(tmp_path / "tuning.db")
    logs = [tmp_path / f"w{i}.log" for i in range(4)]
    workers = [spawn(url, log, seed, KEY, CONFIGS, go=tmp_path / "go") for seed, log in enumerate(logs)]
    start_together(workers, tmp_path / "go")  # (all four raced to create the new file)
    for w in workers:
        finish(w)
    started, finished = evaluations(logs)
    assert set(started) == all_configs() and set(started.values()) == {1}
    assert finished == started
    assert sum(1 for log in logs if log.exists() and log.read_text()) >= 2  # the work was shared
    check_store(url)
    with sqlite3.connect(tmp_path / "tuning.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_claims_of_a_killed_process_are_taken_over_on_the_rerun(tmp_path: Path):
    url = str(tmp_path / "tuning.db")
    holder = spawn(url, tmp_path / "holder.log", 1, KEY, CONFIGS, hang_after=5)
    assert holder.stdout.readline() == "holding\n"  # evaluated 5, holds the claim of a 6th
    holder.send_signal(signal.SIGKILL)  # not reaped yet: a zombie still has its pid
    wait_for(lambda: _is_zombie(holder.pid), "the killed worker to become a zombie")
    rerun = spawn(url, tmp_path / "rerun.log", 2, KEY, CONFIGS)
    finish(rerun)
    holder.wait()
    started, finished = evaluations([tmp_path / "holder.log", tmp_path / "rerun.log"])
    assert sum(started.values()) == CONFIGS == len(started) and finished == started
    check_store(url)


def test_a_process_killed_at_any_moment_loses_nothing(tmp_path: Path):
    url = str(tmp_path / "tuning.db")
    logs = [tmp_path / f"w{i}.log" for i in range(3)]
    victim, other = spawn(url, logs[0], 0, KEY, CONFIGS), spawn(url, logs[1], 1, KEY, CONFIGS)
    wait_for(lambda: logs[0].exists() and logs[0].read_text().count("done") >= 4, "the victim to record 4")
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    finish(other)
    finish(spawn(url, logs[2], 2, KEY, CONFIGS))  # the re-run
    started, finished = evaluations(logs)
    assert set(started) == all_configs() and set(finished.values()) == {1}
    # The one config the victim was busy with when killed: evaluated again (its result was never stored),
    # or stored but its "done" line never written. Every other config: once.
    repeated = {c for c, n in started.items() if n > 1}
    assert all(started[c] == 2 for c in repeated) and len(repeated | (all_configs() - set(finished))) <= 1
    check_store(url)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return False

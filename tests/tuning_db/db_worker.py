"""A tuning process in miniature, for the multi-process tests: claim each config, "evaluate" it, record it.

    python db_worker.py URL LOG SEED KEY_JSON N_CONFIGS [--hang-after N] [--go FILE]

Writes `start <config>` to LOG before an evaluation and `done <config>` after its record is stored
(each line flushed and synced, so a SIGKILL loses nothing written). With `--hang-after N` it stops after
claiming N configs, holding the claims, and prints "holding" so the test can SIGKILL it there. With
`--go FILE` it opens the store, prints "ready" and waits for FILE to exist, so that workers whose
interpreters start at different speeds begin tuning together (`start_together`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tuning_db import TuningKey, open_store

WORKER = Path(__file__).resolve()
ROOT = WORKER.parents[2]


def config_cycles(config: dict[str, int]) -> int:
    """The stand-in for a simulation: a deterministic cycle count per config."""
    return 1000 + 37 * config["BM"] + (config["BN"] * 13) % 101


def spawn(url: str, log: Path, seed: int, key: TuningKey, configs: int, hang_after: int | None = None,
          go: Path | None = None) -> subprocess.Popen[str]:
    """Start a worker process (its own interpreter, as a tuning process would be)."""
    cmd = [sys.executable, str(WORKER), url, str(log), str(seed), json.dumps(key.to_json()), str(configs)]
    if hang_after is not None:
        cmd += ["--hang-after", str(hang_after)]
    if go is not None:
        cmd += ["--go", str(go)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def start_together(processes: list[subprocess.Popen[str]], go: Path) -> None:
    """Let workers spawned with `go` begin once every one of them has its store open."""
    for process in processes:
        assert process.stdout.readline() == "ready\n", process.communicate()[1]
    go.touch()


def finish(process: subprocess.Popen[str], timeout: float = 120) -> None:
    """Wait for a worker; its stderr in the failure message if it did not exit cleanly."""
    _, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"worker exited {process.returncode}:\n{err}"


def evaluations(logs: list[Path]) -> tuple[Counter[str], Counter[str]]:
    """How often each config was started and finished, over the logs of every worker."""
    started: Counter[str] = Counter()
    finished: Counter[str] = Counter()
    for path in logs:
        for line in path.read_text().splitlines() if path.exists() else []:
            what, config = line.split(" ", 1)
            (started if what == "start" else finished)[config] += 1
    return started, finished


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("url", "log", "seed", "key", "configs"):
        parser.add_argument(name)
    parser.add_argument("--hang-after", type=int)
    parser.add_argument("--go", type=Path)
    args = parser.parse_args()
    key = TuningKey.from_json(json.loads(args.key))
    configs = [{"BM": i // 8, "BN": i % 8} for i in range(int(args.configs))]
    random.Random(int(args.seed)).shuffle(configs)  # processes collide on different configs
    claimed = 0
    with open(args.log, "a") as log, open_store(args.url) as store:
        def note(what: str, config: dict[str, int]) -> None:
            log.write(f"{what} {json.dumps(config, sort_keys=True)}\n")
            log.flush()
            os.fsync(log.fileno())

        if args.go is not None:
            print("ready", flush=True)
            while not args.go.exists():
                time.sleep(0.01)
        for config in configs:
            if not store.claim(key, config):
                continue
            claimed += 1
            if args.hang_after is not None and claimed > args.hang_after:
                print("holding", flush=True)
                time.sleep(600)
            note("start", config)
            time.sleep(0.002)  # a little work, so claims overlap in time
            store.record_trial(key, config, cycles=config_cycles(config), wall_seconds=0.002)
            note("done", config)
        done = [t for t in store.trials(key) if t.state == "done"]
        if done:
            winner = min(done, key=lambda t: t.cycles)
            store.save_best(key, winner.config, winner.cycles)
    sys.exit(0)


if __name__ == "__main__":
    main()

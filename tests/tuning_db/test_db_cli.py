"""`npu-db list|show|export|import|prune`: what a person and a script see."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tuning_db import TuningKey, open_store
from tuning_db.cli import main

KEY = TuningKey(kernel="kernels.matmul", source_hash="s0", key={"M": 1024, "N": 512},
                dtypes=("float16", "float32"), machine="fp-a", compiler_version="c1")
OTHER = TuningKey(**{**KEY.to_json(), "kernel": "kernels.conv2d", "compiler_version": "c0"})


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = str(tmp_path / "t.db")
    with open_store(url) as store:
        store.register_machine("davinci-8c", "fp-a", '{"cores": 8}')
        store.record_trial(KEY, {"BM": 64, "num_stages": 2}, cycles=4000, wall_seconds=0.5)
        store.record_trial(KEY, {"BM": 512, "num_stages": 2}, cycles=None, failure="ResourceError: L0A full")
        store.claim(KEY, {"BM": 128, "num_stages": 2})
        with sqlite3.connect(url) as raw:  # as if the claiming process had been killed
            raw.execute("UPDATE npu_trials SET owner_pid = 999999999, owner_token = 'gone' WHERE state = 'running'")
        raw.close()
        store.save_best(KEY, {"BM": 64, "num_stages": 2}, 4000)
        store.record_trial(OTHER, {"BM": 32}, cycles=900)
        store.save_best(OTHER, {"BM": 32}, 900)
    return url


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


def test_list_prints_a_line_or_a_json_object_per_best_record(db: str):
    status, text = run("list", "--db", db)
    assert status == 0 and text.splitlines() == [
        "kernels.conv2d [M=1024,N=512] float16,float32 on davinci-8c (compiler c0): 900 cycles with BM=32 (1 trials)",
        "kernels.matmul [M=1024,N=512] float16,float32 on davinci-8c (compiler c1): 4000 cycles with BM=64 "
        "num_stages=2 (2 trials)"]
    status, text = run("list", "--json", "--db", db, "--kernel", "kernels.matmul")
    [record] = [json.loads(line) for line in text.splitlines()]
    assert record["config"] == {"BM": 64, "num_stages": 2} and record["cycles"] == 4000
    assert TuningKey.from_json({f: record[f] for f in KEY.to_json()}) == KEY


def test_show_lists_every_trial_best_first(db: str):
    status, text = run("show", "kernels.matmul", "--db", db)
    assert status == 0 and text.splitlines()[1:] == [
        "  best: 4000 cycles with BM=64 num_stages=2", "  BM=64 num_stages=2: 4000 cycles",
        "  BM=128 num_stages=2: running", "  BM=512 num_stages=2: ResourceError: L0A full"]
    [entry] = [json.loads(line) for line in run("show", "kernels.matmul", "--json", "--db", db)[1].splitlines()]
    assert [t["state"] for t in entry["trials"]] == ["done", "running", "failed"]


def test_export_then_import_merges_into_another_store(db: str, tmp_path: Path):
    assert run("export", str(tmp_path / "e.json"), "--db", db)[0] == 0
    target = str(tmp_path / "other.db")
    with open_store(target) as store:  # the target already knows a better config for KEY
        store.save_best(KEY, {"BM": 96, "num_stages": 1}, 3500)
    status, text = run("import", str(tmp_path / "e.json"), "--db", target)
    assert status == 0 and text.startswith("imported 2 keys (3 trials, 2 best records) and 1 machines")
    with open_store(target) as store:
        assert store.best(KEY).cycles == 3500 and store.best(OTHER).cycles == 900
        assert sorted(t.state for t in store.trials(KEY)) == ["done", "failed"]  # the claim stays behind
        assert [m.name for m in store.machines()] == ["davinci-8c"]
    assert run("import", str(tmp_path / "e.json"), "--db", target)[0] == 0  # again: nothing doubles
    with open_store(target) as store:
        assert len(store.trials(KEY)) == 2


def test_a_bad_import_writes_nothing_and_says_where(db: str, tmp_path: Path, capsys):
    document = json.loads(run("export", "--db", db)[1])
    document["entries"][1]["trials"][0]["config"] = {"BM": [1, 2]}
    (tmp_path / "bad.json").write_text(json.dumps(document))
    target = str(tmp_path / "other.db")
    assert run("import", str(tmp_path / "bad.json"), "--db", target)[0] == 1
    assert f"{tmp_path / 'bad.json'}: entries[1]: trial config: BM=[1, 2]" in capsys.readouterr().err
    with open_store(target) as store:
        assert store.keys() == [] and store.machines() == []


def test_prune_deletes_by_filter_and_refuses_without_one(db: str, capsys):
    assert run("prune", "--db", db)[0] == 1
    assert "prune needs a filter" in capsys.readouterr().err
    assert run("prune", "--db", db, "--stale-claims", "--json") == (0, '{"deleted_rows": 1}\n')
    assert run("prune", "--db", db, "--compiler-version", "c0") == (0, f"deleted 4 rows from {db}\n")
    with open_store(db) as store:
        assert [r.key for r in store.all_best()] == [KEY]
    assert run("prune", "--db", db, "--machine", "fp-b") == (0, f"deleted 0 rows from {db}\n")
    assert run("prune", "--db", db, "--machine", "davinci-8c") == (0, f"deleted 5 rows from {db}\n")  # by name
    with open_store(db) as store:
        assert store.keys() == []


def test_a_foreign_file_is_an_error_message_not_a_traceback(tmp_path: Path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    result = subprocess.run([sys.executable, "-m", "tuning_db.cli", "list", "--db", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == f"npu-db: error: {path}: not a tuning database (not an SQLite file: it starts b'hello')\n"


def test_the_console_script_is_installed(db: str):
    script = shutil.which("npu-db", path=str(Path(sys.executable).parent))
    assert script is not None, "npu-db is not on the venv's PATH: reinstall (pip install -e .)"
    result = subprocess.run([script, "list", "--json", "--db", db], capture_output=True, text=True)
    assert result.returncode == 0 and len(result.stdout.splitlines()) == 2

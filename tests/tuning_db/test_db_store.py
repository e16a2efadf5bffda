"""The store's contract in one process: round trips, claims, best records, neighbours, pruning."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import uuid
from datetime import timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuning_db import TuningKey, TuningStore, open_store
from tuning_db.owners import Owner, alive, process_start


def make_key(machine: str = "fp-a", **key: int) -> TuningKey:
    return TuningKey(kernel="kernels.matmul", source_hash="s0", key=key or {"M": 1024, "N": 512, "K": 256},
                     dtypes=("float16", "float16", "float32"), machine=machine, compiler_version="c1")


@pytest.fixture
def store(tmp_path):
    with open_store(str(tmp_path / "t.db")) as s:
        yield s


def test_trials_round_trip_and_one_row_per_config(store: TuningStore):
    k = make_key()
    assert store.trials(k) == [] and store.best(k) is None
    done = store.record_trial(k, {"BM": 64, "BN": 128, "num_stages": 2}, cycles=12345, wall_seconds=0.25)
    failed = store.record_trial(k, {"BM": 512, "BN": 128, "num_stages": 2}, cycles=None,
                                failure="BufferOverflowError: L0A needs 256 KiB")
    again = store.record_trial(k, {"num_stages": 2, "BN": 128, "BM": 64}, cycles=99)  # same config: first wins
    assert again == done and done.state == "done" and done.cycles == 12345 and done.wall_seconds == 0.25
    assert failed.state == "failed" and failed.cycles is None and failed.failure.startswith("BufferOverflow")
    assert store.trials(k) == [done, failed]
    assert done.created.tzinfo == timezone.utc
    assert store.trials(make_key(machine="fp-b")) == []  # another machine: another record


def test_claims_are_exclusive_until_recorded(tmp_path):
    url = str(tmp_path / "t.db")
    k, cfg = make_key(), {"BM": 64}
    with open_store(url) as mine, open_store(url) as other:
        assert mine.claim(k, cfg) and mine.claim(k, cfg)  # claiming one's own claim again is fine
        assert not other.claim(k, cfg)  # held by a live process (this one, through another store)
        assert [t.state for t in other.trials(k)] == ["running"]
        mine.record_trial(k, cfg, cycles=10)
        assert not mine.claim(k, cfg) and not other.claim(k, cfg)
        assert other.claim(k, {"BM": 128})
        assert other.heartbeat() == 1 and mine.heartbeat() == 0


def test_a_claim_of_a_dead_process_is_taken_over(tmp_path):
    url = str(tmp_path / "t.db")
    k, cfg = make_key(), {"BM": 64}
    with open_store(url) as s, sqlite3.connect(tmp_path / "t.db") as raw:
        assert s.claim(k, cfg)
        raw.execute("UPDATE npu_trials SET owner_pid = 999999999, owner_token = 'gone'")  # as if it had exited
    raw.close()
    with open_store(url) as s:
        assert [t.state for t in s.trials(k)] == ["running"]
        assert s.claim(k, cfg)


def test_a_silent_claim_from_another_host_times_out(tmp_path):
    url = str(tmp_path / "t.db")
    k, cfg = make_key(), {"BM": 64}
    with open_store(url) as s, sqlite3.connect(tmp_path / "t.db") as raw:
        assert s.claim(k, cfg)
        raw.execute("UPDATE npu_trials SET owner_host = 'elsewhere', owner_token = 'theirs'")
    raw.close()
    with open_store(url) as patient, open_store(url, claim_timeout=0.0) as impatient:
        assert not patient.claim(k, cfg)
        assert impatient.claim(k, cfg)


def test_release_and_close_give_up_unfinished_claims(tmp_path):
    url = str(tmp_path / "t.db")
    k = make_key()
    with open_store(url) as first, open_store(url) as second:
        assert first.claim(k, {"BM": 1}) and first.claim(k, {"BM": 2}) and first.claim(k, {"BM": 3})
        first.record_trial(k, {"BM": 3}, cycles=7)
        assert not second.claim(k, {"BM": 1})
        assert first.release(k, {"BM": 1}) and not first.release(k, {"BM": 1})
        assert not second.release(k, {"BM": 2}) and not first.release(k, {"BM": 3})  # not its claim; done
        assert second.claim(k, {"BM": 1})
        first.close()  # gives up BM=2
        assert second.claim(k, {"BM": 2})
        assert sorted((t.config["BM"], t.state) for t in second.trials(k)) == [(1, "running"), (2, "running"),
                                                                               (3, "done")]


def test_best_keeps_the_fewest_cycles_and_counts_evaluations(store: TuningStore):
    k = make_key()
    for bm, cycles in ((64, 900), (128, 700), (256, 800)):
        store.record_trial(k, {"BM": bm}, cycles=cycles)
    first = store.save_best(k, {"BM": 256}, 800)
    assert first.cycles == 800 and first.trials == 3 and first.config == {"BM": 256}
    assert store.save_best(k, {"BM": 128}, 700).config == {"BM": 128}
    assert store.save_best(k, {"BM": 64}, 900).config == {"BM": 128}  # a worse one does not replace it
    assert store.save_best(k, {"BM": 32}, 700).config == {"BM": 128}  # a tie keeps the smaller text
    assert (store.best(k).config, store.best(k).cycles, store.best(k).trials) == ({"BM": 128}, 700, 3)
    assert store.best(make_key(machine="fp-b")) is None


def test_nearest_best_ranks_other_shapes_by_log_distance(store: TuningStore):
    k = make_key(M=1024, N=1024)
    for m, n in ((2048, 1024), (1024, 1000), (64, 64), (1024, 1024)):
        store.save_best(make_key(M=m, N=n), {"BM": m // 8}, m * n)
    store.save_best(make_key(M=1000, N=1000, K=1), {"BM": 1}, 1)  # other key names: not a neighbour
    store.save_best(make_key(machine="fp-b", M=1024, N=1000), {"BM": 2}, 1)  # other machine: never
    near = store.nearest_best(k)
    assert [r.key.key for r in near] == [{"M": 1024, "N": 1000}, {"M": 2048, "N": 1024}, {"M": 64, "N": 64}]
    assert len(store.nearest_best(k, limit=1)) == 1


def test_nearest_best_measures_shapes_written_as_text(store: TuningStore):
    def shaped(a: str, layout: str = "nn") -> TuningKey:
        return TuningKey(**{**make_key().to_json(), "key": {"a": a, "layout": layout}})
    for a, layout in (("64x64", "nn"), ("1024x500", "nn"), ("1024x512x1", "nn"), ("1024x512", "nt"),
                      ("2048x512", "nn")):
        store.save_best(shaped(a, layout), {"BM": 1}, 1)
    assert [r.key.key for r in store.nearest_best(shaped("1024x512"))] == [
        {"a": "1024x500", "layout": "nn"}, {"a": "2048x512", "layout": "nn"}, {"a": "64x64", "layout": "nn"},
        {"a": "1024x512", "layout": "nt"}]  # other rank or layout: far


def test_similar_machine_best_ranks_registered_specs(store: TuningStore):
    store.register_machine("big", "fp-a", '{"cores": 32, "l2": {"bytes": 33554432}}')
    store.register_machine("near", "fp-b", '{"cores": 24, "l2": {"bytes": 33554432}}')
    store.register_machine("small", "fp-c", '{"cores": 2, "l2": {"bytes": 1048576}}')
    store.register_machine("big", "fp-a", '{"l2": {"bytes": 33554432}, "cores": 32}')  # same spec again: fine
    with pytest.raises(ValueError, match="registered with another spec"):
        store.register_machine("big", "fp-a", '{"cores": 16}')
    for fp, cycles in (("fp-c", 5), ("fp-b", 9), ("fp-d", 1), ("fp-a", 7)):
        store.save_best(make_key(machine=fp), {"BM": cycles}, cycles)
    assert [r.key.machine for r in store.similar_machine_best(make_key())] == ["fp-b", "fp-c", "fp-d"]
    assert [m.name for m in store.machines()] == ["big", "near", "small"]


def test_prune_removes_what_the_filters_name(store: TuningStore):
    old, new = make_key(), TuningKey(**{**make_key().to_json(), "compiler_version": "c2"})
    for k in (old, new):
        store.record_trial(k, {"BM": 64}, cycles=1)
        store.save_best(k, {"BM": 64}, 1)
    with pytest.raises(ValueError, match="needs a filter"):
        store.prune()
    assert store.prune(compiler_version="c1") == 3  # a trial, a best record, a key
    assert store.keys() == [new] and store.trials(old) == [] and store.best(new) is not None


def test_bad_input_is_refused_before_it_is_stored(store: TuningStore):
    k = make_key()
    with pytest.raises(ValueError, match="not a valid name"):
        store.claim(k, {"BM size": 64})
    with pytest.raises(ValueError, match="only int, float, str and bool"):
        store.record_trial(k, {"BM": [64]}, cycles=1)
    with pytest.raises(ValueError, match="not a finite number"):
        store.save_best(k, {"alpha": float("nan")}, 1)
    with pytest.raises(ValueError, match="done trial needs a cycle count"):
        store.record_trial(k, {"BM": 64}, cycles=None)
    with pytest.raises(ValueError, match="not a dtype name"):
        TuningKey("k", "s", {}, ("float 16",), "m", "c")
    assert store.trials(k) == []


def test_a_key_is_hashable_and_json_round_trips():
    k = make_key()
    assert TuningKey.from_json(k.to_json()) == k and hash(TuningKey.from_json(k.to_json())) == hash(k)
    assert k.dtypes == ("float16", "float16", "float32")


def test_a_claims_owner_is_alive_only_while_its_process_runs():
    me = Owner.this_process()
    assert me.start and alive(me.host, me.pid, me.start) is True
    assert alive(me.host, me.pid, str(int(me.start) + 1)) is False  # the pid, reused by a later process
    with subprocess.Popen([sys.executable, "-c", "pass"]) as gone:
        start = process_start(gone.pid)
    assert alive(me.host, gone.pid, start or "") is False  # exited and reaped
    assert alive("another-host", me.pid, me.start) is None  # cannot be seen from here: the heartbeat decides


SCALARS = (st.integers(-2**70, 2**70) | st.booleans() | st.text(max_size=12)
           | st.floats(allow_nan=False, allow_infinity=False))
MAPPINGS = st.dictionaries(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,7}", fullmatch=True), SCALARS, max_size=5)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=MAPPINGS, config=MAPPINGS, cycles=st.integers(0, 2**62), wall=st.floats(0, 1e6))
def test_any_valid_key_and_config_round_trip_exactly(store: TuningStore, key, config, cycles: int, wall: float):
    k = TuningKey(kernel=f"k{uuid.uuid4().hex}", source_hash="s", key=key, dtypes=("bfloat16",), machine="m",
                  compiler_version="c")
    store.record_trial(k, config, cycles=cycles, wall_seconds=wall)
    store.save_best(k, config, cycles)
    [trial], best = store.trials(k), store.best(k)
    for got in (trial.config, best.config):  # equal, and of the same types (True is not 1, 1.0 not 1)
        assert [(n, type(v), v) for n, v in sorted(got.items())] == [(n, type(v), v) for n, v in sorted(config.items())]
    assert (trial.cycles, trial.wall_seconds, best.cycles, best.trials) == (cycles, wall, cycles, 1)
    [stored_key] = store.keys(k.kernel)
    assert stored_key == k and [(n, type(v)) for n, v in sorted(stored_key.key.items())] == \
        [(n, type(v)) for n, v in sorted(key.items())]

"""`npu.launch_defaults`: launch options for every launch in a block, library calls included."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import npulang as npu


@npu.jit
def double(x_ptr, y_ptr, n, BLOCK: npu.constexpr):
    offs = npu.program_id(0) * BLOCK + npu.arange(0, BLOCK)
    npu.store(y_ptr + offs, npu.load(x_ptr + offs, mask=offs < n) * 2.0, mask=offs < n)


def launch(**kw):
    x = np.arange(1000, dtype=np.float32)
    y = np.full_like(x, -1.0)
    return double[(4,)](x, y, x.size, BLOCK=256, **kw), x, y


def test_a_block_makes_launches_timing_only_on_a_cold_l2_with_the_same_cycles():
    cold, x, y = launch(l2="cold")
    np.testing.assert_array_equal(y, 2 * x)
    with npu.launch_defaults(timing_only=True, l2="cold"):
        timed, _, untouched = launch()
        explicit, _, written = launch(timing_only=False)  # a launch's own keyword wins
    assert timed.cycles == cold.cycles and (untouched == -1.0).all()
    np.testing.assert_array_equal(written, 2 * x)
    _, _, after = launch()  # the block is over: functional again
    np.testing.assert_array_equal(after, 2 * x)


def test_blocks_nest_and_belong_to_their_thread():
    seen = []
    with npu.launch_defaults(timing_only=True):
        with npu.launch_defaults(l2="cold"):
            assert npu.get_machine() is not None
            thread = threading.Thread(target=lambda: seen.append(launch()[2]))
            thread.start()
            thread.join()
            _, _, y = launch()
        assert (y == -1.0).all()
    np.testing.assert_array_equal(seen[0], 2 * np.arange(1000, dtype=np.float32))  # the other thread: functional


@pytest.mark.parametrize("options,message", [
    ({"num_stages": 3}, "launch_defaults(num_stages=...): only l2, timing_only, trace can be set for a block"),
    ({"l2": "lukewarm"}, "l2 must be 'warm' or 'cold', got 'lukewarm'"),
])
def test_bad_options_are_refused_when_the_block_opens(options, message):
    with pytest.raises(npu.NpuError, match=message.replace("(", r"\(").replace(")", r"\)")):
        with npu.launch_defaults(**options):
            pass

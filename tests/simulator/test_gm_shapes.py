"""GlobalMemory costs a row-strided transfer by L2 block with line masks cached per shape; these tests
check that against touching L2 row by row (the definition, `GlobalMemory._rows`): the same bus and
HBM bytes, occupancy, residency, touch epochs and eviction order, on random transfers through an L2
small enough to evict often. Renewed epochs of covered tiles are applied lazily (`L2Cache.settle`), so
the epochs are compared after settling, at random points and at the end."""

from __future__ import annotations

import random

import pytest

from isa import MachineSpec
from simulator import gm as gm_module
from simulator.gm import GlobalMemory, GmXfer


def _reference(gm: GlobalMemory, start: int, x: GmXfer, port: float, shift: int, region: int) -> int:
    """`GlobalMemory.transfer` of a row-strided transfer, row by row."""
    nbytes, missed = gm._rows(x, x.addr + shift, region << 40)
    hbm = nbytes if x.write else missed * gm.l2.line_bytes
    gm.bytes_moved += nbytes
    gm.hbm_bytes += hbm
    return gm.calendar.occupy(start, nbytes, hbm, port)


def _state(gm: GlobalMemory, settle: bool) -> tuple:
    l2 = gm.l2
    if settle:
        l2.settle()
    epochs = list(l2.epochs.items()) if settle else list(l2.epochs)
    return list(l2.masks.items()), epochs, l2.resident, l2.epoch, gm.bytes_moved, gm.hbm_bytes


@pytest.mark.parametrize("kept", [gm_module._SHAPES, 16])
def test_block_masks_match_row_by_row_with_evictions(kept: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Also with room for only 16 shapes' masks, so they are dropped and recomputed again and again."""
    monkeypatch.setattr(gm_module, "_SHAPES", kept)
    evictions = fast_paths = repeats = pending = 0
    for l2_bytes in (96 * 1024, 2 << 20):  # evicting at almost every transfer; rarely, so tiles stay covered
        spec = MachineSpec.load("davinci").replace(l2={"bytes": l2_bytes})
        fast, slow = GlobalMemory(spec), GlobalMemory(spec)
        rng = random.Random(6)
        done: list[tuple[GmXfer, int, int]] = []
        for i in range(3000):
            start = i * 37
            if done and rng.random() < 0.4:  # a tile loaded again (all its lines resident unless evicted since)
                x, region, shift = rng.choice(done)
            else:
                itemsize = rng.choice((1, 2, 4))
                cols = rng.randint(1, 300)
                rs = rng.choice((0, cols * itemsize + rng.randint(1, 64), rng.randint(1, 20000), 4096, 8192, 8320))
                x = GmXfer(addr=rng.randrange(0, 1 << 20), rows=rng.randint(2, 130), cols=cols, rs=rs, cs=itemsize,
                           itemsize=itemsize, write=rng.random() < 0.3)
                region, shift = rng.choice((0x1000, 0x9000)), rng.randrange(0, 512)
                done.append((x, region, shift))
            before = fast.l2.resident
            block0, off = divmod(x.addr + shift, fast._span)
            shape = fast.row_shape(x)
            if shape is not None:
                masks = shape.masks.get(off) or fast._row_masks(shape, off)
                repeats += ((region << 40) + block0, masks[4]) in fast.l2.covered
                fast_paths += before + masks[2] <= fast.l2.capacity_lines
            assert fast.transfer(start, x, 64.0, shift, region) == _reference(slow, start, x, 64.0, shift, region)
            pending = max(pending, sum(1 for _, epoch in fast.l2.covered.values() if epoch))
            settle = rng.random() < 0.1 or i == 2999
            assert _state(fast, settle) == _state(slow, settle), f"transfer {i}: {x}"
            evictions += fast.l2.resident < before
    # every path and many evictions ran, and renewals of several tiles waited to be settled
    assert evictions > 20 and fast_paths > 1000 and repeats > (100 if kept > 16 else 10) and pending >= 3

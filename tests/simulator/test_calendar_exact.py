"""`BandwidthCalendar.occupy` against its definition: the bucket-by-bucket loop it was first written as
(kept here), on random bookings, in time order and out of it, HBM-bound and L2-bound. The returned
occupancy and every bucket's state must be the same, bit for bit."""

from __future__ import annotations

import math
import random

from simulator.gm import _EPS, QUANTUM, BandwidthCalendar


def _occupy(cal: BandwidthCalendar, start: int, nbytes: int, hbm_bytes: int, port: float) -> int:
    """The definition: cut (or give back) the first bucket, then fill buckets forward one at a time."""
    if nbytes <= 0:
        return 1
    f = hbm_bytes / nbytes
    hbm, l2 = cal.hbm, cal.l2
    t = float(start)
    left = float(nbytes)
    b = start // QUANTUM
    if b >= len(l2):
        cal._grow(b)
    last = cal.lasts[b]
    if start >= last:
        cal.lasts[b] = start
        span = (b + 1) * QUANTUM - start
        cut = l2[b] - cal.l2_rate * span
        if cut > 0:
            l2[b] -= cut
            cal.l2_cut[b] += cut
        cut = hbm[b] - cal.hbm_rate * span
        if cut > 0:
            hbm[b] -= cut
            cal.hbm_cut[b] += cut
    else:
        back = min(cal.l2_cut[b], cal.l2_rate * (last - start))
        l2[b] += back
        cal.l2_cut[b] -= back
        back = min(cal.hbm_cut[b], cal.hbm_rate * (last - start))
        hbm[b] += back
        cal.hbm_cut[b] -= back
    while True:
        if b >= len(l2):
            cal._grow(b)
        bucket_end = (b + 1) * QUANTUM
        dur = bucket_end - t
        cap = port * dur
        if l2[b] < cap:
            cap = l2[b]
        if f > 0 and hbm[b] < cap * f:
            cap = hbm[b] / f
        if cap > 0 and cap >= left - _EPS:
            finish = t + dur * left / cap
            l2[b] -= left
            hbm[b] -= left * f
            ended = cal.l2_ended[b] + left
            cal.l2_ended[b] = ended
            floor = bucket_end - QUANTUM + ended / cal.l2_rate
            if floor > finish:
                finish = floor
            if f > 0:
                ended = cal.hbm_ended[b] + left * f
                cal.hbm_ended[b] = ended
                floor = bucket_end - QUANTUM + ended / cal.hbm_rate
                if floor > finish:
                    finish = floor
            return max(1, math.ceil(finish - start - _EPS))
        if cap > 0:
            l2[b] -= cap
            hbm[b] -= cap * f
            left -= cap
        t = float(bucket_end)
        b += 1


def _state(cal: BandwidthCalendar) -> tuple:
    return cal.hbm, cal.l2, cal.lasts, cal.hbm_cut, cal.l2_cut, cal.hbm_ended, cal.l2_ended


def test_occupy_matches_its_definition_bit_for_bit() -> None:
    rng = random.Random(11)
    one_bucket = several = out_of_order = 0
    for hbm_rate, l2_rate in ((853.3, 2048.0), (64.0, 96.0)):
        fast, slow = BandwidthCalendar(hbm_rate, l2_rate), BandwidthCalendar(hbm_rate, l2_rate)
        t = 0
        for _ in range(4000):
            t += rng.choice((0, 0, 1, 3, 17, 64, 200))
            start = t - rng.choice((0, 0, 0, 0, 5, 40, 300)) if t > 300 else t  # some after a later start
            nbytes = rng.choice((0, 32, 512, 4096, 8192, 65536, rng.randrange(1, 200_000)))
            hbm = rng.choice((0, nbytes, nbytes // 2, rng.randrange(0, nbytes + 1)))
            port = rng.choice((32.0, 64.0, 128.0, 256.0))
            out_of_order += start < fast.lasts[start // QUANTUM] if start // QUANTUM < len(fast.lasts) else 0
            got = fast.occupy(start, nbytes, hbm, port)
            assert got == _occupy(slow, start, nbytes, hbm, port)
            assert _state(fast) == _state(slow)
            if nbytes:
                one_bucket += start % QUANTUM + got <= QUANTUM
                several += start % QUANTUM + got > 2 * QUANTUM
    assert one_bucket > 500 and several > 500 and out_of_order > 100  # every path ran

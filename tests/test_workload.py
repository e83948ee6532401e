"""Arrival processes and task-class defaults, against counts and bounds computed here.

Periodic streams are checked release by release (one stream per "factory" index so streams
can be told apart); Poisson streams against the Poisson distribution of the count (bounds
of 4.5 standard deviations: a false failure about once in 10^5 runs) and a KS test of the
gaps; the class defaults against the table in DESIGN.md section 2.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from millinet.envs.config import CLASS_NAMES, PeriodicArrivals, PoissonArrivals, Surge
from millinet.envs.scenario import load_scenario
from millinet.envs.workload import DEFAULT_CLASSES, PROFILES, WorkloadGenerator

ROBOT, AGV, VISION = (CLASS_NAMES.index(c) for c in ("robot_sync", "agv_dispatch", "vision_qa"))
CLASSES = [DEFAULT_CLASSES[c] for c in CLASS_NAMES]
Z = 4.5  # standard deviations allowed for Poisson counts


def arrivals(sources, until_s: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """All arrival times (s) in [0, until_s) and their factory index, from the generator."""
    gen = WorkloadGenerator(sources, CLASSES, seed)
    times, facs = [], []
    while gen.t < until_s + 0.05:  # run past the end so jittered releases are all out
        b = gen.next_batch()
        assert np.all(np.diff(b.time_s) >= 0), "a batch is sorted by time"
        times.append(b.time_s)
        facs.append(b.factory)
    t, f = np.concatenate(times), np.concatenate(facs)
    keep = t < until_s
    return t[keep], f[keep]


def periodic(period_us: float, jitter_us: float = 0.0, streams: int = 1) -> PeriodicArrivals:
    return PeriodicArrivals(
        process="periodic",
        streams=streams,
        period_min_us=period_us,
        period_max_us=period_us,
        jitter_us=jitter_us,
    )


def poisson_bound(mean: float) -> float:
    return Z * math.sqrt(mean)


# --------------------------------------------------------------------------- periodic
@pytest.mark.parametrize("period_us", [1000.0, 1500.0, 2000.0, 33_333.0])
def test_periodic_stream_releases_once_per_period(period_us):
    periods = 40
    until = periods * period_us * 1e-6
    sources = [(i, ROBOT, periodic(period_us), 1.0) for i in range(16)]
    t, f = arrivals(sources, until, seed=1)
    for i in range(16):
        mine = np.sort(t[f == i])
        assert mine.size == periods  # exactly one release in each period of [0, until)
        assert mine[0] < period_us * 1e-6  # phase inside the first period
        np.testing.assert_allclose(np.diff(mine), period_us * 1e-6, rtol=1e-9)
    phases = np.array([np.sort(t[f == i])[0] for i in range(16)]) / (period_us * 1e-6)
    assert np.ptp(phases) > 0.5  # streams start at different phases


def test_periodic_jitter_stays_within_0_and_jitter():
    period, jitter = 1e-3, 50e-6
    sources = [(i, ROBOT, periodic(1000.0, jitter_us=50.0), 1.0) for i in range(8)]
    t, f = arrivals(sources, 0.5, seed=3)
    for i in range(8):
        mine = np.sort(t[f == i])
        assert mine.size in (499, 500)  # the 500th release may be jittered past the end
        k = np.arange(mine.size)
        offset = mine - k * period  # = phase + jitter_k
        assert np.ptp(offset) <= jitter + 1e-12  # all jitters within a window of `jitter`
        assert np.ptp(offset) > 0.9 * jitter  # ... and they do use it (uniform, 500 draws)
        gaps = np.diff(mine)
        assert gaps.min() >= period - jitter - 1e-12 and gaps.max() <= period + jitter + 1e-12
        # uniform jitter: the offsets' mean sits mid-window
        assert np.mean(offset - offset.min()) == pytest.approx(jitter / 2, abs=0.1 * jitter)


def test_periodic_periods_are_drawn_within_the_range_and_scale_multiplies_streams():
    spec = PeriodicArrivals(
        process="periodic", streams=10, period_min_us=1000, period_max_us=2000, jitter_us=0
    )
    until = 1.0
    t, _ = arrivals([(0, ROBOT, spec, 2.5)], until, seed=4)  # round(10 x 2.5) = 25 streams
    # each stream releases until/period times, period in [1, 2] ms
    assert 25 * 500 - 25 <= t.size <= 25 * 1000
    mean_rate_per_stream = t.size / until / 25
    assert 1 / 2e-3 <= mean_rate_per_stream <= 1 / 1e-3
    single, _ = arrivals([(0, ROBOT, spec, 0.01)], until, seed=4)  # at least one stream
    assert 500 - 1 <= single.size <= 1000


# --------------------------------------------------------------------------- poisson
def test_poisson_count_and_gaps_match_the_rate():
    rate, until = 4000.0, 2.0
    t, _ = arrivals([(0, AGV, PoissonArrivals(process="poisson", rate_per_s=rate), 1.0)], until)
    mean = rate * until
    assert abs(t.size - mean) < poisson_bound(mean)
    gaps = np.diff(np.sort(t))
    assert stats.kstest(gaps, "expon", args=(0, 1 / rate)).pvalue > 1e-4
    # counts in 10 ms bins: Poisson, so variance ~ mean (index of dispersion ~ 1)
    counts = np.histogram(t, bins=200, range=(0, until))[0]
    assert 0.75 < counts.var() / counts.mean() < 1.3


def test_poisson_scale_multiplies_the_rate():
    rate, until, scale = 1000.0, 2.0, 3.0
    t, _ = arrivals([(0, AGV, PoissonArrivals(process="poisson", rate_per_s=rate), scale)], until)
    mean = rate * scale * until
    assert abs(t.size - mean) < poisson_bound(mean)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_surge_multiplies_the_rate_inside_its_window_only(seed):
    rate = 2000.0
    # windows deliberately not on the generator's 5 ms window grid
    spec = PoissonArrivals(
        process="poisson",
        rate_per_s=rate,
        surges=[Surge(start_s=0.2031, end_s=0.6017, factor=3.0)],
    )
    t, _ = arrivals([(0, AGV, spec, 1.0)], 1.0, seed=seed)
    inside = ((t >= 0.2031) & (t < 0.6017)).sum()
    outside = t.size - inside
    mean_in = rate * 3.0 * (0.6017 - 0.2031)
    mean_out = rate * (1.0 - (0.6017 - 0.2031))
    assert abs(inside - mean_in) < poisson_bound(mean_in)
    assert abs(outside - mean_out) < poisson_bound(mean_out)
    # just outside the edges the base rate holds (10 ms either side)
    edge = ((t >= 0.1931) & (t < 0.2031)).sum() + ((t >= 0.6017) & (t < 0.6117)).sum()
    assert abs(edge - rate * 0.02) < poisson_bound(rate * 0.02)


def test_overlapping_surges_multiply():
    rate = 1000.0
    spec = PoissonArrivals(
        process="poisson",
        rate_per_s=rate,
        surges=[
            Surge(start_s=0.2, end_s=0.6, factor=2.0),
            Surge(start_s=0.4, end_s=0.8, factor=3.0),
        ],
    )
    t, _ = arrivals([(0, AGV, spec, 1.0)], 1.0, seed=5)
    for lo, hi, factor in ((0.0, 0.2, 1), (0.2, 0.4, 2), (0.4, 0.6, 6), (0.6, 0.8, 3), (0.8, 1, 1)):
        n = ((t >= lo) & (t < hi)).sum()
        mean = rate * factor * (hi - lo)
        assert abs(n - mean) < poisson_bound(mean), (lo, hi, n, mean)


def test_same_seed_same_arrivals():
    sources = [
        (0, ROBOT, PROFILES["car_plant"]["robot_sync"], 1.0),
        (0, AGV, PROFILES["car_plant"]["agv_dispatch"], 1.0),
        (1, VISION, PROFILES["display_factory"]["vision_qa"], 1.0),
    ]
    a, b, c = (WorkloadGenerator(sources, CLASSES, s) for s in (7, 7, 8))
    for _ in range(20):
        x, y, z = a.next_batch(), b.next_batch(), c.next_batch()
        for name in ("time_s", "cls", "factory", "up_bytes", "down_bytes", "work_s"):
            np.testing.assert_array_equal(getattr(x, name), getattr(y, name))
    assert not np.array_equal(x.time_s, z.time_s)


# --------------------------------------------------------------------------- class defaults
def test_class_defaults_match_the_design_table():
    r, a, v = (DEFAULT_CLASSES[c] for c in CLASS_NAMES)
    # robot_sync: CPU ~20-100 us, 50-300 B each way, 1 ms deadline
    assert (r.resource, r.deadline_us) == ("cpu", 1_000)
    assert (r.up_bytes.low, r.up_bytes.high) == (50, 300)
    assert (r.down_bytes.low, r.down_bytes.high) == (50, 300)
    assert (r.compute_us.low, r.compute_us.high) == (20, 100)
    # agv_dispatch: CPU ~0.5-2 ms, 1-4 KB up, 0.5-2 KB down, 10 ms deadline
    assert (a.resource, a.deadline_us) == ("cpu", 10_000)
    assert (a.up_bytes.low, a.up_bytes.high) == (1_000, 4_000)
    assert (a.down_bytes.low, a.down_bytes.high) == (500, 2_000)
    assert (a.compute_us.low, a.compute_us.high) == (500, 2_000)
    # vision_qa: GPU ~2-8 ms, 0.2-2 MB up, ~1 KB down, deadline 20-50 ms
    assert v.resource == "gpu" and 20_000 <= v.deadline_us <= 50_000
    assert (v.up_bytes.low, v.up_bytes.high) == (200_000, 2_000_000)
    assert (v.compute_us.low, v.compute_us.high) == (2_000, 8_000)
    assert v.down_bytes.value == pytest.approx(1_000, rel=0.5)
    # 1 ms tasks weigh most in the reward
    assert r.weight > a.weight and r.weight > v.weight


def test_sampled_sizes_and_work_stay_in_the_table_ranges():
    scenario = load_scenario("sunflower-metro")  # no class overrides: the defaults
    assert scenario.classes == CLASSES
    gen = scenario.workload(seed=11)
    batches = [gen.next_batch() for _ in range(40)]  # 0.2 s
    cls = np.concatenate([b.cls for b in batches])
    up = np.concatenate([b.up_bytes for b in batches])
    down = np.concatenate([b.down_bytes for b in batches])
    work_us = np.concatenate([b.work_s for b in batches]) * 1e6
    table = {
        ROBOT: ((50, 300), (50, 300), (20, 100)),
        AGV: ((1_000, 4_000), (500, 2_000), (500, 2_000)),
        VISION: ((200_000, 2_000_000), (1_000, 1_000), (2_000, 8_000)),
    }
    for c, ranges in table.items():
        sel = cls == c
        assert sel.sum() >= 50, CLASS_NAMES[c]
        for values, (lo, hi) in zip((up[sel], down[sel], work_us[sel]), ranges):
            assert values.min() >= lo - 1e-9 and values.max() <= hi + 1e-9
            if hi > lo:  # uniform: the sample mean is near the middle
                sd = (hi - lo) / math.sqrt(12) / math.sqrt(sel.sum())
                assert abs(values.mean() - (lo + hi) / 2) < Z * sd


def test_profiles_match_the_design_arrival_processes():
    for name, profile in PROFILES.items():
        robot, agv, vision = (profile[c] for c in CLASS_NAMES)
        assert robot.process == "periodic"  # per cell, 1-2 ms cycle, small jitter
        assert 1_000 <= robot.period_min_us <= robot.period_max_us <= 2_000, name
        assert robot.jitter_us <= 0.1 * robot.period_min_us, name
        assert agv.process == "poisson", name  # per factory
        assert vision.process == "periodic", name  # per camera, 10-60 frames/s
        assert 1e6 / 60 <= vision.period_min_us <= vision.period_max_us <= 1e6 / 10, name

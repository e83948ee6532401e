"""Factory workloads: task classes, factory profiles and the arrival generator.

Arrivals are generated in time windows (chunks) with numpy, so the per-task cost of the
workload is a few array operations amortised over thousands of tasks. Every random draw
comes from one ``numpy.random.Generator``, so a seed fixes the whole arrival sequence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from millinet.envs.config import (
    Arrivals,
    ConstantDist,
    ExponentialDist,
    LogNormalDist,
    PeriodicArrivals,
    PoissonArrivals,
    TaskClassConfig,
    TraceArrivals,
    UniformDist,
)
from millinet.envs.errors import MillinetError
from millinet.envs.trace import replays_for

# --------------------------------------------------------------------------- defaults
# DESIGN.md section 2. Sources: robot motion-control cycles of 1-2 ms with sub-ms sync
# budgets (3GPP TS 22.104 "motion control", cycle 0.5-2 ms, 50-300 B messages); AGV
# fleet dispatch every few ms to 100 ms with 1-4 KB state (3GPP TS 22.104 "mobile robots");
# camera defect detection per frame of 0.2-2 MB with 2-8 ms GPU inference.
DEFAULT_CLASSES: dict[str, TaskClassConfig] = {
    "robot_sync": TaskClassConfig(
        deadline_us=1_000,
        resource="cpu",
        up_bytes=UniformDist(dist="uniform", low=50, high=300),
        down_bytes=UniformDist(dist="uniform", low=50, high=300),
        compute_us=UniformDist(dist="uniform", low=20, high=100),
        weight=10.0,
        priority=0,
    ),
    "agv_dispatch": TaskClassConfig(
        deadline_us=10_000,
        resource="cpu",
        up_bytes=UniformDist(dist="uniform", low=1_000, high=4_000),
        down_bytes=UniformDist(dist="uniform", low=500, high=2_000),
        compute_us=UniformDist(dist="uniform", low=500, high=2_000),
        weight=2.0,
        priority=1,
    ),
    "vision_qa": TaskClassConfig(
        deadline_us=30_000,
        resource="gpu",
        up_bytes=UniformDist(dist="uniform", low=200_000, high=2_000_000),
        down_bytes=ConstantDist(dist="constant", value=1_000),
        compute_us=UniformDist(dist="uniform", low=2_000, high=8_000),
        weight=1.0,
        priority=2,
    ),
}

PROFILES: dict[str, dict[str, PeriodicArrivals | PoissonArrivals]] = {
    # Car body shop: ~200 robots in 32 cells that sync every 1-2 ms; an AGV fleet issuing
    # ~250 dispatch jobs/s; a few inspection cameras at the end of line.
    "car_plant": {
        "robot_sync": PeriodicArrivals(
            process="periodic",
            streams=32,
            period_min_us=1_000,
            period_max_us=2_000,
            jitter_us=20,
        ),
        "agv_dispatch": PoissonArrivals(process="poisson", rate_per_s=250),
        "vision_qa": PeriodicArrivals(
            process="periodic",
            streams=4,
            period_min_us=33_333,
            period_max_us=100_000,
            jitter_us=1_000,
        ),
    },
    # Display (panel) factory: many AGVs shuttling glass, many AOI cameras, few robots.
    "display_factory": {
        "robot_sync": PeriodicArrivals(
            process="periodic",
            streams=6,
            period_min_us=1_000,
            period_max_us=2_000,
            jitter_us=20,
        ),
        "agv_dispatch": PoissonArrivals(process="poisson", rate_per_s=400),
        "vision_qa": PeriodicArrivals(
            process="periodic",
            streams=12,
            period_min_us=25_000,
            period_max_us=50_000,
            jitter_us=1_000,
        ),
    },
    # Brewery on a 5G industrial network: filling/packing line sync, a small AGV fleet and
    # fill-level / label cameras.
    "brewery": {
        "robot_sync": PeriodicArrivals(
            process="periodic",
            streams=6,
            period_min_us=2_000,
            period_max_us=2_000,
            jitter_us=50,
        ),
        "agv_dispatch": PoissonArrivals(process="poisson", rate_per_s=60),
        "vision_qa": PeriodicArrivals(
            process="periodic",
            streams=6,
            period_min_us=50_000,
            period_max_us=100_000,
            jitter_us=1_000,
        ),
    },
}


def sample(dist: object, rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw ``n`` samples (float64, shape (n,)) from a distribution model of
    ``millinet.envs.config``."""
    if isinstance(dist, ConstantDist):
        return np.full(n, dist.value)
    if isinstance(dist, UniformDist):
        return rng.uniform(dist.low, dist.high, n)
    if isinstance(dist, ExponentialDist):
        return rng.exponential(dist.mean, n)
    if isinstance(dist, LogNormalDist):
        sigma2 = math.log1p(dist.cv**2)
        return rng.lognormal(math.log(dist.mean) - sigma2 / 2, math.sqrt(sigma2), n)
    raise TypeError(f"unknown distribution {dist!r}")


def mean_of(dist: object) -> float:
    """Mean of a distribution model."""
    if isinstance(dist, ConstantDist):
        return dist.value
    if isinstance(dist, UniformDist):
        return (dist.low + dist.high) / 2
    if isinstance(dist, (ExponentialDist, LogNormalDist)):
        return dist.mean
    raise TypeError(f"unknown distribution {dist!r}")


# --------------------------------------------------------------------------- sources
class _PeriodicSource:
    """Independent periodic streams with per-release jitter, emitted window by window."""

    def __init__(self, spec: PeriodicArrivals, scale: float, rng: np.random.Generator) -> None:
        n = max(1, int(spec.streams * scale + 0.5))  # round half up, not to even
        self.period = rng.uniform(spec.period_min_us, spec.period_max_us, n) * 1e-6
        self.next_nominal = rng.uniform(0.0, 1.0, n) * self.period
        self.jitter = spec.jitter_us * 1e-6
        self.carry = np.empty(0)
        self.streams = n

    def emit(self, t0: float, t1: float, rng: np.random.Generator) -> np.ndarray:
        """Release times (s) in [t0, t1); releases jittered past t1 are kept for later."""
        counts = np.ceil((t1 - self.next_nominal) / self.period).astype(np.int64)
        np.maximum(counts, 0, out=counts)
        stream = np.repeat(np.arange(self.streams), counts)
        k = np.arange(stream.size) - np.repeat(np.cumsum(counts) - counts, counts)
        times = self.next_nominal[stream] + k * self.period[stream]
        self.next_nominal = self.next_nominal + counts * self.period
        if self.jitter > 0:
            times = times + rng.uniform(0.0, self.jitter, times.size)
        times = np.concatenate([self.carry, times])
        late = times >= t1
        self.carry = times[late]
        return times[~late]


class _PoissonSource:
    """Poisson process with a piecewise-constant rate (base rate x surge factors)."""

    def __init__(self, spec: PoissonArrivals, scale: float) -> None:
        self.rate = spec.rate_per_s * scale
        self.surges = [(s.start_s, s.end_s, s.factor) for s in spec.surges]
        edges = sorted({e for s in self.surges for e in s[:2]})
        self.edges = np.array(edges)

    def _rate_at(self, t: float) -> float:
        factor = 1.0
        for start, end, f in self.surges:
            if start <= t < end:
                factor *= f
        return self.rate * factor

    def emit(self, t0: float, t1: float, rng: np.random.Generator) -> np.ndarray:
        """Arrival times (s) in [t0, t1): Poisson counts per constant-rate segment."""
        cuts = [t0, *self.edges[(self.edges > t0) & (self.edges < t1)].tolist(), t1]
        parts = []
        for a, b in zip(cuts[:-1], cuts[1:]):
            n = rng.poisson(self._rate_at(a) * (b - a))
            parts.append(rng.uniform(a, b, n))
        return np.concatenate(parts) if parts else np.empty(0)


@dataclass(frozen=True)
class ArrivalBatch:
    """Tasks arriving in one window, sorted by time. All arrays have shape (n,)."""

    time_s: np.ndarray
    cls: np.ndarray  # int, index into CLASS_NAMES
    factory: np.ndarray  # int, index into the scenario's factories
    up_bytes: np.ndarray
    down_bytes: np.ndarray
    work_s: np.ndarray  # service time on a speed-1.0 server (s)


class WorkloadEndedError(MillinetError):
    """Every source has ended: the scenario's workload is traces that do not loop."""


class WorkloadGenerator:
    """Generates the scenario's arrivals window by window.

    ``sources`` lists (factory index, class index, arrivals spec, scale); trace specs carry a
    resolved ``path`` and ``trace_factory`` (``envs/scenario.py`` resolves them). The generator
    keeps its own RNG; two generators built with the same seed produce identical sequences.
    """

    def __init__(
        self,
        sources: list[tuple[int, int, Arrivals, float]],
        classes: list[TaskClassConfig],
        seed: int,
        window_s: float = 0.005,
    ) -> None:
        self.rng = np.random.default_rng(seed)
        self.classes = classes
        self._sources = []
        self._traces = replays_for([s for s in sources if isinstance(s[2], TraceArrivals)])
        max_jitter = 0.0
        for factory, cls, spec, scale in sources:
            if isinstance(spec, TraceArrivals):
                continue
            if isinstance(spec, PeriodicArrivals):
                src: _PeriodicSource | _PoissonSource = _PeriodicSource(spec, scale, self.rng)
                max_jitter = max(max_jitter, spec.jitter_us * 1e-6)
            else:
                src = _PoissonSource(spec, scale)
            self._sources.append((factory, cls, src))
        self.window_s = max(window_s, 2 * max_jitter)
        self.t = 0.0

    @property
    def exhausted(self) -> bool:
        """True once no source will produce another task (only traces that do not loop end)."""
        return not self._sources and all(r.done for r in self._traces)

    def next_batch(self) -> ArrivalBatch:
        """Arrivals in the next window [t, t + window_s), sorted by time."""
        t0, t1 = self.t, self.t + self.window_s
        self.t = t1
        empty = np.empty(0, dtype=np.int64)
        times, clss, facs = [np.empty(0)], [empty], [empty]
        for factory, cls, src in self._sources:
            ts = src.emit(t0, t1, self.rng)
            times.append(ts)
            clss.append(np.full(ts.size, cls, dtype=np.int64))
            facs.append(np.full(ts.size, factory, dtype=np.int64))
        time_s = np.concatenate(times)
        order = np.argsort(time_s, kind="stable")
        time_s = time_s[order]
        cls_arr = np.concatenate(clss)[order]
        fac_arr = np.concatenate(facs)[order]
        n = time_s.size
        up = np.empty(n)
        down = np.empty(n)
        work = np.empty(n)
        for c, spec in enumerate(self.classes):
            sel = np.flatnonzero(cls_arr == c)
            if sel.size:
                up[sel] = sample(spec.up_bytes, self.rng, sel.size)
                down[sel] = sample(spec.down_bytes, self.rng, sel.size)
                work[sel] = sample(spec.compute_us, self.rng, sel.size) * 1e-6
        batch = ArrivalBatch(time_s, cls_arr, fac_arr, up, down, work)
        recorded = [part for r in self._traces if (part := r.emit(t1))]
        return _merge(batch, recorded) if recorded else batch


def _merge(batch: ArrivalBatch, recorded: list[dict[str, np.ndarray]]) -> ArrivalBatch:
    """``batch`` and replayed trace tasks (``ArrivalBatch`` columns) in one batch, by time
    (stable: on equal times generated tasks first, then the traces in order)."""
    names = ("time_s", "cls", "factory", "up_bytes", "down_bytes", "work_s")
    cols = [np.concatenate([getattr(batch, n), *(r[n] for r in recorded)]) for n in names]
    order = np.argsort(cols[0], kind="stable")
    return ArrivalBatch(*(c[order] for c in cols))


__all__ = ["DEFAULT_CLASSES", "PROFILES", "ArrivalBatch", "WorkloadEndedError", "WorkloadGenerator"]

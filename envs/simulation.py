"""Run a scenario for a stretch of simulated time under a placement rule.

A *placement rule* is any callable ``choose(engine, arrival) -> slot``. ``nearest_slot`` is the
engine-native rule (first feasible slot: slots are ordered by base latency); observation-based
policies from ``agents`` are adapted to this signature by the CLI.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from millinet.envs.engine import Arrival, Engine
from millinet.envs.features import FEATURE_CLIP
from millinet.envs.metrics import summarize
from millinet.envs.network import CandidateSet
from millinet.envs.scenario import Scenario
from millinet.envs.workload import WorkloadEndedError

Chooser = Callable[[Engine, Arrival], int]


def nearest_slot(engine: Engine, arrival: Arrival) -> int:
    """The feasible candidate of minimum propagation (``base_rtt``), ties to the lowest slot.

    Returns slot 0 if none is feasible (a rejection). This is the engine-native form of the
    ``nearest`` heuristic of ``millinet.agents.heuristics`` and agrees with it exactly: propagation
    is compared as the observation carries it (``rtt / deadline`` in float32). Slots are ordered
    by site distance, then path latency, so without faults this is the first slot; but a
    second path to a near site can be slower than the first path to the next site, which
    matters once a fault masks the near site's first path.
    """
    mask = engine.mask(arrival)
    for k in _nearest_order(engine.candidates(arrival), engine.deadline_s[arrival.cls]):
        if mask[k]:
            return k
    return 0


_NEAREST_ORDER: dict[tuple[int, float], tuple[CandidateSet, list[int]]] = {}


def _nearest_order(cset: CandidateSet, deadline_s: float) -> list[int]:
    """Slots sorted by the observation's ``rtt_per_deadline`` (stable: ties keep slot order).

    Cached per candidate set and deadline; the entry holds the set, so its id stays unique."""
    key = (id(cset), deadline_s)
    hit = _NEAREST_ORDER.get(key)
    if hit is None or hit[0] is not cset:
        if len(_NEAREST_ORDER) > 4096:
            _NEAREST_ORDER.clear()
        # exactly millinet.envs.features.featurize_rows: rtt_us * (1 / deadline_us), float32,
        # clipped
        deadline_us = deadline_s * 1e6
        inv = 1.0 / deadline_us if deadline_us > 1.0 else 1.0
        ratio = ((cset.base_rtt_s * 1e6) * inv).astype(np.float32)
        np.minimum(ratio, FEATURE_CLIP, out=ratio)
        order = np.argsort(ratio, kind="stable").tolist()
        hit = _NEAREST_ORDER[key] = (cset, order)
    return hit[1]


@dataclass
class SimulationResult:
    """Records, metrics and cost of one simulation run."""

    records: np.ndarray
    metrics: dict
    utilisation: dict
    simulated_s: float
    wall_s: float

    @property
    def tasks_per_s(self) -> float:
        """Finished tasks per second of wall time."""
        return self.records.size / self.wall_s if self.wall_s > 0 else float("nan")


def simulate(
    scenario: Scenario,
    choose: Chooser,
    duration_s: float,
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
) -> SimulationResult:
    """Admit arrivals in [0, duration_s), place each with ``choose``, then drain in-flight tasks.

    ``progress`` (optional) is called with the simulated time (s) about every 10 ms simulated.
    A ``duration_s`` whose tasks would not fit (``Scenario.check_tasks``) is a ScenarioError.
    """
    scenario.check_tasks(duration_s, "duration_s")
    engine = Engine(scenario, seed)
    start = time.perf_counter()
    next_report = 0.0
    while True:
        try:
            arrival = engine.next_arrival()
        except WorkloadEndedError:  # a trace without loop ended before duration_s
            break
        if arrival.time_s >= duration_s:
            break
        engine.dispatch(arrival, choose(engine, arrival))
        if progress is not None and arrival.time_s >= next_report:
            progress(arrival.time_s)
            next_report += 0.01
    engine.drain()
    wall = time.perf_counter() - start
    records = engine.record_array()
    return SimulationResult(
        records,
        summarize(records, scenario.classes),
        engine.utilisation(duration_s),
        duration_s,
        wall,
    )

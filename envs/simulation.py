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

from envs.engine import Arrival, Engine
from envs.metrics import summarize
from envs.scenario import Scenario

Chooser = Callable[[Engine, Arrival], int]


def nearest_slot(engine: Engine, arrival: Arrival) -> int:
    """Lowest-latency feasible candidate: the first feasible slot (slots are ordered by
    site distance, then path latency). Returns slot 0 if none is feasible (a rejection)."""
    mask = engine.mask(arrival)
    for k in range(mask.size):
        if mask[k]:
            return k
    return 0


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
    """
    engine = Engine(scenario, seed)
    start = time.perf_counter()
    next_report = 0.0
    while True:
        arrival = engine.next_arrival()
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

"""Tiny instances for the lower bound's exhaustive-search test, and the engine as their judge.

An instance is a small explicit city (one or two factories, an edge and a city site, slow
links, one- or two-server pools, K = 4 candidate slots of which 3 exist), a fixed list of a
handful of arrivals, and optionally FIFO or strict-priority links, a drop-tail limit and a
scheduled fault. :func:`exhaustive_optimum` runs the real engine on every assignment of a
slot (or a rejection) to every task and returns the fewest violations any policy can get.
``experiments/scripts/bound_results.py`` reuses this module for its tightness sweep.
"""

from __future__ import annotations

import itertools

import numpy as np

from millinet.envs.engine import ON_TIME, Engine
from millinet.envs.metrics import ONE_MS_US
from millinet.envs.scenario import Scenario, load_scenario
from millinet.envs.workload import ArrivalBatch, WorkloadEndedError

REJECT = -1
"""An out-of-range slot: the engine rejects the task (a drop). Every policy may do this."""


class FixedArrivals:
    """A workload that releases one fixed batch and then ends (the engine raises
    ``WorkloadEndedError`` at the next arrival, as after a trace without loop)."""

    def __init__(self, batch: ArrivalBatch) -> None:
        self._batch: ArrivalBatch | None = batch

    @property
    def exhausted(self) -> bool:
        return self._batch is None

    def next_batch(self) -> ArrivalBatch:
        batch, self._batch = self._batch, None
        if batch is None:
            raise AssertionError("the engine asked an ended workload for more tasks")
        return batch


def with_arrivals(scenario: Scenario, batch: ArrivalBatch) -> Scenario:
    """``scenario`` whose engine sees exactly ``batch`` (every seed)."""
    scenario.workload = lambda _seed: FixedArrivals(batch)  # type: ignore[method-assign]
    return scenario


def _city(rng: np.random.Generator) -> tuple[dict, int]:
    """A random tiny city (dict for ``load_scenario``) and its number of factories."""

    def gbps() -> float:
        return float(rng.choice([0.02, 0.05, 0.2, 1.0]))

    nodes = [
        {"name": "acc", "role": "access", "x_km": 0, "y_km": 0},
        {"name": "agg", "role": "aggregation", "x_km": float(rng.uniform(5, 40)), "y_km": 0},
        {"name": "edge", "role": "edge", "x_km": 0, "y_km": 1,
         "pools": {"cpu": {"servers": 1, "speed": float(rng.choice([0.5, 1.0, 2.0]))},
                   "gpu": {"servers": 1}}},
        {"name": "city", "role": "city", "x_km": 10, "y_km": 5,
         "pools": {"cpu": {"servers": int(rng.integers(1, 3))},
                   "gpu": {"servers": 1, "speed": 2.0}}},
    ]  # fmt: skip
    links = [
        {"a": "acc", "b": "agg", "capacity_gbps": gbps(), "forwarding_us": 5},
        {"a": "acc", "b": "edge", "capacity_gbps": gbps(), "forwarding_us": 2},
        {"a": "agg", "b": "city", "capacity_gbps": gbps(), "forwarding_us": 2},
        {"a": "acc", "b": "city", "capacity_gbps": gbps(), "forwarding_us": 5,
         "length_km": float(rng.uniform(10, 60))},
    ]  # fmt: skip
    faults = []
    if rng.random() < 0.3:
        down = float(rng.uniform(0, 300e-6))
        faults.append(
            {
                "element": str(rng.choice(["acc--agg", "acc--city", "edge"])),
                "down_at_s": down,
                "up_at_s": down + float(rng.uniform(50e-6, 500e-6)),
            }
        )
    network: dict = {"link_scheduling": str(rng.choice(["fifo", "strict_priority"]))}
    if rng.random() < 0.3:
        network["queue_limit_bytes"] = float(rng.choice([800, 3000]))
    n_factories = int(rng.integers(1, 3))
    factories = [
        {
            "name": f"plant{i}",
            "profile": "custom",
            "attach": "acc" if i == 0 else "agg",
            "uplink_km": 1.0,
            "uplink_gbps": float(rng.choice([0.05, 0.5])),
            "on_prem": {"cpu": {"servers": 0}, "gpu": {"servers": 0}},
            "workload": {"robot_sync": {"process": "poisson", "rate_per_s": 1.0}},
        }
        for i in range(n_factories)
    ]
    city = {
        "name": "tiny",
        "topology": {"generator": "explicit", "nodes": nodes, "links": links},
        "candidates": {"sites": 2, "paths": 2},
        "network": network,
        "classes": {
            "agv_dispatch": {"deadline_us": float(rng.choice([1500, 3000]))},
            "vision_qa": {"deadline_us": float(rng.choice([800, 2000]))},
        },
        "faults": {"scheduled": faults},
        "factories": factories,
    }
    return city, n_factories


def tiny_instance(seed: int, n_tasks: int = 4) -> Scenario:
    """A random tiny city with ``n_tasks`` arrivals in the first 300 µs (all classes)."""
    rng = np.random.default_rng(seed)
    city, n_factories = _city(rng)
    scenario = load_scenario(city)
    batch = ArrivalBatch(
        time_s=np.sort(rng.uniform(0, 300e-6, n_tasks)),
        cls=rng.choice([0, 0, 1, 2], n_tasks).astype(np.int64),
        factory=rng.integers(0, n_factories, n_tasks).astype(np.int64),
        up_bytes=rng.uniform(50, 1000, n_tasks),
        down_bytes=rng.uniform(50, 1000, n_tasks),
        work_s=rng.uniform(30e-6, 300e-6, n_tasks),
    )
    return with_arrivals(scenario, batch)


def _admitted(engine: Engine, duration_s: float, *slots: int) -> list[int]:
    """Dispatch the arrivals before ``duration_s`` in order, the i-th to ``slots[i]`` (the
    last slot repeats), as ``simulate`` admits them; returns their task ids."""
    ids = []
    while True:
        try:
            arrival = engine.next_arrival()
        except WorkloadEndedError:
            return ids
        if arrival.time_s >= duration_s:
            return ids
        engine.dispatch(arrival, slots[min(len(ids), len(slots) - 1)])
        ids.append(arrival.task_id)


def exhaustive_optimum(scenario: Scenario, duration_s: float = 1.0) -> tuple[int, float]:
    """The fewest 1 ms violations and the least weighted violations over every assignment.

    Each task gets every slot 0..K-1 and :data:`REJECT`; the engine runs each assignment from
    an empty network to the end and counts late and dropped tasks. The two minima may come
    from different assignments (each objective is bounded on its own).
    """
    engine = Engine(scenario, 0)
    n = len(_admitted(engine, duration_s, REJECT))
    weight = np.array([c.weight for c in scenario.classes])
    tight = np.array([c.deadline_us <= ONE_MS_US for c in scenario.classes])
    best_1ms, best_weighted = n, float("inf")
    for assignment in itertools.product(range(REJECT, scenario.network.K), repeat=n):
        engine.reset(0)
        _admitted(engine, duration_s, *assignment)
        engine.drain()
        records = engine.record_array()
        violated = records["status"] != ON_TIME
        best_1ms = min(best_1ms, int((violated & tight[records["cls"]]).sum()))
        best_weighted = min(best_weighted, float(weight[records["cls"]][violated].sum()))
    return best_1ms, best_weighted

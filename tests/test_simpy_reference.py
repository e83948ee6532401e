"""Anchor (DESIGN.md section 5): an independent SimPy model, fed the same arrivals and
decisions as the engine, gives the same per-task latencies (to 1 ns, for every task).

The scenario is small but busy: three factories share an aggregation node, two edge/city sites
are reachable over several paths of 2-4 hops, links run at 1 Gbit/s and pools have 1-3
servers, so both link and compute queues form. Decisions are random feasible slots from a
fixed-seed RNG; the test also checks that queueing really happened, so it cannot pass on an
idle network where any model gives the same answer.
"""

import numpy as np
import pytest
from simpy_reference import simulate_reference

from millinet.envs.engine import DROPPED
from millinet.envs.scenario import load_scenario
from millinet.experiments.bench.benchmarks import reference_latencies, traced_run

TOLERANCE_S = 1e-9


def _poisson(rate: float) -> dict:
    return {"process": "poisson", "rate_per_s": rate}


def contention_scenario(link_scheduling: str = "fifo") -> dict:
    """Three factories, 5 network nodes, 2 compute sites, 1 Gbit/s links, small pools."""
    nodes = [
        {"name": "acc-w", "role": "access", "x_km": 0, "y_km": 0},
        {"name": "acc-e", "role": "access", "x_km": 6, "y_km": 0},
        {"name": "agg", "role": "aggregation", "x_km": 3, "y_km": 3},
        {"name": "core-1", "role": "core", "x_km": 0, "y_km": 8},
        {"name": "core-2", "role": "core", "x_km": 6, "y_km": 8},
        {
            "name": "edge",
            "role": "edge",
            "x_km": 3,
            "y_km": 4,
            "pools": {"cpu": {"servers": 1}, "gpu": {"servers": 1}},
        },
        {
            "name": "city",
            "role": "city",
            "x_km": 3,
            "y_km": 10,
            "pools": {"cpu": {"servers": 3, "speed": 1.5}, "gpu": {"servers": 1, "speed": 1.5}},
        },
    ]
    pairs = [
        ("acc-w", "agg"),
        ("acc-e", "agg"),
        ("acc-w", "acc-e"),
        ("agg", "edge"),
        ("agg", "core-1"),
        ("agg", "core-2"),
        ("core-1", "core-2"),
        ("core-1", "city"),
        ("core-2", "city"),
    ]
    links = [{"a": a, "b": b, "capacity_gbps": 1.0, "forwarding_us": 3.0} for a, b in pairs]
    workload = {
        "robot_sync": _poisson(6_000),
        "agv_dispatch": _poisson(1_500),
        "vision_qa": _poisson(150),
    }
    factories = [
        {
            "name": name,
            "profile": "custom",
            "attach": attach,
            "uplink_km": 1.0,
            "uplink_gbps": 2.0,
            "uplink_forwarding_us": 2.0,
            "on_prem": {},
            "workload": workload,
        }
        for name, attach in (("plant-w", "acc-w"), ("plant-e", "acc-e"), ("plant-c", "agg"))
    ]
    return {
        "name": "simpy-contention",
        "topology": {"generator": "explicit", "nodes": nodes, "links": links},
        "network": {"link_scheduling": link_scheduling},
        "candidates": {"sites": 2, "paths": 3},
        "classes": {
            "robot_sync": {
                "up_bytes": {"dist": "uniform", "low": 200, "high": 3_000},
                "down_bytes": {"dist": "uniform", "low": 100, "high": 1_500},
                "compute_us": {"dist": "exponential", "mean": 50},
            },
            "agv_dispatch": {"compute_us": {"dist": "exponential", "mean": 300}},
            "vision_qa": {
                "up_bytes": {"dist": "uniform", "low": 20_000, "high": 150_000},
                "compute_us": {"dist": "uniform", "low": 500, "high": 2_500},
            },
        },
        "factories": factories,
    }


def random_feasible(seed: int):
    """A chooser picking a uniformly random feasible slot with a fixed-seed RNG."""
    rng = np.random.default_rng(seed)

    def choose(engine, arrival):
        return int(rng.choice(np.flatnonzero(engine.mask(arrival))))

    return choose


@pytest.mark.parametrize("link_scheduling", ["fifo", "strict_priority"])
def test_engine_matches_simpy_task_by_task(link_scheduling):
    scenario = load_scenario(contention_scenario(link_scheduling))
    records, trace = traced_run(scenario, random_feasible(11), duration_s=0.15, seed=5)
    assert len(trace) > 3_000 and len(trace) == records.size
    assert not (records["status"] == DROPPED).any()

    ref = reference_latencies(scenario, trace, strict_priority=link_scheduling != "fifo")
    by_id = np.sort(records, order="task_id")
    assert by_id["task_id"].tolist() == trace.task_id
    diff = np.abs(by_id["latency_s"] - ref)
    worst = int(np.argmax(diff))
    assert diff[worst] < TOLERANCE_S, (
        f"task {trace.task_id[worst]}: engine {by_id['latency_s'][worst] * 1e6:.4f} us, "
        f"SimPy {ref[worst] * 1e6:.4f} us ({int((diff >= TOLERANCE_S).sum())} tasks differ)"
    )

    # Not trivial: a large share of tasks queued on a link and at a compute pool, both the
    # 1 ms class and the others, several paths and both sites were used.
    assert (by_id["link_wait_s"] > 0).mean() > 0.3
    assert (by_id["compute_wait_s"] > 0).mean() > 0.2
    assert by_id["latency_s"].max() > 5 * np.median(by_id["latency_s"])
    assert len(set(by_id["slot"].tolist())) >= 4 and len(set(by_id["site"].tolist())) == 2
    assert max(len(t) for t in trace.trips) >= 9  # 4 hops up, pool, 4 hops down


def test_strict_priority_changes_the_answer():
    """The SimPy model distinguishes FIFO from strict priority on this trace (so the
    priority comparison above is not FIFO twice)."""
    scenario = load_scenario(contention_scenario("strict_priority"))
    _, trace = traced_run(scenario, random_feasible(11), duration_s=0.05, seed=5)
    fifo = reference_latencies(scenario, trace, strict_priority=False)
    prio = reference_latencies(scenario, trace, strict_priority=True)
    assert np.abs(fifo - prio).max() > 1e-6


def test_reference_model_by_hand():
    """Two tasks on one 1-server pool behind a single link: checked with pencil and paper."""
    # queue 0: 1e-6 s/B, 10 us delay; queue 1 (down): 2e-6 s/B, 10 us delay; pool 0: 1 server
    lat = simulate_reference(
        arrival_s=[0.0, 1e-6],
        trips=[(0, -1, 1), (0, -1, 1)],
        up_bytes=[100, 50],
        down_bytes=[10, 10],
        work_s=[200e-6, 100e-6],
        q_s_per_byte=[1e-6, 2e-6],
        q_delay_s=[10e-6, 10e-6],
        pool_servers=[1],
        pool_speed=[2.0],
    )
    # task 0: link 0-100 us, arrives at pool 110, served 110-210 (200/2), down 210-230, +10.
    # task 1: waits for link until 100, sends 100-150, pool at 160 but busy until 210,
    #         served 210-260, down 260-280, +10 -> 290, latency 289 us.
    np.testing.assert_allclose(lat, [240e-6, 289e-6], rtol=0, atol=1e-12)

"""Link and node faults: drops of in-flight tasks, the action mask, random faults per seed.

A small explicit city gives two routes from a factory to a city site: the short one over core
node m1 and a longer one over m2. Which tasks must be dropped is derived here from the hop
delays (physics) and the workload bounds, not read from the engine.
"""

from __future__ import annotations

import numpy as np
import pytest

from millinet.envs.config import CLASS_NAMES
from millinet.envs.engine import DROP_FAILED, DROPPED, Arrival, Engine
from millinet.envs.scenario import load_scenario
from millinet.envs.simulation import nearest_slot, simulate

C_KM_PER_S = 299_792.458
SMF = 1.4682
ROBOT = CLASS_NAMES.index("robot_sync")
VISION = CLASS_NAMES.index("vision_qa")
DOWN, UP = 0.020, 0.040  # outage window (s)


def hop_s(km: float, fwd_us: float) -> float:
    return km * SMF / C_KM_PER_S + fwd_us * 1e-6


def two_route_city(faults: list[dict], with_edge: bool = False) -> dict:
    """Factory f on access a; city site dc over m1 (10 + 10 km) or over m2 (15 + 15 km)."""
    nodes = [
        {"name": "a", "role": "access", "x_km": 0, "y_km": 0},
        {"name": "m1", "role": "core", "x_km": 10, "y_km": 0},
        {"name": "m2", "role": "core", "x_km": 0, "y_km": 15},
        {"name": "dc", "role": "city", "x_km": 10, "y_km": 15},
    ]
    links = [
        {"a": "a", "b": "m1", "length_km": 10},
        {"a": "m1", "b": "dc", "length_km": 10},
        {"a": "a", "b": "m2", "length_km": 15},
        {"a": "m2", "b": "dc", "length_km": 15},
    ]
    if with_edge:  # a farther edge site behind m2, so a failed dc leaves somewhere to go
        nodes.append({"name": "e", "role": "edge", "x_km": 0, "y_km": 40})
        links.append({"a": "m2", "b": "e", "length_km": 25})
    return {
        "name": "two-routes",
        "topology": {"generator": "explicit", "nodes": nodes, "links": links},
        "candidates": {"sites": 2, "paths": 2},
        "factories": [
            {
                "name": "f",
                "profile": "custom",
                "attach": "a",
                "uplink_km": 2.0,
                "uplink_forwarding_us": 5.0,
                "on_prem": {},
                "workload": {
                    "robot_sync": {
                        "process": "periodic",
                        "streams": 40,
                        "period_min_us": 1000,
                        "period_max_us": 1000,
                    },
                },
            }
        ],
        "faults": {"scheduled": faults},
    }


def fake_arrival(cls: int, factory: int = 0, t: float = 0.0) -> Arrival:
    return Arrival(0, t, cls, factory, 100.0, 100.0, 50e-6)


def slot_links(scenario, factory: int, resource: str) -> list[set[int] | None]:
    return [
        None if c is None else set(c.links)
        for c in scenario.network.candidates[factory][resource].slots
    ]


# --------------------------------------------------------------------------- link failure
@pytest.fixture(scope="module")
def link_outage():
    scenario = load_scenario(
        two_route_city([{"element": "m1--dc", "down_at_s": DOWN, "up_at_s": UP}])
    )
    return scenario, simulate(scenario, nearest_slot, 0.06, seed=2).records


def test_slot_zero_is_the_route_over_the_failing_link(link_outage):
    scenario, _ = link_outage
    topo = scenario.topology
    failed = topo.find_link(topo.index["m1"], topo.index["dc"])
    links = slot_links(scenario, 0, "cpu")
    assert failed in links[0] and failed not in links[1]


def test_tasks_crossing_the_link_during_the_outage_are_dropped(link_outage):
    _, rec = link_outage
    to_m1 = hop_s(2.0, 5.0) + hop_s(10.0, 5.0)  # factory -> a -> m1: arrival at the m1->dc queue
    m1_dc = hop_s(10.0, 5.0)
    eps = 2e-6  # serialisation of <= 300 B and the odd collision on a 10G uplink
    must_drop = must_complete = 0
    for r in rec:
        t0, dropped = r["arrival_s"], r["status"] == DROPPED
        if dropped:
            assert r["reason"] == DROP_FAILED
            assert r["slot"] == 0 and t0 < DOWN  # only tasks already on their way
        if t0 < DOWN:
            assert r["slot"] == 0
            if t0 + to_m1 > DOWN + eps:  # reaches the dead link (uplink) after it failed
                assert dropped, r
                must_drop += 1
            # back on dc->m1 at the latest after 100 us of compute: still before the failure
            elif t0 + to_m1 + m1_dc + 100e-6 + eps < DOWN:
                assert not dropped, r
                must_complete += 1
        elif t0 < UP:  # masked: placed on the detour, completes
            assert r["slot"] == 1 and not dropped, r
        else:  # recovered: back on the short route
            assert r["slot"] == 0 and not dropped, r
    assert must_drop >= 3 and must_complete > 500
    assert (rec["reason"] == DROP_FAILED).sum() >= must_drop


def test_mask_follows_the_outage():
    scenario = load_scenario(
        two_route_city([{"element": "m1--dc", "down_at_s": DOWN, "up_at_s": UP}])
    )
    engine = Engine(scenario, seed=0)
    arrival = fake_arrival(ROBOT)
    seen = []
    for t in (0.010, 0.0199, 0.020, 0.030, 0.0399, 0.040, 0.050):
        engine.advance(t)
        seen.append(engine.mask(arrival)[:2].tolist())
    ok, detour = [True, True], [False, True]
    assert seen == [ok, ok, detour, detour, detour, ok, ok]


# --------------------------------------------------------------------------- node failure
def test_node_failure_fails_its_links():
    scenario = load_scenario(two_route_city([{"element": "m1", "down_at_s": DOWN, "up_at_s": UP}]))
    engine = Engine(scenario, seed=0)
    engine.advance(0.03)
    assert engine.mask(fake_arrival(ROBOT))[:2].tolist() == [False, True]
    rec = simulate(scenario, nearest_slot, 0.05, seed=1).records
    failed = rec[rec["status"] == DROPPED]
    assert failed.size >= 3
    assert (failed["reason"] == DROP_FAILED).all() and (failed["slot"] == 0).all()
    during = rec[(rec["arrival_s"] >= DOWN) & (rec["arrival_s"] < UP)]
    assert during.size > 500 and (during["slot"] == 1).all()


def test_node_failure_of_a_site_fails_its_compute_pools():
    scenario = load_scenario(
        two_route_city([{"element": "dc", "down_at_s": DOWN, "up_at_s": UP}], with_edge=True)
    )
    topo = scenario.topology
    cpu = scenario.network.candidates[0]["cpu"]
    sites = [None if c is None else topo.nodes[c.site].name for c in cpu.slots]
    assert sites[:2] == ["dc", "dc"] and sites[2] == "e"
    engine = Engine(scenario, seed=0)
    before = engine.mask(fake_arrival(ROBOT)).copy()
    engine.advance(0.03)
    during = engine.mask(fake_arrival(ROBOT)).copy()
    engine.advance(0.045)
    after = engine.mask(fake_arrival(ROBOT)).copy()
    assert before.tolist() == cpu.present.tolist() == after.tolist()
    # every slot that ends at dc (its pool is down) or passes through it (its links are down)
    paths = [[topo.nodes[n].name for n in c.path] for c in cpu.slots]
    assert during.tolist() == ["dc" not in p for p in paths] == [False, False, True, False]
    rec = simulate(scenario, nearest_slot, 0.05, seed=4).records
    dropped = rec[rec["status"] == DROPPED]
    assert dropped.size >= 1 and (dropped["reason"] == DROP_FAILED).all()
    assert (dropped["arrival_s"] < DOWN).all() and (dropped["arrival_s"] > DOWN - 200e-6).all()
    # Tasks already on the last span when dc fails reach its dead pool: dropped unserved.
    # (Had only the links failed, the pool would serve them and the drop would come on the
    # way back, with compute time recorded.)
    to_m1 = hop_s(2.0, 5.0) + hop_s(10.0, 5.0)
    to_dc = to_m1 + hop_s(10.0, 5.0)
    eps = 2e-6
    at_pool = dropped[(dropped["arrival_s"] + to_m1 < DOWN - eps)]
    at_pool = at_pool[at_pool["arrival_s"] + to_dc > DOWN + eps]
    assert at_pool.size >= 1 and (at_pool["compute_s"] == 0).all()
    window = rec[(rec["arrival_s"] >= DOWN) & (rec["arrival_s"] < UP)]
    assert (window["site"] == topo.index["e"]).all()


# --------------------------------------------------------------------------- shipped scenario
def test_link_failure_scenario_masks_exactly_the_candidates_over_the_link():
    scenario = load_scenario("link-failure")
    topo = scenario.topology
    (fault,) = scenario.config.faults.scheduled
    a, b = fault.element.split("--")
    failed = topo.find_link(topo.index[a], topo.index[b])
    assert scenario.scheduled_faults == [
        (fault.down_at_s, "link", failed, False),
        (fault.up_at_s, "link", failed, True),
    ]
    engine = Engine(scenario, seed=0)
    mid = (fault.down_at_s + fault.up_at_s) / 2
    checks = 0
    for t, outage in ((fault.down_at_s / 2, False), (mid, True), (fault.up_at_s + 0.01, False)):
        engine.advance(t)
        for f in range(len(scenario.factory_names)):
            for cls, resource in ((ROBOT, "cpu"), (VISION, "gpu")):
                links = slot_links(scenario, f, resource)
                expected = [ls is not None and not (outage and failed in ls) for ls in links]
                assert engine.mask(fake_arrival(cls, f, t)).tolist() == expected
                checks += outage and not all(
                    expected[k] == (ls is not None) for k, ls in enumerate(links)
                )
    assert checks >= 1  # the outage does cut some candidate


# --------------------------------------------------------------------------- random faults
def _mask_trace(scenario, seed: int) -> list[tuple]:
    engine = Engine(scenario, seed=seed)
    trace = []
    for step in range(1, 101):
        engine.advance(step * 1e-3)
        trace.append(
            tuple(
                tuple(engine.mask(fake_arrival(cls, f)).tolist())
                for f in range(len(scenario.factory_names))
                for cls in (ROBOT, VISION)
            )
        )
    return trace


@pytest.fixture(scope="module")
def flaky_city():
    return load_scenario(
        {
            "extends": "sunflower-metro",
            "faults": {"random": {"link_mtbf_s": 0.2, "link_mttr_s": 0.02}},
        }
    )


def test_random_faults_are_deterministic_per_seed(flaky_city):
    a, b, c = _mask_trace(flaky_city, 5), _mask_trace(flaky_city, 5), _mask_trace(flaky_city, 6)
    assert a == b and a != c
    assert len(set(a)) > 3  # faults do come and go within 0.1 s (42 links, MTBF 0.2 s)
    x = simulate(flaky_city, nearest_slot, 0.05, seed=5).records
    y = simulate(flaky_city, nearest_slot, 0.05, seed=5).records
    for name in x.dtype.names:
        np.testing.assert_array_equal(x[name], y[name])


def test_random_faults_spare_the_factory_lan(flaky_city):
    """Only links between network nodes fail: the on-prem slot (LAN) is always feasible."""
    for trace in (_mask_trace(flaky_city, 5), _mask_trace(flaky_city, 9)):
        for masks in trace:
            for m in masks[:6]:  # the car plants and the display fab have on-prem CPU and GPU
                assert m[0]

"""Reported telemetry against outside anchors (DESIGN §5):

* the limit: with period -> 0 and no delay, reported mode decides exactly like the oracle;
* a report's values are the engine's state at the report's time (checked by replaying the same
  decisions in a second engine stopped at that time);
* a report's delay is the fiber's physics plus the processing delay; a scheduler reads its
  own node's interfaces directly;
* reports are deterministic per seed, and their clocks' phases differ across seeds;
* the stale-information result (Mitzenmacher 2000): greedy choice beats random choice on
  fresh information and loses to it on old information;
* a scheduler's own unreported dispatches are exactly its decisions since the report (its
  factory's with per-factory schedulers, everyone's with a central one), counted independently
  from the decision log.
"""

from __future__ import annotations

import numpy as np
import pytest

from millinet.agents.specs import chooser_for
from millinet.envs.engine import Engine
from millinet.envs.errors import ScenarioError
from millinet.envs.features import TELEMETRY_FIELDS
from millinet.envs.physics import propagation_s
from millinet.envs.scenario import load_scenario
from millinet.envs.seeds import VALIDATION
from millinet.envs.simulation import simulate
from millinet.envs.stats import t_interval

COL = {name: i for i, name in enumerate(TELEMETRY_FIELDS)}


def variant(telemetry: dict, load_scale: float = 1.0, base: str = "sunflower-metro") -> dict:
    return {"extends": base, "load_scale": load_scale, "telemetry": telemetry}


INSTANT = {"mode": "reported", "period_us": 1e-3, "processing_us": 0.0, "propagation": False}


@pytest.mark.parametrize(
    "policy", ["earliest-finish", "earliest-finish-own", "deadline-aware", "power-of-d"]
)
def test_reports_in_the_limit_decide_exactly_like_the_oracle(policy):
    """Period 1 ns, no processing, no fiber delay: every report is measured a nanosecond ago
    and nothing is unreported, so every observation, decision and record equals the oracle's.
    At 1.5x load and per-factory schedulers the pools are often full, so every column counts."""
    records = []
    for telemetry in ({"mode": "oracle"}, dict(INSTANT, scheduler="per_factory")):
        scenario = load_scenario(variant(telemetry, load_scale=1.5))
        result = simulate(scenario, chooser_for(policy, scenario, seed=7), 0.03, seed=11)
        records.append(result.records)
    oracle, reported = records
    assert oracle.size > 2_000
    for field in oracle.dtype.names:
        np.testing.assert_array_equal(oracle[field], reported[field], err_msg=field)


def test_staleness_changes_decisions():
    """The counterpart of the limit test: with 1 ms reports the same rule decides differently
    (otherwise the limit test could pass with telemetry that is never stale)."""
    slots = []
    for telemetry in ({"mode": "oracle"}, {"mode": "reported", "period_us": 1_000}):
        scenario = load_scenario(variant(telemetry, load_scale=1.5))
        result = simulate(scenario, chooser_for("earliest-finish", scenario), 0.03, seed=11)
        slots.append(result.records["slot"])
    assert (slots[0] != slots[1]).mean() > 0.02


def _run_recording(scenario, seed: int, policy: str, until_s: float):
    """Run ``policy`` under reported telemetry; at every 10th decision note, for each of the
    candidates' pools and link directions, the report the scheduler read. Returns the decisions
    (arrival time, slot) and the notes (kind, element, measured at, values)."""
    engine = Engine(scenario, seed)
    choose = chooser_for(policy, scenario)
    view = engine._view
    decisions, notes = [], []
    while (a := engine.next_arrival()).time_s < until_s:
        slot = choose(engine, a)
        if len(decisions) % 10 == 9:
            s = view.scheduler_of_factory[a.factory]
            cset = engine.candidates(a)
            view.refresh(s, engine.now)
            for q in set(cset.queues) - set(view.plan.local_q[s]):  # reported, not read directly
                drain = view.q_drain[s][q]
                measured = view.visible(q, view.phase_q[q], view.plan.delay_q[s][q], a.time_s)[0]
                notes.append(("link", q, measured, drain))
            for _, c in cset.live:
                report, _, _ = view.pool(s, c.pool)
                notes.append(("pool", c.pool, report[0], report[1:]))
        engine.dispatch(a, slot)
        decisions.append((a.time_s, slot))
    return decisions, notes


def _state_at(scenario, seed: int, decisions, t: float, kind: str, element: int):
    """Replay ``decisions`` in a fresh engine up to time ``t`` and read its state there."""
    engine = Engine(scenario, seed)
    for arrival_s, slot in decisions:
        if arrival_s > t:
            break
        engine.dispatch(engine.next_arrival(), slot)
    engine.advance(t)
    assert engine.now == t
    if kind == "link":
        drain = engine.link_drain_at(element, t)
        return drain if drain > t else t
    site = engine.net.pool_site[element]
    return (*engine.pool_state(element, t), engine.site_violation_at(site, t))


def test_a_report_equals_the_engine_state_at_its_measurement_time():
    telemetry = {"mode": "reported", "period_us": 700.0, "processing_us": 40.0,
                 "jitter_us": 200.0, "scheduler": "per_factory"}  # fmt: skip
    reported = load_scenario(variant(telemetry, load_scale=2.0))
    oracle = load_scenario(variant({"mode": "oracle"}, load_scale=2.0))
    decisions, notes = _run_recording(reported, 5, "earliest-finish", 0.03)
    rng = np.random.default_rng(0)
    notes = [n for n in notes if n[2] > 0]  # not the empty report before the first one arrives
    links = [n for n in notes if n[0] == "link" and n[3] > n[2]]  # a backlog was reported
    busy = [n for n in notes if n[0] == "pool" and n[3][0] > 0]
    idle = [n for n in notes if n[0] == "pool" and n[3][0] == 0]
    picked = [
        group[i]
        for group, size in ((links, 15), (busy, 20), (idle, 5))
        for i in rng.choice(len(group), size=size, replace=False)
    ]
    busy_seen = False
    for kind, element, measured, value in picked:
        assert measured < decisions[-1][0]
        expected = _state_at(oracle, 5, decisions, measured, kind, element)
        if kind == "link":
            assert value == pytest.approx(expected, abs=1e-12)
        else:
            busy, queued, work, mean, viol = value
            assert (busy, queued) == expected[:2]
            assert (work, mean, viol) == pytest.approx(expected[2:], abs=1e-12)
            busy_seen |= busy > 0
    assert busy_seen


def _two_site_city(telemetry: dict) -> dict:
    """A factory 20 km of SMF from an edge site and 60 km from a city site."""
    return {
        "name": "delays",
        "topology": {
            "generator": "explicit",
            "nodes": [
                {"name": "acc", "role": "access", "x_km": 0, "y_km": 0},
                {"name": "edge", "role": "edge", "pools": {"cpu": {"servers": 2}}},
                {"name": "city", "role": "city", "pools": {"cpu": {"servers": 8}}},
            ],
            "links": [
                {"a": "acc", "b": "edge", "length_km": 20.0, "forwarding_us": 5.0},
                {"a": "acc", "b": "city", "length_km": 60.0, "forwarding_us": 5.0},
            ],
        },
        "factories": [
            {
                "name": "plant",
                "profile": "custom",
                "attach": "acc",
                "uplink_km": 0.0,
                "uplink_forwarding_us": 0.0,
                "on_prem": {},
                "workload": {"robot_sync": {"process": "poisson", "rate_per_s": 2_000}},
            }
        ],
        "telemetry": telemetry,
    }


def test_report_delay_is_fiber_physics_plus_processing():
    scenario = load_scenario(
        _two_site_city({"mode": "reported", "processing_us": 30.0, "scheduler": "per_factory"})
    )
    plan = scenario.report_plan
    net = scenario.network
    nodes = {n.name: i for i, n in enumerate(scenario.topology.nodes)}
    edge_pool = net.pool_site.index(nodes["edge"])
    city_pool = net.pool_site.index(nodes["city"])
    # the edge site -> acc -> plant: 20 km of SMF + the access node's 5 us forwarding; the
    # plant's zero-length uplink adds no propagation and no forwarding
    edge_s = propagation_s(20.0, "smf") + 5e-6 + 30e-6
    city_s = propagation_s(60.0, "smf") + 5e-6 + 30e-6
    assert plan.delay_p[0][edge_pool] == pytest.approx(edge_s, rel=1e-9)
    assert plan.delay_p[0][city_pool] == pytest.approx(city_s, rel=1e-9)
    assert 4.85e-6 * 60 < city_s - 35e-6 < 4.95e-6 * 60  # ~4.9 us/km of SMF
    central = load_scenario(_two_site_city({"mode": "reported", "scheduler": "central"}))
    assert central.report_plan.scheduler_nodes == (nodes["city"],)  # the default controller
    assert central.report_plan.delay_p[0][city_pool] == pytest.approx(50e-6)  # processing only
    with pytest.raises(ScenarioError, match="telemetry.controller: no node named 'nowhere'"):
        load_scenario(
            _two_site_city({"mode": "reported", "scheduler": "central", "controller": "nowhere"})
        )
    with pytest.raises(ScenarioError, match="telemetry: a controller places a central"):
        load_scenario(_two_site_city({"mode": "reported", "controller": "edge"}))


def test_a_per_factory_scheduler_reads_its_own_uplink_directly():
    """The factory's uplink and LAN leave the scheduler's own node: their backlog in the
    reported view is the instantaneous one at every decision, while a link further away is
    seen through its reports (stale at least sometimes)."""
    scenario = load_scenario(variant({"mode": "reported", "period_us": 2_000.0}, 2.0))
    engine = Engine(scenario, 4)
    view, net = engine._view, scenario.network
    own = {q for f in range(len(net.factories)) for q in view.plan.local_q[f]}
    assert own and all(net.q_nodes[q][0] in net.factories for q in own)
    choose = chooser_for("earliest-finish", scenario)
    stale = 0
    for _ in range(3_000):
        a = engine.next_arrival()
        engine.telemetry_rows(a)  # refreshes the deciding scheduler's view
        s = view.scheduler_of_factory[a.factory]
        for q in view.plan.local_q[s]:
            assert view.q_drain[s][q] == engine.link_drain_now(q)
        far = [q for q in engine.candidates(a).queues if q not in view.plan.local_q[s]]
        stale += any(
            max(view.q_drain[s][q], a.time_s) != max(engine.link_drain_now(q), a.time_s)
            for q in far
        )
        engine.dispatch(a, choose(engine, a))
    assert stale > 50


def test_report_age_follows_the_period_and_the_delay():
    """Aligned clocks, 1 ms period: a report is visible from its measurement + delay until the
    next one is, so its age runs from the delay to the delay + one period."""
    scenario = load_scenario(
        _two_site_city(
            {"mode": "reported", "period_us": 1_000.0, "phase": "aligned", "processing_us": 30.0}
        )  # fmt: skip
    )
    engine = Engine(scenario, 0)
    delay_us = scenario.report_plan.delay_p[0][0] * 1e6
    ages = []
    while (a := engine.next_arrival()).time_s < 0.05:
        ages.append(engine.telemetry(a)[0, COL["report_age_us"]])
        engine.dispatch(a, 0)
    ages = np.array(ages[20:])  # after the first report arrived
    assert ages.min() >= delay_us - 1e-6 and ages.max() <= delay_us + 1_000.0 + 1e-6
    assert ages.max() - ages.min() > 900.0  # the age sweeps the whole period


def _telemetry_trace(scenario_dict: dict, seed: int, n: int = 400) -> np.ndarray:
    scenario = load_scenario(scenario_dict)
    engine = Engine(scenario, seed)
    out = []
    choose = chooser_for("earliest-finish", scenario)
    for _ in range(n):
        a = engine.next_arrival()
        out.append(engine.telemetry(a))
        engine.dispatch(a, choose(engine, a))
    return np.array(out)


def test_reports_are_deterministic_per_seed():
    spec = variant({"mode": "reported", "period_us": 500.0, "jitter_us": 100.0}, 1.5)
    first, again = _telemetry_trace(spec, 3), _telemetry_trace(spec, 3)
    np.testing.assert_array_equal(first, again)
    other = _telemetry_trace(spec, 4)
    ages = COL["report_age_us"]
    assert not np.array_equal(first[:, :, ages], other[:, :, ages])  # other phases


def _violation_rates(spec: dict, policy: str, seeds: list[int], duration_s: float) -> np.ndarray:
    scenario = load_scenario(spec)
    return np.array(
        [
            simulate(scenario, chooser_for(policy, scenario, seed=s), duration_s, seed=s).metrics[
                "violation_rate_1ms"
            ]
            for s in seeds
        ]
    )


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """95% t-interval of the mean paired difference a - b over seeds."""
    return t_interval(a - b)


SEEDS = VALIDATION.seeds(3)


def test_old_information_makes_greedy_choice_worse_than_random():
    """Mitzenmacher (2000): choosing the least loaded server on fresh load information beats
    random choice; on old information the herd makes it worse than random choice. Here at 2x
    load: earliest-finish (greedy, by estimated finish time) against random placement, paired
    over 3 validation seeds, with the gap's 95% t-interval away from 0 in both directions."""
    duration = 0.04
    fresh = variant({"mode": "oracle"}, load_scale=2.0)
    stale = variant({"mode": "reported", "period_us": 5_000.0}, load_scale=2.0)
    random_rates = _violation_rates(fresh, "random", SEEDS, duration)  # blind to telemetry
    _, _, fresh_high = _paired(_violation_rates(fresh, "earliest-finish", SEEDS, duration),
                               random_rates)  # fmt: skip
    _, stale_low, _ = _paired(_violation_rates(stale, "earliest-finish", SEEDS, duration),
                              random_rates)  # fmt: skip
    assert fresh_high < 0 < stale_low


@pytest.mark.parametrize("scheduler", ["per_factory", "central"])
def test_own_dispatches_are_the_schedulers_decisions_since_the_report(scheduler):
    spec = variant({"mode": "reported", "period_us": 800.0, "scheduler": scheduler}, 1.5)
    scenario = load_scenario(spec)
    engine = Engine(scenario, 9)
    choose = chooser_for("power-of-d", scenario, seed=9)
    log = []  # (time, factory, pool, work at that pool (us)) of every dispatch
    checked = 0
    while (a := engine.next_arrival()).time_s < 0.03:
        tel = engine.telemetry(a)
        if len(log) % 25 == 0:
            measured_at = a.time_s - tel[:, COL["report_age_us"]] * 1e-6
            for k, c in engine.candidates(a).live:
                mine = [
                    w for t, f, p, w in log
                    if p == c.pool and t >= measured_at[k] - 1e-12
                    and (scheduler == "central" or f == a.factory)
                ]  # fmt: skip
                assert tel[k, COL["own_dispatches"]] == len(mine)
                assert tel[k, COL["own_work_us"]] == pytest.approx(sum(mine), abs=1e-6)
                checked += len(mine) > 0
        slot = choose(engine, a)
        cand = engine.candidates(a).slots[slot]
        engine.dispatch(a, slot)
        log.append((a.time_s, a.factory, cand.pool, a.work_s / cand.speed * 1e6))
    assert checked > 50


def test_pool_measurements_obey_littles_law_and_utilisation():
    """An M/M/4 pool at 80% load, measured at Poisson arrival instants (which see time
    averages, PASTA): mean busy servers = lambda E[S] = 3.2, and mean queued tasks =
    lambda W_q (Little's law) with W_q the mean compute wait of the completed records. Both are
    computed without ``Engine.pool_state``, which they check."""
    rate, mean_us = 32_000.0, 100.0
    spec = {
        "name": "mmc",
        "topology": {
            "generator": "explicit",
            "nodes": [
                {"name": "acc", "role": "access"},
                {"name": "edge", "role": "edge", "pools": {"cpu": {"servers": 4}}},
            ],
            "links": [{"a": "acc", "b": "edge", "length_km": 1.0, "capacity_gbps": 400}],
        },
        "classes": {"robot_sync": {"compute_us": {"dist": "exponential", "mean": mean_us}}},
        "factories": [
            {
                "name": "plant",
                "profile": "custom",
                "attach": "acc",
                "on_prem": {},
                "workload": {"robot_sync": {"process": "poisson", "rate_per_s": rate}},
            }
        ],
    }
    engine = Engine(load_scenario(spec), 1)
    busy, queued = [], []
    while (a := engine.next_arrival()).time_s < 1.0:
        if a.time_s > 0.05:  # after warm-up
            b, q, _, _ = engine.pool_state(0, a.time_s)
            busy.append(b)
            queued.append(q)
        engine.dispatch(a, 0)
    engine.drain()
    rec = engine.record_array()
    rec = rec[rec["arrival_s"] > 0.05]
    assert np.mean(busy) == pytest.approx(rate * mean_us * 1e-6, rel=0.03)
    little = rate * rec["compute_wait_s"].mean()
    assert np.mean(queued) == pytest.approx(little, rel=0.05)
    assert little > 1.0  # a real queue (Erlang C: L_q = 2.39 at rho = 0.8, c = 4)


def test_the_oracle_view_of_a_reported_engine_is_the_oracle_engines_view():
    """``telemetry(arrival, oracle=True)`` (a privileged teacher's view) under reported
    telemetry equals the telemetry of an oracle-mode engine driven by the same decisions."""
    reported = Engine(load_scenario(variant({"mode": "reported"}, 1.5)), 2)
    oracle = Engine(load_scenario(variant({"mode": "oracle"}, 1.5)), 2)
    choose = chooser_for("earliest-finish", reported.scenario)
    differs = 0
    for _ in range(1_500):
        a, b = reported.next_arrival(), oracle.next_arrival()
        privileged = reported.telemetry(a, oracle=True)
        np.testing.assert_array_equal(privileged, oracle.telemetry(b))
        differs += not np.array_equal(privileged, reported.telemetry(a))
        slot = choose(reported, a)
        reported.dispatch(a, slot)
        oracle.dispatch(b, slot)
    assert differs > 500  # the reported view is not the oracle's

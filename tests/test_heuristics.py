"""Heuristics obey the mask, read only the observation, and nearest is minimum propagation."""

from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from millinet.agents.heuristics import HEURISTICS, NearestPolicy, deadline_us_of, make_heuristic
from millinet.agents.policy import Policy
from millinet.agents.specs import PolicyChooser
from millinet.envs.features import (
    CANDIDATE_FEATURES,
    FEATURE_CLIP,
    RTT,
    featurize,
    observation_size,
    telemetry_row,
)
from millinet.envs.placement_env import PlacementEnv
from millinet.envs.scenario import SCENARIO_DIR, load_scenario
from millinet.envs.simulation import nearest_slot, simulate

SLOW = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


@st.composite
def observations(draw):
    """A valid-looking observation (values in [0, FEATURE_CLIP]) and an arbitrary mask."""
    k = draw(st.integers(1, 12))
    obs = draw(
        arrays(
            np.float32,
            observation_size(k),
            elements=st.sampled_from([0.0, 0.001, 0.25, 0.5, 0.75, 1.0, 3.0, FEATURE_CLIP]),
        )
    )
    mask = draw(arrays(np.bool_, k))
    return obs, mask


@given(observations(), st.integers(0, 2**31))
@settings(max_examples=150, deadline=None)
def test_every_heuristic_returns_a_feasible_slot_on_any_observation(case, seed):
    obs, mask = case
    for name in HEURISTICS:
        action = make_heuristic(name, seed=seed).act(obs, mask)
        assert isinstance(action, int)
        if mask.any():
            assert mask[action], (name, obs, mask)
        else:
            assert action == 0


@given(observations())
@settings(max_examples=150, deadline=None)
def test_nearest_is_the_minimum_propagation_slot_by_construction(case):
    obs, mask = case
    if not mask.any():
        return
    k = mask.size
    rtt = obs[observation_size(0) :].reshape(k, len(CANDIDATE_FEATURES))[:, RTT]
    best = rtt[mask].min()
    expected = int(np.flatnonzero(mask & (rtt == best))[0])  # ties: the lowest slot
    assert NearestPolicy().act(obs, mask) == expected


def test_registry_lists_the_documented_heuristics():
    assert list(HEURISTICS) == [
        "random",
        "nearest",
        "least-loaded",
        "shortest-queue",
        "earliest-finish",
        "deadline-aware",
        "earliest-finish-own",
        "power-of-d",
    ]
    for name in HEURISTICS:
        policy = make_heuristic(name)
        assert isinstance(policy, Policy) and policy.name == name
        assert len(type(policy).__doc__.split("\n\n")) >= 2  # the rule, what it sees
    with pytest.raises(KeyError, match="unknown heuristic 'fifo'; known: random, nearest"):
        make_heuristic("fifo")


def test_random_is_uniform_over_feasible_slots_and_seeded():
    obs = np.zeros(observation_size(4), dtype=np.float32)
    mask = np.array([True, False, True, True])
    picks = [make_heuristic("random", seed=3).act(obs, mask) for _ in range(3)]
    assert len(set(picks)) == 1  # same seed, same first choice
    policy = make_heuristic("random", seed=0)
    counts = np.bincount([policy.act(obs, mask) for _ in range(3000)], minlength=4)
    assert counts[1] == 0
    assert np.all(np.abs(counts[[0, 2, 3]] / 3000 - 1 / 3) < 0.04)


def _obs(deadline_us, rows, k=4):
    """An observation via the real featuriser: rows of (rtt, compute_wait, tier) in us. A wait
    is a fresh report of a full 16-server pool with 16 x wait of queued work."""
    tel = [telemetry_row() for _ in range(k)]
    for i, (rtt, wait, tier) in enumerate(rows):
        tel[i] = telemetry_row(
            valid=1, base_rtt_us=rtt, serialisation_us=1.0, compute_us=50.0, servers=16,
            tier=tier, busy_servers=16 if wait else 0, queued_work_us=16 * wait,
        )  # fmt: skip
    return featurize(np.array([0, 100, 100, 50, deadline_us]), np.array(tel))


def test_deadline_aware_keeps_near_capacity_for_tight_tasks():
    # slot 0: on-prem, fastest; slot 1: edge; slot 2: city, slower but well inside 30 ms
    rows = [(4.0, 0.0, 0), (200.0, 0.0, 1), (400.0, 0.0, 2)]
    mask = np.array([True, True, True, False])
    policy = make_heuristic("deadline-aware")
    assert deadline_us_of(_obs(1_000, rows)) == pytest.approx(1_000, rel=1e-4)
    assert policy.act(_obs(1_000, rows), mask) == 0  # tight: earliest finish
    assert policy.act(_obs(30_000, rows), mask) == 2  # loose: the remote tier, with margin
    # loose, but the city would use more than half the deadline: best-effort earliest finish
    slow_city = [(4.0, 20_000.0, 0), (200.0, 12_000.0, 1), (400.0, 16_000.0, 2)]
    assert policy.act(_obs(30_000, slow_city), mask) == 1


def test_earliest_finish_and_shortest_queue_and_least_loaded_rules():
    rows = [(4.0, 900.0, 0), (200.0, 0.0, 1), (600.0, 0.0, 2)]
    mask = np.array([True, True, True, False])
    obs = _obs(1_000, rows)
    assert make_heuristic("earliest-finish").act(obs, mask) == 1  # 200 + ... < 4 + 900
    assert make_heuristic("shortest-queue").act(obs, mask) == 1  # no queue, nearer than 2
    assert make_heuristic("least-loaded").act(obs, mask) == 1  # same servers: nearer idle


# ----------------------------------------------------------------------- real env steps
@st.composite
def small_scenarios(draw):
    """A small ring city with 1-2 factories, random candidate sets and faults."""
    nodes = draw(st.integers(4, 7))
    factories = [
        {
            "name": f"f{i}",
            "profile": draw(st.sampled_from(["brewery", "car_plant"])),
            "attach": f"access-{i}",
            "scale": draw(st.sampled_from([0.2, 0.5])),
            "on_prem": {
                "cpu": {"servers": draw(st.integers(1, 2))},
                "gpu": {"servers": draw(st.integers(0, 1))},
            },
        }
        for i in range(draw(st.integers(1, 2)))
    ]
    a = draw(st.integers(0, nodes - 1))
    faults = {
        "scheduled": [
            {"element": f"access-{a}--access-{(a + 1) % nodes}", "down_at_s": 0.0},
            {"element": "f0-on_prem", "down_at_s": draw(st.sampled_from([0.0, 0.002]))},
        ]
    }
    if draw(st.booleans()):
        faults["random"] = {"link_mtbf_s": 0.005, "link_mttr_s": 0.002}
    return {
        "name": "hypo-ring",
        "topology": {
            "generator": "ring",
            "nodes": nodes,
            "radius_km": draw(st.sampled_from([5.0, 20.0])),
            "edge_sites": draw(st.integers(1, 2)),
            "city_sites": draw(st.integers(0, 1)),
        },
        "candidates": {"sites": draw(st.integers(1, 3)), "paths": draw(st.integers(1, 2))},
        "factories": factories,
        "faults": faults,
    }


@given(small_scenarios(), st.integers(0, 10_000))
@SLOW
def test_heuristics_obey_the_mask_on_every_env_step_with_failures(cfg, seed):
    env = PlacementEnv(load_scenario(cfg), horizon=120)
    saw_failed_slot = False
    for name in HEURISTICS:
        policy = make_heuristic(name, seed=seed)
        obs, _ = env.reset(seed=seed)
        done = False
        while not done:
            mask = env.action_masks()
            cset = env.engine.candidates(env._arrival)
            saw_failed_slot |= bool((cset.present & ~mask).any())
            action = policy.act(obs, mask)
            if mask.any():
                assert mask[action], (name, mask, action)
            if name == "nearest":
                assert action == nearest_slot(env.engine, env._arrival)
            obs, _, _, done, info = env.step(action)
            assert not info["rejected"] or not mask.any()
    assert saw_failed_slot  # the on-prem site is down from 2 ms at the latest


def _faulty_sunflower() -> dict:
    """sunflower-metro with car-plant-north's on-prem site and its edge's first path down:
    the nearest feasible slot is then *not* the first feasible one (slot 6, 341 us, beats
    slot 3, 430 us)."""
    cfg = yaml.safe_load(Path(SCENARIO_DIR, "sunflower-metro.yaml").read_text())
    cfg["faults"] = {
        "scheduled": [
            {"element": "car-plant-north-on_prem", "down_at_s": 0.0},
            {"element": "access-0-0--agg-0", "down_at_s": 0.0},
        ]
    }
    return cfg


def test_nearest_heuristic_and_engine_nearest_slot_agree_under_faults():
    scenario = load_scenario(_faulty_sunflower())
    env = PlacementEnv(scenario, horizon=400)
    obs, _ = env.reset(seed=5)
    policy = NearestPolicy()
    not_first = 0
    done = False
    while not done:
        mask = env.action_masks()
        action = policy.act(obs, mask)
        assert action == nearest_slot(env.engine, env._arrival)
        not_first += action != int(np.argmax(mask))
        obs, _, _, done, _ = env.step(action)
    assert not_first > 0  # the faults make min-propagation differ from first-feasible


def test_simulator_fast_path_and_observation_policy_give_identical_records():
    scenario = load_scenario(_faulty_sunflower())
    fast = simulate(scenario, nearest_slot, 0.02, seed=11).records
    slow = simulate(scenario, PolicyChooser(NearestPolicy()), 0.02, seed=11).records
    assert fast.size > 500
    np.testing.assert_array_equal(fast, slow)


def test_argmin_lex_matches_lexsort_with_ties():
    """The tie-breaking core of every rule against numpy's lexsort (the last key passed to
    lexsort is the primary one; the slot index breaks exact ties), on random keys with many
    exact ties (values on a coarse grid), random masks, float32 and float64 keys mixed."""
    from millinet.agents.heuristics import _argmin_lex

    rng = np.random.default_rng(0)
    for _ in range(2000):
        k = int(rng.integers(1, 9))
        mask = rng.random(k) < 0.7
        keys = [rng.integers(0, 3, k).astype(rng.choice([np.float32, np.float64])) / 4
                for _ in range(int(rng.integers(1, 4)))]  # fmt: skip
        feasible = np.flatnonzero(mask)
        if feasible.size == 0:
            assert _argmin_lex(mask, *keys) == 0
            continue
        order = np.lexsort((feasible, *(key[feasible] for key in reversed(keys))))
        assert _argmin_lex(mask, *keys) == feasible[order[0]]

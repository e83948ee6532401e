"""The shared featuriser: one implementation, validated entry for untrusted input."""

import numpy as np
import pytest

from millinet.envs.features import (
    CANDIDATE_FEATURES,
    EST_LATENCY,
    FEATURE_CLIP,
    TASK_FEATURES,
    TELEMETRY_FIELDS,
    candidate_matrix,
    compute_wait_estimate_us,
    featurize,
    observation_size,
    telemetry_row,
)  # fmt: skip
from millinet.envs.placement_env import PlacementEnv


def test_env_observation_equals_validated_featurize_on_real_states():
    env = PlacementEnv("sunflower-metro", horizon=10**6)
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(1500):
        a, e = env._arrival, env.engine
        np.testing.assert_array_equal(env._obs, featurize(e.task_vector(a), e.telemetry(a)))
        env.step(int(rng.choice(np.flatnonzero(env.action_masks()))))


def test_hand_computed_candidate_row():
    task = np.array([0, 100, 200, 50, 1000.0])  # robot_sync, deadline 1 ms
    edge = telemetry_row(
        valid=1, base_rtt_us=300, serialisation_us=10, up_backlog_us=40, compute_us=50,
        servers=4, tier=1, recent_violation=0.25, report_age_us=100, busy_servers=4,
        queued_tasks=2, queued_work_us=520, mean_service_us=80, own_dispatches=2,
        own_work_us=120,
    )  # fmt: skip
    obs = featurize(task, np.array([edge, telemetry_row()]))  # slot 1 empty
    assert obs.shape == (observation_size(2),) and obs.dtype == np.float32
    assert obs[: len(TASK_FEATURES)][:3].tolist() == [1, 0, 0]
    assert obs[3] == pytest.approx(np.log10(101) / 7)
    row = dict(zip(CANDIDATE_FEATURES, candidate_matrix(obs, 2)[0].tolist()))
    assert row["rtt_per_deadline"] == pytest.approx(0.3)
    # all 4 servers busy: (520 queued + 80 mean service) / 4 = 150 us, minus 100 us of age
    assert row["compute_wait_per_deadline"] == pytest.approx(0.05)
    assert row["est_latency_per_deadline"] == pytest.approx(0.45)  # 300+10+40+0+50+50
    assert row["meets_deadline"] == 1.0 and row["is_edge"] == 1.0 and row["is_city"] == 0.0
    assert row["recent_violation"] == pytest.approx(0.25)
    assert row["report_age_per_deadline"] == pytest.approx(0.1)
    assert row["busy_fraction"] == 1.0 and row["queued_per_server"] == pytest.approx(0.5)
    assert row["own_dispatches_per_server"] == pytest.approx(0.5)
    assert row["own_wait_per_deadline"] == pytest.approx(0.03)  # 120 / 4 / 1000
    assert not candidate_matrix(obs, 2)[1].any()


def test_compute_wait_estimate_rules():
    # an idle server at measurement time: no queue, no wait, however old the report
    assert compute_wait_estimate_us(3, 0.0, 500.0, 4, 0.0) == 0.0
    # full: queued work plus one mean service, spread over the servers, aged
    assert compute_wait_estimate_us(4, 400.0, 200.0, 4, 0.0) == pytest.approx(150.0)
    assert compute_wait_estimate_us(4, 400.0, 200.0, 4, 100.0) == pytest.approx(50.0)
    assert compute_wait_estimate_us(4, 400.0, 200.0, 4, 1000.0) == 0.0  # served since
    with pytest.raises(KeyError, match="unknown telemetry field"):
        telemetry_row(compute_wait_us=5)


def test_extreme_inputs_are_clipped_and_bad_inputs_rejected():
    huge = telemetry_row(
        valid=1, base_rtt_us=1e12, servers=1e9, tier=7, recent_violation=5, busy_servers=2e9,
        queued_work_us=1e15, report_age_us=1e12, own_dispatches=1e12,
    )  # fmt: skip
    obs = featurize(np.array([2, 1e12, 0, 1e9, 1.0]), np.array([huge]))
    assert np.isfinite(obs).all() and obs.max() <= FEATURE_CLIP and obs.min() >= 0
    assert candidate_matrix(obs, 1)[0, EST_LATENCY] == FEATURE_CLIP
    width = len(TELEMETRY_FIELDS)
    with pytest.raises(ValueError, match="telemetry shape"):
        featurize(np.zeros(5), np.zeros((3, width - 1)))
    with pytest.raises(ValueError, match="finite"):
        featurize(np.array([0, np.nan, 0, 0, 1.0]), np.zeros((1, width)))

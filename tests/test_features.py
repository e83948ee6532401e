"""The shared featuriser: one implementation, validated entry for untrusted input."""

import numpy as np
import pytest

from millinet.envs.features import (
    CANDIDATE_FEATURES,
    EST_LATENCY,
    FEATURE_CLIP,
    TASK_FEATURES,
    candidate_matrix,
    featurize,
    observation_size,
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
    tel = np.zeros((2, 10))
    tel[0] = [1, 300, 10, 40, 0, 100, 50, 4, 1, 0.25]  # edge site
    tel[1, 8] = -1  # empty slot
    obs = featurize(task, tel)
    assert obs.shape == (observation_size(2),) and obs.dtype == np.float32
    assert obs[: len(TASK_FEATURES)][:3].tolist() == [1, 0, 0]
    assert obs[3] == pytest.approx(np.log10(101) / 7)
    row = dict(zip(CANDIDATE_FEATURES, candidate_matrix(obs, 2)[0].tolist()))
    assert row["rtt_per_deadline"] == pytest.approx(0.3)
    assert row["est_latency_per_deadline"] == pytest.approx(0.5)  # (300+10+40+0+100+50)/1000
    assert row["meets_deadline"] == 1.0 and row["is_edge"] == 1.0 and row["is_city"] == 0.0
    assert row["recent_violation"] == pytest.approx(0.25)
    assert not candidate_matrix(obs, 2)[1].any()


def test_extreme_inputs_are_clipped_and_bad_inputs_rejected():
    tel = np.zeros((1, 10))
    tel[0] = [1, 1e12, 0, 0, 0, 0, 0, 1e9, 7, 5]  # huge latency, bogus tier, viol > 1
    obs = featurize(np.array([2, 1e12, 0, 1e9, 1.0]), tel)
    assert np.isfinite(obs).all() and obs.max() <= FEATURE_CLIP and obs.min() >= 0
    assert candidate_matrix(obs, 1)[0, EST_LATENCY] == FEATURE_CLIP
    with pytest.raises(ValueError, match="telemetry shape"):
        featurize(np.zeros(5), np.zeros((3, 9)))
    with pytest.raises(ValueError, match="finite"):
        featurize(np.array([0, np.nan, 0, 0, 1.0]), np.zeros((1, 10)))

"""millinet/Placement-v0: Gymnasium/SB3 conformance, determinism, reward accounting, masks."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import millinet.envs  # noqa: F401  (registers the env)
from millinet.envs.engine import DROPPED, LATE
from millinet.envs.features import EST_LATENCY, VALID, candidate_matrix, observation_size
from millinet.envs.placement_env import PlacementEnv
from millinet.envs.scenario import list_scenarios


def _run(env: PlacementEnv, seed: int, policy, steps: int | None = None):
    """Roll one episode; returns (observations, rewards, infos)."""
    obs, _ = env.reset(seed=seed)
    observations, rewards, infos = [obs], [], []
    for _ in range(steps or env.horizon):
        obs, reward, terminated, truncated, info = env.step(policy(env, obs))
        observations.append(obs)
        rewards.append(reward)
        infos.append(info)
        if terminated or truncated:
            break
    return np.array(observations), np.array(rewards), infos


def random_valid(seed: int):
    rng = np.random.default_rng(seed)
    return lambda env, obs: int(rng.choice(np.flatnonzero(env.action_masks())))


def earliest_finish_from_obs(env: PlacementEnv, obs: np.ndarray) -> int:
    """Greedy on the observation alone: lowest estimated latency among valid candidates."""
    cand = candidate_matrix(obs, env.K)
    est = np.where(cand[:, VALID] > 0.5, cand[:, EST_LATENCY], np.inf)
    return int(np.argmin(est))


@pytest.fixture(scope="module")
def small_env():
    return PlacementEnv("sunflower-metro", horizon=200)


def test_gymnasium_check_env(small_env):
    gym_check_env(small_env, skip_render_check=True)


def test_sb3_check_env():
    sb3_check_env(PlacementEnv("sunflower-metro", horizon=200), warn=True)


def test_make_by_id_name_path_and_overrides(tmp_path):
    env = gym.make("millinet/Placement-v0", scenario="sunflower-metro", horizon=7)
    path = tmp_path / "s.yaml"
    path.write_text("extends: sunflower-metro\nname: copy\n")
    env2 = gym.make("millinet/Placement-v0", scenario=str(path), horizon=7)
    assert env.observation_space == env2.observation_space
    env.reset(seed=0)
    for _ in range(6):
        assert not env.step(0)[3]
    assert env.step(0)[3]  # truncated exactly at the horizon
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)  # no task is dispatched twice after the episode ended


def test_same_seed_same_trajectory_other_seed_differs(small_env):
    obs_a, rew_a, _ = _run(small_env, 5, random_valid(0))
    obs_b, rew_b, _ = _run(small_env, 5, random_valid(0))
    obs_c, _, _ = _run(small_env, 6, random_valid(0))
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(rew_a, rew_b)
    assert obs_a.shape != obs_c.shape or not np.array_equal(obs_a, obs_c)


def test_rewards_add_up_to_the_simulators_weighted_violations():
    env = PlacementEnv("sunflower-metro", horizon=600, latency_coef=0.0)
    _, rewards, infos = _run(env, 2, random_valid(1))
    rec = env.engine.record_array()
    weights = np.array([c.weight for c in env.scenario.classes])
    violated = (rec["status"] == LATE) | (rec["status"] == DROPPED)
    assert violated.sum() > 0, "the check needs some violations to be meaningful"
    assert rewards.sum() == pytest.approx(-(weights[rec["cls"]] * violated).sum(), abs=1e-9)
    terms = sum(i["reward_terms"]["violation"] for i in infos)
    assert terms == pytest.approx(rewards.sum(), abs=1e-9)
    # Every task that arrived in the episode has finished (in-flight tasks are drained).
    assert env.engine.in_flight == 0
    assert infos[-1]["episode_metrics"]["finished"] == rec.size


def test_masked_action_is_rejected_and_counted(small_env):
    small_env.reset(seed=0)
    masked = np.flatnonzero(~small_env.action_masks())
    assert masked.size, "the on-prem site has one path, so its second slot is always masked"
    n_before = len(small_env.engine.records)
    _, reward, _, _, info = small_env.step(int(masked[0]))
    assert info["rejected"] is True
    rejected = [r for r in small_env.engine.records[n_before:] if r[13] == 3]
    assert len(rejected) == 1
    assert reward <= -min(c.weight for c in small_env.scenario.classes)


def test_observation_size_independent_of_city_size():
    def city(access_nodes: int, radius_km: float) -> dict:
        return {
            "name": f"rgg-{access_nodes}",
            "topology": {"generator": "random_geometric", "nodes": access_nodes,
                         "side_km": 40.0, "radius_km": radius_km, "edge_sites": 3, "city_sites": 1},
            "factories": [{"name": "plant", "profile": "car_plant"},
                          {"name": "fab", "profile": "display_factory"}],
        }  # fmt: skip

    small = PlacementEnv(city(16, 10.0), horizon=10)
    large = PlacementEnv(city(1995, 1.2), horizon=10)  # mean degree ~6
    assert len(small.scenario.topology.nodes) <= 30
    assert len(large.scenario.topology.nodes) >= 2000
    assert small.observation_space.shape == large.observation_space.shape
    assert small.observation_space.shape == (observation_size(small.K),)
    obs, _ = large.reset(seed=0)
    assert large.observation_space.contains(obs)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scenario=st.sampled_from(list_scenarios()),
    seed=st.integers(0, 2**31 - 2),
    policy_seed=st.integers(0, 1000),
)
def test_no_nan_and_counts_conserved(scenario, seed, policy_seed):
    env = PlacementEnv(scenario, horizon=150)
    obs, rewards, infos = _run(env, seed, random_valid(policy_seed))
    assert np.isfinite(obs).all() and np.isfinite(rewards).all()
    assert all(env.observation_space.contains(o) for o in obs)
    metrics = infos[-1]["episode_metrics"]
    rec = env.engine.record_array()
    assert env.engine.in_flight == 0
    assert len(set(rec["task_id"].tolist())) == rec.size == metrics["finished"]
    for c in metrics["classes"].values():
        assert c["completed"] + c["dropped"] == c["finished"]
        assert c["late"] <= c["completed"]


def test_works_in_vector_envs():
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    kwargs = {"horizon": 50}
    # Subprocess workers start with an empty Gymnasium registry: the "module:id" form makes
    # each worker import ``envs`` (which registers the env) before making it.
    for cls in (DummyVecEnv, SubprocVecEnv):
        venv = make_vec_env(
            "millinet.envs:millinet/Placement-v0", n_envs=2, env_kwargs=kwargs, vec_env_cls=cls
        )
        venv.seed(0)
        venv.reset()
        masks = np.stack(venv.env_method("action_masks"))
        assert masks.shape == (2, venv.action_space.n)
        actions = masks.argmax(axis=1)
        obs, rewards, dones, _ = venv.step(actions)
        assert obs.shape == (2, *venv.observation_space.shape) and np.isfinite(rewards).all()
        venv.close()
    sync = gym.vector.SyncVectorEnv(
        [lambda: gym.make("millinet/Placement-v0", **kwargs) for _ in range(2)]
    )
    obs, _ = sync.reset(seed=0)
    obs, rewards, *_ = sync.step(np.zeros(2, dtype=np.int64))
    assert obs.shape[0] == 2 and np.isfinite(rewards).all()
    sync.close()


def test_acting_on_the_observation_matters():
    """Greedy earliest-finish computed from the observation alone beats random valid actions on
    the default scenario's 1 ms violation rate (5 episodes each, same seeds)."""
    env = PlacementEnv("sunflower-metro", horizon=2000)
    greedy, rand = [], []
    for seed in range(5):
        greedy.append(_run(env, seed, earliest_finish_from_obs)[2][-1]["violation_rate_1ms"])
        rand.append(_run(env, seed, random_valid(seed))[2][-1]["violation_rate_1ms"])
    assert np.mean(greedy) < 0.5 * np.mean(rand), (greedy, rand)


def test_background_classes_are_placed_but_still_charged():
    env = PlacementEnv("sunflower-metro", horizon=100, agent_classes=["vision_qa"])
    obs, _ = env.reset(seed=0)
    assert obs[2] == 1.0  # the pending task is a vision task
    observations, _, _ = _run(env, 0, random_valid(0))
    assert (observations[:, 2] == 1.0).all()  # every decision was a vision task
    rec = env.engine.record_array()
    assert (rec["cls"] == 0).sum() > 10 * (rec["cls"] == 2).sum()  # robot traffic still flows


def test_render_ansi_shows_queues_and_violations():
    env = PlacementEnv("sunflower-metro", horizon=50, render_mode="ansi")
    _run(env, 0, random_valid(0), steps=30)
    text = env.render()
    assert "robot_sync" in text and "violations" in text and "backlog" in text


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="unknown agent_classes"):
        PlacementEnv("sunflower-metro", agent_classes=["teleport"])
    with pytest.raises(ValueError, match="horizon"):
        PlacementEnv("sunflower-metro", horizon=0)
    with pytest.raises(TypeError, match="render_mode"):
        PlacementEnv("sunflower-metro", render_mode="human")


def test_featuriser_imports_neither_torch_pydantic_nor_engine():
    code = (
        "import sys, numpy as np\n"
        "import millinet.envs.features as f\n"
        "f.featurize(np.array([0, 100, 100, 50, 1000.]), np.zeros((8, len(f.TELEMETRY_FIELDS))))\n"
        "bad = [m for m in ('torch', 'millinet.envs.engine', 'pydantic') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

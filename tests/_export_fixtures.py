"""Helpers for the export / scheduler tests: a small trained run folder and env samples.

``make_run`` writes exactly the layout ``millinet train`` produces (``config.yaml``,
``best/best_model.zip`` + ``best/vecnormalize.pkl``, ``final/model.zip`` +
``final/vecnormalize.pkl``, ``metrics.json``) with stock SB3 code, so these tests do not depend
on the trainer. ``shared_run`` trains and exports once per test session, shared by the
pytest-xdist workers through a file lock.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

HORIZON = 256


def make_run(run_dir: Path, timesteps: int = 1024, seed: int = 0, norm_obs: bool = True) -> Path:
    """Train MaskablePPO briefly on Placement-v0 and save it in the run-folder layout."""
    import gymnasium
    import torch
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    import millinet.envs  # noqa: F401  (registers millinet/Placement-v0)
    from millinet.agents.run_folder import dump_run_config
    from millinet.agents.train_config import validate_train_config

    torch.set_num_threads(1)
    env_kwargs = {"scenario": "sunflower-metro", "horizon": HORIZON}
    venv = VecNormalize(
        DummyVecEnv([lambda: gymnasium.make("millinet/Placement-v0", **env_kwargs)]),
        norm_obs=norm_obs,
        norm_reward=True,
    )
    venv.seed(seed)
    hp = {"n_steps": 256, "batch_size": 64, "n_epochs": 2, "learning_rate": 3e-4}
    model = MaskablePPO("MlpPolicy", venv, seed=seed, device="cpu", verbose=0, **hp)
    model.learn(timesteps)
    for sub, name in (("best", "best_model"), ("final", "model")):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
        model.save(run_dir / sub / name)
        venv.save(run_dir / sub / "vecnormalize.pkl")
    config = validate_train_config(
        {
            "scenario": "sunflower-metro",
            "seed": seed,
            "total_timesteps": timesteps,
            "n_envs": 1,
            "env": {"horizon": HORIZON},
            "ppo": hp,
            "normalize": {"norm_obs": norm_obs, "norm_reward": True},
        },
        "make_run",
    )
    dump_run_config(config, run_dir / "config.yaml")
    (run_dir / "metrics.json").write_text(
        json.dumps({"timesteps": timesteps, "eval": {"violation_rate_1ms": 0.5}})
    )
    (run_dir / "tb").mkdir(exist_ok=True)
    venv.close()
    return run_dir


def shared_run(tmp_path_factory, norm_obs: bool = True) -> tuple[Path, Path]:
    """(run folder, exported ``best`` folder), made once per session across xdist workers."""
    from filelock import FileLock

    from millinet.agents.export import export_policy

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by all workers of this session
    run_dir = base / f"export-run-norm{int(norm_obs)}"
    exported = base / f"export-run-norm{int(norm_obs)}-onnx"
    with FileLock(str(base / f"export-run-norm{int(norm_obs)}.lock")):
        if not (exported / "manifest.json").is_file():
            make_run(run_dir, norm_obs=norm_obs)
            export_policy(run_dir, exported, "best")
    return run_dir, exported


def collect_env_samples(n: int, seeds=(0, 1, 2, 3), horizon: int = HORIZON):
    """(observations (n, D) float32, masks (n, K) bool) from Placement-v0 on sunflower-metro,
    stepping with uniformly random *feasible* actions through episodes of several seeds."""
    import gymnasium

    import millinet.envs  # noqa: F401

    env = gymnasium.make("millinet/Placement-v0", horizon=horizon)
    rng = np.random.default_rng(0)
    obs_list, mask_list = [], []
    episode = 0
    while len(obs_list) < n:
        obs, _ = env.reset(seed=int(seeds[episode % len(seeds)]) * 1000 + episode)
        episode += 1
        done = False
        while not done and len(obs_list) < n:
            mask = env.unwrapped.action_masks()
            obs_list.append(obs)
            mask_list.append(mask.copy())
            action = int(rng.choice(np.flatnonzero(mask))) if mask.any() else 0
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
    env.close()
    return np.asarray(obs_list, dtype=np.float32), np.asarray(mask_list, dtype=bool)

"""``millinet bench env``: how fast the environment decides, and what share of PPO it costs.

Measures, in one run (issue #3's targets, recorded beside the figures and never asserted):

a. decisions per second of ``PlacementEnv.step`` with random valid actions on the default
   scenario (median of repeats; target >= 30,000);
b. the env's share of wall time in a short stock MaskablePPO run (SB3's default
   hyperparameters) with ``DummyVecEnv`` and 8 envs, timed by
   ``millinet.agents.wrappers.TimedVecEnv`` (env step, reset and action masks) against the whole
   ``learn`` call (target <= 10 %);
c. decisions per second on a ~20-node and a ~2,000-node city with the same factories and local
   neighbourhood (the grid cities of ``bench sim``), and the slowdown (target <= 1.5x).
"""

from __future__ import annotations

import gc
import statistics
import time

import numpy as np

from millinet.envs.placement_env import PlacementEnv
from millinet.envs.scenario import DEFAULT_SCENARIO, load_scenario
from millinet.experiments.bench.benchmarks import (
    bench_log,
    grid_city,
    machine_info,
    write_result,
)

TARGETS = {
    "decisions_per_s_min": 30_000,
    "env_share_of_ppo_wall_max": 0.10,
    "slowdown_2000_vs_20_nodes_max": 1.5,
}


_log = bench_log("env")


def decisions_per_second(env: PlacementEnv, steps: int, seed: int) -> float:
    """Wall-clock decisions/s of ``steps`` env steps with uniformly random valid actions."""
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    gc.collect()
    start = time.perf_counter()
    for _ in range(steps):
        mask = env.action_masks()
        _, _, _, truncated, _ = env.step(int(rng.choice(np.flatnonzero(mask))))
        if truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def env_share_of_ppo(total_timesteps: int, n_envs: int = 8) -> dict:
    """Share of a stock MaskablePPO ``learn`` call spent inside the vectorised env."""
    import torch
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    from millinet.agents.wrappers import TimedVecEnv

    torch.set_num_threads(1)
    venv = TimedVecEnv(DummyVecEnv([lambda: PlacementEnv(DEFAULT_SCENARIO, horizon=512)] * n_envs))
    venv.seed(0)
    # SB3's default hyperparameters (n_steps 2048, batch 64, 10 epochs): the neutral choice.
    model = MaskablePPO("MlpPolicy", venv, seed=0, verbose=0)
    start = time.perf_counter()
    model.learn(total_timesteps)
    wall = time.perf_counter() - start
    venv.close()
    return {
        "n_envs": n_envs,
        "timesteps": int(model.num_timesteps),
        "learn_wall_s": wall,
        "env_wall_s": venv.env_time_s,
        "env_share": venv.env_time_s / wall,
        "ppo_steps_per_s": model.num_timesteps / wall,
    }


def bench_env(
    out_dir: str, steps: int = 30_000, repeats: int = 3, ppo_timesteps: int = 16_384
) -> dict:
    """Run the three measurements and write ``<out_dir>/env.json``; returns its content."""
    machine = machine_info()
    default = PlacementEnv(DEFAULT_SCENARIO, horizon=2048)
    _log(f"default scenario: {repeats} x {steps} random valid decisions")
    rates = [decisions_per_second(default, steps, seed) for seed in range(repeats)]

    _log("20-node vs 2,000-node city, interleaved")
    cities = {"small": grid_city(4, 5), "large": grid_city(40, 50)}
    city_rates: dict[str, list[float]] = {"small": [], "large": []}
    nodes = {}
    for seed in range(repeats):
        for size, spec in cities.items():  # one city alive at a time
            env = PlacementEnv(load_scenario(spec), horizon=2048)
            nodes[size] = len(env.scenario.topology.nodes)
            city_rates[size].append(decisions_per_second(env, steps // 2, seed))
            del env

    _log(f"MaskablePPO, DummyVecEnv x 8, {ppo_timesteps} steps")
    ppo = env_share_of_ppo(ppo_timesteps)

    small, large = (statistics.median(city_rates[s]) for s in ("small", "large"))
    result = {
        "benchmark": "env",
        "command": "millinet bench env",
        "machine": machine,
        "targets": TARGETS,
        "decisions_per_s": {"median": statistics.median(rates), "runs": rates},
        "ppo": ppo,
        "city_size": {
            "nodes": nodes,
            "decisions_per_s": {"small": small, "large": large},
            "runs": city_rates,
            "slowdown_large_vs_small": small / large,
        },
        "note": "wall-clock on a shared machine; compare ratios within one run",
    }
    path = write_result(result, out_dir, "env")
    _log(
        f"{result['decisions_per_s']['median']:,.0f} decisions/s; env share of PPO "
        f"{ppo['env_share']:.1%}; {nodes['large']}-node vs {nodes['small']}-node slowdown "
        f"{small / large:.2f}x -> {path}"
    )
    return result

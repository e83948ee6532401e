"""``millinet bench env``: how fast the environment decides, and what share of PPO it costs.

Measures, in one run (targets recorded beside the figures and never asserted):

a. decisions per second of ``PlacementEnv.step`` with random valid actions on the default
   scenario, under its shipped reported telemetry and under the oracle view, interleaved
   (median of repeats; target >= 30,000; reported may cost at most 1.3x the oracle's time per
   decision);
b. the env's share of wall time in a short stock MaskablePPO run (SB3's default
   hyperparameters) with ``DummyVecEnv`` and 8 envs, timed by
   ``millinet.agents.wrappers.TimedVecEnv`` (env step, reset and action masks) against the whole
   ``learn`` call (target <= 10 %);
c. decisions per second on a ~20-node and a ~2,000-node city with the same factories and local
   neighbourhood (the grid cities of ``bench sim``), under both telemetry modes, and the
   slowdown (target <= 1.5x).
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
    "reported_cost_vs_oracle_max": 1.3,
    "env_share_of_ppo_wall_max": 0.10,
    "slowdown_2000_vs_20_nodes_max": 1.5,
}
ORACLE = {"mode": "oracle"}
REPORTED = {"mode": "reported"}  # the schema's defaults: 1 ms reports, per-factory schedulers


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
    views = {
        "reported": PlacementEnv(DEFAULT_SCENARIO, horizon=2048),  # the shipped telemetry
        "oracle": PlacementEnv({"extends": DEFAULT_SCENARIO, "telemetry": ORACLE}, horizon=2048),
    }
    shipped = views["reported"].scenario.config.telemetry.model_dump()
    _log(f"default scenario: {repeats} x {steps} random valid decisions per telemetry mode")
    rates: dict[str, list[float]] = {mode: [] for mode in views}
    for seed in range(repeats):
        for mode, env in views.items():  # interleaved, so both see the same machine load
            rates[mode].append(decisions_per_second(env, steps, seed))
    median = {mode: statistics.median(r) for mode, r in rates.items()}

    _log("20-node vs 2,000-node city, both telemetry modes, interleaved")
    cities = {
        f"{size}_{mode}": dict(spec, telemetry=telemetry)
        for size, spec in (("small", grid_city(4, 5)), ("large", grid_city(40, 50)))
        for mode, telemetry in (("oracle", ORACLE), ("reported", REPORTED))
    }
    city_rates: dict[str, list[float]] = {name: [] for name in cities}
    nodes = {}
    for seed in range(repeats):
        for name, spec in cities.items():  # one city alive at a time
            env = PlacementEnv(load_scenario(spec), horizon=2048)
            nodes[name.split("_")[0]] = len(env.scenario.topology.nodes)
            city_rates[name].append(decisions_per_second(env, steps // 2, seed))
            del env

    _log(f"MaskablePPO, DummyVecEnv x 8, {ppo_timesteps} steps")
    ppo = env_share_of_ppo(ppo_timesteps)

    city = {name: statistics.median(r) for name, r in city_rates.items()}
    slowdown = {m: city[f"small_{m}"] / city[f"large_{m}"] for m in ("oracle", "reported")}
    result = {
        "benchmark": "env",
        "command": "millinet bench env",
        "machine": machine,
        "targets": TARGETS,
        "decisions_per_s": {
            "median": median,
            "runs": rates,
            "reported_telemetry": shipped,
            "reported_cost_vs_oracle": median["oracle"] / median["reported"],
        },
        "ppo": ppo,
        "city_size": {
            "nodes": nodes,
            "decisions_per_s": city,
            "runs": city_rates,
            "slowdown_large_vs_small": slowdown,
        },
        "note": "wall-clock on a shared machine; compare ratios within one run",
    }
    path = write_result(result, out_dir, "env")
    _log(
        f"{median['reported']:,.0f} decisions/s under reports, {median['oracle']:,.0f} under "
        f"the oracle ({median['oracle'] / median['reported']:.2f}x); env share of PPO "
        f"{ppo['env_share']:.1%}; {nodes['large']}-node vs {nodes['small']}-node slowdown "
        f"{slowdown['oracle']:.2f}x (oracle), {slowdown['reported']:.2f}x (reported) -> {path}"
    )
    return result

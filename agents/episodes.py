"""Evaluation episodes in ``millinet/Placement-v0`` and their summary (a run's
``metrics.json``, the sweep objective). The evaluation harness of ``millinet evaluate`` runs the
simulator instead (``millinet.experiments.evaluation.harness``); these are env episodes on
reset seeds (``millinet.envs.seeds``: validation and report ranges).
"""

from __future__ import annotations

from typing import Any

from millinet.envs.placement_env import PlacementEnv
from millinet.envs.stats import mean_ci95


def run_episodes(policy, env_kwargs: dict[str, Any], seeds: list[int]) -> list[dict]:
    """Run ``policy`` (``act(observation, mask)``) for one ``Placement-v0`` episode per reset
    seed; returns each episode's ``millinet.envs.metrics.summarize`` dict."""
    env = PlacementEnv(**env_kwargs)
    out = []
    for seed in seeds:
        obs, _ = env.reset(seed=int(seed))
        while True:
            obs, _, terminated, truncated, info = env.step(policy.act(obs, env.action_masks()))
            if terminated or truncated:
                out.append(info["episode_metrics"])
                break
    return out


def aggregate_episodes(episodes: list[dict]) -> dict[str, Any]:
    """Across-episode summary with the simulator's metric names: means (and 95% CI
    half-widths) of ``violation_rate_1ms`` and ``violation_rate``; per class the mean violation
    rate and p99 latency (us) and the summed counts."""
    v1, v1_ci = mean_ci95([e["violation_rate_1ms"] for e in episodes])
    v, v_ci = mean_ci95([e["violation_rate"] for e in episodes])
    classes = {}
    for name in episodes[0]["classes"]:
        rows = [e["classes"][name] for e in episodes]
        classes[name] = {
            "violation_rate": mean_ci95([r["violation_rate"] for r in rows])[0],
            "p99_us": mean_ci95([r["p99_us"] for r in rows])[0],
            "finished": int(sum(r["finished"] for r in rows)),
            "dropped": int(sum(r["dropped"] for r in rows)),
        }
    return {
        "episodes": len(episodes),
        "violation_rate_1ms": v1,
        "violation_rate_1ms_ci95": v1_ci,
        "violation_rate": v,
        "violation_rate_ci95": v_ci,
        "dropped": int(sum(e["dropped"] for e in episodes)),
        "finished": int(sum(e["finished"] for e in episodes)),
        "classes": classes,
        "per_episode_violation_rate_1ms": [e["violation_rate_1ms"] for e in episodes],
    }

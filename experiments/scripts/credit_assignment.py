"""How much of a step's return is about its own decision? (numbers for ppo_vs_baselines.md)

Runs a policy (``earliest-finish`` or ``nearest``) in ``millinet/Placement-v0`` (sunflower-metro,
the training env) and measures, per decision:

* the delay, in decisions, until the decided task's outcome enters the reward;
* the tasks whose outcomes enter each step's reward;
* for each 1 ms task that missed its deadline, whether the chosen candidate's *predicted*
  latency (``est_latency_per_deadline``, the no-interference estimate) met the deadline at
  decision time (then the miss came from traffic that arrived after the decision);
* the share of the variance of the discounted return G_t (gamma = 0.99) that the decided
  task's own reward terms (its violation and latency terms, discounted by their delay) explain:
  the signal PPO's advantage has to find; the rest is the outcomes of the other tasks in flight.

Usage: .venv/bin/python experiments/scripts/credit_assignment.py [policy] [episodes] [horizon]
"""

from __future__ import annotations

import sys

import numpy as np

from millinet.agents.pretrain import EarliestFinish
from millinet.envs.features import EST_LATENCY, candidate_matrix
from millinet.envs.placement_env import PlacementEnv
from millinet.envs.seeds import REPORT


class Nearest:
    def act(self, observation, mask) -> int:
        return int(np.argmax(mask))


def main(policy: str = "earliest-finish", episodes: int = 3, horizon: int = 8192) -> None:
    gamma = 0.99
    env = PlacementEnv(horizon=horizon)
    teacher = EarliestFinish() if policy == "earliest-finish" else Nearest()
    deadline = env.engine.deadline_s
    weights = env._weight
    delays, per_step, own_share = [], [], []
    missed_predicted_ok, missed = 0, 0
    for ep in range(episodes):
        obs, _ = env.reset(seed=REPORT.start + ep)
        decided: dict[int, int] = {}
        rewards, own = [], np.zeros(horizon)
        seen = 0
        predicted: dict[int, float] = {}
        for t in range(horizon):
            decided[env._arrival.task_id] = t
            action = teacher.act(obs, env.action_masks())
            predicted[env._arrival.task_id] = float(
                candidate_matrix(obs, env.K)[action, EST_LATENCY]
            )
            obs, r, _, trunc, _ = env.step(action)
            rewards.append(r)
            new = env.engine.records[seen:]
            seen = len(env.engine.records)
            per_step.append(len(new))
            for rec in new:
                step = decided.get(rec[0])
                if step is None:
                    continue
                delays.append(t - step)
                if rec[12] and env.engine.deadline_s[rec[1]] <= 1e-3:
                    missed += 1
                    missed_predicted_ok += predicted[rec[0]] <= 1.0
                term = -weights[rec[1]] if rec[12] else 0.0  # late or dropped
                if rec[12] != 2:  # completed: latency term
                    term -= env.latency_coef * min(rec[6] / deadline[rec[1]], 2.0)
                own[step] += term * gamma ** (t - step)
            if trunc:
                break
        rewards = np.array(rewards)
        g = np.zeros_like(rewards)
        run = 0.0
        for t in range(len(rewards) - 1, -1, -1):
            run = rewards[t] + gamma * run
            g[t] = run
        var = g.var()
        own_share.append(own[: len(g)].var() / var if var > 0 else float("nan"))
    d = np.array(delays)
    print(f"{policy}: {len(d):,} decisions over {episodes} episodes of {horizon} decisions")
    print(
        f"delay until a decision's own outcome is in the reward (decisions): "
        f"median {np.median(d):.0f}, p90 {np.percentile(d, 90):.0f}, p99 "
        f"{np.percentile(d, 99):.0f}"
    )
    print(f"finished tasks charged per step: mean {np.mean(per_step):.2f}")
    print(
        f"1 ms tasks that missed: {missed}; of these, predicted within the deadline at "
        f"decision time: {missed_predicted_ok}"
    )
    print(
        "share of Var(G_t) explained by the decided task's own reward terms: "
        f"{np.nanmean(own_share):.4f}"
    )


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0] if args else "earliest-finish", *(int(a) for a in args[1:3]))

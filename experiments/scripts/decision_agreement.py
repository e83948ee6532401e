"""How often do policies pick the same candidate, and how sure are the trained ones?

(Numbers for results/ppo_vs_baselines.md.)

Rolls out a reference policy (default ``deadline-aware``) in ``millinet/Placement-v0`` on
sunflower-metro (the training env, report seeds 950000 + i) and, at every decision, asks every
listed policy for its action on the same observation and mask. Prints, for each policy, the
share of decisions where it agrees with the reference and with each other policy, overall and
for 1 ms tasks only. Used to tell whether PPO fine-tuning changed any deterministic decision of
its behaviour-cloned start (``RUN@pretrained`` vs ``RUN@last``). For trained runs it also
prints the mean entropy (nats) of the masked action distribution the policy samples from in
training, and the mean probability of its most likely action.

Usage: .venv/bin/python experiments/scripts/decision_agreement.py [--episodes 4]
       [--reference deadline-aware] POLICY [POLICY ...]
"""

from __future__ import annotations

import argparse

import numpy as np

from millinet.agents.heuristics import deadline_us_of
from millinet.agents.specs import load_policy
from millinet.envs.placement_env import PlacementEnv
from millinet.envs.scenario import load_scenario
from millinet.envs.seeds import REPORT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("policies", nargs="+", help="policy specs (as for millinet evaluate)")
    parser.add_argument("--reference", default="deadline-aware", help="policy that acts")
    parser.add_argument("--episodes", type=int, default=4, help="episodes of 2048 decisions")
    args = parser.parse_args()
    scenario = load_scenario("sunflower-metro")
    specs = [args.reference, *args.policies]
    policies = [load_policy(spec, scenario) for spec in specs]
    env = PlacementEnv(scenario="sunflower-metro", horizon=2048)
    actions: list[list[int]] = []  # per decision: one action per spec
    entropy = {i: [] for i, p in enumerate(policies) if hasattr(p, "logits")}
    top_prob = {i: [] for i in entropy}
    tight: list[bool] = []  # the decided task has a 1 ms deadline
    for episode in range(args.episodes):
        obs, _ = env.reset(seed=REPORT.start + episode)
        truncated = False
        while not truncated:
            mask = env.action_masks()
            row = [p.act(obs, mask) for p in policies]
            for i in entropy:
                logits = np.where(mask, policies[i].logits(obs[None])[0], -np.inf)
                prob = np.exp(logits - logits.max())
                prob /= prob.sum()
                nonzero = prob[prob > 0]
                entropy[i].append(float(-(nonzero * np.log(nonzero)).sum()))
                top_prob[i].append(float(prob.max()))
            actions.append(row)
            tight.append(deadline_us_of(obs) <= 1_000.0)
            obs, _, _, truncated, _ = env.step(row[0])
    a = np.array(actions)
    one_ms = np.array(tight)
    print(f"{len(a):,} decisions ({int(one_ms.sum()):,} of 1 ms tasks), reference {specs[0]}")
    for i, spec in enumerate(specs[1:], start=1):
        same = a[:, i] == a[:, 0]
        print(
            f"{spec}: agrees with the reference on {100 * same.mean():.3f} % of decisions, "
            f"{100 * same[one_ms].mean():.3f} % of 1 ms ones"
        )
        for j in range(1, i):
            both = a[:, i] == a[:, j]
            print(f"    and with {specs[j]} on {100 * both.mean():.3f} %")
        if i in entropy:
            print(
                f"    action distribution: mean entropy {np.mean(entropy[i]):.4f} nats, "
                f"mean top-action probability {np.mean(top_prob[i]):.4f}"
            )


if __name__ == "__main__":
    main()

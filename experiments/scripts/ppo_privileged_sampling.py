"""Argmax or sampling? Deploying a trained run deterministically vs sampling its actions.

Per-factory schedulers that read the same report herd onto the same site; a policy that samples
its action spreads load where a deterministic rule cannot. This script measures it for trained
runs: each run's checkpoint acts (a) by the masked argmax of its logits (how
``millinet.agents.inference`` and the exported ONNX graph act) and (b) by sampling from the
masked softmax of the same logits (a generator seeded per episode), on the same validation
engine seeds (``millinet.envs.seeds.VALIDATION``: never a test seed) of a scenario. It prints a
markdown table: per run, both violation_rate_1ms means with 95% bootstrap intervals, and the
paired difference sampling - argmax.

Usage: .venv/bin/python experiments/scripts/ppo_privileged_sampling.py RUN[@ckpt] ...
       [--scenario sunflower-metro-load2x] [--seeds 6] [--duration 0.1]
"""

from __future__ import annotations

import argparse

import numpy as np

from millinet.agents.specs import PolicyChooser, load_policy
from millinet.envs.scenario import load_scenario
from millinet.envs.seeds import VALIDATION
from millinet.envs.simulation import simulate
from millinet.envs.stats import bootstrap_ci, paired_difference_ci


class SampledPolicy:
    """A trained run's policy that samples its action from the masked softmax of its logits."""

    def __init__(self, policy, seed: int) -> None:
        self.policy = policy
        self.name = f"{policy.name}~sample"
        self.agent_classes = policy.agent_classes
        self.K = policy.K
        self.rng = np.random.default_rng(seed)

    def act(self, observation: np.ndarray, mask: np.ndarray) -> int:
        logits = self.policy.logits(np.asarray(observation)[None])[0].astype(np.float64)
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return 0
        logits = np.where(mask, logits, -np.inf)
        p = np.exp(logits - logits.max())
        return int(self.rng.choice(self.K, p=p / p.sum()))


def rates(spec: str, scenario, seeds: list[int], duration: float, sample: bool) -> np.ndarray:
    out = []
    for s in seeds:
        policy = load_policy(spec, scenario)
        if sample:
            policy = SampledPolicy(policy, s)
        result = simulate(scenario, PolicyChooser(policy), duration, seed=s)
        out.append(result.metrics["violation_rate_1ms"])
    return np.array(out)


def pct(triple) -> str:
    mean, low, high = triple
    return f"{100 * mean:.3g} [{100 * low:.3g}, {100 * high:.3g}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="trained run folders (RUN or RUN@ckpt)")
    parser.add_argument("--scenario", default="sunflower-metro-load2x")
    parser.add_argument("--seeds", type=int, default=6, help="validation engine seeds")
    parser.add_argument("--duration", type=float, default=0.1, help="simulated s per episode")
    args = parser.parse_args()
    scenario = load_scenario(args.scenario)
    seeds = VALIDATION.seeds(args.seeds)
    print(f"{args.scenario}, validation engine seeds {seeds[0]}..{seeds[-1]}, "
          f"{args.duration:g} s each; violation_rate_1ms % [95% CI]\n")  # fmt: skip
    print("| run | argmax | sampling | sampling - argmax (paired) |")
    print("|---|---|---|---|")
    for spec in args.runs:
        argmax = rates(spec, scenario, seeds, args.duration, sample=False)
        sampled = rates(spec, scenario, seeds, args.duration, sample=True)
        diff = paired_difference_ci(sampled, argmax)
        print(f"| {spec} | {pct(bootstrap_ci(argmax))} | {pct(bootstrap_ci(sampled))} | "
              f"{pct(diff)} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

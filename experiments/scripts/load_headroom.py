"""Where does the best heuristic start to miss 1 ms deadlines? (numbers for ppo_vs_baselines.md)

Evaluates policies on sunflower-metro with every factory's workload multiplied by a load
scale (the scenario's ``load_scale``: each factory's streams and rates), on the harness's
evaluation seeds. Scale 1 is the scenario itself; larger scales are stress tests of the same
city, not the benchmark scenario. Trained runs are evaluated as they are (trained at scale 1),
so for them every scale above 1 is out of their training distribution.

Writes ``OUT/load_headroom.md`` (violation_rate_1ms per scale and policy, mean over seeds with
the harness's 95 % bootstrap CI, and the pooled 1 ms violations / tasks) and
``OUT/load_headroom.csv`` (one row per scale, policy and seed).

Usage: .venv/bin/python experiments/scripts/load_headroom.py --out DIR
       [--scales 1 1.5 2] [--seeds 5] [--workers 2] [--policy P ...]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from millinet.experiments.evaluation.harness import evaluate

DEFAULT_POLICIES = ("earliest-finish", "deadline-aware")


def scaled_scenario(scale: float, base: str = "sunflower-metro") -> dict:
    """The shipped scenario ``base`` with every factory's workload × ``scale`` (``load_scale``)."""
    return {"extends": base, "name": f"{base}-load{scale:g}x", "load_scale": scale}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--scales", nargs="+", type=float, default=[1.0, 1.5, 2.0])
    parser.add_argument("--seeds", type=int, default=5, help="evaluation seeds per cell")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--policy", action="append", help=f"repeatable (default: {', '.join(DEFAULT_POLICIES)})"
    )
    args = parser.parse_args()
    policies = args.policy or list(DEFAULT_POLICIES)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    table = [
        "| load scale | policy | violation_rate_1ms % [95% CI] | 1 ms violations / tasks |",
        "|---|---|---|---|",
    ]
    print("\n".join(table), flush=True)
    for scale in args.scales:
        ev = evaluate(scaled_scenario(scale), policies, seeds=args.seeds, workers=args.workers)
        for policy in policies:
            eps = [e.row for e in ev.episodes if e.row["policy"] == policy]
            mean, lo, hi = ev.summary[policy]["violation_rate_1ms"]
            viol = sum(int(r["violations_1ms"]) for r in eps)
            tasks = sum(int(r["tasks_1ms"]) for r in eps)
            label = Path(policy).name if "/" in policy else policy
            table.append(
                f"| {scale:g}× | {label} | {100 * mean:.4f} [{100 * lo:.4f}, {100 * hi:.4f}] | "
                f"{viol:,} / {tasks:,} |"
            )
            rows += [
                {"scale": scale, "policy": policy, "seed": r["seed"],
                 "violation_rate_1ms": r["violation_rate_1ms"],
                 "violations_1ms": r["violations_1ms"], "tasks_1ms": r["tasks_1ms"]}
                for r in eps
            ]  # fmt: skip
        print("\n".join(table[-len(policies) :]), flush=True)  # this scale's rows
    with (args.out / "load_headroom.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (args.out / "load_headroom.md").write_text("\n".join(table) + "\n")
    print(f"wrote {args.out / 'load_headroom.md'}, {args.out / 'load_headroom.csv'}")


if __name__ == "__main__":
    main()

"""Table for results/ppo_vs_baselines.md from a ``millinet evaluate`` per_seed.csv.

Heuristics: mean over the evaluation seeds with the 95% bootstrap CI of ``summary.csv``.
Trained runs: grouped by experiment (run name without seed and time, plus the @checkpoint
suffix of the policy spec, if any); per run the mean over the evaluation seeds, then the mean
over runs (training seeds) with a 95% Student-t CI, and the pooled count of 1 ms violations
over every run and seed.

Usage: python experiments/scripts/summarize_ppo_vs_baselines.py EVAL_DIR [EVAL_DIR ...]
(several folders: their rows are pooled, e.g. runs evaluated in batches on the same seeds).
"""

from __future__ import annotations

import csv
import math
import sys
from collections import defaultdict
from pathlib import Path

from millinet.envs.stats import mean_ci95
from millinet.experiments.analysis import group_key


def experiment_of(spec: str) -> str:
    """``runs/x/<exp>_s3_<time>@last`` -> ``<exp>@last`` (no suffix: the best model)."""
    name, _, checkpoint = Path(spec).name.partition("@")
    return group_key(name) + (f"@{checkpoint}" if checkpoint else "")


def main(*eval_dirs: str) -> None:
    rows: list[dict] = []
    summary: dict = {}
    for eval_dir in eval_dirs:
        root = Path(eval_dir)
        per_seed = root / "per_seed.csv"
        if not per_seed.is_file():  # one sub-folder per scenario
            per_seed = next(root.glob("*/per_seed.csv"))
        rows += list(csv.DictReader(per_seed.open()))
        for r in csv.DictReader((per_seed.parent / "summary.csv").open()):
            summary[(r["policy"], r["metric"])] = r
    by_policy: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_policy[r["policy"]].append(r)
    runs = {p: v for p, v in by_policy.items() if "/" in p}
    heur = {p: v for p, v in by_policy.items() if "/" not in p}
    out = [
        "| policy | runs × seeds | violation_rate_1ms % [95% CI] | 1 ms violations / tasks |",
        "|---|---|---|---|",
    ]

    def pct(x: float) -> str:
        return "–" if math.isnan(x) else f"{100 * x:.4f}"

    for p, v in sorted(
        heur.items(), key=lambda kv: float(summary[(kv[0], "violation_rate_1ms")]["mean"])
    ):
        s = summary[(p, "violation_rate_1ms")]
        lo, hi = float(s["ci95_low"] or "nan"), float(s["ci95_high"] or "nan")
        viol = sum(int(r["violations_1ms"]) for r in v)
        tasks = sum(int(r["tasks_1ms"]) for r in v)
        ci = f"[{pct(lo)}, {pct(hi)}]" if not math.isnan(lo) else ""
        out.append(f"| {p} | 1 × {len(v)} | {pct(float(s['mean']))} {ci} | {viol:,} / {tasks:,} |")
    groups: dict[str, list[str]] = defaultdict(list)
    for p in runs:
        groups[experiment_of(p)].append(p)
    for g, members in sorted(groups.items()):
        per_run = [
            sum(float(r["violation_rate_1ms"]) for r in runs[p]) / len(runs[p]) for p in members
        ]
        mean, half = mean_ci95(per_run)
        viol = sum(int(r["violations_1ms"]) for p in members for r in runs[p])
        tasks = sum(int(r["tasks_1ms"]) for p in members for r in runs[p])
        n_seeds = len(runs[members[0]])
        ci = "" if math.isnan(half) else f"[{pct(max(mean - half, 0.0))}, {pct(mean + half)}]"
        out.append(
            f"| **{g}** (PPO) | {len(members)} × {n_seeds} | {pct(mean)} {ci} | "
            f"{viol:,} / {tasks:,} |"
        )
    out += [
        "",
        "| run | violation_rate_1ms % (mean over seeds) | 1 ms violations |",
        "|---|---|---|",
    ]
    for p in sorted(runs):
        v = runs[p]
        m = sum(float(r["violation_rate_1ms"]) for r in v) / len(v)
        out.append(f"| {Path(p).name} | {pct(m)} | {sum(int(r['violations_1ms']) for r in v):,} |")
    print("\n".join(out))


if __name__ == "__main__":
    main(*sys.argv[1:])

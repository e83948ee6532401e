"""Compare training configs after a sweep: train each for the same steps with fresh training
seeds, evaluate on the harness's held-out test seeds, print a markdown table.

    python -m millinet.experiments.sweep.compare \\
        --config default=experiments/configs/ppo_sunflower_scratch.yaml \\
        --config tuned=runs/sweeps/sunflower/best_config.yaml \\
        --seeds 1 2 3 --timesteps 65536 --test-episodes 10 --json results/sweep_sunflower.json

It prints a markdown table and writes the raw numbers to ``--json``. Every run goes through
``millinet.agents.ppo.train`` (the ``millinet train`` code path) with ``time_limit_s`` off, so that
configs are compared at equal steps. Its last model is evaluated on test episodes with reset
seeds ``TEST_SEED_BASE + i`` (``1000000 + i``), which neither training (reset seeds below
900000), validation (``900000 + i``) nor the sweep's selection (report seeds ``950000 + i``)
ever used. Training seeds should differ from the sweep's (seed
0), so that the winner's luck with its training seed does not carry over.

Confidence intervals (95%, Student t): across training seeds (each seed's mean over the test
episodes; the honest one for RL), across all (seed, episode) evaluations, and for the paired
difference of two configs on the same (seed, episode).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

TEST_SEED_BASE = 1_000_000
"""Reset seeds of the test episodes (above the trainer's training, validation and report
seeds)."""


def train_and_evaluate(job: dict[str, Any]) -> dict[str, Any]:
    """Train ``job["config"]`` with ``job["seed"]`` for ``job["timesteps"]`` steps; evaluate the
    last model on ``job["test_episodes"]`` test seeds. Runs in a worker process."""
    import torch

    from millinet.agents.ppo import load_run_policy, run_episodes, train
    from millinet.agents.train_config import load_train_config, validate_train_config

    torch.set_num_threads(1)
    cfg = load_train_config(job["config"], seed=job["seed"], total_timesteps=job["timesteps"])
    cfg = validate_train_config({**cfg.model_dump(), "time_limit_s": None}, job["config"])
    t0 = time.perf_counter()
    root, metrics = train(cfg, runs_dir=job["runs_dir"], progress=False)
    train_s = time.perf_counter() - t0
    seeds = [TEST_SEED_BASE + i for i in range(job["test_episodes"])]
    episodes = run_episodes(load_run_policy(root, "last"), cfg.env_kwargs(), seeds)
    return {
        "label": job["label"],
        "config": job["config"],
        "seed": job["seed"],
        "run": str(root),
        "timesteps": metrics["timesteps"],
        "train_wall_s": train_s,
        "test_seeds": seeds,
        "violation_rate_1ms": [e["violation_rate_1ms"] for e in episodes],
        "violation_rate": [e["violation_rate"] for e in episodes],
    }


def mean_ci(values: list[float]) -> tuple[float, float, int]:
    """Mean, 95% Student-t half-width and n (NaNs skipped)."""
    from millinet.agents.ppo import mean_ci95

    vals = [v for v in values if not math.isnan(v)]
    m, h = mean_ci95(vals)
    return m, h, len(vals)


def _pct(m: float, h: float | None = None) -> str:
    if math.isnan(m):
        return "n/a"
    if h is None or math.isnan(h):
        return f"{100 * m:.3f}%"
    return f"{100 * m:.3f}% ± {100 * h:.3f}%"


def summarize(runs: list[dict], labels: list[str]) -> dict[str, Any]:
    """Per label: CIs across seeds and across (seed, episode); paired differences to the
    first label."""
    out: dict[str, Any] = {"configs": {}, "paired": {}}
    by = {
        lab: sorted((r for r in runs if r["label"] == lab), key=lambda r: r["seed"])
        for lab in labels
    }
    for lab, rs in by.items():
        row = {"config": rs[0]["config"] if rs else "", "seeds": [r["seed"] for r in rs]}
        for metric in ("violation_rate_1ms", "violation_rate"):
            per_seed = [float(np.nanmean(r[metric])) for r in rs]
            pooled = [v for r in rs for v in r[metric]]
            row[metric] = {
                "per_seed": per_seed,
                "across_seeds": mean_ci(per_seed),
                "pooled": mean_ci(pooled),
            }
        row["train_wall_s"] = [r["train_wall_s"] for r in rs]
        out["configs"][lab] = row
    ref = labels[0]
    for lab in labels[1:]:
        diffs = []
        for r in by[lab]:
            mate = next((m for m in by[ref] if m["seed"] == r["seed"]), None)
            if mate is not None:
                diffs += [
                    a - b for a, b in zip(r["violation_rate_1ms"], mate["violation_rate_1ms"])
                ]
        out["paired"][lab] = mean_ci(diffs)
    return out


def report(summary: dict) -> str:
    """The comparison as a markdown table plus the paired differences."""
    labels = list(summary["configs"])
    lines = [
        "| config | training seeds | violation_rate_1ms: mean over seeds (95% CI, n seeds) "
        "| pooled over seed x episode (95% CI) | violation_rate (over seeds) | per seed |",
        "|---|---|---|---|---|---|",
    ]
    for lab in labels:
        row = summary["configs"][lab]
        v1, v = row["violation_rate_1ms"], row["violation_rate"]
        m, h, n = v1["across_seeds"]
        pm, ph, pn = v1["pooled"]
        per = ", ".join(_pct(x) for x in v1["per_seed"])
        lines.append(
            f"| {lab} (`{row['config']}`) | {', '.join(map(str, row['seeds']))} | "
            f"{_pct(m, h)} (n={n}) | {_pct(pm, ph)} (n={pn}) | "
            f"{_pct(*v['across_seeds'][:2])} | {per} |"
        )
    lines.append("")
    for lab, (m, h, n) in summary["paired"].items():
        lines.append(
            f"Paired difference {lab} − {labels[0]} in violation_rate_1ms (same training seed, "
            f"same test episode; n={n}): {_pct(m, h)}."
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m millinet.experiments.sweep.compare", description=__doc__
    )
    p.add_argument(
        "--config",
        action="append",
        required=True,
        metavar="LABEL=YAML",
        help="a training config to compare (first = the reference); repeatable",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="training seeds")
    p.add_argument("--timesteps", type=int, required=True, help="PPO steps per run")
    p.add_argument("--test-episodes", type=int, default=10, help="test seeds per run")
    p.add_argument("--jobs", type=int, default=2, help="runs in parallel (1 CPU each)")
    p.add_argument("--runs-dir", default="runs/sweep_compare", help="where the runs go")
    p.add_argument("--json", required=True, help="write the raw numbers and summary here")
    args = p.parse_args(argv)
    labels, jobs = [], []
    for item in args.config:
        label, sep, path = item.partition("=")
        if not sep or not Path(path).is_file():
            p.error(f"--config {item!r}: expected LABEL=path/to/config.yaml (an existing file)")
        labels.append(label)
        for seed in args.seeds:
            jobs.append(
                {
                    "label": label,
                    "config": path,
                    "seed": seed,
                    "timesteps": args.timesteps,
                    "test_episodes": args.test_episodes,
                    "runs_dir": args.runs_dir,
                }
            )
    t0 = time.perf_counter()
    ctx = multiprocessing.get_context("spawn")
    runs = []
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx) as pool:
        for res in pool.map(train_and_evaluate, jobs):
            print(
                f"{res['label']} seed {res['seed']}: test violation_rate_1ms "
                f"{_pct(float(np.nanmean(res['violation_rate_1ms'])))} "
                f"({res['train_wall_s']:.0f} s) {res['run']}",
                flush=True,
            )
            runs.append(res)
    wall = time.perf_counter() - t0
    summary = summarize(runs, labels)
    table = report(summary)
    print(table)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(
        json.dumps(
            {
                "args": vars(args),
                "wall_s": wall,
                "runs": runs,
                "summary": summary,
                "table_md": table,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

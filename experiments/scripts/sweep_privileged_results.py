"""results/sweep_privileged.md: Ray Tune over the privileged-teacher recipe, and whether the
winner transfers to training seeds the sweep never saw.

Steps (resumable: the sweep with --resume, finished transfer runs are kept):

1. ``millinet sweep --config experiments/configs/sweep_privileged.yaml --num-cpus 2``: trials of
   2 training seeds each, ranked by their mean violation_rate_1ms on report episodes.
2. Transfer: the best trial's config (``best_config.yaml``) and the recipe's own values at the
   same budget (the searched keys set back to ``ppo_privileged.yaml``'s) are trained on fresh
   seeds (default 20 and 21), two runs at a time, into ``--runs``.
3. The page: the sweep's ranking (``summary.md`` copied beside the page), and best vs default
   on the fresh seeds (each run's report-seed violation_rate_1ms from its metrics.json).

Usage: .venv/bin/python experiments/scripts/sweep_privileged_results.py
       [--runs runs/sweep_privileged_transfer] [--seeds 20 21] [--page results/sweep_privileged.md]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import yaml

from millinet.experiments.sweep.config import with_params

REPO = Path(__file__).resolve().parents[2]
MILLINET = [sys.executable, "-m", "millinet.experiments.cli"]
SWEEP = REPO / "experiments/configs/sweep_privileged.yaml"
RECIPE = REPO / "experiments/configs/ppo_privileged.yaml"


def dotted_get(data: dict, key: str):
    for part in key.split("."):
        data = data[part]
    return data


def configs(exp: Path, out: Path) -> dict[str, Path]:
    """``{"tuned": best_config.yaml, "default": the same with the searched keys at the
    recipe's values}``, written into ``out``."""
    sweep = yaml.safe_load(SWEEP.read_text())
    recipe = yaml.safe_load(RECIPE.read_text())
    best = yaml.safe_load((exp / "best_config.yaml").read_text())
    default = with_params(best, {key: dotted_get(recipe, key) for key in sweep["space"]})
    out.mkdir(parents=True, exist_ok=True)
    paths = {"tuned": out / "tuned.yaml", "default": out / "default.yaml"}
    for name, cfg in (("tuned", best), ("default", default)):
        cfg["tag"] = f"sweep-{name}"
        paths[name].write_text(yaml.safe_dump(cfg, sort_keys=False))
    return paths


def train(config: Path, seed: int, runs: Path) -> Path:
    """One `millinet train` run (skipped when a finished one exists); its folder."""
    tag = yaml.safe_load(config.read_text())["tag"]
    done = [p for p in runs.glob(f"*_maskppo-{tag}_s{seed}_*") if (p / "metrics.json").is_file()]
    if done:
        return done[0]
    cmd = [*MILLINET, "train", "--config", str(config), "--seed", str(seed)]
    log = runs / f"{tag}_s{seed}.log"
    with open(log, "w") as fh:
        subprocess.run([*cmd, "--runs-dir", str(runs)], check=True, stdout=fh, stderr=fh, cwd=REPO)
    (run,) = [p for p in runs.glob(f"*_maskppo-{tag}_s{seed}_*") if (p / "metrics.json").is_file()]
    return run


def errored(exp: Path) -> str:
    """A sentence on the sweep's errored trials (from its summary.csv)."""
    with open(exp / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    bad = [r["trial"] for r in rows if r["status"] == "error"]
    finished = sum(r["status"] != "error" for r in rows)
    if not bad:
        return f"All {len(rows)} trials finished or were stopped by ASHA."
    return (
        f"{finished} of {len(rows)} trials finished or were stopped by ASHA; "
        f"{', '.join(bad)} errored (error.txt in its trial folder) and is not ranked."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=REPO / "runs/sweep_privileged_transfer")
    parser.add_argument("--seeds", type=int, nargs="+", default=[20, 21])
    parser.add_argument("--page", type=Path, default=REPO / "results/sweep_privileged.md")
    parser.add_argument(
        "--skip-sweep", action="store_true", help="use the finished sweep as it is (no --resume)"
    )
    args = parser.parse_args()
    start = time.perf_counter()
    sweep = yaml.safe_load(SWEEP.read_text())
    exp = REPO / sweep["storage_path"] / sweep["name"]
    cmd = [*MILLINET, "sweep", "--config", str(SWEEP), "--num-cpus", "2"]
    if exp.exists():
        cmd.append("--resume")
    if not args.skip_sweep:
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, cwd=REPO)
    paths = configs(exp, args.runs)
    jobs = [(name, seed) for name in paths for seed in args.seeds]
    with ThreadPoolExecutor(2) as pool:
        runs = dict(zip(jobs, pool.map(lambda j: train(paths[j[0]], j[1], args.runs), jobs)))
    rates: dict[str, list[float]] = {name: [] for name in paths}
    halves: list[float] = []
    rows = []
    for (name, seed), run in runs.items():
        m = json.loads((run / "metrics.json").read_text())
        rates[name].append(m["violation_rate_1ms"])
        halves.append(m["violation_rate_1ms_ci95"])
        rows.append(
            f"| {name} | {seed} | `{run.name}` | {m['timesteps']:,} | {m['wall_s'] / 60:.1f} | "
            f"{100 * m['violation_rate_1ms']:.3g} ± {100 * m['violation_rate_1ms_ci95']:.2g} |"
        )
    shutil.copy(exp / "summary.md", args.page.with_name("sweep_privileged_trials.md"))
    searched = ", ".join(f"`{k}`" for k in sweep["space"])
    best = yaml.safe_load(paths["tuned"].read_text())
    chosen = ", ".join(f"{k} = {dotted_get(best, k)}" for k in sweep["space"])
    recipe = yaml.safe_load(RECIPE.read_text())
    defaults = ", ".join(f"{k} = {dotted_get(recipe, k)}" for k in sweep["space"])
    tuned, default = np.mean(rates["tuned"]), np.mean(rates["default"])
    if abs(tuned - default) < max(halves):
        verdict = (
            "no measurable difference: the gap is smaller than each run's own 95% interval, "
            "so the sweep's ranking did not carry over beyond noise"
        )
    elif tuned < default:
        verdict = "the tuned config did better on the fresh seeds"
    else:
        verdict = "the tuned config did worse than the recipe's own values on the fresh seeds"
    page = [
        "# Sweep `privileged`: tuning the privileged-teacher recipe with Ray Tune",
        "",
        "```bash",
        ".venv/bin/python experiments/scripts/sweep_privileged_results.py "
        + " ".join(sys.argv[1:]),
        "```",
        "",
        f"Machine: {os.cpu_count()} cores, load average at the end "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}; the script took "
        f"{(time.perf_counter() - start) / 60:.0f} min"
        + (" (reusing the finished sweep and runs)." if args.skip_sweep else "."),
        "",
        f"The sweep ({SWEEP.relative_to(REPO)}): {sweep['description'].strip()} Searched: "
        f"{searched}; objective: the mean violation_rate_1ms of each trial's 2 seeds on report "
        "episodes (reset seeds 950000 + i). Ranked trials: "
        "[sweep_privileged_trials.md](sweep_privileged_trials.md).",
        "",
        f"{errored(exp)}",
        "",
        f"**Best trial**: {chosen}. **The recipe's own values**: {defaults}.",
        "",
        f"## Did it transfer? Both trained on fresh seeds {args.seeds} at the sweep's budget",
        "",
        "| config | seed | run | PPO steps | wall, min | report-seed violation_rate_1ms, % |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"Mean over the fresh seeds: tuned {100 * tuned:.3g} %, default {100 * default:.3g} %: "
        f"{verdict}.",
        "",
    ]
    args.page.write_text("\n".join(page) + "\n")
    print(f"wrote {args.page}")


if __name__ == "__main__":
    main()

"""results/telemetry.md: every heuristic under the oracle view and under reports.

For each load scale of the default city (``sunflower-metro`` with ``load_scale``), every
heuristic is evaluated on the same test seeds under

* the oracle view (``telemetry.mode: oracle``: exact measurements now), and
* reports every {0.1, 0.5, 1, 5} ms to per-factory schedulers and to one central scheduler
  (the default city's other telemetry settings: 50 us processing, random phases).

The value of information of a heuristic is its violation_rate_1ms on reports minus under the
oracle view, paired over seeds. A cell is *headroom* when the best heuristic on reports is
worse than the best heuristic under the oracle view (the paired 95% interval of the difference
excludes 0), *control* when it is not.

Each (load, view) cell is saved as ``OUT/cells/<cell>.csv`` when it finishes, and skipped when
the script runs again, so an interrupted run resumes. Then ``OUT/telemetry.csv`` (every row),
``OUT/value_of_information.png`` and the page are written.

Usage: .venv/bin/python experiments/scripts/telemetry_results.py
       [--out results/telemetry] [--page results/telemetry.md] [--seeds 10]
       [--duration 0.1] [--workers 2] [--loads 1 1.5 2] [--periods-ms 0.1 0.5 1 5]
"""

from __future__ import annotations

import argparse
import csv
import math
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from millinet.agents.heuristics import HEURISTICS
from millinet.envs.scenario import DEFAULT_SCENARIO
from millinet.envs.seeds import eval_seeds
from millinet.envs.stats import bootstrap_ci, paired_difference_ci
from millinet.experiments.evaluation.harness import evaluate

SCHEDULERS = ("per_factory", "central")
FIELDS = ("load", "view", "policy", "seed", "violation_rate_1ms", "violation_rate", "tasks_1ms")


def views(periods_ms: list[float]) -> dict[str, dict]:
    """View name -> the ``telemetry:`` override of the default city."""
    out = {"oracle": {"mode": "oracle"}}
    for period in periods_ms:
        for sched in SCHEDULERS:
            out[f"{period:g}ms-{sched}"] = {
                "mode": "reported",
                "period_us": period * 1000.0,
                "scheduler": sched,
            }
    return out


def run_cell(load: float, view: str, telemetry: dict, args) -> list[dict]:
    """Every heuristic on one (load, view) cell; rows of ``FIELDS``."""
    scenario = {
        "extends": DEFAULT_SCENARIO,
        "name": f"{DEFAULT_SCENARIO}-{load:g}x-{view}",
        "load_scale": load,
        "telemetry": telemetry,
    }
    ev = evaluate(
        scenario, list(HEURISTICS), args.seeds, duration_s=args.duration, workers=args.workers
    )
    return [{"load": load, "view": view, **{k: e.row[k] for k in FIELDS[2:]}} for e in ev.episodes]


def read_rows(path: Path) -> list[dict]:
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["load"] = float(r["load"])
        r["seed"] = int(r["seed"])
        for k in ("violation_rate_1ms", "violation_rate", "tasks_1ms"):
            r[k] = float(r[k])
    return rows


def write_rows(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def values(rows: list[dict], load: float, view: str, policy: str) -> np.ndarray:
    sel = [r for r in rows if r["load"] == load and r["view"] == view and r["policy"] == policy]
    return np.array([r["violation_rate_1ms"] for r in sorted(sel, key=lambda r: r["seed"])])


def pct(triple: tuple[float, float, float]) -> str:
    mean, low, high = triple
    if math.isnan(mean):
        return "–"
    if low == high:
        return f"{100 * mean:.3g}"
    return f"{100 * mean:.3g} [{100 * low:.3g}, {100 * high:.3g}]"


def best(rows, load, view) -> tuple[str, np.ndarray]:
    means = {p: values(rows, load, view, p).mean() for p in HEURISTICS}
    name = min(HEURISTICS, key=lambda p: (means[p], list(HEURISTICS).index(p)))
    return name, values(rows, load, view, name)


def page(rows: list[dict], args, view_names: list[str], wall_s: float) -> str:
    seeds = eval_seeds(args.seeds)
    lines = [
        "# Telemetry: how far reports leave each heuristic from the oracle view",
        "",
        "Regenerate this page, `results/telemetry/telemetry.csv` and the plot with:",
        "",
        "```bash",
        ".venv/bin/python experiments/scripts/telemetry_results.py "
        f"--seeds {args.seeds} --duration {args.duration:g} "
        f"--loads {' '.join(f'{x:g}' for x in args.loads)} "
        f"--periods-ms {' '.join(f'{x:g}' for x in args.periods_ms)}",
        "```",
        "",
        f"Machine: {platform.platform()}, {platform.processor() or 'cpu'}, "
        f"{args.workers} worker(s); this run's cells took {wall_s / 60:.1f} min of wall time "
        "(cells computed by an earlier, interrupted run are not counted).",
        "",
        f"The default city (`{DEFAULT_SCENARIO}`) at each load scale, {args.seeds} test seeds "
        f"({seeds[0] - 2**31} .. {seeds[-1] - 2**31} above 2**31) of {args.duration:g} s of "
        "arrivals each, every heuristic on the same seeds. Numbers are the share of 1 ms tasks "
        "late or dropped, in %, mean over seeds with a 95% bootstrap interval. Reports: every "
        "element reports every *period* with a random phase; a report reaches a scheduler "
        "after the fiber delay plus 50 us of processing; *per_factory*: each plant's scheduler "
        "knows only its own dispatches; *central*: one scheduler at the first city site "
        "decides every task. *Oracle*: the same measurements taken now (README, Telemetry).",
        "",
    ]
    for load in args.loads:
        lines += [f"## Load {load:g}x", ""]
        for sched in SCHEDULERS:
            cols = ["oracle"] + [v for v in view_names if v.endswith(sched)]
            head = ["policy"] + [c.replace(f"-{sched}", "") for c in cols]
            lines += [
                "**per-factory schedulers**" if sched == "per_factory" else "**central scheduler**",
                "",
                "| " + " | ".join(head) + " |",
                "|" + "---|" * len(head),
            ]
            for policy in HEURISTICS:
                cells = [pct(bootstrap_ci(values(rows, load, c, policy), seed=1)) for c in cols]
                lines.append(f"| {policy} | " + " | ".join(cells) + " |")
            lines.append("")
        lines += [
            "**Headroom** (best heuristic on reports vs the best under the oracle view, paired "
            "over seeds, points of %):",
            "",
            "| view | best on reports | best under oracle | difference [95% CI] | verdict |",
            "|---|---|---|---|---|",
        ]
        oracle_name, oracle_best = best(rows, load, "oracle")
        for view in view_names[1:]:
            name, vals = best(rows, load, view)
            diff = paired_difference_ci(vals, oracle_best, seed=2)
            verdict = "headroom" if diff[1] > 0 else "control"
            lines.append(
                f"| {view} | {name} {100 * vals.mean():.3g} | {oracle_name} "
                f"{100 * oracle_best.mean():.3g} | {pct(diff)} | {verdict} |"
            )
        lines.append("")
    lines += [
        "## Value of information",
        "",
        "![value of information](telemetry/value_of_information.png)",
        "",
        "Each heuristic's violation_rate_1ms on reports minus its own under the oracle view "
        "(paired over seeds), per report period; solid per-factory, dashed central. "
        "`random` and `nearest` read no load, so their gap is 0 by construction.",
        "",
    ]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], args, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(args.loads), figsize=(5 * len(args.loads), 4), sharey=True)
    axes = np.atleast_1d(axes)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, load in zip(axes, args.loads):
        for i, policy in enumerate(HEURISTICS):
            oracle = values(rows, load, "oracle", policy)
            for sched, style in zip(SCHEDULERS, ("-", "--")):
                gaps = [
                    100 * (values(rows, load, f"{p:g}ms-{sched}", policy) - oracle).mean()
                    for p in args.periods_ms
                ]
                ax.plot(
                    args.periods_ms, gaps, style, marker="o", color=colors[i % len(colors)],
                    label=policy if sched == "per_factory" else None,
                )  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("symlog", linthresh=0.1)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_title(f"load {load:g}x")
        ax.set_xlabel("report period (ms)")
    axes[0].set_ylabel("violation_rate_1ms: reports - oracle (points of %)")
    axes[-1].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/telemetry"))
    parser.add_argument("--page", type=Path, default=Path("results/telemetry.md"))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--duration", type=float, default=0.1, help="simulated s per episode")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--loads", type=float, nargs="+", default=[1.0, 1.5, 2.0])
    parser.add_argument("--periods-ms", type=float, nargs="+", default=[0.1, 0.5, 1.0, 5.0])
    args = parser.parse_args()
    cells_dir = args.out / "cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    all_views = views(args.periods_ms)
    rows: list[dict] = []
    start = time.perf_counter()
    todo = [(load, v) for load in args.loads for v in all_views]
    for i, (load, view) in enumerate(todo, 1):
        path = cells_dir / f"load{load:g}_{view}.csv"
        if not path.exists():
            t0 = time.perf_counter()
            write_rows(path, run_cell(load, view, all_views[view], args))
            print(f"[{i}/{len(todo)}] load {load:g}x {view}: {time.perf_counter() - t0:.0f} s",
                  file=sys.stderr, flush=True)  # fmt: skip
        rows += read_rows(path)
    wall = time.perf_counter() - start
    write_rows(args.out / "telemetry.csv", rows)
    plot(rows, args, args.out / "value_of_information.png")
    text = page(rows, args, list(all_views), wall)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()  # fmt: skip
    args.page.write_text(text.replace("Machine:", f"Commit {commit}. Machine:", 1))
    print(f"wrote {args.page}", file=sys.stderr)


if __name__ == "__main__":
    main()

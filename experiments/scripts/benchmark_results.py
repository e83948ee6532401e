"""results/benchmark.md: every heuristic, default and tuned, on the main suite, beside the
full-information references; which test sets turned out headroom and which control; the same
benchmark on a second test range (did the ranking hold?); where a benchmark's time goes.

Steps (each resumable: sweeps with --resume, benchmarks reuse their finished cells):

1. ``--tune``: the heuristic sweeps of the main suite (``sweep_heuristic_*.yaml``), their
   ``tuned.yaml`` copied to ``results/tuned/main/`` (the main suite's ``tuned:`` list).
2. ``millinet benchmark --suite main`` on test seeds 2**31 + 0..9 and, with ``--seed-base``,
   on a second range (default 2**31 + 10..19), into ``OUT/test-<base>/``.
3. A profile of one cell's episode (cProfile), grouped by module: where the time goes.
4. ``--timing-policy SPEC``: a fresh benchmark of the main suite with that one policy (every
   baseline and reference included, nothing reused) into ``OUT/timing/``: its wall time, CPU
   time and the machine's load.
5. The page, and ``results/benchmark/test-<base>/`` (each leaderboard without its cells).

Usage: .venv/bin/python experiments/scripts/benchmark_results.py [--tune]
       [--timing-policy runs/<run>] [--out runs/benchmark-results] [--page results/benchmark.md]
       [--second-seed-base 10] [--workers 2]
Without --timing-policy the page quotes the last timing run in OUT/timing/, if there is one.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import json
import math
import os
import pstats
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
MILLINET = [sys.executable, "-m", "millinet.experiments.cli"]
SWEEPS = {
    "deadline-aware": "experiments/configs/sweep_heuristic_deadline_aware.yaml",
    "power-of-d": "experiments/configs/sweep_heuristic_power_of_d.yaml",
}
TUNED_DIR = REPO / "results" / "tuned" / "main"


def run(cmd: list[str]) -> None:
    """Run a millinet command in the repository, its output passed through."""
    print("$ " + " ".join(shlex.quote(c) for c in ["millinet", *cmd[3:]]), flush=True)
    subprocess.run(cmd, cwd=REPO, check=True)


def tune() -> None:
    for heuristic, config in SWEEPS.items():
        name = "main-" + heuristic
        resume = ["--resume"] if (REPO / "runs" / "sweeps" / name).is_dir() else []
        run([*MILLINET, "sweep", "--config", config, *resume])
        TUNED_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "runs" / "sweeps" / name / "tuned.yaml", TUNED_DIR / f"{heuristic}.yaml")


def benchmark(out: Path, seed_base: int, workers: int, policy: str | None = None) -> dict:
    """``millinet benchmark --suite main`` into ``out`` (relative to the repository); its
    run.json, with ``dir`` added."""
    cmd = [*MILLINET, "benchmark", "--suite", "main", "--out", str(out), "--workers", str(workers)]
    if seed_base:
        cmd += ["--seed-base", str(seed_base)]
    if policy:
        cmd += ["--policy", policy]
    run(cmd)
    info = json.loads((REPO / out / "run.json").read_text())
    info["dir"] = str(out)
    return info


NUMBERS = (
    "violation_rate_1ms", "violation_rate_1ms_ci95_low", "violation_rate_1ms_ci95_high",
    "gap_closed", "baseline_minus_reference", "baseline_minus_reference_ci95_low",
    "baseline_minus_reference_ci95_high",
)  # fmt: skip


def read_rows(path: Path) -> list[dict]:
    """A leaderboard.csv with its numeric columns as floats (NaN where empty)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        for key in NUMBERS:
            r[key] = float(r[key]) if r[key] != "" else math.nan
    return rows


# --------------------------------------------------------------------------- profile
STAGES = (
    ("the scheduler's view: `Engine.telemetry_rows` (reports, aged backlogs, own dispatches)",
     "envs/engine.py", "telemetry_rows"),
    ("the featuriser: `featurize_rows` (the observation)", "envs/features.py", "featurize_rows"),
    ("the rule: `act` of the heuristic", "agents/heuristics.py", "act"),
)  # fmt: skip


def profile_cell(test_set: str, policy: str, seconds: float) -> list[tuple[str, float]]:
    """Where one episode of ``policy`` on ``test_set`` (main suite, first test seed,
    ``seconds`` of arrivals) spends its time, by stage (cProfile cumulative times): the engine
    (everything outside the policy's decisions), and within the decisions the scheduler's
    view, the featuriser, the rule and the adapter's own work (copying the mask, the call)."""
    from millinet.experiments.benchmark.suite import load_suite
    from millinet.experiments.evaluation.harness import Job, run_episode

    suite = load_suite("main")
    job = Job(suite.test_set(test_set).scenario, policy, 2**31, seconds, 0.0)
    run_episode(job)  # build the scenario outside the profile
    prof = cProfile.Profile()
    prof.enable()
    run_episode(job)
    prof.disable()

    def cumulative(file: str, func: str) -> float:
        return sum(
            ct
            for (filename, _, name), (_, _, _, ct, _) in pstats.Stats(prof).stats.items()
            if filename.endswith(file) and name == func
        )

    total = cumulative("envs/simulation.py", "simulate")
    decisions = cumulative("agents/specs.py", "__call__")
    stages = [(name, cumulative(file, func)) for name, file, func in STAGES]
    shares = [("the engine: events, queues, records (outside the decisions)", total - decisions)]
    shares += stages
    shares.append(("the adapter (`PolicyChooser`: mask copy, calls)",
                   decisions - sum(t for _, t in stages)))  # fmt: skip
    return [(name, t / total) for name, t in shares]


# --------------------------------------------------------------------------- the page
def pct(x: float) -> str:
    if math.isnan(x):
        return "–"
    return "0" if x == 0 else f"{100 * x:.3g}"


def ci_text(m: float, lo: float, hi: float, fmt=pct) -> str:
    if math.isnan(lo):
        return fmt(m)
    if lo == hi == m:
        return f"{fmt(m)} (all)"
    return f"{fmt(m)} [{fmt(lo)}, {fmt(hi)}]"


def pct_ci(r: dict) -> str:
    key = "violation_rate_1ms"
    return ci_text(r[key], r[f"{key}_ci95_low"], r[f"{key}_ci95_high"])


def points(x: float) -> str:
    return "–" if math.isnan(x) else ("0" if x == 0 else f"{100 * x:+.3g}")


def baseline_values(rows: list[dict], test_set: str) -> dict[str, float]:
    """Mean violation_rate_1ms of each baseline on reports (tuned and default)."""
    return {
        r["entry"]: r["violation_rate_1ms"]
        for r in rows
        if r["test_set"] == test_set and r["role"] in ("tuned", "heuristic")
    }


def verdicts(rows: list[dict]) -> dict[str, dict]:
    out = {}
    for r in rows:
        if r["role"] in ("tuned", "heuristic") and r["entry"] == r["best_baseline"]:
            out[r["test_set"]] = r
    return out


def page(args, first: dict, second: dict, profile, timing: dict | None, wall_s: float) -> str:
    from scipy.stats import kendalltau

    from millinet.agents.specs import describe_policy
    from millinet.experiments.benchmark.suite import load_suite

    suite = load_suite("main")
    rows_a = read_rows(REPO / first["dir"] / "leaderboard.csv")
    rows_b = read_rows(REPO / second["dir"] / "leaderboard.csv")
    sets = [ts.name for ts in suite.test_sets]
    base_b = args.second_seed_base
    lines = [
        "# Benchmark: tuned and default heuristics on the main suite",
        "",
        "Regenerate this page, `results/benchmark/` and the tuned heuristics with:",
        "",
        "```bash",
        ".venv/bin/python experiments/scripts/benchmark_results.py --tune"
        + (f" --timing-policy {timing['policy']}" if timing else ""),
        "```",
        "",
        "It runs the heuristic sweeps, then "
        f"`millinet benchmark --suite main` on test seeds 2**31 + 0..9 and again with "
        f"`--seed-base {base_b}` (2**31 + {base_b}..{base_b + 9}), and writes this page. "
        f"Machine: {first['machine'].get('cpu')}, {first['machine'].get('cpu_count')} cores, "
        f"commit {first['machine'].get('git_commit')}; this run of the script took "
        f"{wall_s / 60:.0f} min (cells already in its output folders are reused).",
        "",
        f"The suite (`experiments/suites/main.yaml`): {len(sets)} test sets, "
        f"{len(first['seeds']['test'])} test seeds each, "
        f"{suite.config.duration_s * 1000:g} ms of arrivals per episode. Every number is the "
        "mean over the test seeds of an episode's 1 ms violation rate (share of tasks with a "
        "deadline ≤ 1 ms that finished late or were dropped), in %, with its 95% bootstrap "
        "interval over seeds; all entries run on the same seeds (paired).",
        "",
        "## Tuned parameters",
        "",
        "Tuned by `millinet sweep` (heuristic sweeps, `docs/sweeps.md`) on the suite's "
        "validation seeds (reset seeds 900000..900004; the engine seeds `PlacementEnv.reset` "
        "derives from them) on the three in-distribution scenarios, objective "
        "`violation_rate_1ms + 0.01 violation_rate`, with the PPO sweep's budget rules "
        "(16 samples, ASHA, Optuna; power-of-d's d has 8 values: the whole grid).",
        "",
        "| heuristic | default | tuned | validation objective, tuned |",
        "|---|---|---|---|",
    ]
    for heuristic in SWEEPS:
        path = TUNED_DIR / f"{heuristic}.yaml"
        data = yaml.safe_load(path.read_text())
        obj = data.get("objective", {}).get("violation_rate_1ms", math.nan)
        lines.append(
            f"| {heuristic} | `{describe_policy(heuristic)}` | `{describe_policy(str(path))}` | "
            f"violation_rate_1ms {pct(obj)} % |"
        )
    lines += ["", "## Findings", ""] + findings(rows_a, rows_b, sets, base_b, timing)
    lines += [
        "",
        "## Headroom or control, measured",
        "",
        "Best baseline = the lowest violation_rate_1ms among the tuned and default heuristics on "
        "reports; best reference = the lowest among the default heuristics under the oracle "
        "view. *Headroom*: the paired 95% interval of best baseline − best reference lies above "
        "0. Declared = the suite's expectation (in-distribution scenarios only).",
        "",
        f"| test set | declared | test seeds 0..9: best baseline | best reference | "
        f"difference, points | measured | seeds {base_b}..{base_b + 9}: best baseline | "
        "difference, points | measured |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    va, vb = verdicts(rows_a), verdicts(rows_b)
    for name in sets:
        a, b = va[name], vb[name]
        ref = next(r for r in rows_a if r["test_set"] == name and r["entry"] == a["best_reference"])
        lines.append(
            f"| {name} | {a['declared'] or '–'} | {a['entry']}: {pct_ci(a)} | "
            f"{ref['entry']}: {pct_ci(ref)} | {_difference(a)} | **{a['measured']}** | "
            f"{b['entry']}: {pct_ci(b)} | {_difference(b)} | **{b['measured']}** |"
        )
    lines += [
        "",
        "## violation_rate_1ms, % (test seeds 2**31 + 0..9)",
        "",
        "| entry | " + " | ".join(sets) + " |",
        "|---|" + "---|" * len(sets),
    ]
    entries = list(dict.fromkeys((r["role"], r["entry"]) for r in rows_a))
    for role, entry in entries:
        cells = []
        for name in sets:
            r = next((x for x in rows_a if x["test_set"] == name and x["entry"] == entry
                      and x["role"] == role), None)  # fmt: skip
            text = pct_ci(r) if r else "–"
            if r is not None and va[name]["entry"] == entry and role in ("tuned", "heuristic"):
                text = f"**{text}**"
            cells.append(text)
        kind = {"tuned": "tuned", "heuristic": "default", "reference": "oracle"}.get(role, role)
        lines.append(f"| {entry} ({kind}) | " + " | ".join(cells) + " |" if kind != "oracle"
                     else f"| {entry} | " + " | ".join(cells) + " |")  # fmt: skip
    lines += [
        "",
        "Bold: the best baseline. The full leaderboards (gap closed, p99.9 per class, "
        "parameters, run.json) are [`benchmark/test-0/`](benchmark/test-0/leaderboard.md) and "
        f"[`benchmark/test-{base_b}/`](benchmark/test-{base_b}/leaderboard.md).",
        "",
        "![leaderboard](benchmark/test-0/leaderboard.png)",
        "",
        "## Did the ranking hold on the second test range?",
        "",
        f"Baselines on reports ranked by mean violation_rate_1ms on seeds 0..9 and on "
        f"{base_b}..{base_b + 9}; Kendall's τ between the two rankings (1 = the same order).",
        "",
        "| test set | best baseline, 0..9 | best baseline, second range | same verdict | τ |",
        "|---|---|---|---|---|",
    ]
    held = True
    for name in sets:
        a_vals, b_vals = baseline_values(rows_a, name), baseline_values(rows_b, name)
        order = list(a_vals)
        tau = kendalltau([a_vals[e] for e in order], [b_vals[e] for e in order]).statistic
        same_best = _same_best(va[name], vb[name], rows_a, rows_b)
        same_verdict = va[name]["measured"] == vb[name]["measured"]
        held &= same_best and same_verdict
        lines.append(
            f"| {name} | {va[name]['entry']} | {vb[name]['entry']}"
            f"{'' if same_best else ' (differs)'} | {'yes' if same_verdict else '**no**'} | "
            f"{tau:.2f} |"
        )
    lines += [
        "",
        ("**The ranking held**: " if held else "**The ranking did not fully hold**: ")
        + "the best baseline (up to entries with identical numbers) and the measured verdict "
        "of every test set "
        + ("are the same on both ranges." if held else "differ where the table says so."),
        "",
        "## Where the time goes",
        "",
    ]
    lines += _time_section(first, profile, timing)
    return "\n".join(lines) + "\n"


def findings(
    rows_a: list[dict], rows_b: list[dict], sets: list[str], base_b: int, timing: dict | None
) -> list[str]:
    """The page's summary, computed from both leaderboards."""
    va, vb = verdicts(rows_a), verdicts(rows_b)
    headroom = [s for s in sets if va[s]["measured"] == "headroom"]
    control = [s for s in sets if va[s]["measured"] == "control"]
    disagree = [s for s in sets if va[s]["declared"] and va[s]["declared"] != va[s]["measured"]]
    flipped = [s for s in sets if va[s]["measured"] != vb[s]["measured"]]
    out = [
        f"* **Measured, not assumed**: {len(headroom)} headroom test sets "
        f"({', '.join(headroom)}) and {len(control)} control ({', '.join(control) or 'none'}). "
        + (
            f"Declared tags that the measurement contradicts: {', '.join(disagree)}."
            if disagree
            else "Every declared tag (in-distribution scenarios) matches its measurement."
        )
        + (
            f" On seeds {base_b}..{base_b + 9} the verdicts are the same."
            if not flipped
            else f" On seeds {base_b}..{base_b + 9} the verdict changes on {', '.join(flipped)}."
        ),
    ]
    best: dict[str, list[str]] = {}
    for s in sets:
        best.setdefault(va[s]["entry"], []).append(s)
    out.append(
        "* **Best baseline per test set** (seeds 0..9): "
        + "; ".join(f"{entry} on {', '.join(names)}" for entry, names in best.items())
        + "."
    )
    for heuristic in SWEEPS:
        tuned, default = f"tuned:{heuristic}", heuristic
        diffs = []
        for s in sets:
            vals = baseline_values(rows_a, s)
            if tuned in vals and default in vals:
                diffs.append(vals[tuned] - vals[default])
        same = all(d == 0 for d in diffs)
        better = sum(d < 0 for d in diffs)
        worse = sum(d > 0 for d in diffs)
        out.append(
            f"* **Tuning {heuristic}**: "
            + (
                "the sweep found nothing better than the defaults on the validation seeds "
                "(its tuned file holds the defaults), so tuned and default are the same policy."
                if same
                else f"the tuned parameters have a lower mean violation_rate_1ms than the "
                f"defaults on {better} of {len(diffs)} test sets, a higher one on {worse}."
            )
        )
    if timing is not None:
        out.append(
            f"* The policy of the timing run (`{timing['policy']}`) is a MaskablePPO run of a "
            "few thousand steps, trained only to time a trained policy's inference; its "
            "numbers (`runs/benchmark-results/timing/`) are not a result."
        )
    return out


def _difference(row: dict) -> str:
    """Best baseline - best reference in points, with its paired 95% interval."""
    key = "baseline_minus_reference"
    return ci_text(row[key], row[f"{key}_ci95_low"], row[f"{key}_ci95_high"], points)


def _same_best(a: dict, b: dict, rows_a: list[dict], rows_b: list[dict]) -> bool:
    """The same best baseline, or two entries whose numbers are identical on both ranges
    (a tuned file that holds the defaults)."""
    if a["entry"] == b["entry"]:
        return True

    def values(rows: list[dict], entry: str) -> list[float]:
        return [r["violation_rate_1ms"] for r in rows if r["entry"] == entry]

    return values(rows_a, a["entry"]) == values(rows_a, b["entry"]) and values(
        rows_b, a["entry"]
    ) == values(rows_b, b["entry"])


def _time_section(first: dict, shares, timing: dict | None) -> list[str]:
    by_view: dict[str, float] = {}
    for view, cpu in unique_cells(first).values():
        by_view[view] = by_view.get(view, 0.0) + cpu
    total = sum(by_view.values())
    lines = []
    if timing is not None:
        m = timing["machine"]
        lines += [
            f"**One policy on the main suite, from scratch**: `{timing['command']}` (a fresh "
            f"folder: the policy, every tuned and default heuristic and every oracle reference, "
            f"{timing['cells_run']} cells, {timing['episodes_run']} episodes) took "
            f"**{timing['wall_s'] / 60:.1f} min** of wall time on {m.get('cpu_count')} cores, "
            f"with a 1-minute load average of {m.get('load_average_1min_at_start', 0):.1f} at "
            f"the start and {m.get('load_average_1min_at_end', 0):.1f} at the end (the machine "
            f"is shared). Its episodes used {timing['cpu_s'] / 60:.1f} CPU-minutes: on 2 idle "
            f"cores that is about {timing['cpu_s'] / 2 / 60:.1f} min.",
            "",
        ]
    cells = unique_cells(first)
    lines += [
        f"The heuristics' benchmark on seeds 0..9 has {len(cells)} cells "
        f"({len(cells) * len(first['seeds']['test'])} episodes; test sets with equal oracle "
        f"views share those cells); its episodes used {total / 60:.1f} CPU-minutes: "
        + ", ".join(f"{v} view {t / total:.0%}" for v, t in by_view.items())
        + ". Within an episode (cProfile of deadline-aware on sunflower-metro-load2x, first "
        "test seed, 50 ms; cumulative time of each stage):",
        "",
        "| stage | share of an episode's time |",
        "|---|---|",
    ]
    lines += [f"| {name} | {share:.0%} |" for name, share in shares]
    lines += [
        "",
        "Every decision of a policy that reads the observation pays for the scheduler's view, "
        "the featuriser and the rule on top of the engine's own events; a trained policy pays "
        "its network instead of the rule. The harness builds each scenario once per worker "
        "process and loads a trained or exported policy once per process, so neither is paid "
        "per episode.",
    ]
    return lines


def unique_cells(info: dict) -> dict[str, tuple[str, float]]:
    """Each cell of a run.json once (entries and test sets share cells), by its key (the hash
    that ends its file name): its view and CPU seconds."""
    return {
        Path(c["file"]).stem.rsplit("-", 1)[1]: (Path(c["file"]).parent.name, c["cpu_s"])
        for c in info["cells"].values()
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tune", action="store_true", help="run (or resume) the heuristic sweeps")
    p.add_argument("--timing-policy", default=None, help="time a fresh benchmark of this policy")
    p.add_argument("--out", default="runs/benchmark-results")
    p.add_argument("--page", default="results/benchmark.md")
    p.add_argument("--second-seed-base", type=int, default=10)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = p.parse_args()
    t0 = time.monotonic()
    out = Path(args.out)
    if args.tune:
        tune()
    first = benchmark(out / "test-0", 0, args.workers)
    second = benchmark(out / f"test-{args.second_seed_base}", args.second_seed_base, args.workers)
    profile = profile_cell("sunflower-metro-load2x", "deadline-aware", 0.05)
    timing = None
    if args.timing_policy:  # from scratch: nothing reused
        shutil.rmtree(REPO / out / "timing", ignore_errors=True)
        timing = benchmark(out / "timing", 0, args.workers, policy=args.timing_policy)
    elif (REPO / out / "timing" / "run.json").is_file():  # the last measurement, for the page
        timing = json.loads((REPO / out / "timing" / "run.json").read_text())
    if timing is not None:
        timing["policy"] = timing["command"].split("--policy ")[1].split(" ")[0]
        timing["cpu_s"] = sum(cpu for _, cpu in unique_cells(timing).values())
    results = REPO / "results" / "benchmark"
    results.mkdir(parents=True, exist_ok=True)
    for info in (first, second):  # the leaderboards without their cells
        folder = results / Path(info["dir"]).name
        folder.mkdir(exist_ok=True)
        for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.png", "run.json"):
            shutil.copy(REPO / info["dir"] / name, folder / name)
    text = page(args, first, second, profile, timing, time.monotonic() - t0)
    (REPO / args.page).write_text(text)
    print(f"wrote {args.page} and {results}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())

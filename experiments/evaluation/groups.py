"""Experiment groups: trained runs that differ only in their training seed.

A policy spec that names a run folder (``runs/<experiment>_s<seed>_<time>[@checkpoint]``)
belongs to the group ``<experiment>[@checkpoint]``. A group's number is the mean over its runs
of each run's mean over the evaluation seeds, with a 95% Student-t interval across runs (the
training seeds), which is the spread a new training run would show; the pooled 1 ms counts
over every run and seed sit beside it. Heuristics and exported policies form no group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from millinet.envs.stats import mean_ci95
from millinet.experiments.analysis import group_key
from millinet.experiments.evaluation.harness import Evaluation


def experiment_of(spec: str) -> str | None:
    """``runs/x/<exp>_s3_<time>@last`` -> ``<exp>@last``; None for a spec that is not a run
    name (a heuristic, or a folder whose name carries no ``_s<seed>_<time>`` suffix)."""
    name, _, checkpoint = Path(spec).name.partition("@")
    group = group_key(name)
    if group == name:
        return None
    return group + (f"@{checkpoint}" if checkpoint else "")


@dataclass(frozen=True)
class GroupSummary:
    """One experiment group on one evaluation (rates are shares, 0..1)."""

    name: str
    runs: tuple[str, ...]  # the policy specs, in evaluation order
    per_run: tuple[float, ...]  # each run's mean violation_rate_1ms over the seeds
    mean: float
    ci_low: float  # Student-t across runs, clipped at 0 (NaN with a single run)
    ci_high: float
    violations_1ms: int  # pooled over runs and seeds
    tasks_1ms: int


def group_runs(ev: Evaluation) -> list[GroupSummary]:
    """The experiment groups among ``ev``'s policies, by name."""
    members: dict[str, list[str]] = {}
    for policy in ev.policies:
        group = experiment_of(policy)
        if group is not None:
            members.setdefault(group, []).append(policy)
    out = []
    for name in sorted(members):
        runs = members[name]
        per_run = [float(np.nanmean(ev.values(p, "violation_rate_1ms"))) for p in runs]
        mean, half = mean_ci95(per_run)
        low, high = (
            (math.nan, math.nan) if math.isnan(half) else (max(mean - half, 0.0), mean + half)
        )
        count = sum(int(ev.values(p, "violations_1ms").sum()) for p in runs)
        tasks = sum(int(ev.values(p, "tasks_1ms").sum()) for p in runs)
        out.append(GroupSummary(name, tuple(runs), tuple(per_run), mean, low, high, count, tasks))
    return out


def markdown_groups(groups: list[GroupSummary], n_seeds: int) -> str:
    """A table of the groups: runs x seeds, mean with its CI across runs, pooled counts."""

    def pct(x: float) -> str:
        return "–" if math.isnan(x) else f"{100 * x:.4f}"

    lines = [
        "| experiment | runs × seeds | violation_rate_1ms % [95% CI across runs] "
        "| 1 ms violations / tasks | per run % |",
        "|---|---|---|---|---|",
    ]
    for g in groups:
        ci = "" if math.isnan(g.ci_low) else f" [{pct(g.ci_low)}, {pct(g.ci_high)}]"
        runs = ", ".join(pct(v) for v in g.per_run)
        lines.append(
            f"| {g.name} | {len(g.runs)} × {n_seeds} | {pct(g.mean)}{ci} | "
            f"{g.violations_1ms:,} / {g.tasks_1ms:,} | {runs} |"
        )
    return "\n".join(lines)


def write_groups_csv(groups: list[GroupSummary], scenario: str, path: Path) -> None:
    """One row per group (rates as exact ``repr`` floats, empty for NaN)."""
    import csv

    def cell(x: float) -> str:
        return "" if math.isnan(x) else repr(x)

    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["scenario", "experiment", "runs", "violation_rate_1ms", "ci95_low",
                    "ci95_high", "violations_1ms", "tasks_1ms"])  # fmt: skip
        for g in groups:
            w.writerow([scenario, g.name, len(g.runs), cell(g.mean), cell(g.ci_low),
                        cell(g.ci_high), g.violations_1ms, g.tasks_1ms])  # fmt: skip

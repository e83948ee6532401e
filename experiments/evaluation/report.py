"""Markdown tables of an evaluation: one section per scenario, and the combined report.

Numbers are means over seeds with their 95% bootstrap interval in brackets; rates are in
percent, latencies in microseconds. ``Δ vs best`` is the paired (same seeds) bootstrap interval
of the difference to the policy with the lowest ``violation_rate_1ms``: an interval that
excludes 0 means the gap is not seed noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from millinet.envs.config import CLASS_NAMES
from millinet.envs.seeds import EVAL_SEED_BASE
from millinet.experiments.evaluation.harness import Evaluation


def pct(x: float) -> str:
    """A rate as percent with 3 significant digits ("0" for zero, "–" for NaN)."""
    if math.isnan(x):
        return "–"
    if x == 0:
        return "0"
    return f"{100 * x:.3g}"


def us(x: float) -> str:
    """Microseconds with thousands separators ("–" for NaN)."""
    return "–" if math.isnan(x) else f"{x:,.0f}"


def with_ci(triple: tuple[float, float, float], fmt) -> str:
    """``mean [low, high]`` of a (mean, low, high) triple, each through ``fmt``."""
    mean, low, high = triple
    if math.isnan(mean):
        return "–"
    if math.isnan(low):
        return fmt(mean)
    if low == high == mean:
        return f"{fmt(mean)} (all seeds)"
    return f"{fmt(mean)} [{fmt(low)}, {fmt(high)}]"


def signed_pct(triple: tuple[float, float, float]) -> str:
    """A difference of rates in signed percentage points, with its interval."""
    mean, low, high = triple
    if math.isnan(mean):
        return "–"

    def f(x: float) -> str:
        return "0" if x == 0 else f"{100 * x:+.3g}"

    if math.isnan(low) or low == high:
        return f(mean)
    return f"{f(mean)} [{f(low)}, {f(high)}]"


def seeds_text(seeds: Sequence[int]) -> str:
    """'2**31 + 0 .. 2**31 + 9' for evaluation seeds, else the list."""
    offs = [s - EVAL_SEED_BASE for s in seeds]
    if all(o >= 0 for o in offs) and offs == list(range(offs[0], offs[0] + len(offs))):
        return f"2**31 + {offs[0]} .. 2**31 + {offs[-1]}"
    return ", ".join(str(s) for s in seeds)


def markdown_summary(ev: Evaluation, image_dir: str | None = ".") -> str:
    """The tables (and plot links, if ``image_dir``) of one scenario's evaluation."""
    best = ev.best_policy()
    n_tight = {p: int(np.nansum(ev.values(p, "tasks_1ms"))) for p in ev.policies}
    v_tight = {p: int(np.nansum(ev.values(p, "violations_1ms"))) for p in ev.policies}
    lines = [
        f"{len(ev.seeds)} seeds ({seeds_text(ev.seeds)}), {ev.duration_s:g} s of arrivals per "
        f"episode" + (f", first {ev.warmup_s:g} s not counted" if ev.warmup_s else "") + ". "
        "Mean over seeds [95% CI]; rates in %.",
        "",
        "| policy | violation_rate_1ms % | Δ vs best, points (paired) | 1 ms violations / tasks, "
        "all seeds | violation rate (all classes) % | drop rate % |",
        "|---|---|---|---|---|---|",
    ]
    order = sorted(
        ev.policies,
        key=lambda p: (
            _nan_last(ev.summary[p]["violation_rate_1ms"][0]),
            ev.summary[p]["violation_rate"][0],
        ),
    )
    for p in order:
        s = ev.summary[p]
        name = f"**{p}**" if p == best else p
        delta = "(best)" if p == best else signed_pct(ev.difference(p, best))
        lines.append(
            f"| {name} | {with_ci(s['violation_rate_1ms'], pct)} | {delta} | "
            f"{v_tight[p]:,} / {n_tight[p]:,} | {with_ci(s['violation_rate'], pct)} | "
            f"{with_ci(s['drop_rate'], pct)} |"
        )
    lines += [
        "",
        "| policy | class (deadline) | violation rate % | drop rate % | p50 µs | p99 µs | "
        "p99.9 µs |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in order:
        s = ev.summary[p]
        for c, name in enumerate(CLASS_NAMES):
            if math.isnan(s[f"{name}_violation_rate"][0]):
                continue
            deadline = ev.deadlines_us[c]
            dl = f"{deadline / 1000:g} ms"
            lines.append(
                f"| {p} | {name} ({dl}) | {with_ci(s[f'{name}_violation_rate'], pct)} | "
                f"{with_ci(s[f'{name}_drop_rate'], pct)} | "
                f"{with_ci(s[f'{name}_p50_us'], us)} | {with_ci(s[f'{name}_p99_us'], us)} | "
                f"{with_ci(s[f'{name}_p999_us'], us)} |"
            )
    if image_dir is not None:
        lines += [
            "",
            f"![violation rates]({image_dir}/violation_rates.png)",
            f"![latency CDFs]({image_dir}/latency_cdf.png)",
        ]
    return "\n".join(lines)


def _nan_last(x: float) -> float:
    return math.inf if math.isnan(x) else x


def best_line(ev: Evaluation) -> str:
    """One sentence: the best policy and its paired gap to the runner-up."""
    best = ev.best_policy()
    others = [p for p in ev.policies if p != best]
    s = ev.summary[best]["violation_rate_1ms"]
    if s[0] == s[1] == s[2]:
        value = f"{pct(s[0])} % in every seed"
    else:
        value = f"{with_ci(s, pct)} %"
    text = f"Strongest on `{ev.scenario}`: **{best}**, violation_rate_1ms {value}"
    n_tight = int(np.nansum(ev.values(best, "tasks_1ms")))
    if s[0] == 0 and n_tight:
        # no violation observed: the rule of three bounds the rate (tasks taken as independent)
        text += f" (0 of {n_tight:,} tasks; 95% upper bound ≈ {pct(3 / n_tight)} %)"
    if others:
        runner = min(others, key=lambda p: _nan_last(ev.summary[p]["violation_rate_1ms"][0]))
        d, dl, dh = ev.difference(runner, best)
        runner_v = with_ci(ev.summary[runner]["violation_rate_1ms"], pct)
        text += (
            f"; the runner-up, {runner}, has {runner_v} %, {signed_pct((d, dl, dh))} points "
            "more (paired 95% CI"
        )
        if not math.isnan(dl):
            text += ", significant)" if dl > 0 else ", not significant)"
        else:
            text += ")"
    return text + "."


def markdown_report(
    evaluations: Sequence[Evaluation], command: str, image_dirs: dict[str, str], wall_s: float
) -> str:
    """The combined report (``results/baselines.md``): command first, then one section each.

    ``image_dirs`` maps a scenario name to its plots' folder, relative to the report."""
    from millinet.agents.heuristics import HEURISTICS

    ev0 = evaluations[0]
    baselines = all(ev.policies == list(HEURISTICS) for ev in evaluations)
    lines = [
        "# Baseline schedulers" if baselines else "# Policy evaluation",
        "",
        "Regenerate this file and its plots with:",
        "",
        "```bash",
        command,
        "```",
        "",
        f"{'Every heuristic' if baselines else 'The policies below'} on "
        f"{'every shipped scenario' if baselines else 'each scenario'}, "
        f"{len(ev0.seeds)} evaluation seeds each "
        f"({seeds_text(ev0.seeds)}, disjoint from training seeds, see `envs/seeds.py`). "
        "One episode = one seed: the scenario starts empty, arrivals of the given duration "
        "are admitted, the policy places every task, and in-flight tasks are drained. Each "
        "number is the mean over seeds of the per-seed metric with a 95% bootstrap interval "
        "over seeds (Hesterberg's expanded percentile interval, `envs/stats.py`); "
        "`Δ vs best` is the paired interval of the difference to the best policy on the same "
        "seeds. `x (all seeds)` means every seed gave exactly x. Drops count as violations. "
        "The policies are documented in `agents/heuristics.py`; the method in "
        "`experiments/evaluation/harness.py`.",
        "",
        f"The run took {wall_s / 60:.1f} min of wall time; its simulations used "
        f"{sum(ev.cpu_s for ev in evaluations) / 60:.1f} CPU-minutes (a wall time of about "
        "CPU-minutes / workers on idle cores).",
        "",
    ]
    for ev in evaluations:
        lines += [best_line(ev), ""]
    for ev in evaluations:
        lines += [
            f"## {ev.scenario}",
            "",
            markdown_summary(ev, image_dir=image_dirs.get(ev.scenario)),
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"

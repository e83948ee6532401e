"""PNG plots of an evaluation (matplotlib, Agg backend; no display needed).

* ``violation_rates.png``: bars of the mean over seeds with 95% CI error bars: the headline
  ``violation_rate_1ms``, the overall rate and each class's rate, one bar per policy.
* ``latency_cdf.png``: per class, the latency CDF (top) and its tail 1 - CDF on a log scale
  (bottom), one line per policy, pooled over seeds; the deadline is the dashed vertical line.
  Dropped tasks never complete, so a CDF stops below 1.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from millinet.envs.config import CLASS_NAMES  # noqa: E402
from millinet.experiments.evaluation.harness import CDF_GRID_US, Evaluation  # noqa: E402

_METADATA = {"Software": None}  # keep PNGs byte-stable across matplotlib versions


def _colors(n: int) -> list:
    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(n)]


def plot_violation_rates(ev: Evaluation, path: Path) -> Path:
    """Grouped bar chart of violation rates (%) with 95% CI error bars."""
    groups = [("violation_rate_1ms", "≤ 1 ms tasks\n(headline)"), ("violation_rate", "all tasks")]
    for c, name in enumerate(CLASS_NAMES):
        if not all(math.isnan(ev.summary[p][f"{name}_violation_rate"][0]) for p in ev.policies):
            groups.append((f"{name}_violation_rate", f"{name}\n({ev.deadlines_us[c] / 1e3:g} ms)"))
    n_pol = len(ev.policies)
    width = 0.8 / n_pol
    fig, ax = plt.subplots(figsize=(max(7.0, 1.6 * len(groups) + 0.5 * n_pol), 4.4))
    x = np.arange(len(groups))
    bars = []
    for i, policy in enumerate(ev.policies):
        for g, (metric, _) in enumerate(groups):
            mean, low, high = (100 * v for v in ev.summary[policy][metric])
            if not math.isnan(mean):
                low = mean if math.isnan(low) else low
                high = mean if math.isnan(high) else high
                bars.append((i, x[g] - 0.4 + width * (i + 0.5), mean, low, high))
    positive = [v for b in bars for v in b[2:] if v > 0]
    floor = 10 ** math.floor(math.log10(min(positive) / 2)) if positive else 1e-3
    colors = _colors(n_pol)
    for i, pos, mean, low, high in bars:
        if mean > 0:
            ax.bar(pos, mean - floor, width, bottom=floor, color=colors[i])
            ax.errorbar(
                pos, mean, yerr=[[mean - max(low, floor)], [high - mean]],
                fmt="none", ecolor="black", lw=0.8, capsize=2,
            )  # fmt: skip
        else:
            ax.text(pos, floor * 1.15, "0", ha="center", va="bottom", fontsize=7, color=colors[i])
    handles = [Patch(color=colors[i], label=p) for i, p in enumerate(ev.policies)]
    ax.set_yscale("log")
    ax.set_ylim(floor, 100 * 1.5)
    ax.set_xticks(x, [label for _, label in groups])
    ax.set_ylabel("deadline violations (%, log scale)")
    ax.set_title(
        f"{ev.scenario}: violation rate, mean over {len(ev.seeds)} seeds with 95% CI "
        '("0": no violation in any seed)',
        fontsize=10,
    )
    ax.grid(axis="y", alpha=0.3)
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata=_METADATA)
    plt.close(fig)
    return path


def plot_latency_cdfs(ev: Evaluation, path: Path) -> Path:
    """Per class: latency CDF and tail (1 - CDF), deadline marked, one line per policy."""
    classes = [
        c
        for c in range(len(CLASS_NAMES))
        if any(ev.mean_cdf(p, c) is not None for p in ev.policies)
    ]
    fig, axes = plt.subplots(
        2, len(classes), figsize=(4.2 * len(classes), 6.4), squeeze=False, sharex="col"
    )
    colors = _colors(len(ev.policies))
    for j, c in enumerate(classes):
        top, bottom = axes[0, j], axes[1, j]
        deadline = ev.deadlines_us[c]
        lo_x, hi_x = math.inf, 0.0
        for policy, color in zip(ev.policies, colors):
            cdf = ev.mean_cdf(policy, c)
            if cdf is None:
                continue
            top.plot(CDF_GRID_US, cdf, color=color, lw=1.2, label=policy)
            tail = 1.0 - cdf
            bottom.plot(CDF_GRID_US, np.where(tail > 0, tail, np.nan), color=color, lw=1.2)
            live = np.flatnonzero((cdf > 0.001) & (cdf < cdf[-1]))
            if live.size:
                lo_x = min(lo_x, CDF_GRID_US[max(live[0] - 1, 0)])
                hi_x = max(hi_x, CDF_GRID_US[min(live[-1] + 2, CDF_GRID_US.size - 1)])
        for ax in (top, bottom):
            ax.axvline(deadline, color="black", ls="--", lw=1.0)
            ax.set_xscale("log")
            ax.grid(alpha=0.3, which="both")
        if lo_x < hi_x:
            top.set_xlim(min(lo_x, deadline / 3), max(hi_x, deadline * 3))
        top.set_title(f"{CLASS_NAMES[c]} (deadline {deadline / 1e3:g} ms, dashed)", fontsize=10)
        top.set_ylim(0, 1.02)
        top.set_ylabel("P(latency ≤ x)")
        bottom.set_yscale("log")
        bottom.set_ylim(1e-5, 1.5)
        bottom.set_ylabel("P(latency > x), drops included")
        bottom.set_xlabel("end-to-end latency (µs)")
    axes[0, 0].legend(fontsize=8, loc="upper left")
    fig.suptitle(f"{ev.scenario}: latency per class, pooled over {len(ev.seeds)} seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata=_METADATA)
    plt.close(fig)
    return path

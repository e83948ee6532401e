"""``leaderboard.png``: every entry's violation_rate_1ms with its 95% CI, one panel per test
set (symmetric-log axis: zero and 80 % fit in one panel), colored by role."""

from __future__ import annotations

import math
from pathlib import Path

from millinet.experiments.benchmark.leaderboard import ROLE_TEXT, Leaderboard

COLORS = {
    "policy": "tab:red",
    "tuned": "tab:purple",
    "heuristic": "tab:blue",
    "reference": "tab:green",
    "bound": "black",
}


def plot_leaderboard(board: Leaderboard, path: Path) -> Path:
    """Write the plot to ``path`` (PNG) and return it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = [e for e in board.entries if e.role != "bound"]
    n = len(board.results)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    height = 0.8 + 0.22 * len(entries) + (0.22 if any(r.bound for r in board.results) else 0)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, height * rows), squeeze=False)
    for ax, r in zip(axes.ravel(), board.results):
        labels = []
        for y, e in enumerate(entries):
            s = r.scores.get(e.key)
            labels.append(e.label)
            if s is None or math.isnan(s.v1[0]):
                continue
            mean, low, high = (100 * x for x in s.v1)
            err = None
            if not (math.isnan(low) or math.isnan(high)):
                err = [[mean - low], [high - mean]]
            best = r.best_baseline is not None and e.key == r.best_baseline.key
            ax.errorbar(
                [mean], [y], xerr=err, fmt="D" if best else "o", ms=6 if best else 4,
                color=COLORS[e.role], capsize=2, lw=1,
            )  # fmt: skip
        if r.bound is not None and not math.isnan(r.bound.v1[0]):
            ax.axvline(100 * r.bound.v1[0], color=COLORS["bound"], ls=":", lw=1)
        ax.set_yticks(range(len(entries)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xscale("symlog", linthresh=0.01)
        ax.set_xlim(0, 100)
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlabel("violation_rate_1ms (%)", fontsize=8)
        ax.set_title(f"{r.test_set.name} ({r.measured})", fontsize=9)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    handles = [
        plt.Line2D([], [], color=c, marker="o", ls="", label=ROLE_TEXT[role])
        for role, c in COLORS.items()
        if role != "bound" and any(e.role == role for e in entries)
    ]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8)
    fig.suptitle(
        f"suite {board.suite.name}: violation_rate_1ms, mean and 95% CI over "
        f"{len(board.seeds)} test seeds (diamond: best baseline; dotted: lower bound)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

"""Per-class and headline metrics computed from the engine's task records.

Definitions (DESIGN.md section 2):

* a task *violates* its deadline if it completed late or was dropped (drops count);
* ``violation_rate`` of a class = violations / finished tasks of that class;
* ``violation_rate_1ms`` = the same over all classes whose deadline is <= 1 ms;
* latency percentiles are over completed tasks, in us (NaN when a class completed none).
"""

from __future__ import annotations

import math

import numpy as np

from millinet.envs.config import CLASS_NAMES, TaskClassConfig
from millinet.envs.engine import DROPPED, LATE

ONE_MS_US = 1_000.0
PERCENTILES = {"p50_us": 50.0, "p99_us": 99.0, "p999_us": 99.9}


def _rate(num: int, den: int) -> float:
    return num / den if den else math.nan


def class_metrics(records: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Counts, violation rate and latency percentiles of the records selected by ``mask``."""
    sel = records[mask]
    status = sel["status"]
    finished = int(sel.size)
    late = int((status == LATE).sum())
    dropped = int((status == DROPPED).sum())
    completed_lat = sel["latency_s"][status != DROPPED] * 1e6
    out: dict[str, float] = {
        "finished": finished,
        "completed": finished - dropped,
        "late": late,
        "dropped": dropped,
        "violation_rate": _rate(late + dropped, finished),
        "mean_us": float(completed_lat.mean()) if completed_lat.size else math.nan,
    }
    for key, q in PERCENTILES.items():
        out[key] = float(np.percentile(completed_lat, q)) if completed_lat.size else math.nan
    return out


def summarize(records: np.ndarray, classes: list[TaskClassConfig]) -> dict:
    """Headline and per-class metrics of a finished simulation (plain dict, JSON-ready).

    ``records`` is ``Engine.record_array()``; ``classes`` are the scenario's classes in
    CLASS_NAMES order.
    """
    per_class = {
        name: class_metrics(records, records["cls"] == c) for c, name in enumerate(CLASS_NAMES)
    }
    tight = [c for c, spec in enumerate(classes) if spec.deadline_us <= ONE_MS_US]
    tight_mask = np.isin(records["cls"], tight)
    tight_m = class_metrics(records, tight_mask)
    overall = class_metrics(records, np.ones(records.size, dtype=bool))
    return {
        "violation_rate_1ms": tight_m["violation_rate"],
        "violation_rate": overall["violation_rate"],
        "finished": overall["finished"],
        "dropped": overall["dropped"],
        "classes": per_class,
    }


def format_table(metrics: dict) -> str:
    """A fixed-width text table: one row per class plus the headline line."""
    head = (
        f"{'class':<14}{'tasks':>9}{'done':>9}{'drops':>7}{'viol%':>8}"
        f"{'p50 us':>10}{'p99 us':>10}{'p99.9 us':>10}"
    )
    rows = [head, "-" * len(head)]

    def fmt(x: float) -> str:
        return "-" if math.isnan(x) else f"{x:,.0f}"

    for name, m in metrics["classes"].items():
        viol = "-" if math.isnan(m["violation_rate"]) else f"{100 * m['violation_rate']:.2f}"
        rows.append(
            f"{name:<14}{m['finished']:>9,}{m['completed']:>9,}{m['dropped']:>7,}"
            f"{viol:>8}{fmt(m['p50_us']):>10}{fmt(m['p99_us']):>10}"
            f"{fmt(m['p999_us']):>10}"
        )
    v1 = metrics["violation_rate_1ms"]
    rows.append("-" * len(head))
    rows.append(
        f"violation_rate_1ms = {'n/a' if math.isnan(v1) else f'{v1:.4f}'}   "
        f"overall violation_rate = {metrics['violation_rate']:.4f}"
    )
    return "\n".join(rows)

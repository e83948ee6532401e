"""The leaderboard: what the cells of a benchmark say, as tables.

**Entries** (rows) come in roles: the ``policy`` entries under test, the suite's ``tuned``
heuristics and default ``heuristic`` baselines (all on reports), the ``reference`` entries
(every default heuristic under the oracle view: the full-information reference) and the
``bound`` (``millinet bound``'s clairvoyant floor, when installed).

Per test set:

* each entry's ``violation_rate_1ms`` (mean over the test seeds, 95% bootstrap CI over seeds,
  ``millinet.envs.stats``) and per-class p99.9 latency;
* the **best baseline** B (lowest mean violation_rate_1ms among the tuned and default
  heuristics on reports; ties broken by the overall violation rate) and the **best reference**
  R (the same among the heuristics under the oracle view);
* the **measured verdict**: *headroom* when the paired 95% interval of B − R (same seeds, so
  the same arrivals) lies above 0, else *control* (the suite's tag is the expectation; the
  leaderboard says where the measurement disagrees);
* the **gap closed** by an entry E on a headroom set: (B − E) / (B − R) from the means (1: it
  reaches the reference; 0: no better than the best baseline; negative: worse), and against
  the bound L, (B − E) / (B − L), when there is one. On a control set there is no gap to
  close; the table gives E − B (paired CI) instead: a policy must do no harm there.

B and R are picked on the test seeds themselves, as any "best of n" is; with ten seeds and
paired comparisons the choice only matters between baselines that tie.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from millinet.envs.config import CLASS_NAMES
from millinet.envs.errors import MillinetError
from millinet.envs.stats import bootstrap_ci, paired_difference_ci
from millinet.experiments.benchmark.cells import CellResult
from millinet.experiments.benchmark.suite import Suite, TestSet
from millinet.experiments.evaluation.harness import stat_seed

ROLES = ("policy", "tuned", "heuristic", "reference", "bound")
ROLE_TEXT = {
    "policy": "policy",
    "tuned": "tuned heuristic",
    "heuristic": "heuristic",
    "reference": "oracle reference",
    "bound": "lower bound",
}
BASELINE_ROLES = ("tuned", "heuristic")
P999 = tuple(f"{c}_p999_us" for c in CLASS_NAMES)

Triple = tuple[float, float, float]
NAN3: Triple = (math.nan, math.nan, math.nan)


@dataclass(frozen=True)
class Entry:
    """A leaderboard row: a policy spec in a role, evaluated under a view."""

    label: str
    role: str
    view: str
    policy: str
    params: str  # the heuristic and its parameters, or the spec

    @property
    def key(self) -> tuple[str, str]:
        return (self.role, self.label)


@dataclass
class Score:
    """One entry on one test set."""

    v1: Triple  # violation_rate_1ms (mean, low, high)
    violation_rate: float
    p999: dict[str, Triple]
    values: np.ndarray  # per-seed violation_rate_1ms, seed order
    gap_closed: float = math.nan  # vs the best reference (headroom sets)
    gap_closed_bound: float = math.nan  # vs the lower bound (headroom sets)
    delta_best: Triple = NAN3  # entry - best baseline, paired


@dataclass
class TestSetResult:
    """Every entry on one test set, with its verdict."""

    test_set: TestSet
    scores: dict[tuple[str, str], Score]
    best_baseline: Entry | None
    best_reference: Entry | None
    difference: Triple  # best baseline - best reference, paired over seeds
    measured: str  # "headroom", "control" or "unknown"
    bound: Score | None = None

    @property
    def disagrees(self) -> bool:
        tag = self.test_set.tag
        return tag is not None and self.measured in ("headroom", "control") and tag != self.measured


@dataclass
class Leaderboard:
    """The analysed benchmark: entries, per-test-set results, and what ran."""

    suite: Suite
    entries: list[Entry]
    seeds: list[int]
    results: list[TestSetResult]
    bound_note: str | None = None  # why the bound column is empty, if it is
    meta: dict[str, Any] = field(default_factory=dict)

    def entries_of(self, *roles: str) -> list[Entry]:
        return [e for e in self.entries if e.role in roles]


def _score(result: CellResult) -> Score:
    v1 = np.array(result.values("violation_rate_1ms"))
    vr = np.array(result.values("violation_rate"))
    p999 = {m: bootstrap_ci(np.array(result.values(m)), seed=stat_seed(m)) for m in P999}
    return Score(
        v1=bootstrap_ci(v1, seed=stat_seed("violation_rate_1ms")),
        violation_rate=float(np.nanmean(vr)) if np.isfinite(vr).any() else math.nan,
        p999=p999,
        values=v1,
    )


def _best(entries: list[Entry], scores: dict[tuple[str, str], Score]) -> Entry | None:
    """Lowest mean violation_rate_1ms, then overall violation rate, then listed order."""
    ranked = [e for e in entries if e.key in scores and not math.isnan(scores[e.key].v1[0])]
    if not ranked:
        return None
    return min(
        ranked,
        key=lambda e: (scores[e.key].v1[0], scores[e.key].violation_rate, entries.index(e)),
    )


def analyse_test_set(
    test_set: TestSet, entries: list[Entry], cells: dict[tuple[str, str], CellResult]
) -> TestSetResult:
    """Scores, best baseline and reference, verdict and gaps of one test set. ``cells`` maps
    an entry's key to its cell result on this test set."""
    scores = {e.key: _score(cells[e.key]) for e in entries if e.key in cells and e.role != "bound"}
    bound_entry = next((e for e in entries if e.role == "bound" and e.key in cells), None)
    bound = _score(cells[bound_entry.key]) if bound_entry else None
    base = _best([e for e in entries if e.role in BASELINE_ROLES], scores)
    ref = _best([e for e in entries if e.role == "reference"], scores)
    difference, measured = NAN3, "unknown"
    if base is not None and ref is not None:
        b, r = scores[base.key].values, scores[ref.key].values
        difference = paired_difference_ci(b, r, seed=stat_seed("difference"))
        low = difference[1]
        if math.isnan(low):  # every seed gave the same difference
            low = difference[0]
        measured = "headroom" if low > 0 else "control"
    if base is not None:
        best = scores[base.key]
        for e in entries:
            if e.key not in scores or e.role in ("reference", "bound"):
                continue
            s = scores[e.key]
            s.delta_best = paired_difference_ci(s.values, best.values, seed=stat_seed("delta"))
            if measured == "headroom":
                s.gap_closed = _gap(best.v1[0], s.v1[0], scores[ref.key].v1[0])
                if bound is not None:
                    s.gap_closed_bound = _gap(best.v1[0], s.v1[0], bound.v1[0])
    return TestSetResult(test_set, scores, base, ref, difference, measured, bound)


def _gap(best: float, value: float, reference: float) -> float:
    """(best - value) / (best - reference); NaN when there is no gap."""
    span = best - reference
    if not span > 0 or math.isnan(value):
        return math.nan
    return (best - value) / span


# --------------------------------------------------------------------------- formatting
def pct_ci(t: Triple) -> str:
    """A rate (mean [low, high]) in percent."""
    from millinet.experiments.evaluation.report import pct, with_ci

    return with_ci(t, pct)


def us_ci(t: Triple) -> str:
    from millinet.experiments.evaluation.report import us, with_ci

    return with_ci(t, us)


def points_ci(t: Triple) -> str:
    from millinet.experiments.evaluation.report import signed_pct

    return signed_pct(t)


def share(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.2f}"


def set_description(ts: TestSet) -> str:
    if ts.kind == "in-distribution":
        return "in distribution"
    return f"OOD: {', '.join(v.replace('_', ' ') for v in ts.varies)} (of {ts.of})"


def verdict_text(r: TestSetResult) -> str:
    text = f"**{r.measured}**"
    if r.test_set.tag is None:
        return text
    if r.disagrees:
        return text + f" (declared {r.test_set.tag}: disagrees)"
    return text + " (as declared)"


def markdown(board: Leaderboard) -> str:
    """``leaderboard.md`` (without its header, which the command writes)."""
    lines: list[str] = []
    names = [r.test_set.name for r in board.results]
    lines += [
        "## Test sets: headroom or control, measured",
        "",
        "Best baseline = the lowest violation_rate_1ms among the tuned and default heuristics "
        "on reports; best reference = the lowest among the heuristics under the oracle view. "
        "*Headroom*: their paired difference (same seeds) has a 95% interval above 0.",
        "",
        "| test set | what | declared | best baseline | best reference (oracle) | "
        "baseline − reference, points [95% CI] | measured |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in board.results:
        b = r.best_baseline.label if r.best_baseline else "–"
        ref = r.best_reference.label if r.best_reference else "–"
        bv = pct_ci(r.scores[r.best_baseline.key].v1) if r.best_baseline else "–"
        rv = pct_ci(r.scores[r.best_reference.key].v1) if r.best_reference else "–"
        lines.append(
            f"| {r.test_set.name} | {set_description(r.test_set)} | {r.test_set.tag or '–'} | "
            f"{b}: {bv} | {ref}: {rv} | {points_ci(r.difference)} | {verdict_text(r)} |"
        )
    lines += [
        "",
        f"## violation_rate_1ms, % (mean [95% CI] over {len(board.seeds)} test seeds)",
        "",
        "| entry | kind | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for e in board.entries:
        cells = []
        for r in board.results:
            if e.role == "bound":
                cells.append(pct_ci(r.bound.v1) if r.bound else (board.bound_note or "–"))
                continue
            s = r.scores.get(e.key)
            text = pct_ci(s.v1) if s else "–"
            if r.best_baseline is not None and e.key == r.best_baseline.key:
                text = f"**{text}**"
            cells.append(text)
        lines.append(f"| {e.label} | {ROLE_TEXT[e.role]} | " + " | ".join(cells) + " |")
    if not any(e.role == "bound" for e in board.entries) and board.bound_note:
        lines.append(
            f"| lower bound | {ROLE_TEXT['bound']} | " + " | ".join([board.bound_note] * len(names))
            + " |"
        )  # fmt: skip
    lines += [
        "",
        "Bold: the best baseline of the test set.",
        "",
        "## Gap closed",
        "",
        "On a headroom set: (best baseline − entry) / (best baseline − best reference), "
        "from the means (1 = reaches the full-information reference, 0 = no better than the "
        "best baseline, below 0 = worse); `/ bound`: the same against the lower bound. On a "
        "control set there is no gap: the cell gives entry − best baseline in points, paired "
        "95% CI (a policy must do no harm there).",
        "",
        "| entry | kind | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for e in board.entries_of("policy", "tuned", "heuristic"):
        cells = []
        for r in board.results:
            s = r.scores.get(e.key)
            if s is None:
                cells.append("–")
            elif r.measured == "headroom":
                text = share(s.gap_closed)
                if not math.isnan(s.gap_closed_bound):
                    text += f" (/ bound {share(s.gap_closed_bound)})"
                cells.append(text)
            else:
                cells.append(f"Δ {points_ci(s.delta_best)}")
        lines.append(f"| {e.label} | {ROLE_TEXT[e.role]} | " + " | ".join(cells) + " |")
    lines += ["", "## Parameters", "", "| entry | kind | runs as |", "|---|---|---|"]
    for e in board.entries_of("policy", "tuned", "heuristic"):
        lines.append(f"| {e.label} | {ROLE_TEXT[e.role]} | `{e.params}` |")
    lines += [
        "",
        "## p99.9 latency per class, µs (mean [95% CI] over seeds)",
        "",
        "Latency of completed tasks; drops never complete (they count as violations above).",
    ]
    for r in board.results:
        lines += [
            "",
            f"### {r.test_set.name}",
            "",
            "| entry | kind | " + " | ".join(CLASS_NAMES) + " |",
            "|---|---|" + "---|" * len(CLASS_NAMES),
        ]
        for e in board.entries:
            s = r.scores.get(e.key)
            if s is None:
                continue
            cells = [us_ci(s.p999[m]) for m in P999]
            lines.append(f"| {e.label} | {ROLE_TEXT[e.role]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


CSV_FIELDS = (
    "suite", "test_set", "set_kind", "varies", "declared", "measured", "entry", "role", "view",
    "policy", "params", "seeds", "violation_rate_1ms", "violation_rate_1ms_ci95_low",
    "violation_rate_1ms_ci95_high", "violation_rate",
    *(f"{m}{s}" for m in P999 for s in ("", "_ci95_low", "_ci95_high")),
    "gap_closed", "gap_closed_bound", "delta_vs_best_baseline", "delta_ci95_low",
    "delta_ci95_high", "best_baseline", "best_reference", "baseline_minus_reference",
    "baseline_minus_reference_ci95_low", "baseline_minus_reference_ci95_high",
)  # fmt: skip


def csv_rows(board: Leaderboard) -> list[dict[str, Any]]:
    """One row per (test set, entry); floats exact (``repr``), NaN as empty."""
    rows = []
    for r in board.results:
        ts = r.test_set
        for e in board.entries:
            s = r.bound if e.role == "bound" else r.scores.get(e.key)
            if s is None:
                continue
            row = {
                "suite": board.suite.name,
                "test_set": ts.name,
                "set_kind": ts.kind,
                "varies": " ".join(ts.varies),
                "declared": ts.tag or "",
                "measured": r.measured,
                "entry": e.label,
                "role": e.role,
                "view": e.view,
                "policy": e.policy,
                "params": e.params,
                "seeds": int(np.sum(~np.isnan(s.values))),
                "violation_rate_1ms": s.v1[0],
                "violation_rate_1ms_ci95_low": s.v1[1],
                "violation_rate_1ms_ci95_high": s.v1[2],
                "violation_rate": s.violation_rate,
                "gap_closed": s.gap_closed,
                "gap_closed_bound": s.gap_closed_bound,
                "delta_vs_best_baseline": s.delta_best[0],
                "delta_ci95_low": s.delta_best[1],
                "delta_ci95_high": s.delta_best[2],
                "best_baseline": r.best_baseline.label if r.best_baseline else "",
                "best_reference": r.best_reference.label if r.best_reference else "",
                "baseline_minus_reference": r.difference[0],
                "baseline_minus_reference_ci95_low": r.difference[1],
                "baseline_minus_reference_ci95_high": r.difference[2],
            }
            for m in P999:
                for suffix, value in zip(("", "_ci95_low", "_ci95_high"), s.p999.get(m, NAN3)):
                    row[f"{m}{suffix}"] = value
            rows.append({k: _cell(row[k]) for k in CSV_FIELDS})
    return rows


def _cell(x: Any) -> Any:
    if isinstance(x, float):
        return "" if math.isnan(x) else repr(x)
    return x


def entry_record(folder: str | Path, entry: str) -> dict[str, Any]:
    """One entry's results from a benchmark output ``folder`` (its ``leaderboard.csv`` and
    ``run.json``), as an exported policy's manifest records them: the suite, the test engine
    seeds, the command and commit, and per test set the entry's violation_rate_1ms (mean and
    95% interval, fractions), the best baseline's, the verdict and the gap closed.
    :class:`~millinet.envs.errors.MillinetError` (one line) if the folder is not a finished
    benchmark or holds no row of ``entry``."""
    folder = Path(folder)
    board, run_file = folder / "leaderboard.csv", folder / "run.json"
    if not board.is_file() or not run_file.is_file():
        raise MillinetError(f"{folder}: not a benchmark output (no leaderboard.csv / run.json)")
    with open(board, newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_set: dict[str, dict[str, dict]] = {}
    for row in rows:
        by_set.setdefault(row["test_set"], {})[row["entry"]] = row
    if not any(entry in entries for entries in by_set.values()):
        raise MillinetError(
            f"{board}: no entry {entry!r}; benchmark the policy into this folder first "
            f"(millinet benchmark --policy ... --out {folder})"
        )
    run = json.loads(run_file.read_text())

    def rate(row: dict) -> list[float | None]:
        keys = ("violation_rate_1ms", "violation_rate_1ms_ci95_low", "violation_rate_1ms_ci95_high")
        return [float(row[k]) if row[k] not in ("", None) else None for k in keys]

    test_sets = {}
    for name, entries in by_set.items():
        if entry not in entries:
            continue
        row = entries[entry]
        base = entries.get(row["best_baseline"])
        test_sets[name] = {
            "kind": row["set_kind"],
            "measured": row["measured"],
            "violation_rate_1ms": rate(row),
            "best_baseline": row["best_baseline"],
            "best_baseline_violation_rate_1ms": rate(base) if base else None,
            "gap_closed": float(row["gap_closed"]) if row["gap_closed"] else None,
        }
    return {
        "suite": run["suite"]["config"]["name"],
        "test_engine_seeds": run["seeds"]["test"],
        "command": run["command"],
        "commit": run["machine"].get("git_commit"),
        "entry": entry,
        "test_sets": test_sets,
    }

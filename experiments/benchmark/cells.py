"""The cells of a benchmark, and the folder that keeps their results.

A **cell** is one (test set, view, policy) over the suite's test seeds: one evaluation episode
per seed (:func:`millinet.experiments.evaluation.harness.run_episode`, the code path of
``millinet evaluate``). Views:

* ``reported``: the test set as defined (the scheduler reads reports): policies and baselines;
* ``oracle``: the same test set under ``telemetry.mode: oracle`` (exact state now): every
  default heuristic there is a full-information reference;
* ``bound``: the clairvoyant lower bound of ``millinet bound`` (:mod:`.bound`), one number
  per seed, when that module is installed.

A cell is identified by its **definition**: the resolved scenario of its view, what the policy
spec loads (:func:`millinet.agents.specs.policy_fingerprint`), the seeds, the duration and the
warm-up. Its result is one JSON file
``DIR/cells/<view>/<policy>-<key>.json`` (``key``: a hash of the definition),
written atomically when its last seed finishes. A rerun into the same ``DIR`` reuses every
cell whose file holds the same definition (resume after an interruption; another policy
added to a leaderboard; the same cells under another ``--seed-base`` get other keys), and a
changed suite, seed range or policy file gets new cells instead of stale ones.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from millinet.experiments.benchmark.files import safe_name, write_text_atomic
from millinet.experiments.evaluation.harness import EpisodeResult, Job

VIEWS = ("reported", "oracle", "bound")
BOUND_POLICY = "lower-bound"
"""The policy name of bound cells."""
CELL_FORMAT = 2


@dataclass
class Cell:
    """One (test set, view, policy) over ``seeds``; ``scenario`` is the view's resolved
    scenario (plain data)."""

    test_set: str
    view: str
    policy: str
    label: str  # the policy's name in tables and file names
    scenario: dict[str, Any]
    seeds: list[int]
    duration_s: float
    warmup_s: float
    fingerprint: str  # what the policy spec loads (policy_fingerprint)

    @property
    def definition(self) -> dict[str, Any]:
        """Everything the cell's numbers depend on (module docstring): not the test set's
        name, so two test sets with the same scenario under a view (e.g. the oracle views of
        two report periods) share one cell; not the spec's text but what it loads, so a tuned
        file that holds a heuristic's defaults shares the heuristic's cell."""
        scenario = {k: v for k, v in self.scenario.items() if k not in ("name", "description")}
        return {
            "format": CELL_FORMAT,
            "view": self.view,
            "fingerprint": self.fingerprint,
            "scenario": scenario,
            "seeds": self.seeds,
            "duration_s": self.duration_s,
            "warmup_s": self.warmup_s,
        }

    @property
    def key(self) -> str:
        text = json.dumps(self.definition, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def jobs(self) -> list[Job]:
        """One episode job per seed, in seed order."""
        return [
            Job(self.scenario, self.policy, seed, self.duration_s, self.warmup_s)
            for seed in self.seeds
        ]


@dataclass
class CellResult:
    """A finished cell: its per-seed metric rows (the harness's ``per_seed.csv`` rows) in
    seed order, and what it cost."""

    cell: Cell
    rows: list[dict[str, Any]]
    cpu_s: float
    made: dict[str, Any] = field(default_factory=dict)
    reused: bool = False
    path: Path | None = None  # the cell's file

    def values(self, metric: str) -> list[float]:
        """Per-seed values of ``metric`` (NaN where a seed has none)."""
        out = []
        for row in self.rows:
            value = row.get(metric)
            out.append(math.nan if value is None else float(value))
        return out


class CellStore:
    """The cell files of one benchmark folder (module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, cell: Cell) -> Path:
        """Where ``cell`` is saved: ``cells/<view>/<label>-<key>.json``."""
        return self.root / "cells" / cell.view / f"{safe_name(cell.label)}-{cell.key}.json"

    def find(self, cell: Cell) -> Path | None:
        """The file holding ``cell``'s key, whatever label it was saved under (entries that
        share a cell, e.g. a tuned file holding the defaults and the heuristic, have
        different labels)."""
        path = self.path(cell)
        if path.is_file():
            return path
        return next(iter(sorted(path.parent.glob(f"*-{cell.key}.json"))), None)

    def load(self, cell: Cell) -> CellResult | None:
        """The stored result of ``cell``, or None when there is none (or the file is not a
        complete result of this very cell: then the cell runs again)."""
        path = self.find(cell)
        if path is None:
            return None
        try:
            data = json.loads(path.read_text())
            if data["definition"] != json.loads(json.dumps(cell.definition)):
                return None
            rows = data["rows"]
            if [r["seed"] for r in rows] != cell.seeds:
                return None
            made = data.get("made", {})
            return CellResult(cell, rows, float(data["cpu_s"]), made, True, path)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, cell: Cell, episodes: list[EpisodeResult], made: dict[str, Any]) -> CellResult:
        """Write the finished cell (episodes in any order) atomically; return its result."""
        by_seed = {e.row["seed"]: e for e in episodes}
        rows = [_plain(by_seed[s].row) for s in cell.seeds]
        cpu = sum(e.cpu_s for e in episodes)
        data = {"definition": cell.definition, "rows": rows, "cpu_s": cpu, "made": made}
        text = json.dumps(data, indent=1, allow_nan=False) + "\n"
        path = write_text_atomic(self.path(cell), text)
        return CellResult(cell, rows, cpu, made, path=path)


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """A metric row as strict JSON data: numpy scalars as Python numbers, NaN (a metric a
    seed does not have) as null (:meth:`CellResult.values` reads it back as NaN)."""
    out = {}
    for key, value in row.items():
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, float) and math.isnan(value):
            value = None
        out[key] = value
    return out


def provenance(commit: str | None) -> dict[str, Any]:
    """What made a cell: the commit, the host and the time (UTC)."""
    return {
        "commit": commit,
        "host": platform.node(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }

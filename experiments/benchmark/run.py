"""Plan the cells of a benchmark and run those not yet in its folder.

:func:`plan` turns a suite and the policies under test into leaderboard entries and cells
(every entry on every test set, on the test seeds); :func:`run_cells` runs the missing cells'
episodes (a local process pool, or Ray tasks with an address: the same
:func:`~millinet.experiments.evaluation.harness.run_jobs` as ``millinet evaluate``) and saves
each cell as soon as its last seed is in, so an interrupted benchmark loses at most the cells
in flight. Jobs are submitted cell by cell, so cells finish roughly in order.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from millinet.agents.specs import (
    describe_policy,
    is_tuned_heuristic_spec,
    policy_fingerprint,
    split_checkpoint,
)
from millinet.experiments.benchmark.bound import bound_episode
from millinet.experiments.benchmark.cells import (
    BOUND_POLICY,
    Cell,
    CellResult,
    CellStore,
    provenance,
)
from millinet.experiments.benchmark.leaderboard import Entry
from millinet.experiments.benchmark.suite import Suite
from millinet.experiments.evaluation.harness import EpisodeResult, run_episode, run_jobs


def policy_label(spec: str) -> str:
    """A policy spec's name in tables: a heuristic's name; ``tuned:<file stem>`` for a
    tuned-heuristic file; a folder's name (with its ``@checkpoint``) for a run or export."""
    if is_tuned_heuristic_spec(spec):
        return f"tuned:{Path(spec).stem}"
    folder, checkpoint = split_checkpoint(spec)
    name = Path(folder.rstrip("/\\")).name or folder
    return f"{name}@{checkpoint}" if checkpoint else name


def entries(suite: Suite, policies: list[str], bound: bool) -> list[Entry]:
    """The leaderboard rows: policies under test, tuned and default heuristics on reports,
    every default heuristic under the oracle view, and the bound (if ``bound``)."""
    out = [Entry(policy_label(p), "policy", "reported", p, describe_policy(p)) for p in policies]
    out += [Entry(policy_label(t), "tuned", "reported", t, describe_policy(t)) for t in suite.tuned]
    out += [Entry(h, "heuristic", "reported", h, describe_policy(h)) for h in suite.heuristics]
    out += [
        Entry(f"{h} (oracle)", "reference", "oracle", h, describe_policy(h))
        for h in suite.heuristics
    ]
    if bound:
        out.append(Entry("lower bound", "bound", "bound", BOUND_POLICY, "millinet bound"))
    labels = [e.key for e in out]
    for i, key in enumerate(labels):
        if key in labels[:i]:
            raise ValueError(f"two policies are both called {key[1]!r}; give them distinct names")
    return out


def bound_status(suite: Suite, wanted: bool) -> str | None:
    """Why the bound column is empty (None when bound cells will run)."""
    if not wanted:
        return "not computed (--no-bound)"
    if suite.config.warmup_s > 0:
        return "not computed (a bound covers whole episodes; the suite has a warm-up)"
    return None


def plan(
    suite: Suite, board_entries: list[Entry], seeds: list[int]
) -> dict[tuple[str, tuple[str, str]], Cell]:
    """Every cell of the benchmark: ``(test set, entry key) -> Cell``. Entries that run the
    same policy under the same view share one cell (and one file)."""
    fingerprints = {
        e.policy: (e.policy if e.role == "bound" else policy_fingerprint(e.policy))
        for e in board_entries
    }
    cells = {}
    for ts in suite.test_sets:
        for e in board_entries:
            cells[(ts.name, e.key)] = Cell(
                test_set=ts.name,
                view=e.view,
                policy=e.policy,
                label="lower-bound" if e.role == "bound" else policy_label(e.policy),
                # the clairvoyant bound ignores telemetry: its cells share the oracle views'
                scenario=ts.view("oracle" if e.view == "bound" else e.view),
                seeds=list(seeds),
                duration_s=suite.config.duration_s,
                warmup_s=suite.config.warmup_s,
                fingerprint=fingerprints[e.policy],
            )
    return cells


def run_cells(
    cells: list[Cell],
    store: CellStore,
    workers: int,
    address: str | None,
    commit: str | None,
    on_episode: Callable[[Cell, EpisodeResult], None] | None = None,
    on_cell: Callable[[CellResult], None] | None = None,
    connect_timeout: float = 30.0,
) -> dict[str, CellResult]:
    """Results of ``cells`` by key: stored ones reused, the others run (episodes first, then
    bound cells) and saved one by one. Returns every cell's result."""
    results: dict[str, CellResult] = {}
    todo: dict[str, Cell] = {}
    for cell in cells:
        if cell.key in results or cell.key in todo:
            continue
        stored = store.load(cell)
        if stored is not None:
            results[cell.key] = stored
        else:
            todo[cell.key] = cell
    for is_bound in (False, True):
        batch = [c for c in todo.values() if (c.view == "bound") == is_bound]
        if not batch:
            continue
        jobs, owner = [], {}
        for cell in batch:
            for job in cell.jobs():
                jobs.append(job)
                owner[id(job)] = cell
        done: dict[str, list[EpisodeResult]] = {c.key: [] for c in batch}
        fn = bound_episode if is_bound else run_episode
        for job, res in run_jobs(jobs, workers, address, fn, connect_timeout):
            cell = owner[id(job)]
            done[cell.key].append(res)
            if on_episode:
                on_episode(cell, res)
            if len(done[cell.key]) == len(cell.seeds):
                results[cell.key] = store.save(cell, done.pop(cell.key), provenance(commit))
                if on_cell:
                    on_cell(results[cell.key])
    return results

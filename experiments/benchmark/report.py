"""Write a benchmark's outputs: ``leaderboard.md``, ``leaderboard.csv``, ``leaderboard.png``
and ``run.json`` (each atomically), from its cell results."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from millinet.experiments.benchmark.cells import Cell, CellResult
from millinet.experiments.benchmark.files import shown_path, write_text_atomic
from millinet.experiments.benchmark.leaderboard import (
    CSV_FIELDS,
    Entry,
    Leaderboard,
    analyse_test_set,
    csv_rows,
    markdown,
    pct_ci,
    points_ci,
    verdict_text,
)
from millinet.experiments.benchmark.suite import Suite
from millinet.experiments.evaluation.report import seeds_text


def build_leaderboard(
    suite: Suite,
    entries: list[Entry],
    cells: dict[tuple[str, tuple[str, str]], Cell],
    results: dict[str, CellResult],
    seeds: list[int],
    bound_note: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Leaderboard:
    """Analyse every test set (:func:`~.leaderboard.analyse_test_set`)."""
    per_set = []
    for ts in suite.test_sets:
        by_entry = {
            e.key: results[cells[(ts.name, e.key)].key]
            for e in entries
            if cells[(ts.name, e.key)].key in results
        }
        per_set.append(analyse_test_set(ts, entries, by_entry))
    return Leaderboard(suite, entries, seeds, per_set, bound_note, dict(meta or {}))


def summary_text(board: Leaderboard) -> str:
    """A few lines for the console: each test set's verdict and best baseline."""
    lines = [f"suite {board.suite.name}, {len(board.seeds)} test seeds:"]
    for r in board.results:
        best = r.best_baseline
        text = f"{best.label} {pct_ci(r.scores[best.key].v1)} %" if best else "–"
        lines.append(
            f"  {r.test_set.name}: {verdict_text(r).replace('**', '')}; best baseline {text}; "
            f"baseline − reference {points_ci(r.difference)} points"
        )
        for e in board.entries_of("policy"):
            s = r.scores.get(e.key)
            if s is not None:
                lines.append(f"    {e.label}: {pct_ci(s.v1)} %")
    return "\n".join(lines)


def header(board: Leaderboard, command: str) -> str:
    suite, meta = board.suite, board.meta
    machine = meta.get("machine", {})
    lines = [
        f"# Benchmark leaderboard: suite `{suite.name}`",
        "",
        *([suite.config.description.strip(), ""] if suite.config.description else []),
        "```bash",
        command,
        "```",
        "",
        f"Suite file `{shown_path(suite.source)}`. {len(board.seeds)} test seeds "
        f"({seeds_text(board.seeds)}, "
        f"engine seeds no training, validation or tuning episode can reach; "
        f"`envs/seeds.py`), {suite.config.duration_s:g} s of arrivals per episode"
        + (f" (first {suite.config.warmup_s:g} s not counted)" if suite.config.warmup_s else "")
        + ". One episode = one seed: the test set starts empty, the policy places every task, "
        "in-flight tasks drain. Numbers are means over the seeds with a 95% bootstrap CI over "
        "seeds (`envs/stats.py`); every entry runs on the same seeds, so differences are "
        "paired. Drops count as violations.",
        "",
        f"Commit {machine.get('git_commit') or 'unknown'} on {machine.get('cpu', '?')} "
        f"({machine.get('cpu_count', '?')} cores, load {_load(machine)}); "
        f"{meta.get('cells_run', 0)} cells run on {meta.get('executor', '?')}, "
        f"{meta.get('cells_reused', 0)} reused from earlier runs into the folder; "
        f"{meta.get('wall_s', 0) / 60:.1f} min of wall time.",
        "",
        "![leaderboard](leaderboard.png)",
        "",
        "",
    ]
    return "\n".join(lines)


def _load(machine: dict) -> str:
    a, b = machine.get("load_average_1min_at_start"), machine.get("load_average_1min_at_end")
    if a is None:
        return "unknown"
    return f"{a:.1f} at the start" + (f", {b:.1f} at the end" if b is not None else "")


def write_leaderboard(
    board: Leaderboard,
    cells: dict[tuple[str, tuple[str, str]], Cell],
    results: dict[str, CellResult],
    out: Path,
    command: str,
) -> dict[str, Path]:
    """Write the four outputs of ``board`` into ``out``; returns their paths. ``cells`` and
    ``results`` name each cell's file and CPU time in run.json."""
    from millinet.experiments.benchmark.plot import plot_leaderboard

    suite, entries = board.suite, board.entries
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "md": out / "leaderboard.md",
        "csv": out / "leaderboard.csv",
        "png": out / "leaderboard.png",
        "run": out / "run.json",
    }
    write_text_atomic(paths["md"], header(board, command) + markdown(board))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_rows(board))
    write_text_atomic(paths["csv"], buf.getvalue())
    tmp_png = out / ".leaderboard.png.tmp.png"
    plot_leaderboard(board, tmp_png)
    tmp_png.replace(paths["png"])
    run = {
        "command": command,
        "suite": {"source": suite.source, "config": suite.config.model_dump(mode="json")},
        "test_sets": [
            {"name": ts.name, "kind": ts.kind, "tag": ts.tag, "varies": list(ts.varies)}
            for ts in suite.test_sets
        ],
        "seeds": {
            "test": board.seeds,
            "validation_reset_seeds": suite.validation_reset_seeds(),
            "training": "millinet.envs.seeds.TRAINING (reset seeds [0, 900000))",
        },
        "entries": [e.__dict__ for e in entries],
        "bound": board.bound_note or "computed",
        **board.meta,
        "cells": {
            f"{ts.name}/{e.view}/{e.label}": {
                "file": str(results[cells[(ts.name, e.key)].key].path.relative_to(out)),
                "cpu_s": round(results[cells[(ts.name, e.key)].key].cpu_s, 2),
                "made": results[cells[(ts.name, e.key)].key].made,
            }
            for ts in suite.test_sets
            for e in entries
            if cells[(ts.name, e.key)].key in results
        },
    }
    write_text_atomic(paths["run"], json.dumps(run, indent=2, default=str) + "\n")
    return paths

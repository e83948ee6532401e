"""Helpers for the benchmark tests: a tiny suite file and readers of a benchmark folder."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import yaml

PY = sys.executable
SEED0 = 2**31


def tiny_suite(tmp_path: Path, name: str = "tiny", **changes) -> Path:
    """A suite file of a few seconds' work in ``tmp_path`` (``changes`` replace top-level
    keys; None removes one)."""
    data = {
        "name": name,
        "duration_s": 0.01,
        "seeds": {"validation": {"first": 0, "count": 2}, "test": {"first": 0, "count": 2}},
        "scenarios": [{"scenario": "sunflower-metro-load2x", "tag": "headroom"}],
        "ood": [
            {
                "name": "central",
                "of": "sunflower-metro-load2x",
                "varies": ["scheduler"],
                "set": {"telemetry": {"scheduler": "central"}},
            }
        ],
        "heuristics": ["nearest", "deadline-aware"],
    }
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def cell_files(out: Path) -> dict[str, tuple[int, str]]:
    """Cell file (relative path) -> (modification time ns, content)."""
    return {
        str(p.relative_to(out)): (p.stat().st_mtime_ns, p.read_text())
        for p in sorted((out / "cells").rglob("*.json"))
    }


def bench_cmd(*args: str) -> list[str]:
    return [PY, "-m", "millinet.experiments.cli", "benchmark", *args]

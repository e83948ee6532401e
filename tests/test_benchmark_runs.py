"""``millinet benchmark`` as a user runs it: killed and resumed, in a process pool and on a
``ray start --head`` cluster (identical results), and the shipped smoke suite end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from _bench_suites import bench_cmd, cell_files, read_csv, tiny_suite
from _ray_cluster import head_node


def test_resume_after_killing_the_benchmark(tmp_path):
    """SIGKILL the benchmark after its first cells are saved; the rerun keeps them as they
    are, runs only the rest, and ends with the leaderboard of an uninterrupted run."""
    suite = tiny_suite(
        tmp_path, heuristics=["nearest", "least-loaded", "earliest-finish", "deadline-aware"]
    )
    out = tmp_path / "out"
    cmd = bench_cmd("--suite", str(suite), "--out", str(out), "--workers", "1", "--no-bound")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not ((out / "cells").is_dir() and len(cell_files(out)) >= 3):
            assert proc.poll() is None, "finished before it could be interrupted"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    before = cell_files(out)
    assert 3 <= len(before) < 12 and not (out / "leaderboard.csv").exists()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{len(before)} already in" in done.stdout
    after = cell_files(out)
    assert len(after) == 12
    assert all(after[name] == before[name] for name in before)  # not redone, not rewritten
    fresh = tmp_path / "fresh"
    cmd_fresh = bench_cmd(
        "--suite", str(suite), "--out", str(fresh), "--workers", "2", "--no-bound"
    )
    assert subprocess.run(cmd_fresh, env=env, capture_output=True, timeout=300).returncode == 0
    assert read_csv(out / "leaderboard.csv") == read_csv(fresh / "leaderboard.csv")


@pytest.mark.slow
def test_process_pool_and_ray_cluster_give_identical_results(tmp_path, ray_env):
    """The same benchmark in a local process pool and as tasks on a `ray start --head` cluster
    on loopback: identical cells and leaderboard."""
    suite = tiny_suite(tmp_path)
    pool, cluster = tmp_path / "pool", tmp_path / "ray"
    common = ["--suite", str(suite), "--no-bound"]
    proc = subprocess.run(bench_cmd(*common, "--out", str(pool), "--workers", "2"), env=ray_env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    with head_node(ray_env) as address:
        proc = subprocess.run(bench_cmd(*common, "--out", str(cluster), "--address", address),
                              env=ray_env, capture_output=True, text=True, timeout=400)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"Ray cluster {address}" in proc.stdout
    assert read_csv(pool / "leaderboard.csv") == read_csv(cluster / "leaderboard.csv")

    def rows(out: Path) -> dict:
        return {p.name: json.loads(p.read_text())["rows"] for p in (out / "cells").rglob("*.json")}

    assert rows(pool) == rows(cluster) and len(rows(pool)) == 6


@pytest.mark.slow
def test_smoke_suite_end_to_end(tmp_path):
    """`millinet benchmark --suite smoke` writes every output in under 2 minutes."""
    out = tmp_path / "smoke"
    t0 = time.monotonic()
    proc = subprocess.run(bench_cmd("--suite", "smoke", "--out", str(out)),
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.png", "run.json"):
        assert (out / name).stat().st_size > 0
    rows = read_csv(out / "leaderboard.csv")
    assert {r["test_set"] for r in rows} == {"sunflower-metro-load2x", "central-2x"}
    assert {r["role"] for r in rows} >= {"tuned", "heuristic", "reference"}
    assert elapsed < 120, f"{elapsed:.0f} s (load {os.getloadavg()[0]:.1f})"

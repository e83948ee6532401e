"""Benchmarks behind ``millinet bench``; each ``bench_<name>(out_dir)`` writes ``<name>.json``.

``bench_sim`` measures the simulator (DESIGN.md section 2, "Fast"):

a. engine throughput: simulated tasks per second of wall time on ``sunflower-metro`` under
   ``nearest_slot`` (median of a few repeats);
b. the independent SimPy model (``tests/simpy_reference.py``) on the same tasks and decisions:
   its tasks per second, the engine/SimPy speed ratio, and the largest per-task latency
   difference between the two (a free large-scale cross-check);
c. per-task cost on a ~20-node and a ~2,000-node city with the same factories, workload and
   local neighbourhood (the small grid is the corner of the large one), and their ratio.

``bench env`` and ``bench serve`` live in ``experiments/bench/env.py`` and
``experiments/bench/serve.py``; ``experiments/commands/bench.py`` maps the names.

Targets are recorded next to the measurements; they are never asserted here (timings depend on
the machine). Progress goes to stderr.
"""

from __future__ import annotations

import gc
import importlib
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from millinet.envs import jsonio
from millinet.envs.engine import DROPPED, Arrival, Engine
from millinet.envs.scenario import Scenario, load_scenario
from millinet.envs.simulation import nearest_slot, simulate
from millinet.experiments.cli import UserError

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The source checkout (tests/ holds the SimPy reference model; git names the commit)."""
TARGETS = {
    "engine_tasks_per_s_min": 100_000,
    "speedup_vs_simpy_min": 20.0,
    "cost_ratio_2000_vs_20_nodes_max": 1.5,
}


def bench_log(name: str) -> Callable[[str], None]:
    """A progress printer for ``millinet bench <name>`` (stderr, flushed)."""

    def log(msg: str) -> None:
        print(f"bench {name}: {msg}", file=sys.stderr, flush=True)

    return log


_log = bench_log("sim")


# --------------------------------------------------------------------------- traces
@dataclass
class Trace:
    """The tasks an engine run placed (feasible slots only), as plain per-task lists."""

    task_id: list[int] = field(default_factory=list)
    arrival_s: list[float] = field(default_factory=list)
    trips: list[tuple[int, ...]] = field(default_factory=list)
    up_bytes: list[float] = field(default_factory=list)
    down_bytes: list[float] = field(default_factory=list)
    work_s: list[float] = field(default_factory=list)
    priority: list[int] = field(default_factory=list)  # the class's link priority (0 = highest)

    def __len__(self) -> int:
        return len(self.task_id)


def traced_run(
    scenario: Scenario,
    choose: Callable[[Engine, Arrival], int],
    duration_s: float,
    seed: int = 0,
) -> tuple[np.ndarray, Trace]:
    """Run the engine like ``simulate`` and also capture every placed task and its trip.

    Returns the engine's records (``Engine.record_array()``) and the :class:`Trace`.
    """
    engine = Engine(scenario, seed)
    trace = Trace()
    prio = [c.priority for c in scenario.classes]
    while True:
        a = engine.next_arrival()
        if a.time_s >= duration_s:
            break
        slot = choose(engine, a)
        if engine.dispatch(a, slot):
            trace.task_id.append(a.task_id)
            trace.arrival_s.append(a.time_s)
            trace.trips.append(engine.candidates(a).slots[slot].trip)
            trace.up_bytes.append(a.up_bytes)
            trace.down_bytes.append(a.down_bytes)
            trace.work_s.append(a.work_s)
            trace.priority.append(prio[a.cls])
    engine.drain()
    return engine.record_array(), trace


def load_reference_model() -> Callable[..., np.ndarray]:
    """``simulate_reference`` from ``tests/simpy_reference.py`` (needs a source checkout)."""
    tests_dir = REPO_ROOT / "tests"
    if not (tests_dir / "simpy_reference.py").is_file():
        raise ImportError(
            f"the SimPy reference model {tests_dir / 'simpy_reference.py'} is missing: "
            "bench sim needs a source checkout of millinet (run it from the repository root)"
        )
    if str(tests_dir) not in sys.path:
        sys.path.insert(0, str(tests_dir))
    try:
        module = importlib.import_module("simpy_reference")
    except ImportError as exc:
        raise ImportError(
            f"cannot import the SimPy reference model ({exc}); install the dev extras: "
            "make setup (or pip install -e '.[dev]')"
        ) from exc
    return module.simulate_reference


def reference_latencies(
    scenario: Scenario, trace: Trace, strict_priority: bool = False
) -> np.ndarray:
    """Latency (s) of every traced task under the SimPy model, shape (len(trace),)."""
    net = scenario.network
    return load_reference_model()(
        trace.arrival_s,
        trace.trips,
        trace.up_bytes,
        trace.down_bytes,
        trace.work_s,
        net.q_s_per_byte,
        net.q_delay_s,
        net.pool_servers,
        net.pool_speed,
        priorities=trace.priority if strict_priority else None,
    )


# --------------------------------------------------------------------------- scale cities
def grid_city(rows: int, cols: int) -> dict:
    """A rows x cols grid city (2 km spacing) with an edge DC at every node (r, c) with
    r % 3 == 1 and c % 3 == 1, and four car plants near the top-left corner.

    Grids of different size share their top-left corner exactly, so the factories' nearest site
    and shortest path (what ``nearest_slot`` picks) are the same in a small and a large city:
    only the size of the city changes.
    """
    if rows < 3 or cols < 5:
        raise ValueError("grid_city needs at least 3 rows and 5 columns")
    nodes, links = [], []
    for r in range(rows):
        for c in range(cols):
            nodes.append(
                {"name": f"access-{r}-{c}", "role": "access", "x_km": 2.0 * c, "y_km": 2.0 * r}
            )
    for r in range(rows):
        for c in range(cols):
            if c + 1 < cols:
                links.append({"a": f"access-{r}-{c}", "b": f"access-{r}-{c + 1}"})
            if r + 1 < rows:
                links.append({"a": f"access-{r}-{c}", "b": f"access-{r + 1}-{c}"})
    for r in range(1, rows, 3):
        for c in range(1, cols, 3):
            nodes.append(
                {
                    "name": f"edge-{r}-{c}",
                    "role": "edge",
                    "x_km": 2.0 * c,
                    "y_km": 2.0 * r + 0.5,
                    "pools": {"cpu": {"servers": 16}, "gpu": {"servers": 4}},
                }
            )
            links.append({"a": f"access-{r}-{c}", "b": f"edge-{r}-{c}", "length_km": 0.5})
    for link in links:
        link.update(capacity_gbps=100.0, forwarding_us=5.0)
    factories = [
        {"name": f"plant-{i}", "profile": "car_plant", "attach": node, "on_prem": {}}
        for i, node in enumerate(("access-0-1", "access-2-1", "access-0-4", "access-2-4"))
    ]
    return {
        "name": f"grid-city-{rows}x{cols}",
        "topology": {"generator": "explicit", "nodes": nodes, "links": links},
        "candidates": {"sites": 4, "paths": 2},
        "factories": factories,
    }


# --------------------------------------------------------------------------- the benchmark
def load_average() -> float | None:
    """The 1-minute load average, or None where the OS has none."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def write_result(result: dict, out_dir: str | Path, name: str) -> Path:
    """Write a benchmark's ``result`` as ``out_dir/<name>.json`` (folder created); its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(jsonio.dumps(result, indent=2) + "\n")
    return path


def machine_info(**versions: str) -> dict:
    """The machine a benchmark ran on: platform, CPU model and count, Python and numpy versions,
    the 1-minute load average at the start, the git commit; ``versions`` adds more (name=ver)."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu or platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        **versions,
        "load_average_1min_at_start": load_average(),
        "git_commit": commit or None,
    }


def _engine_runs(
    scenario: Scenario, duration_s: float, n: int, label: str, first: int = 0, of: int = 0
) -> list[dict]:
    """``n`` timed runs of ``simulate`` under ``nearest_slot`` (seed 0), each after a full
    garbage collection so that no run pays for the previous one's garbage."""
    runs = []
    for i in range(first, first + n):
        gc.collect()
        cpu0 = time.process_time()
        res = simulate(scenario, nearest_slot, duration_s, seed=0)
        cpu_s = time.process_time() - cpu0
        runs.append(
            {
                "tasks": int(res.records.size),
                "wall_s": res.wall_s,
                "cpu_s": cpu_s,
                "tasks_per_s": res.tasks_per_s,
                "tasks_per_cpu_s": res.records.size / cpu_s,
            }
        )
        _log(
            f"{label} run {i + 1}/{of or n}: {res.records.size:,} tasks in {res.wall_s:.2f} s "
            f"({res.tasks_per_s:,.0f} tasks/s)"
        )
    return runs


def bench_sim(
    out_dir: str,
    duration_s: float = 2.0,
    repeats: int = 3,
    scale_duration_s: float = 1.0,
    scale_shape: tuple[tuple[int, int], tuple[int, int]] = ((4, 5), (40, 50)),
) -> dict:
    """Measure the engine (a), the SimPy model (b) and size scaling (c); write
    ``<out_dir>/sim.json`` and return its content. Times are wall-clock seconds.

    ``duration_s``: simulated seconds of ``sunflower-metro`` per engine run (a, b);
    ``scale_duration_s``: simulated seconds per run on each grid city (c).
    """
    try:
        load_reference_model()  # fail early, with a one-line message
    except ImportError as exc:
        raise UserError(str(exc)) from None
    started = time.perf_counter()
    machine = machine_info()  # before the runs: its load average is the one at the start

    # (a) engine throughput on the default scenario
    scenario = load_scenario("sunflower-metro")
    runs = _engine_runs(scenario, duration_s, repeats, "engine sunflower-metro")
    engine_tps = statistics.median(r["tasks_per_s"] for r in runs)
    engine_cpu_tps = statistics.median(r["tasks_per_cpu_s"] for r in runs)

    # (b) the SimPy model on the same tasks and decisions
    records, trace = traced_run(scenario, nearest_slot, duration_s, seed=0)
    simpy_walls, simpy_cpu = [], []
    for i in range(repeats):
        gc.collect()
        t0, cpu0 = time.perf_counter(), time.process_time()
        ref = reference_latencies(scenario, trace)
        simpy_walls.append(time.perf_counter() - t0)
        simpy_cpu.append(time.process_time() - cpu0)
        _log(f"simpy run {i + 1}/{repeats}: {len(trace):,} tasks in {simpy_walls[-1]:.2f} s")
    simpy_wall = statistics.median(simpy_walls)
    simpy_tps = len(trace) / simpy_wall
    dropped = int((records["status"] == DROPPED).sum())
    max_diff_ns = None
    if dropped == 0:  # the SimPy model has no drop-tail; compare only when nothing was dropped
        by_id = np.sort(records, order="task_id")
        idx = np.searchsorted(by_id["task_id"], trace.task_id)
        max_diff_ns = float(np.max(np.abs(by_id["latency_s"][idx] - ref)) * 1e9)
    _log(
        f"simpy median {simpy_tps:,.0f} tasks/s; engine is {engine_tps / simpy_tps:.1f}x faster"
        + (f"; max latency difference {max_diff_ns:.3g} ns" if max_diff_ns is not None else "")
    )

    # (c) per-task cost vs city size. Runs alternate small/large so that both see the same
    # machine conditions, and only one city is alive at a time (a big topology's Python
    # objects would also slow the other city's garbage collections).
    n_traced = len(trace)
    del scenario, records, trace, ref
    scale: dict[str, dict] = {}
    for i in range(repeats):
        for rows, cols in scale_shape:
            t_build = time.perf_counter()
            city = load_scenario(grid_city(rows, cols))
            build_s = time.perf_counter() - t_build
            entry = scale.setdefault(
                f"{rows}x{cols}",
                {
                    "access_nodes": rows * cols,
                    "nodes": len(city.topology.nodes),
                    "links": len(city.topology.links),
                    "build_s": build_s,
                    "runs": [],
                },
            )
            label = f"grid {rows}x{cols} ({entry['nodes']} nodes)"
            entry["runs"] += _engine_runs(city, scale_duration_s, 1, label, i, repeats)
            del city
    for entry in scale.values():
        costs = [r["wall_s"] / r["tasks"] * 1e6 for r in entry["runs"]]
        entry["median_us_per_task"] = statistics.median(costs)
        entry["min_us_per_task"] = min(costs)
        entry["median_cpu_us_per_task"] = statistics.median(
            r["cpu_s"] / r["tasks"] * 1e6 for r in entry["runs"]
        )
    small, large = (scale[f"{r}x{c}"] for r, c in scale_shape)
    cost_ratio = large["median_us_per_task"] / small["median_us_per_task"]
    cost_ratio_min = large["min_us_per_task"] / small["min_us_per_task"]
    _log(
        f"cost per task {large['nodes']} vs {small['nodes']} nodes: {cost_ratio:.2f}x "
        f"(median), {cost_ratio_min:.2f}x (best run)"
    )

    result = {
        "benchmark": "sim",
        "command": "millinet bench sim",
        "argv": sys.argv,
        "machine": machine,
        "targets": TARGETS,
        "engine": {
            "scenario": "sunflower-metro",
            "policy": "nearest_slot",
            "seed": 0,
            "simulated_s": duration_s,
            "runs": runs,
            "median_tasks_per_s": engine_tps,
            "best_tasks_per_s": max(r["tasks_per_s"] for r in runs),
            "median_tasks_per_cpu_s": engine_cpu_tps,
            "meets_target": engine_tps >= TARGETS["engine_tasks_per_s_min"],
        },
        "simpy": {
            "tasks": n_traced,
            "wall_s": simpy_walls,
            "cpu_s": simpy_cpu,
            "median_tasks_per_cpu_s": n_traced / statistics.median(simpy_cpu),
            "speedup_cpu_time": engine_cpu_tps * statistics.median(simpy_cpu) / n_traced,
            "median_tasks_per_s": simpy_tps,
            "best_tasks_per_s": n_traced / min(simpy_walls),
            "speedup_engine_vs_simpy": engine_tps / simpy_tps,
            "speedup_best_runs": max(r["tasks_per_s"] for r in runs) * min(simpy_walls) / n_traced,
            "engine_dropped": dropped,
            "max_latency_diff_ns": max_diff_ns,
            "meets_target": engine_tps / simpy_tps >= TARGETS["speedup_vs_simpy_min"],
        },
        "scale": {
            "policy": "nearest_slot",
            "simulated_s": scale_duration_s,
            "cities": scale,
            "cost_ratio_large_vs_small": cost_ratio,
            "cost_ratio_large_vs_small_best_runs": cost_ratio_min,
            "cost_ratio_large_vs_small_cpu_time": large["median_cpu_us_per_task"]
            / small["median_cpu_us_per_task"],
            "meets_target": cost_ratio <= TARGETS["cost_ratio_2000_vs_20_nodes_max"],
        },
        "total_wall_s": time.perf_counter() - started,
        "load_average_1min_at_end": load_average(),
        "note": "wall-clock medians decide meets_target; best runs and CPU-time figures show "
        "the cost with less interference from other processes (compare the load averages "
        "with machine.cpu_count)",
    }
    _log(f"wrote {write_result(result, out_dir, 'sim')}")
    return result

"""Trace replay (``process: trace``): the engine replays exactly the rows of the file.

The reference is the CSV text itself, parsed here with the csv module: every arrival the engine
hands out and every record it writes must carry a row's time, class, factory, sizes and
compute demand, in the file's order, whatever the seed. Bad rows are in test_bad_input.py.
"""

from __future__ import annotations

import csv
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from millinet.envs import trace as trace_module
from millinet.envs.config import CLASS_NAMES
from millinet.envs.engine import Engine
from millinet.envs.scenario import DATA_DIR, load_scenario
from millinet.envs.simulation import nearest_slot, simulate
from millinet.envs.trace import read_chunks, record_workload, write_trace
from millinet.envs.workload import WorkloadEndedError

EXAMPLE = DATA_DIR / "example-trace.csv"
REPO = Path(__file__).resolve().parents[1]


def rows_of(path: Path) -> list[tuple[float, str, str, float, float, float]]:
    """The trace's rows as (time_s, class, factory, up, down, compute_us), by the csv module."""
    with open(path, newline="") as fh:
        return [
            (float(r["time_s"]), r["class"], r["factory"], float(r["up_bytes"]),
             float(r["down_bytes"]), float(r["compute_us"]))
            for r in csv.DictReader(fh)
        ]  # fmt: skip


def replaying(path: Path, **entry) -> dict:
    """Sunflower-metro whose display-fab and brewery replay ``path`` (every class)."""
    spec = {"process": "trace", "path": str(path), **entry}
    factories = [
        {"name": name, "profile": "custom", "attach": attach,
         "workload": {c: spec for c in CLASS_NAMES}}
        for name, attach in (("display-fab", "access-1-2"), ("brewery", "access-4-0"))
    ]  # fmt: skip
    return {"extends": "sunflower-metro", "name": "replay", "factories": factories}


def engine_arrivals(scenario, seed: int, limit: int = 10**6) -> tuple[list, Engine]:
    """Every arrival until the trace ends, each placed on the nearest slot; then drained."""
    engine = Engine(scenario, seed)
    out = []
    while len(out) < limit:
        try:
            a = engine.next_arrival()
        except WorkloadEndedError:
            break
        out.append(a)
        engine.dispatch(a, nearest_slot(engine, a))
    engine.drain()
    return out, engine


def test_the_engine_replays_every_row_with_its_values_and_the_records_agree():
    rows = rows_of(EXAMPLE)
    assert len(rows) > 500
    scenario = load_scenario(replaying(EXAMPLE))
    names = scenario.factory_names
    arrivals, engine = engine_arrivals(scenario, seed=3)
    got = [
        (a.time_s, CLASS_NAMES[a.cls], names[a.factory], a.up_bytes, a.down_bytes, a.work_s * 1e6)
        for a in arrivals
    ]
    assert len(got) == len(rows)
    for g, r in zip(got, rows):
        assert g[:3] == r[:3] and g[3:5] == r[3:5]
        assert g[5] == pytest.approx(r[5], rel=1e-12)
    rec = np.sort(engine.record_array(), order="task_id")
    assert rec.size == len(rows)  # conservation: each row ends as one record
    assert rec["arrival_s"].tolist() == [r[0] for r in rows]
    assert [CLASS_NAMES[c] for c in rec["cls"]] == [r[1] for r in rows]
    assert [names[f] for f in rec["factory"]] == [r[2] for r in rows]
    done = rec["status"] != 2
    speed = np.array([engine.net.pool_speed[engine.candidates(a).slots[s].pool] if s >= 0 else 1
                      for a, s in zip(arrivals, rec["slot"])])  # fmt: skip
    work = np.array([r[5] for r in rows]) * 1e-6
    np.testing.assert_allclose(rec["compute_s"][done], (work / speed)[done], rtol=1e-12)


def test_trace_tasks_do_not_depend_on_the_seed_but_the_car_plants_do():
    scenario = load_scenario("trace-replay")
    fab = {scenario.factory_names.index(n) for n in ("display-fab", "brewery")}

    def split(seed):
        arrivals, _ = engine_arrivals(scenario, seed, limit=3000)
        traced = [a[1:] for a in arrivals if a.factory in fab]
        other = [a[1:] for a in arrivals if a.factory not in fab]
        return traced, other

    (t1, o1), (t2, o2), (t3, _) = split(1), split(2), split(1)
    n = min(len(t1), len(t2))
    assert n > 100 and t1[:n] == t2[:n]
    assert o1[:50] != o2[:50]
    assert t1 == t3  # equal seeds: identical


def test_time_scale_load_scale_and_loop(tmp_path):
    path = tmp_path / "t.csv"
    write_trace(path, [(0.001, "robot_sync", "brewery", 100, 100, 50),
                       (0.003, "agv_dispatch", "display-fab", 2000, 900, 800)])  # fmt: skip
    base = [0.001, 0.003]

    def times(scenario_dict, n):
        arrivals, _ = engine_arrivals(load_scenario(scenario_dict), 0, limit=n)
        return [a.time_s for a in arrivals]

    assert times(replaying(path), 10) == base  # then the trace ends
    assert times(replaying(path, time_scale=2.0), 10) == pytest.approx([0.002, 0.006])
    assert times({**replaying(path), "load_scale": 4.0}, 10) == pytest.approx([0.00025, 0.00075])
    # default period = last row + mean gap = 0.003 + 0.002
    looped = times(replaying(path, loop=True), 6)
    assert looped == pytest.approx([0.001, 0.003, 0.006, 0.008, 0.011, 0.013])
    looped = times(replaying(path, loop=True, period_s=0.01), 4)
    assert looped == pytest.approx([0.001, 0.003, 0.011, 0.013])


def test_trace_factory_maps_one_logged_plant_onto_two_scenario_factories(tmp_path):
    path = tmp_path / "t.csv"
    write_trace(path, [(0.001, "robot_sync", "plant-7", 100, 100, 50)])
    spec = {"process": "trace", "path": str(path), "trace_factory": "plant-7"}
    factories = [
        {"name": n, "profile": "custom", "attach": a, "workload": {"robot_sync": spec}}
        for n, a in (("a", "access-0-1"), ("b", "access-2-1"))
    ]
    scenario = load_scenario({"extends": "sunflower-metro", "name": "m", "factories": factories})
    arrivals, _ = engine_arrivals(scenario, 0)
    assert sorted(scenario.factory_names[a.factory] for a in arrivals) == ["a", "b"]


def test_the_trace_is_read_in_chunks_and_the_result_does_not_depend_on_their_size(monkeypatch):
    sizes = []
    real = trace_module.read_chunks

    def spy(path, chunk_rows=None):
        for chunk in real(path, chunk_rows):
            sizes.append(chunk.time_s.size)
            yield chunk

    monkeypatch.setattr(trace_module, "CHUNK_ROWS", 64)
    monkeypatch.setattr(trace_module, "read_chunks", spy)
    trace_module._CHECKED.clear()
    small, _ = engine_arrivals(load_scenario(replaying(EXAMPLE)), 0)
    assert max(sizes) == 64 and len(sizes) > 20  # both the check and the replay stream
    monkeypatch.undo()
    whole, _ = engine_arrivals(load_scenario(replaying(EXAMPLE)), 0)
    assert small == whole


def test_simulate_stops_when_a_trace_without_loop_ends_and_the_env_truncates():
    scenario = load_scenario(replaying(EXAMPLE))
    result = simulate(scenario, nearest_slot, duration_s=5.0, seed=0)
    assert result.records.size == len(rows_of(EXAMPLE))
    env = gym.make("millinet/Placement-v0", scenario=scenario, horizon=10**6)
    env.reset(seed=0)
    steps, truncated = 0, False
    while not truncated:
        _, _, _, truncated, info = env.step(0)
        steps += 1
    assert steps == len(rows_of(EXAMPLE)) and info["episode_metrics"]["finished"] == steps


def test_the_shipped_example_trace_is_what_its_script_writes(tmp_path):
    import runpy

    script = runpy.run_path(str(REPO / "experiments/scripts/make_example_trace.py"))
    out = tmp_path / "example.csv"
    assert script["main"](out) == 0
    assert out.read_bytes() == EXAMPLE.read_bytes()


def test_record_workload_round_trips_through_a_file(tmp_path):
    scenario = load_scenario("sunflower-metro")
    rows = list(record_workload(scenario.workload(5), scenario.factory_names, 0.004, {"brewery"}))
    assert rows and {r[2] for r in rows} == {"brewery"}
    path = tmp_path / "r.csv"
    assert write_trace(path, rows) == len(rows)
    parsed = [row for chunk in read_chunks(path) for row in zip(chunk.time_s, chunk.factory)]
    assert [p[0] for p in parsed] == pytest.approx([r[0] for r in rows], abs=1e-9)

"""``millinet benchmark``: suites, tuned-heuristic files, the leaderboard's arithmetic, its
outputs and ``--seed-base`` (checked against the evaluation harness), cell reuse, bad input.
Runs as a user runs them (resume, Ray, the smoke suite): ``test_benchmark_runs.py``; heuristic
sweeps: ``test_heuristic_sweep.py``.

The CLI runs use a tiny suite (``_bench_suites.py``: one headroom scenario and one OOD
variation, two heuristics, two test seeds of 10 ms), so each takes seconds.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from _bench_suites import SEED0, bench_cmd, cell_files, read_csv, tiny_suite

from millinet.experiments.cli import main


# --------------------------------------------------------------------------- suites
def test_shipped_suites_are_valid_and_their_splits_disjoint():
    from millinet.envs.seeds import TEST
    from millinet.experiments.benchmark.suite import VARIATIONS, list_suites, load_suite

    assert {"main", "smoke"} <= set(list_suites())
    main_suite = load_suite("main")
    for name in list_suites():
        suite = load_suite(name)
        val, test = suite.validation_seeds(), suite.test_seeds()
        assert all(s < TEST.start for s in val) and all(s in TEST for s in test)
        assert len(set(val)) == len(val) and len(set(test)) == len(test)
        assert all(ts.scenario["telemetry"]["mode"] == "reported" for ts in suite.test_sets)
    # DESIGN §6: at least 10 test seeds; every kind of out-of-distribution change is covered.
    assert len(main_suite.test_seeds()) >= 10
    covered = {v for ts in main_suite.test_sets for v in ts.varies}
    assert covered == set(VARIATIONS)
    assert {ts.tag for ts in main_suite.test_sets if ts.kind == "in-distribution"} == {
        "headroom",
        "control",
    }
    assert main_suite.tuned and all(Path(t).is_file() for t in main_suite.tuned)


def test_oracle_view_differs_only_in_telemetry():
    from millinet.experiments.benchmark.suite import load_suite

    ts = load_suite("smoke").test_sets[1]
    reported, oracle = ts.view("reported"), ts.view("oracle")
    assert reported["telemetry"]["scheduler"] == "central"
    assert oracle["telemetry"]["mode"] == "oracle"
    strip = ("telemetry", "name")
    assert {k: v for k, v in reported.items() if k not in strip} == {
        k: v for k, v in oracle.items() if k not in strip
    }


def test_validation_seeds_are_the_envs_engine_seeds():
    """A suite's validation episodes are the engine seeds PlacementEnv.reset(seed=s) runs."""
    from millinet.envs.placement_env import PlacementEnv
    from millinet.experiments.benchmark.suite import load_suite

    suite = load_suite("smoke")
    env = PlacementEnv(scenario="sunflower-metro", horizon=8)
    for reset_seed, engine_seed in zip(suite.validation_reset_seeds(), suite.validation_seeds()):
        env.reset(seed=reset_seed)
        assert env.engine.seed == engine_seed


BAD_SUITES = [
    ({"scenarios": [{"scenario": "sunflower-metro", "tag": "hedroom"}]}, ["scenarios[0].tag"]),
    ({"sceanrios": []}, ["sceanrios", "did you mean 'scenarios'"]),
    ({"scenarios": [{"scenario": "no-such-city", "tag": "control"}]},
     ["scenarios[0].scenario", "unknown scenario"]),
    ({"seeds": {"test": {"first": 0, "count": 1}}}, ["seeds", "at least 2"]),
    ({"seeds": {"validation": {"first": 49_999, "count": 5}}}, ["seeds", "validation", "range"]),
    ({"duration_s": 0}, ["duration_s", "greater than 0"]),
    ({"ood": [{"name": "same", "of": "sunflower-metro-load2x", "varies": ["load"],
               "set": {"load_scale": 2.0}}]},
     ["ood[0]", "equals an in-distribution scenario"]),
    ({"ood": [{"name": "neg", "of": "sunflower-metro", "varies": ["load"],
               "set": {"load_scale": -1}}]},
     ["ood[0] (neg)", "load_scale"]),
    ({"ood": [{"name": "o", "of": "sunflower-metro", "varies": ["weather"]}]},
     ["ood[0].varies[0]"]),
    ({"ood": [{"name": "orc", "of": "sunflower-metro", "varies": ["scheduler"],
               "set": {"telemetry": {"mode": "oracle"}}}]},
     ["ood[0]", "oracle telemetry"]),
    ({"heuristics": ["nearest", "fifo"]}, ["heuristics[1]", "unknown heuristic 'fifo'"]),
    ({"tuned": ["missing.yaml"]}, ["tuned[0]", "file not found"]),
]  # fmt: skip


@pytest.mark.parametrize("changes,expected", BAD_SUITES)
def test_bad_suite_is_one_line_and_writes_nothing(tmp_path, capsys, changes, expected):
    path = tiny_suite(tmp_path, **changes)
    out = tmp_path / "out"
    assert main(["benchmark", "--suite", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"millinet benchmark: error: {path}: "), err
    assert err.count("\n") == 1 and "Traceback" not in err
    for text in expected:
        assert text in err, err
    assert not out.exists()


def test_unknown_suite_and_bad_out_are_one_line(tmp_path, capsys):
    assert main(["benchmark", "--suite", "no-such-suite", "--out", str(tmp_path / "o")]) == 2
    assert "unknown suite; shipped: main, smoke" in capsys.readouterr().err
    a_file = tmp_path / "file"
    a_file.write_text("x")
    suite = tiny_suite(tmp_path)
    assert main(["benchmark", "--suite", str(suite), "--out", str(a_file / "sub")]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and err.count("\n") == 1
    assert main(["benchmark", "--suite", str(suite), "--policy", "fifo", "--out", "x"]) == 2
    assert "unknown policy 'fifo'" in capsys.readouterr().err
    assert main(["benchmark", "--suite", str(suite), "--seed-base", str(2**63), "--out", "x"]) == 2
    assert "leave the range" in capsys.readouterr().err
    assert not Path("x").exists()


# --------------------------------------------------------------------------- tuned heuristics
def write_tuned(tmp_path: Path, data, name: str = "tuned.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_tuned_file_runs_the_heuristic_with_its_parameters(tmp_path):
    """A tuned file's decisions are those of the heuristic built with its parameters, and they
    differ from the defaults' (so the parameters really reach the rule)."""
    from millinet.agents.heuristics import make_heuristic
    from millinet.agents.specs import describe_policy, load_policy
    from millinet.envs.placement_env import PlacementEnv

    path = write_tuned(
        tmp_path, {"heuristic": "deadline-aware", "params": {"margin": 0.9, "own_correction": True}}
    )
    env = PlacementEnv(scenario="sunflower-metro-load2x", horizon=400)
    tuned = load_policy(str(path), env.scenario)
    same = make_heuristic("deadline-aware", margin=0.9, own_correction=True)
    default = make_heuristic("deadline-aware")
    obs, _ = env.reset(seed=3)
    differs = 0
    for _ in range(400):
        mask = env.action_masks()
        action = tuned.act(obs, mask)
        assert action == same.act(obs, mask)
        differs += action != default.act(obs, mask)
        obs, _, _, truncated, _ = env.step(action)
        if truncated:
            break
    assert differs > 0
    assert describe_policy(str(path)) == (
        "deadline-aware tight_deadline_us=2000 margin=0.9 own_correction=True"
    )


def test_tuned_file_with_default_parameters_equals_the_name(tmp_path):
    from millinet.experiments.evaluation.harness import Job, run_episode

    path = write_tuned(tmp_path, {"heuristic": "power-of-d", "params": {"d": 2}})
    a = run_episode(Job("sunflower-metro-load2x", str(path), SEED0 + 4, 0.01, 0.0)).row
    b = run_episode(Job("sunflower-metro-load2x", "power-of-d", SEED0 + 4, 0.01, 0.0)).row
    assert {k: v for k, v in a.items() if k != "policy"} == {
        k: v for k, v in b.items() if k != "policy"
    }


BAD_TUNED = [
    ({"heuristic": "deadline-awar"}, ["heuristic", "did you mean 'deadline-aware'"]),
    ({"heuristic": "power-of-d", "params": {"dd": 3}}, ["params.dd", "not a parameter"]),
    ({"heuristic": "power-of-d", "params": {"d": 2.5}}, ["params.d", "must be int"]),
    ({"heuristic": "power-of-d", "params": {"d": 0}}, ["params.d", "d must be an integer >= 1"]),
    ({"heuristic": "deadline-aware", "params": {"margin": 1.5}}, ["params.margin", "[0, 1)"]),
    ({"heuristic": "deadline-aware", "params": {"margin": "0.3"}}, ["params.margin"]),
    ({"heuristic": "nearest", "params": {"d": 2}}, ["params.d", "its parameters: none"]),
    ({"params": {"d": 2}}, ["heuristic", "required key is missing"]),
    ("- a list\n", ["must be a YAML mapping"]),
    ("heuristic: [unclosed\n", ["not valid YAML"]),
]


@pytest.mark.parametrize("data,expected", BAD_TUNED)
def test_bad_tuned_file_is_one_line(tmp_path, capsys, data, expected):
    path = write_tuned(tmp_path, data)
    rc = main(["simulate", "--policy", str(path), "--duration", "1ms"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith(f"millinet simulate: error: {path}: "), err
    assert err.count("\n") == 1 and "Traceback" not in err
    for text in expected:
        assert text in err, err


def test_missing_tuned_file_is_one_line(tmp_path, capsys):
    path = tmp_path / "nowhere.yaml"
    assert main(["simulate", "--policy", str(path), "--duration", "1ms"]) == 2
    assert f"{path}: file not found" in capsys.readouterr().err


# --------------------------------------------------------------------------- the leaderboard
def _result(test_set: str, view: str, policy: str, v1: list[float]):
    from millinet.experiments.benchmark.cells import Cell, CellResult

    cell = Cell(test_set, view, policy, policy, {}, list(range(len(v1))), 0.01, 0.0, policy)
    rows = [
        {"seed": i, "violation_rate_1ms": v, "violation_rate": v / 10} for i, v in enumerate(v1)
    ]
    return CellResult(cell, rows, 0.0)


def test_leaderboard_verdicts_and_gap_closed_by_hand():
    """Best baseline B, best reference R, headroom iff the paired CI of B - R is above 0, gap
    closed (B - E) / (B - R): against numbers worked out by hand."""
    from millinet.experiments.benchmark.leaderboard import Entry, analyse_test_set
    from millinet.experiments.benchmark.suite import TestSet

    ts = TestSet("t", "in-distribution", {}, "headroom")
    entries = [
        Entry("ppo", "policy", "reported", "ppo", "ppo"),
        Entry("tuned:da", "tuned", "reported", "da.yaml", "da"),
        Entry("da", "heuristic", "reported", "da", "da"),
        Entry("ef", "heuristic", "reported", "ef", "ef"),
        Entry("da (oracle)", "reference", "oracle", "da", "da"),
        Entry("ef (oracle)", "reference", "oracle", "ef", "ef"),
    ]
    values = {  # per seed, 4 seeds
        "ppo": [0.004, 0.005, 0.003, 0.004],  # mean 0.004
        "tuned:da": [0.010, 0.011, 0.009, 0.010],  # mean 0.010: the best baseline
        "da": [0.012, 0.012, 0.011, 0.013],
        "ef": [0.050, 0.040, 0.060, 0.050],
        "da (oracle)": [0.002, 0.002, 0.003, 0.001],  # mean 0.002: the best reference
        "ef (oracle)": [0.004, 0.004, 0.004, 0.004],
    }
    cells = {e.key: _result("t", e.view, e.label, values[e.label]) for e in entries}
    r = analyse_test_set(ts, entries, cells)
    assert r.best_baseline.label == "tuned:da" and r.best_reference.label == "da (oracle)"
    assert r.measured == "headroom" and not r.disagrees
    assert r.difference[0] == pytest.approx(0.008)
    assert r.scores[("policy", "ppo")].gap_closed == pytest.approx((0.010 - 0.004) / 0.008)
    assert r.scores[("heuristic", "da")].gap_closed == pytest.approx(-0.002 / 0.008)
    assert r.scores[("tuned", "tuned:da")].gap_closed == pytest.approx(0.0)
    assert r.scores[("policy", "ppo")].delta_best[0] == pytest.approx(-0.006)
    # The same baselines with a reference as good: control, no gap to close.
    values["da (oracle)"] = values["tuned:da"]
    values["ef (oracle)"] = [0.02] * 4
    cells = {e.key: _result("t", e.view, e.label, values[e.label]) for e in entries}
    r = analyse_test_set(ts, entries, cells)
    assert r.best_reference.label == "da (oracle)" and r.difference[:1] == (0.0,)
    assert r.measured == "control" and r.disagrees
    assert math.isnan(r.scores[("policy", "ppo")].gap_closed)
    # A tie in the mean is broken by the overall violation rate, then by the listed order.
    values["da"] = values["tuned:da"]
    cells = {e.key: _result("t", e.view, e.label, values[e.label]) for e in entries}
    assert analyse_test_set(ts, entries, cells).best_baseline.label == "tuned:da"


# --------------------------------------------------------------------------- real runs
def test_benchmark_outputs_seed_base_and_reuse(tmp_path, capsys):
    """The four outputs; every number of a cell equals the harness's evaluation of that
    policy on the test set with the same seed base; a second run reuses every cell."""
    from millinet.envs.bound import lower_bound
    from millinet.experiments.benchmark.suite import load_suite
    from millinet.experiments.evaluation.harness import cached_scenario, evaluate

    suite = tiny_suite(tmp_path)
    out = tmp_path / "out"
    args = ["benchmark", "--suite", str(suite), "--out", str(out), "--workers", "1"]
    assert main([*args, "--seed-base", "7"]) == 0
    for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.png", "run.json"):
        assert (out / name).is_file(), name
    run = json.loads((out / "run.json").read_text())
    assert run["seeds"]["test"] == [SEED0 + 7, SEED0 + 8]
    # 2 sets x 2 heuristics on reports + 2 shared oracle cells + 1 bound cell: the central
    # variation changes only the telemetry, so both sets have the same arrivals and one bound
    assert run["cells_run"] == 7
    rows = read_csv(out / "leaderboard.csv")
    ts = load_suite(suite).test_set("central")
    ev = evaluate(ts.view("oracle"), ["deadline-aware"], 2, duration_s=0.01, seed_base=7)
    mean = ev.summary["deadline-aware"]["violation_rate_1ms"][0]
    (row,) = [
        r for r in rows if r["test_set"] == "central" and r["entry"] == "deadline-aware (oracle)"
    ]
    assert float(row["violation_rate_1ms"] or "nan") == pytest.approx(mean, nan_ok=True)
    assert float(row["robot_sync_p999_us"]) == pytest.approx(
        ev.summary["deadline-aware"]["robot_sync_p999_us"][0]
    )
    md = (out / "leaderboard.md").read_text()
    assert "## Test sets: headroom or control, measured" in md and "central" in md
    # The bound column is millinet bound's share on each test episode, and no entry beats it.
    (bound_row,) = [r for r in rows if r["test_set"] == "central" and r["entry"] == "lower bound"]
    shares = [
        lower_bound(cached_scenario(ts.view("reported")), seed, 0.01).bounds["violations_1ms"].share
        for seed in run["seeds"]["test"]
    ]
    assert float(bound_row["violation_rate_1ms"] or "nan") == pytest.approx(
        np.nanmean(shares), nan_ok=True
    )
    for r in rows:
        if r["test_set"] == "central" and r["violation_rate_1ms"]:
            assert float(r["violation_rate_1ms"]) >= float(bound_row["violation_rate_1ms"])
    capsys.readouterr()
    files = cell_files(out)
    assert main([*args, "--seed-base", "7"]) == 0
    assert "7 cells, 7 already in" in capsys.readouterr().out
    assert cell_files(out) == files
    assert read_csv(out / "leaderboard.csv") == rows
    # Another seed base is another set of cells beside these.
    assert main([*args, "--seed-base", "9", "--policy", "nearest"]) == 0
    assert "0 already in" in capsys.readouterr().out
    assert len(cell_files(out)) == 14


def test_equal_parameters_share_one_cell(tmp_path, capsys):
    """A tuned file that holds a heuristic's defaults is that heuristic: one cell for both,
    found again on a rerun whichever label saved it."""
    tuned = write_tuned(tmp_path, {"heuristic": "deadline-aware", "params": {"margin": 0.5}})
    suite = tiny_suite(tmp_path, ood=[], heuristics=["deadline-aware"], tuned=[str(tuned)])
    out = tmp_path / "out"
    args = ["benchmark", "--suite", str(suite), "--out", str(out), "--workers", "1"]
    assert main(args) == 0
    run = json.loads((out / "run.json").read_text())
    # deadline-aware on reports (shared by both labels), under the oracle, and the bound
    assert run["cells_run"] == 3
    assert all((out / c["file"]).is_file() for c in run["cells"].values())
    rows = read_csv(out / "leaderboard.csv")
    by_entry = {r["entry"]: r["violation_rate_1ms"] for r in rows}
    assert by_entry["tuned:tuned"] == by_entry["deadline-aware"]
    capsys.readouterr()
    assert main(args) == 0
    assert "3 cells, 3 already in" in capsys.readouterr().out


def test_evaluate_seed_base(tmp_path):
    """`millinet evaluate --seed-base N` runs test seeds 2**31 + N + i: the rows of explicit
    engine seeds, and other numbers than the default range's."""
    from millinet.experiments.evaluation.harness import evaluate

    out = tmp_path / "ev"
    args = ["evaluate", "--policy", "random", "--seeds", "2", "--duration", "5ms", "--no-plots"]
    assert main([*args, "--seed-base", "3", "--out", str(out)]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["seeds"] == [SEED0 + 3, SEED0 + 4]
    assert "--seed-base 3" in run["command"]
    rows = read_csv(out / "per_seed.csv")
    ev = evaluate("sunflower-metro", ["random"], [SEED0 + 3, SEED0 + 4], duration_s=0.005)
    assert [int(r["tasks"]) for r in rows] == [e.row["tasks"] for e in ev.episodes]
    assert [float(r["violation_rate"]) for r in rows] == [
        e.row["violation_rate"] for e in ev.episodes
    ]
    default = evaluate("sunflower-metro", ["random"], 2, duration_s=0.005)
    assert [e.row["tasks"] for e in default.episodes] != [e.row["tasks"] for e in ev.episodes]


def test_unreachable_ray_address_is_one_line(tmp_path, ray_env):
    from _ray_cluster import free_port

    port = free_port()  # nothing listens there
    out = tmp_path / "out"
    cmd = bench_cmd("--suite", str(tiny_suite(tmp_path)), "--out", str(out),
                    "--address", f"127.0.0.1:{port}", "--connect-timeout", "5")  # fmt: skip
    proc = subprocess.run(cmd, env=ray_env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert f"cannot reach a Ray cluster at 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()

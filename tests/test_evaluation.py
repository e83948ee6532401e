"""Evaluation harness: CI coverage, seed ranges, metrics, reproducibility, clear errors."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from millinet.agents.specs import load_policy
from millinet.envs.engine import DROPPED, LATE, ON_TIME, RECORD_FIELDS, Engine
from millinet.envs.errors import MillinetError
from millinet.envs.placement_env import PlacementEnv
from millinet.envs.scenario import load_scenario
from millinet.envs.seeds import EVAL_SEED_BASE, check_training_seed, eval_seeds, is_eval_seed
from millinet.envs.stats import bootstrap_ci, expanded_alpha, paired_difference_ci, t_interval
from millinet.experiments.evaluation.harness import (
    CDF_GRID_US,
    episode_metrics,
    evaluate,
    latency_cdfs,
    write_outputs,
)

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------- confidence intervals
@pytest.mark.parametrize(
    ("draw", "n", "mean"),
    [
        (lambda rng, n: rng.normal(3.0, 2.0, n), 10, 3.0),
        (lambda rng, n: rng.binomial(1, 0.2, n).astype(float), 40, 0.2),
    ],
    ids=["normal-n10", "bernoulli-n40"],
)
def test_bootstrap_ci_covers_the_true_mean_about_95_percent(draw, n, mean):
    rng = np.random.default_rng(1)
    reps = 500
    hits = 0
    for r in range(reps):
        _, low, high = bootstrap_ci(draw(rng, n), resamples=2000, seed=r)
        hits += low <= mean <= high
    # the Monte Carlo standard error of the coverage is ~1 point at 500 repetitions
    assert 0.915 <= hits / reps <= 0.985


def test_bootstrap_ci_matches_the_t_interval_for_a_large_normal_sample():
    x = np.random.default_rng(7).normal(10.0, 3.0, 400)
    m, lo, hi = bootstrap_ci(x, resamples=20_000, seed=0)
    tm, tlo, thi = t_interval(x)
    half = (thi - tlo) / 2
    assert m == pytest.approx(tm)
    assert lo == pytest.approx(tlo, abs=0.06 * half)
    assert hi == pytest.approx(thi, abs=0.06 * half)


def test_expanded_percentiles_widen_small_samples_only():
    assert expanded_alpha(10) < 0.05 * 0.8  # n = 10: read further into the tails
    assert expanded_alpha(10_000) == pytest.approx(0.05, abs=1e-3)


def test_bootstrap_edge_cases_and_determinism():
    assert bootstrap_ci(np.array([0.0, 0.0, 0.0])) == (0.0, 0.0, 0.0)
    m, lo, hi = bootstrap_ci(np.array([1.0, math.nan]))
    assert m == 1.0 and math.isnan(lo) and math.isnan(hi)
    assert all(math.isnan(v) for v in bootstrap_ci(np.array([math.nan])))
    x = np.random.default_rng(0).random(12)
    assert bootstrap_ci(x, seed=4) == bootstrap_ci(x, seed=4)
    b = np.random.default_rng(1).random(12)
    assert paired_difference_ci(b + 0.25, b) == pytest.approx((0.25, 0.25, 0.25))


# ----------------------------------------------------------------------- seeds
def test_evaluation_seeds_are_disjoint_from_every_training_engine_seed():
    seeds = eval_seeds(10)
    assert seeds[0] == EVAL_SEED_BASE == 2**31 and len(set(seeds)) == 10
    assert all(is_eval_seed(s) for s in seeds)
    with pytest.raises(ValueError, match="reserved for evaluation"):
        check_training_seed(seeds[3])
    assert check_training_seed(123) == 123
    env = PlacementEnv(horizon=1)
    for s in (0, 1, EVAL_SEED_BASE, 2**40):  # whatever a trainer passes to reset ...
        env.reset(seed=s)
        assert not is_eval_seed(env.engine.seed)  # ... the engine seed is a training seed


# ----------------------------------------------------------------------- metrics
def _records(rows):
    dtype = Engine(load_scenario("sunflower-metro")).record_array().dtype
    out = np.zeros(len(rows), dtype=dtype)
    for i, (cls, arrival, latency_us, status) in enumerate(rows):
        out[i]["task_id"] = i
        out[i]["cls"] = cls
        out[i]["arrival_s"] = arrival
        out[i]["latency_s"] = math.nan if status == DROPPED else latency_us * 1e-6
        out[i]["status"] = status
    assert set(RECORD_FIELDS) == set(dtype.names)
    return out


def test_episode_metrics_count_drops_as_violations_and_respect_the_warmup():
    scenario = load_scenario("sunflower-metro")
    rec = _records(
        [
            (0, 0.000, 500.0, ON_TIME),  # inside the warmup
            (0, 0.010, 200.0, ON_TIME),
            (0, 0.011, 1500.0, LATE),
            (0, 0.012, 0.0, DROPPED),
            (0, 0.013, 300.0, ON_TIME),
            (2, 0.020, 9000.0, ON_TIME),
        ]
    )
    m = episode_metrics(rec, scenario, warmup_s=0.005)
    assert m["tasks"] == 5 and m["tasks_1ms"] == 4 and m["violations_1ms"] == 2
    assert m["violation_rate_1ms"] == 0.5 and m["violation_rate"] == 0.4
    assert m["dropped"] == 1 and m["drop_rate"] == 0.2
    assert m["robot_sync_drop_rate"] == 0.25 and m["robot_sync_p50_us"] == pytest.approx(300.0)
    assert m["agv_dispatch_tasks"] == 0 and math.isnan(m["agv_dispatch_violation_rate"])
    cdf = latency_cdfs(rec, warmup_s=0.005)
    assert cdf[1] is None
    assert cdf[0][-1] == pytest.approx(0.75)  # the drop never completes
    assert cdf[0][np.searchsorted(CDF_GRID_US, 250.0)] == pytest.approx(0.25)


# ----------------------------------------------------------------------- harness
def test_evaluation_of_fixed_seeds_is_reproducible(tmp_path):
    kwargs = dict(policies=["random", "deadline-aware"], seeds=2, duration_s=0.01)
    a = evaluate("sunflower-metro", **kwargs)
    b = evaluate("sunflower-metro", **kwargs)
    write_outputs(a, tmp_path / "a", plots=False)
    write_outputs(b, tmp_path / "b", plots=False)
    for name in ("per_seed.csv", "summary.csv", "summary.md"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    rows = (tmp_path / "a" / "per_seed.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 and rows[1].startswith("sunflower-metro,random,2147483648,")
    assert a.summary["random"]["violation_rate_1ms"][0] > 0  # random misses some 1 ms tasks


def test_worker_processes_give_the_same_csv_and_outputs_include_plots(tmp_path):
    kwargs = dict(policies=["nearest", "earliest-finish"], seeds=2, duration_s=0.01)
    one = evaluate("sunflower-metro", workers=1, **kwargs)
    two = evaluate("sunflower-metro", workers=2, **kwargs)
    write_outputs(one, tmp_path / "one", plots=True)
    write_outputs(two, tmp_path / "two", plots=False)
    for name in ("per_seed.csv", "summary.csv"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    for png in ("violation_rates.png", "latency_cdf.png"):
        assert (tmp_path / "one" / png).read_bytes()[:4] == b"\x89PNG"
    meta = json.loads((tmp_path / "one" / "run.json").read_text())
    assert meta["seeds"] == eval_seeds(2)


def test_cli_shows_progress_and_prints_the_table(tmp_path):
    cmd = [sys.executable, "-m", "millinet.experiments.cli", "evaluate", "--policy", "nearest",
           "--policy", "deadline-aware", "--seeds", "2", "--duration", "5ms", "--no-plots",
           "--out", str(tmp_path)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "[4/4] deadline-aware seed 1" in out.stderr  # one line per episode (not a tty)
    assert "| **" in out.stdout and "Strongest on `sunflower-metro`" in out.stdout
    assert (tmp_path / "per_seed.csv").is_file() and (tmp_path / "summary.md").is_file()


def _cli_error(*args):
    out = subprocess.run(
        [sys.executable, "-m", "millinet.experiments.cli", "evaluate", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    return out.stderr


def test_bad_policy_name_is_one_clear_line_listing_the_heuristics():
    err = _cli_error("--policy", "greedy", "--seeds", "1", "--duration", "1ms")
    assert "unknown policy 'greedy'" in err and "earliest-finish" in err


def test_missing_run_folder_is_one_clear_line(tmp_path):
    err = _cli_error("--policy", str(tmp_path / "runs" / "ppo-42"), "--seeds", "1")
    assert "policy folder not found" in err and "ppo-42" in err


def test_folders_that_are_not_policies_or_are_broken_are_clear_errors(tmp_path):
    scenario = load_scenario("sunflower-metro")
    with pytest.raises(MillinetError, match="neither an exported policy"):
        load_policy(str(tmp_path), scenario)
    exported = tmp_path / "exported"
    exported.mkdir()
    (exported / "manifest.json").write_text("{}")
    # no policy.onnx (or no scheduler package in this install): one line, never a traceback
    with pytest.raises(MillinetError, match="policy.onnx"):
        load_policy(str(exported), scenario)


def test_broken_run_folder_is_one_clear_line(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("{}")
    err = _cli_error("--policy", str(run), "--seeds", "1", "--duration", "1ms")
    assert str(run) in err


def test_a_policy_that_decides_some_classes_gets_nearest_for_the_others():
    from millinet.agents.specs import PolicyChooser
    from millinet.envs.simulation import simulate

    class VisionOnly:
        name = "vision-only"
        agent_classes = ["vision_qa"]

        def __init__(self):
            self.calls = 0

        def act(self, observation, mask):
            self.calls += 1
            assert observation[2] == 1.0  # is_vision_qa
            return int(np.flatnonzero(mask)[-1])

    policy = VisionOnly()
    records = simulate(load_scenario("sunflower-metro"), PolicyChooser(policy), 0.1, 1).records
    vision = records["cls"] == 2
    assert policy.calls == vision.sum() > 0
    assert (records["slot"][~vision] == 0).all()  # nearest: the on-prem slot, no faults

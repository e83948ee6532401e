"""Small fixes of issue 17: results files are strict JSON (null, never NaN), and a scenario's
``seed`` is the default of ``--seed``."""

from __future__ import annotations

import json
import math

import pytest

from millinet.experiments.bench.benchmarks import write_result
from millinet.experiments.cli import main

AGV_ONLY = (
    "extends: sunflower-metro\nname: agv-only\nseed: {seed}\nfactories:\n"
    "  - name: f\n    profile: custom\n    attach: access-0-1\n"
    "    workload:\n      agv_dispatch: {{process: poisson, rate_per_s: 2000}}\n"
)


def strict(path) -> dict:
    """Parse JSON as a strict parser does: NaN and Infinity are errors."""

    def refuse(token: str):
        raise ValueError(f"non-standard JSON constant {token}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_simulate_json_writes_null_for_classes_without_tasks(tmp_path, capsys):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(AGV_ONLY.format(seed=0))
    out = tmp_path / "m.json"
    assert (
        main(["simulate", "--scenario", str(scenario), "--duration", "5ms", "--json", str(out)])
        == 0
    )
    metrics = strict(out)["metrics"]
    robot = metrics["classes"]["robot_sync"]
    assert robot["finished"] == 0 and robot["p99_us"] is None and robot["mean_us"] is None
    assert metrics["violation_rate_1ms"] is None  # no task with a 1 ms deadline
    assert metrics["classes"]["agv_dispatch"]["p99_us"] > 0


def test_benchmark_results_are_strict_json(tmp_path):
    path = write_result({"rate": math.nan, "rows": [math.inf, 1.0]}, tmp_path, "x")
    assert strict(path) == {"rate": None, "rows": [None, 1.0]}


@pytest.mark.parametrize("given", [None, 11])
def test_the_scenario_seed_is_the_default_of_simulate_seed(tmp_path, given):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(AGV_ONLY.format(seed=7))

    def run(*extra):
        out = tmp_path / "m.json"
        args = ["simulate", "--scenario", str(scenario), "--duration", "20ms", "--json", str(out)]
        assert main([*args, *extra]) == 0
        return strict(out)

    default = run() if given is None else run("--seed", str(given))
    assert default["seed"] == (7 if given is None else given)
    assert default == run("--seed", str(default["seed"]))
    assert default["metrics"] != run("--seed", "0")["metrics"]  # the seed changes the arrivals

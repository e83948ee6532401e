"""Heuristic sweeps (``kind: heuristic``): bad configs are one line, and a real sweep on local
Ray reports the harness's validation numbers and writes a tuned-heuristic file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from _bench_suites import PY

from millinet.experiments.cli import main


def heuristic_sweep_yaml(tmp_path: Path, **changes) -> Path:
    data = {
        "kind": "heuristic",
        "name": "hs",
        "heuristic": "deadline-aware",
        "suite": "smoke",
        "space": {"margin": {"uniform": [0.0, 0.9]}, "own_correction": {"choice": [False, True]}},
        "num_samples": 2,
        "scheduler": {"type": "fifo"},
        "search": {"algorithm": "random", "seed": 0, "include_default": True},
        "storage_path": str(tmp_path / "sweeps"),
    }
    data.update(changes)
    path = tmp_path / "hs.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


BAD_HEURISTIC_SWEEPS = [
    ({"heuristic": "nearest"}, ["heuristic", "no parameters to tune", "deadline-aware"]),
    ({"space": {"d": {"randint": [1, 4]}}}, ["space.d", "not a parameter of deadline-aware"]),
    ({"space": {"margin": {"uniform": [0.0, 1.5]}}}, ["space.margin", "value 1.5 is invalid"]),
    ({"scheduler": {"type": "pbt"}}, ["scheduler.type", "pbt does not apply"]),
    ({"suite": "no-such-suite"}, ["suite", "unknown suite"]),
    ({"scheduler": {"type": "asha", "grace_period": 5}}, ["scheduler.grace_period", "2 chunks"]),
]


@pytest.mark.parametrize("changes,expected", BAD_HEURISTIC_SWEEPS)
def test_bad_heuristic_sweep_is_one_line(tmp_path, capsys, changes, expected):
    path = heuristic_sweep_yaml(tmp_path, **changes)
    assert main(["sweep", "--config", str(path), "--check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"millinet sweep: error: {path}: ") and err.count("\n") == 1, err
    for text in expected:
        assert text in err, err
    assert not (tmp_path / "sweeps").exists()


@pytest.mark.slow
def test_heuristic_sweep_on_local_ray(tmp_path, ray_env):
    """Two trials (the defaults first) on the smoke suite's validation episodes: the reported
    objective equals the harness's evaluation on the validation engine seeds, and tuned.yaml is
    a policy spec holding the best trial's knobs."""
    from millinet.agents.specs import load_tuned_heuristic
    from millinet.experiments.benchmark.suite import load_suite
    from millinet.experiments.evaluation.harness import evaluate

    path = heuristic_sweep_yaml(tmp_path)
    proc = subprocess.run(
        [PY, "-m", "millinet.experiments.cli", "sweep", "--config", str(path), "--num-cpus", "2"],
        cwd=tmp_path, env=ray_env, capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    exp = tmp_path / "sweeps" / "hs"
    tuned = load_tuned_heuristic(exp / "tuned.yaml")
    best = json.loads((exp / "best.json").read_text())
    assert tuned.heuristic == "deadline-aware"
    assert tuned.params["margin"] == pytest.approx(best["params"]["margin"])
    assert "validation reset seeds 900000..900001" in tuned.tuned_on
    first = json.loads((exp / "trial_00000" / "params.json").read_text())
    assert first == {"margin": 0.5, "own_correction": False}  # the defaults
    suite = load_suite("smoke")
    values = []
    for scenario in suite.training:
        ev = evaluate(scenario, ["deadline-aware"], suite.validation_seeds(), duration_s=0.02)
        values += list(ev.values("deadline-aware", "violation_rate_1ms"))
    result = [
        json.loads(x) for x in (exp / "trial_00000" / "result.json").read_text().split("\n") if x
    ]
    assert result[-1]["violation_rate_1ms"] == pytest.approx(float(np.mean(values)))

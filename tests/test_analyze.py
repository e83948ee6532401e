"""``millinet analyze`` on real event files written by a tiny training run."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from millinet.agents.ppo import Trainer
from millinet.agents.train_config import validate_train_config
from millinet.experiments.analysis import (
    AnalysisError,
    curve_band,
    find_runs,
    group_key,
    load_run,
    read_baselines,
)
from millinet.experiments.cli import main


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    """A runs/ folder with one tiny real run and a copy of it posing as a second seed."""
    cfg = validate_train_config(
        {
            "total_timesteps": 512,
            "n_envs": 2,
            "env": {"horizon": 128},
            "ppo": {"n_steps": 128, "batch_size": 128, "n_epochs": 1},
            "eval": {"freq": 256, "episodes": 1, "final_episodes": 1},
            "checkpoint": {"freq": 512},
        },
        "<test>",
    )
    parent = tmp_path_factory.mktemp("runs")
    trainer = Trainer.create(cfg, runs_dir=parent, name="sunflower-metro_maskppo_s0_20260101-1200")
    trainer.train(512, progress=False, evaluate_best=False)
    trainer.close()
    shutil.copytree(trainer.root, parent / "sunflower-metro_maskppo_s1_20260101-1201")
    return parent


def test_reads_real_event_file(runs_dir):
    run = load_run(runs_dir / "sunflower-metro_maskppo_s0_20260101-1200")
    steps, values = run.scalars["eval/violation_rate_1ms"]
    assert list(steps) == [256, 512]
    assert np.all((values >= 0) & (values <= 1))
    assert "millinet/violation_rate_1ms" in run.scalars
    assert run.metrics["timesteps"] == 512
    assert run.group == "sunflower-metro_maskppo"


def test_curve_band_and_groups(runs_dir):
    runs = [load_run(p) for p in find_runs([str(runs_dir)])]
    assert len(runs) == 2 and {r.group for r in runs} == {"sunflower-metro_maskppo"}
    x, mean, half, n = curve_band(runs, "eval/violation_rate_1ms", points=5)
    assert n == 2 and x[0] == 256 and x[-1] == 512
    assert np.allclose(half, 0.0)  # identical copies: zero spread
    assert group_key("city_ppo_s12_20261126-113000-2") == "city_ppo"


def test_cli_writes_report_plot_table(runs_dir, tmp_path, capsys):
    base = tmp_path / "baselines.md"
    base.write_text(
        "| policy | violation_rate_1ms | ci95 |\n|---|---:|---:|\n"
        "| nearest | 7.5% | 1.0% |\n| earliest-finish | 0.02% | 0.01% |\n"
    )
    out = tmp_path / "report"
    code = main(["analyze", str(runs_dir / "*"), "--out", str(out), "--baselines", str(base)])
    assert code == 0
    assert (out / "learning_curves.png").stat().st_size > 10_000
    text = (out / "report.md").read_text()
    assert "sunflower-metro_maskppo | 2 |" in text and "nearest (baseline)" in text
    assert "earliest-finish (baseline) | – | 0.020% | [0.010%, 0.030%]" in text
    assert (out / "runs.csv").read_text().count("\n") == 3
    assert "report.md" in capsys.readouterr().out


def test_baselines_csv(tmp_path):
    path = tmp_path / "b.csv"
    path.write_text("policy,violation_rate_1ms,ci_low,ci_high\nnearest,0.07,0.06,0.08\n")
    (row,) = read_baselines(path)
    assert row["policy"] == "nearest" and math.isclose(row["ci_high"], 0.08)
    # the long format of `millinet evaluate`'s summary.csv
    path.write_text(
        "scenario,policy,metric,mean,ci95_low,ci95_high,seeds\n"
        "sunflower-metro,nearest,violation_rate,0.5,0.4,0.6,10\n"
        "sunflower-metro,nearest,violation_rate_1ms,0.07,0.06,0.08,10\n"
        # a trained run evaluated alongside the heuristics is a curve, not a baseline line
        "sunflower-metro,runs/x_s0_20260101-1200@last,violation_rate_1ms,0.0,0.0,0.0,10\n"
    )
    (row,) = read_baselines(path)
    assert math.isclose(row["violation_rate_1ms"], 0.07) and math.isclose(row["ci_low"], 0.06)


def test_errors_name_the_input(tmp_path, capsys):
    with pytest.raises(AnalysisError, match="nothing-here"):
        find_runs([str(tmp_path / "nothing-here")])
    (tmp_path / "empty.csv").write_text("a,b\n1,2\n")
    with pytest.raises(AnalysisError, match=r"empty\.csv"):
        read_baselines(tmp_path / "empty.csv")
    assert main(["analyze", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "nope" in capsys.readouterr().err


def _damaged_copy(runs_dir, tmp_path, how: str):
    """A copy of the real run whose event file is garbage, truncated or empty."""
    run = tmp_path / "runs" / "sunflower-metro_maskppo_s0_20260101-1200"
    shutil.copytree(runs_dir / run.name, run)
    (events,) = (run / "tb").glob("events.out.tfevents.*")
    data = events.read_bytes()
    events.write_bytes(
        {"garbage": bytes(range(256)) * 4, "truncated": data[:-7], "empty": b"",
         "flipped": data[:300] + bytes([data[300] ^ 0xFF]) + data[301:]}[how]
    )  # fmt: skip
    return run, events


@pytest.mark.parametrize(
    "how, status, says",
    [
        ("garbage", 2, "not a TensorBoard event file (corrupted at byte 0"),
        ("flipped", 2, "damaged (corrupted at byte"),
        ("truncated", 0, "truncated; using its"),
        ("empty", 2, "no learning curves"),
    ],
)
def test_damaged_event_files_are_named_never_silent_empty_curves(
    runs_dir, tmp_path, capsys, how, status, says
):
    run, events = _damaged_copy(runs_dir, tmp_path, how)
    out = tmp_path / "out"
    assert main(["analyze", str(run), "--out", str(out)]) == status
    err = capsys.readouterr().err
    assert says in err, err
    if how != "empty":
        assert str(events) in err
    else:  # the empty file is a warning; then no curve at all is an error
        assert f"warning: {events}: empty; skipped" in err
    assert out.is_dir() == (status == 0)  # a failed analysis leaves no output folder
    if status == 0:
        steps, _ = load_run(run).scalars["eval/violation_rate_1ms"]
        assert list(steps) == [256, 512]  # every complete record was read


def test_demo_end_to_end_with_tiny_config(tmp_path, capsys):
    """`millinet demo` wiring: train, evaluate against the baselines, write the report."""
    from pathlib import Path

    tiny = Path(__file__).resolve().parent.parent / "experiments" / "configs" / "ppo_tiny.yaml"
    code = main(
        [
            "demo",
            "--config",
            str(tiny),
            "--seeds",
            "1",
            "--duration",
            "0.02",
            "--runs-dir",
            str(tmp_path),
        ]  # fmt: skip
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "| ppo (this run) |" in out and "nearest" in out
    (run,) = tmp_path.iterdir()
    assert (run / "demo" / "report.md").is_file()
    assert (run / "demo" / "learning_curves.png").is_file()

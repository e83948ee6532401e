"""Checkpoints are atomic and resume never destroys (issue 18, class 2).

The main test trains a tiny run with a checkpoint every 128 steps in a real ``millinet train``
process, kills it with SIGKILL at random moments three times, resuming after each of the
first two kills in a new process, then lets a last resume finish: every kill leaves a run
that resumes, the wall-time budget (``time_limit_s``) counts the time trained before each
kill, and a second process cannot train into the folder while one does. Smaller tests cover
the pieces in-process.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from millinet.experiments.cli import main

TIME_LIMIT_S = 5.0
TINY = {
    "algo": "maskppo",
    "scenario": "sunflower-metro",
    "total_timesteps": 10_000_000,  # the time limit ends the run
    "time_limit_s": TIME_LIMIT_S,
    "n_envs": 2,
    "env": {"horizon": 128},
    "ppo": {"n_steps": 64, "batch_size": 64, "n_epochs": 1, "policy": {"pi": [32], "vf": [32]}},
    "eval": {"freq": 512, "episodes": 1, "final_episodes": 1},
    "checkpoint": {"freq": 128},
}


def _train(ctx, *args: str):
    """``millinet train --no-progress ARGS`` in a child process of the forkserver ``ctx`` (a
    real process, SIGKILLed by the test; forked from a server that has imported the training
    stack once, so each start costs milliseconds, not seconds)."""
    proc = ctx.Process(target=main, args=(["train", "--no-progress", *args],))
    proc.start()
    return proc


def _wait_for(predicate, proc, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if not proc.is_alive():
            pytest.fail(f"training exited early (exit code {proc.exitcode})")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("training made no progress")
        time.sleep(0.05)


def _clock(run: Path) -> float:
    try:
        return json.loads((run / "clock.json").read_text())["wall_s"]
    except (OSError, ValueError, KeyError):
        return 0.0


def _newest(run: Path) -> int:
    steps = [int(p.name.split("_")[1]) for p in (run / "checkpoints").glob("model_*_steps.zip")]
    return max(steps, default=0)


def test_repeated_kills_at_random_moments_each_followed_by_a_resume(tmp_path, capsys):
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["millinet.experiments.cli", "millinet.agents.ppo"])
    import millinet.agents.ppo  # noqa: F401  (the in-process lock check below starts at once)

    rng = random.Random(18)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    runs = tmp_path / "runs"
    proc = _train(ctx, "--config", str(config), "--runs-dir", str(runs))
    _wait_for(lambda: runs.is_dir() and any(runs.iterdir()), proc)
    (run,) = runs.iterdir()
    clocks = []
    for kill in range(3):
        # a few checkpoints beyond where this process started, then a random moment
        start = _newest(run)
        _wait_for(lambda s=start: _newest(run) >= s + 256 and _clock(run) > 0, proc)
        if kill == 0:  # meanwhile nobody else may train into the folder
            assert main(["train", "--resume", str(run), "--no-progress"]) == 2
            err = capsys.readouterr().err
            assert f"PID {proc.pid}" in err and "another process is training" in err, err
            assert proc.is_alive()  # refused while the first one trains
        time.sleep(rng.uniform(0.0, 0.6))
        proc.kill()  # SIGKILL
        proc.join(timeout=30)
        clocks.append(_clock(run))
        if kill < 2:
            proc = _train(ctx, "--resume", str(run))
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0  # the last one finishes
    metrics = json.loads((run / "metrics.json").read_text())
    # the budget counted the time trained before every kill: the last resume trained only the
    # rest of it (the old behaviour restarted the clock at each resume)
    assert clocks == sorted(clocks) and clocks[-1] > 1.0, clocks
    assert TIME_LIMIT_S <= metrics["wall_s"] < TIME_LIMIT_S + 2.0, (clocks, metrics["wall_s"])
    assert metrics["timesteps"] == _newest(run)
    # every checkpoint left is complete: a zip that reads and its statistics beside it
    for model in (run / "checkpoints").glob("model_*_steps.zip"):
        with zipfile.ZipFile(model) as z:
            assert z.testzip() is None, model
        steps = model.name.split("_")[1]
        assert (run / "checkpoints" / f"vecnormalize_{steps}_steps.pkl").is_file(), model
    leftovers = [p for p in run.rglob("*") if p.name.endswith((".tmp", ".old"))]
    assert leftovers == []
    assert (run / "train.lock").read_text() == ""  # released: nobody trains here


def test_a_kill_between_the_two_renames_of_a_folder_swap_keeps_the_old_folder(tmp_path):
    """``replace_dir`` renames the old folder away, then the new one in: a reader that comes
    between the two (the writer was killed there) still finds the old, complete folder."""
    from millinet.envs.files import existing_dir, previous_dir, replace_dir

    target = tmp_path / "final"
    target.mkdir()
    (target / "model.zip").write_text("old")
    new = tmp_path / "new"
    new.mkdir()
    (new / "model.zip").write_text("new")
    os.replace(target, previous_dir(target))  # the first rename, then the kill
    assert (existing_dir(target) / "model.zip").read_text() == "old"
    replace_dir(new, target)  # the next save completes the swap
    assert (existing_dir(target) / "model.zip").read_text() == "new"
    assert not previous_dir(target).exists()


def test_a_failed_resume_changes_nothing(tmp_path, capsys):
    """A resume refused for its target (the run is already further) leaves the folder as it
    was: config.yaml byte for byte, no new TensorBoard file, no lock."""
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "time_limit_s": None, "total_timesteps": 256}))
    assert main(["train", "--config", str(config), "--runs-dir", str(tmp_path / "r"),
                 "--no-progress"]) == 0  # fmt: skip
    capsys.readouterr()
    (run,) = (tmp_path / "r").iterdir()
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert main(["train", "--resume", str(run), "--total-timesteps", "128"]) == 2
    assert "already has 256 of 128 steps" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_a_diverged_model_stops_training_and_is_never_saved_or_exported(tmp_path, capsys):
    """NaN weights (as an exploding update leaves them) stop training at the next rollout
    with one clear line; no checkpoint, final model or export of them is written."""
    import torch

    from millinet.agents.callbacks import TrainingDivergedError
    from millinet.agents.ppo import Trainer
    from millinet.agents.run_folder import save_named
    from millinet.agents.train_config import validate_train_config

    data = {**TINY, "time_limit_s": None, "total_timesteps": 4096}
    trainer = Trainer.create(validate_train_config(data, "<test>"), runs_dir=tmp_path)
    try:
        trainer.train(256, progress=False, evaluate_best=False)
        files = {p: p.read_bytes() for p in trainer.root.rglob("*") if p.is_file()}
        with torch.no_grad():
            next(trainer.model.policy.parameters()).fill_(float("nan"))
        with pytest.raises(TrainingDivergedError, match="training diverged at step 256: non-f"):
            trainer.train(256, progress=False)
        same = {p for p, b in files.items() if p.is_file() and p.read_bytes() == b}
        changed = {p.relative_to(trainer.root) for p in set(files) - same}
        assert changed <= {Path("clock.json")}, changed  # the clock only; no model, no metrics
        assert trainer.num_timesteps == 256
        save_named(trainer.model, trainer.paths, "best")  # as an older millinet could have
    finally:
        trainer.close()
    out = tmp_path / "exported"
    assert main(["export", str(trainer.root), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "non-finite values in" in err and "the run diverged" in err, err
    assert not out.exists() and not list(tmp_path.glob(".*.tmp"))

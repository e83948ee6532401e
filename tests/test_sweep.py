"""``millinet sweep``: config validation, fast failures, PBT restores, and real Ray Tune runs
(a tiny local sweep, kill-and-resume, a sweep through ``--address`` on a local head node).

The Ray tests start their own Ray processes with a private temp dir and stop exactly those
(by process group, and by PID for anything left carrying that temp dir in its command line).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from millinet.experiments.cli import main
from millinet.experiments.sweep.config import load_sweep_config, validate_sweep_config

REPO = Path(__file__).resolve().parent.parent
TINY_TRAIN = REPO / "experiments" / "configs" / "ppo_tiny.yaml"
PY = sys.executable


def sweep_yaml(tmp_path: Path, name: str = "t", **changes) -> Path:
    """A tiny sweep config in ``tmp_path`` (storage inside ``tmp_path``)."""
    data = {
        "name": name,
        "train": str(TINY_TRAIN),
        "overrides": {"n_envs": 1, "eval.freq": 1_000_000},
        "space": {
            "ppo.learning_rate": {"loguniform": [1.0e-4, 1.0e-3]},
            "ppo.n_epochs": {"choice": [1, 2]},
        },
        "num_samples": 3,
        "chunk_timesteps": 256,
        "max_chunks": 2,
        "scheduler": {"type": "fifo"},
        "search": {"seed": 0, "include_default": False},
        "storage_path": str(tmp_path / "sweeps"),
    }
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path = tmp_path / f"sweep_{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# --------------------------------------------------------------------------- validation
def test_shipped_sweep_configs_are_valid():
    for path in sorted((REPO / "experiments" / "configs").glob("sweep_*.yaml")):
        spec = load_sweep_config(path)
        assert spec.params, path


def test_space_parsing_and_default_point(tmp_path):
    spec = load_sweep_config(
        sweep_yaml(
            tmp_path,
            space={
                "ppo.learning_rate": {"loguniform": [1.0e-4, 1.0e-3]},
                "ppo.policy.pi": {"choice": [[32], [16, 16]]},
                "ppo.batch_size": {"randint": [32, 129]},
            },
        )
    )
    by_key = {p.key: p for p in spec.params}
    assert by_key["ppo.policy.pi"].encoded and not by_key["ppo.batch_size"].encoded
    assert by_key["ppo.batch_size"].corners() == [32, 128]
    # ppo_tiny's values: lr 3e-4 (default), pi [32], batch_size 128
    point = spec.default_point()
    assert point == {"ppo.learning_rate": 3e-4, "ppo.policy.pi": "[32]", "ppo.batch_size": 128}
    cfg = spec.train_config({"ppo.policy.pi": [16, 16], "ppo.batch_size": 64})
    assert cfg.ppo.policy.pi == [16, 16] and cfg.torch_threads == 1
    assert cfg.total_timesteps == 512 and cfg.n_envs == 1


def test_pbt_clip_to_space_and_mutations(tmp_path):
    spec = load_sweep_config(
        sweep_yaml(
            tmp_path,
            space={
                "ppo.learning_rate": {"loguniform": [1.0e-4, 1.0e-3]},
                "ppo.n_epochs": {"randint": [1, 5]},
                "ppo.policy.pi": {"choice": [[32], [16, 16]]},
            },
            scheduler={"type": "pbt"},
        )
    )
    assert set(spec.pbt_mutations()) == {"ppo.learning_rate", "ppo.n_epochs"}
    clipped = spec.clip_to_space({"ppo.learning_rate": 5e-3, "ppo.n_epochs": 7.2})
    assert clipped == {"ppo.learning_rate": 1e-3, "ppo.n_epochs": 4}


BAD_ENTRIES = [
    (
        {"space": {"ppo.learning_rate": {"gaussian": [0, 1]}}},
        ["space.ppo.learning_rate", "unknown distribution 'gaussian'"],
    ),
    (
        {"space": {"ppo.learning_rat": {"uniform": [0.1, 0.2]}}},
        ["space.ppo.learning_rat", "not a training-config field"],
    ),
    (
        {"space": {"ppo.gamma": {"uniform": [0.9, 1.5]}}},
        ["space.ppo.gamma", "value 1.5 is invalid", "ppo.gamma", "less than or equal to 1"],
    ),
    (
        {"space": {"ppo.learning_rate": {"loguniform": [0, 1.0e-3]}}},
        ["space.ppo.learning_rate", "needs low > 0"],
    ),
    (
        {"space": {"ppo.learning_rate": [1.0e-4, 1.0e-3]}},
        ["space.ppo.learning_rate", "expected a mapping with one distribution key"],
    ),
    (
        {"space": {"ppo.batch_size": {"choice": [64, 256]}, "ppo.n_steps": {"choice": [128, 256]}}},
        ["space.ppo.batch_size, space.ppo.n_steps", "combination", "exceeds the rollout size"],
    ),
    (
        {"space": {"total_timesteps": {"choice": [1000, 2000]}}},
        ["space.total_timesteps", "set by the sweep itself"],
    ),
    (
        {
            "scheduler": {"type": "pbt", "mutations": ["ppo.n_epochs"]},
            "space": {"ppo.n_epochs": {"choice": [1, 2]}, "ppo.n_steps": {"choice": [128, 256]}},
        },
        [],  # valid: n_epochs is mutable
    ),
    (
        {
            "scheduler": {"type": "pbt", "mutations": ["ppo.n_steps"]},
            "space": {"ppo.n_steps": {"choice": [128, 256]}},
        },
        ["scheduler.mutations", "'ppo.n_steps' cannot change in the middle of training"],
    ),
    (
        {"search": {"algorithm": "optuna"}, "space": {"ppo.n_epochs": {"grid": [1, 2]}}},
        ["space.ppo.n_epochs", "grid is not supported by optuna"],
    ),
    ({"num_sample": 3}, ["num_sample", "unknown key"]),
    ({"train": "no_such_config.yaml"}, ["train", "'no_such_config.yaml' not found"]),
    ({"overrides": {"ppo.batch_size": 4096}}, ["overrides", "exceeds the rollout size"]),
]


@pytest.mark.parametrize("changes,expected", BAD_ENTRIES)
def test_bad_sweep_config_is_one_clear_line(tmp_path, capsys, changes, expected):
    path = sweep_yaml(tmp_path, **changes)
    t0 = time.monotonic()
    rc = main(["sweep", "--config", str(path), "--check"])
    err = capsys.readouterr().err
    if not expected:
        assert rc == 0, err
        return
    assert rc == 2
    assert err.startswith(f"millinet sweep: error: {path}: "), err
    assert err.count("\n") == 1 and "Traceback" not in err
    for text in expected:
        assert text in err, err
    assert time.monotonic() - t0 < 10


def test_bad_entry_fails_before_ray_starts(tmp_path, capsys):
    path = sweep_yaml(tmp_path, space={"ppo.clip_range": {"uniform": [-0.1, 0.3]}})
    assert main(["sweep", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "space.ppo.clip_range: value -0.1 is invalid" in err
    assert not (tmp_path / "sweeps").exists()


def test_objective_prefers_1ms_then_overall():
    from millinet.experiments.sweep.outputs import pick_best
    from millinet.experiments.sweep.trainable import objective

    assert objective({"violation_rate_1ms": 0.01, "violation_rate": 0.5}, 0.01) < objective(
        {"violation_rate_1ms": 0.02, "violation_rate": 0.0}, 0.01
    )
    assert objective({"violation_rate_1ms": 0.0, "violation_rate": 0.1}, 0.01) < objective(
        {"violation_rate_1ms": 0.0, "violation_rate": 0.2}, 0.01
    )
    assert objective({"violation_rate_1ms": float("nan"), "violation_rate": 0.0}, 0.01) == 1.0
    rows = [
        {"trial": "a", "chunks": 3, "objective": 0.05},
        {"trial": "b", "chunks": 1, "objective": 0.01},  # stopped early: not preferred
        {"trial": "c", "chunks": 3, "objective": 0.04},
    ]
    assert pick_best(rows)["trial"] == "c"


# --------------------------------------------------------------------------- PBT restore
def test_checkpoint_restore_applies_new_hyperparameters(tmp_path):
    """What a PBT exploit does: the donor's checkpoint into another run folder, the trial's
    (mutated) hyperparameters applied to the loaded model, training continues."""
    import torch

    from millinet.agents.ppo import Trainer
    from millinet.experiments.sweep.trainable import (
        apply_ppo_hyperparameters,
        restore_run_folder,
        save_tune_checkpoint,
    )

    spec = load_sweep_config(sweep_yaml(tmp_path))
    torch.set_num_threads(1)
    donor = Trainer.create(spec.train_config({"ppo.learning_rate": 3e-4}), tmp_path, "donor")
    try:
        donor.train(256, progress=False, evaluate_best=False)
        ckpt = tmp_path / "ckpt"
        ckpt.mkdir()
        save_tune_checkpoint(donor, ckpt, chunk=1)
    finally:
        donor.close()
    new = {
        "ppo.learning_rate": 7e-4,
        "ppo.clip_range": 0.1,
        "ppo.n_epochs": 1,
        "ppo.gamma": 0.95,
        "ppo.ent_coef": 0.01,
    }
    cfg = spec.train_config(new)
    root = tmp_path / "trial"
    assert restore_run_folder(ckpt, root, cfg) == 1
    trainer = Trainer.resume(root)
    try:
        assert trainer.model.learning_rate == 3e-4  # the zip's value, before applying
        apply_ppo_hyperparameters(trainer.model, cfg)
        m = trainer.model
        assert m.lr_schedule(1.0) == pytest.approx(7e-4)
        assert m.clip_range(1.0) == pytest.approx(0.1)
        assert (m.n_epochs, m.ent_coef, m.gamma) == (1, 0.01, 0.95)
        assert m.rollout_buffer.gamma == 0.95
        assert m.get_vec_normalize_env().gamma == 0.95
        assert trainer.num_timesteps == 256
        metrics = trainer.train(256, progress=False, evaluate_best=False)
        assert metrics["timesteps"] == 512
        assert m.policy.optimizer.param_groups[0]["lr"] == pytest.approx(7e-4)
    finally:
        trainer.close()


def test_validate_sweep_config_accepts_inline_train_mapping(tmp_path):
    spec = validate_sweep_config(
        {
            "name": "inline",
            "train": {"n_envs": 1, "ppo": {"n_steps": 128, "batch_size": 64}},
            "space": {"ppo.ent_coef": {"uniform": [0.0, 0.01]}},
            "storage_path": str(tmp_path),
        },
        "inline.yaml",
    )
    assert spec.base["ppo"]["n_steps"] == 128
    assert spec.experiment_dir() == tmp_path / "inline"


# --------------------------------------------------------------------------- real Ray runs
@pytest.fixture
def ray_env():
    """Environment for a sweep subprocess: a private, short Ray temp dir; loopback only."""
    tmp = tempfile.mkdtemp(prefix="mnray", dir="/tmp")
    env = dict(
        os.environ,
        RAY_TMPDIR=tmp,
        OMP_NUM_THREADS="1",
        RAY_USAGE_STATS_ENABLED="0",
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        # Token authentication with a token of our own (not ~/.ray/auth_token); the head node
        # and the driver of the --address test share it.
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=secrets.token_hex(32),
    )
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    env.pop("RAY_ADDRESS", None)
    yield env
    _kill_leftovers(tmp)
    subprocess.run(["rm", "-rf", tmp], check=False)


def _kill_leftovers(tmp: str) -> None:
    """Kill (by PID) processes still carrying our private Ray temp dir in their command line."""
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            cmd = (pid_dir / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if tmp in cmd and int(pid_dir.name) != os.getpid():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(pid_dir.name), signal.SIGKILL)


def _ray_processes(tmp: str) -> list[str]:
    """Processes (other than this one) holding files open under the Ray temp dir ``tmp`` or
    naming it on their command line: what a sweep's Ray left running (the agents rename
    themselves, their log files stay open)."""
    found = []
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit() or int(pid_dir.name) == os.getpid():
            continue
        try:
            cmd = (pid_dir / "cmdline").read_bytes().decode(errors="replace")
            if (
                "<defunct>" in cmd
                or (pid_dir / "stat").read_text().split(")")[-1].split()[0] == "Z"
            ):
                continue
            fds = [os.readlink(fd) for fd in (pid_dir / "fd").iterdir()]
        except OSError:
            continue
        if tmp in cmd or any(f.startswith(tmp) for f in fds):
            found.append(f"{pid_dir.name} {cmd.replace(chr(0), ' ')[:60]}")
    return found


def _sweep_cmd(config: Path, *extra: str) -> list[str]:
    return [PY, "-m", "millinet.experiments.cli", "sweep", "--config", str(config), *extra]


def _run_sweep(
    cwd: Path, env: dict, config: Path, *extra: str, timeout: float
) -> subprocess.CompletedProcess:
    """``millinet sweep --config CONFIG EXTRA...`` run in ``cwd``; output captured as text."""
    command = _sweep_cmd(config, *extra)
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def _result_rows(trial_dir: Path) -> list[dict]:
    path = trial_dir / "result.json"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_tiny_sweep_on_local_ray(tmp_path, ray_env):
    """ASHA (the default scheduler), 4 trials x 3 short chunks, on a local Ray instance."""
    config = sweep_yaml(
        tmp_path,
        name="tiny",
        num_samples=4,
        max_chunks=3,
        scheduler={"type": "asha", "grace_period": 1, "reduction_factor": 2},
        search={"seed": 0, "include_default": True},
        space={
            "ppo.learning_rate": {"loguniform": [1.0e-4, 1.0e-3]},
            "ppo.policy.pi": {"choice": [[32], [16, 16]]},
        },
    )
    t0 = time.monotonic()
    proc = _run_sweep(tmp_path, ray_env, config, "--num-cpus", "2", timeout=400)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "chunk 1/3" in proc.stdout  # console progress
    exp = tmp_path / "sweeps" / "tiny"
    for name in (
        "summary.md",
        "summary.csv",
        "chunks.csv",
        "sweep.png",
        "best_config.yaml",
        "best.json",
        "sweep_config.yaml",
    ):
        assert (exp / name).is_file(), name
    # The best config is a ready training config with the searched values.
    from millinet.agents.train_config import load_train_config

    best = json.loads((exp / "best.json").read_text())
    cfg = load_train_config(exp / "best_config.yaml")
    assert cfg.ppo.learning_rate == pytest.approx(best["params"]["ppo.learning_rate"])
    assert cfg.ppo.policy.pi == best["params"]["ppo.policy.pi"]
    assert cfg.total_timesteps == best["timesteps"] == 768
    # The first trial ran the base config's own values (include_default).
    first = json.loads((exp / "trial_00000" / "params.json").read_text())
    assert first == {"ppo.learning_rate": 3e-4, "ppo.policy.pi": "[32]"}
    # Each trial folder holds a run folder that TensorBoard and `millinet analyze` read.
    from millinet.experiments.analysis import find_runs, load_run

    runs = find_runs([str(exp / "trial_*" / "tiny_*")])
    assert len(runs) == 4
    scalars = load_run(runs[0]).scalars
    assert any(tag.startswith("millinet/") for tag in scalars)
    assert glob.glob(str(exp / "trial_*" / "events.out.tfevents.*"))  # Tune's own metrics
    summary = (exp / "summary.md").read_text()
    assert "| rank | trial | ppo.learning_rate | ppo.policy.pi |" in summary
    assert _ray_processes(ray_env["RAY_TMPDIR"]) == []  # the sweep's Ray is gone
    assert not (exp / "ray_session.json").exists()
    print(f"tiny sweep: {elapsed:.0f} s")


def _experiment_state(exp: Path) -> list[tuple[str, str, int]]:
    """(trial id, status, reported iterations) from the newest experiment state snapshot."""
    files = sorted(exp.glob("experiment_state-*.json"))
    if not files:
        return []
    try:
        data = json.loads(files[-1].read_text())
    except (OSError, ValueError):  # being rewritten
        return []
    out = []
    for state, meta in data["trial_data"]:
        s, m = json.loads(state), json.loads(meta)
        last = m.get("last_result") or {}
        out.append((s["trial_id"], s["status"], int(last.get("training_iteration") or 0)))
    return out


@pytest.mark.slow
def test_resume_after_killing_the_driver(tmp_path, ray_env):
    """Kill the driver alone with SIGKILL mid-sweep, resume with --resume: the Ray processes
    the killed driver left are stopped and named, the progress line's best counts the trials
    reported before the kill, the finished trials are not run again, the interrupted ones
    continue from their checkpoint, and no Ray process is left at the end."""
    config = sweep_yaml(
        tmp_path,
        name="kill",
        num_samples=3,
        max_chunks=4,
        max_concurrent_trials=1,
        seeds_per_trial=2,  # the checkpoint then holds two training runs per trial
        space={"ppo.learning_rate": {"loguniform": [1.0e-4, 1.0e-3]}},
    )
    exp = tmp_path / "sweeps" / "kill"
    log = open(tmp_path / "first.log", "w")  # noqa: SIM115
    driver = subprocess.Popen(
        _sweep_cmd(config, "--num-cpus", "2"),
        cwd=tmp_path,
        env=ray_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            state = _experiment_state(exp)
            done = [t for t in state if t[1] == "TERMINATED"]
            mid = [t for t in state if t[1] == "RUNNING" and 1 <= t[2] < 4]
            if done and mid:
                break
            assert driver.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            time.sleep(0.2)
        else:
            pytest.fail("no snapshot with a finished and a running trial within 300 s")
        os.kill(driver.pid, signal.SIGKILL)  # the driver only: its Ray is left to itself
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
        log.close()
    time.sleep(1)
    trial_dirs = {tid: exp / f"trial_{tid.split('_')[-1]}" for tid, _, _ in state}
    before = {tid: _result_rows(d) for tid, d in trial_dirs.items()}
    status_at_kill = {tid: (status, it) for tid, status, it in state}
    left = _ray_processes(ray_env["RAY_TMPDIR"])

    proc = _run_sweep(tmp_path, ray_env, config, "--num-cpus", "2", "--resume", timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert _ray_processes(ray_env["RAY_TMPDIR"]) == []
    if left:  # some of a killed driver's Ray processes outlive it; the resume stops them
        assert "Ray process(es) left by a killed sweep driver" in proc.stdout, (left, proc.stdout)
    # the progress line's best counts the results reported before the kill (as restored)
    assert "resumed: best so far trial " in proc.stdout, proc.stdout[:2000]
    shown = proc.stdout.split("resumed: best so far trial ", 1)[1].split()[1]
    reported = {f"{100 * r['objective']:.3f}%" for rows in before.values() for r in rows}
    assert shown in reported, (shown, reported)
    for tid, d in trial_dirs.items():
        rows = _result_rows(d)
        status, iters = status_at_kill[tid]
        chunks = [r["chunk"] for r in rows]
        context = (tid, status, iters, [r["chunk"] for r in before[tid]], chunks)
        if status == "TERMINATED":
            assert rows == before[tid], f"finished trial was run again: {context}"
        else:  # continued from its checkpoint: chunk 1 is never trained twice
            assert chunks.count(1) == 1 and set(chunks) == {1, 2, 3, 4}, context
    mid_tid = mid[0][0]
    last = _result_rows(trial_dirs[mid_tid])[-1]
    assert last["chunk"] == 4 and last["timesteps"] == 4 * 256
    assert {"violation_rate_1ms_s0", "violation_rate_1ms_s1"} <= set(last)
    for seed in (0, 1):  # both runs continued their own TensorBoard folder
        (run,) = trial_dirs[mid_tid].glob(f"kill_*_s{seed}")
        assert (run / "tb").is_dir() and (run / "final" / "model.zip").is_file()
    assert (exp / "best_config.yaml").is_file()
    import csv

    with open(exp / "summary.csv") as fh:
        statuses = [r["status"] for r in csv.DictReader(fh)]
    assert statuses == ["complete"] * 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_address_fails_fast(tmp_path, ray_env):
    config = sweep_yaml(tmp_path)
    port = _free_port()  # nothing listens there
    t0 = time.monotonic()
    proc = _run_sweep(
        tmp_path, ray_env, config, "--address", f"127.0.0.1:{port}", "--connect-timeout", "5",
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert f"cannot reach a Ray cluster at 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert time.monotonic() - t0 < 60


def test_address_that_is_not_ray_fails_within_the_timeout(tmp_path, ray_env):
    """A port that accepts TCP but is no Ray head: ray.init would retry forever."""
    config = sweep_yaml(tmp_path)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        port = server.getsockname()[1]
        t0 = time.monotonic()
        proc = _run_sweep(
            tmp_path, ray_env, config, "--address", f"127.0.0.1:{port}", "--connect-timeout", "5",
            timeout=120,
        )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"could not connect to the Ray cluster at 127.0.0.1:{port} within 5 s" in proc.stderr
    assert time.monotonic() - t0 < 60


@pytest.mark.slow
def test_sweep_through_address_on_a_local_head_node(tmp_path, ray_env):
    """`ray start --head` on loopback, a tiny sweep through --address, then stop that head."""
    port = _free_port()
    head = subprocess.Popen(
        [
            str(Path(PY).parent / "ray"),
            "start",
            "--head",
            "--node-ip-address=127.0.0.1",
            f"--port={port}",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--ray-client-server-port={_free_port()}",
            f"--dashboard-agent-listen-port={_free_port()}",
            f"--temp-dir={ray_env['RAY_TMPDIR']}",
        ],
        env=ray_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the head's daemons keep this process group: stopped below
    )
    try:
        out, _ = head.communicate(timeout=180)
        assert head.returncode == 0, out[-3000:]
        config = sweep_yaml(tmp_path, name="cluster", num_samples=2, max_chunks=1)
        proc = _run_sweep(tmp_path, ray_env, config, "--address", f"127.0.0.1:{port}", timeout=400)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert f"Ray cluster 127.0.0.1:{port} with 2 CPUs" in proc.stdout
        exp = tmp_path / "sweeps" / "cluster"
        assert (exp / "best_config.yaml").is_file()
        assert len(list(exp.glob("trial_*/cluster_*/tb"))) == 2
    finally:
        _stop_process_group(head.pid)


def _stop_process_group(pgid: int) -> None:
    """SIGTERM the head node's process group, then SIGKILL what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    for _ in range(50):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def test_outputs_from_a_result_grid_with_stopped_and_errored_trials(tmp_path):
    """write_outputs on stand-ins for Tune's Result objects: ranking, statuses, best config."""
    import pandas as pd

    from millinet.agents.train_config import load_train_config
    from millinet.experiments.sweep.outputs import write_outputs

    spec = load_sweep_config(
        sweep_yaml(
            tmp_path,
            space={
                "ppo.learning_rate": {"loguniform": [1.0e-4, 1.0e-3]},
                "ppo.policy.pi": {"choice": [[32], [16, 16]]},
            },
        )
    )

    class Res:
        def __init__(self, tid, lr, pi, chunks, v1, error=None):
            rows = [
                {
                    "chunk": c,
                    "timesteps": 256 * c,
                    "objective": v1 + 0.01 * v1,
                    "violation_rate_1ms": v1,
                    "violation_rate_1ms_ci95": 0.01,
                    "violation_rate": v1,
                }
                for c in range(1, chunks + 1)
            ]
            config = {"ppo.learning_rate": lr, "ppo.policy.pi": json.dumps(pi)}
            self.metrics = {**rows[-1], "trial_id": f"abc_{tid}", "config": config} if rows else {}
            self.config = config
            self.path = str(tmp_path / f"trial_{tid}")
            self.error = error
            self.metrics_dataframe = pd.DataFrame(rows) if rows else None

    results = [
        Res("00000", 3e-4, [32], 2, 0.03),
        Res("00001", 5e-4, [16, 16], 1, 0.01),
        Res("00002", 2e-4, [16, 16], 2, 0.02),
        Res("00003", 1e-4, [32], 0, 0.0, error=RuntimeError("boom")),
    ]
    paths = write_outputs(spec, results)
    rows = (paths["csv"]).read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["00001", "00002", "00000", "00003"]
    assert ",stopped early," in rows[1] and ",error," in rows[4]
    best = json.loads(paths["best"].read_text())
    assert best["trial"] == "00002"  # 00001 is better but trained fewer chunks
    cfg = load_train_config(paths["best_config"])
    assert cfg.ppo.policy.pi == [16, 16] and cfg.total_timesteps == 512
    assert cfg.n_envs == 1  # the sweep's training override stays
    assert cfg.eval.freq == 1024  # ppo_tiny's own, not the sweep's eval.freq override
    assert cfg.tag == "sweep-t"
    assert paths["plot"].stat().st_size > 10_000


def test_interrupted_sweep_is_told_apart_from_a_finished_one(tmp_path):
    """After fit(): unfinished trials in the saved state -> SweepInterruptedError (exit 130)
    unless the time budget ran out; errors and finished sweeps pass."""
    from millinet.experiments.sweep.driver import SweepInterruptedError, _check_finished

    spec = load_sweep_config(sweep_yaml(tmp_path, num_samples=3, time_budget_s=600))

    class Results:
        num_errors = 0

    _check_finished(spec, Results(), 10, ["TERMINATED", "TERMINATED", "ERROR"])
    running = ["TERMINATED", "RUNNING"]  # + one sample never created
    with pytest.raises(SweepInterruptedError, match="2 trial.s. unfinished.*--resume"):
        _check_finished(spec, Results(), 10, running)
    _check_finished(spec, Results(), 600, running)  # time budget: a note, no error


def test_report_row_means_over_seeds_and_smooths_over_chunks():
    from millinet.experiments.sweep.trainable import report_row

    def metrics(v1, episodes):
        return {
            "violation_rate_1ms": v1,
            "violation_rate_1ms_ci95": 0.0,
            "violation_rate": v1,
            "timesteps": 512,
            "wall_s": 1.0,
            "last": {"episodes": len(episodes), "per_episode_violation_rate_1ms": episodes},
        }

    history: list[float] = []
    row = report_row(
        [metrics(0.02, [0.01, 0.03]), metrics(0.04, [0.03, 0.05])],
        1,
        0.0,
        history,
        average_last=2,
        seeds=[5, 6],
    )
    assert row["violation_rate_1ms"] == pytest.approx(0.03)
    assert row["violation_rate_1ms_s5"] == 0.02 and row["violation_rate_1ms_s6"] == 0.04
    assert row["eval_episodes"] == 4 and row["violation_rate_1ms_ci95"] > 0
    assert row["objective"] == pytest.approx(0.03)
    row = report_row([metrics(0.0, [0.0]), metrics(0.02, [0.02])], 2, 0.0, history, 2, [5, 6])
    assert row["objective_chunk"] == pytest.approx(0.01)
    assert row["objective"] == pytest.approx(0.02)  # mean of the last two chunks
    assert history == pytest.approx([0.03, 0.01])

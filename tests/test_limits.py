"""What validates, runs (issue 18, class 3): absurd numbers in a scenario, a training config or a
sweep config are refused by validation, one line naming the file, the field and the limit,
before anything is allocated; never a hang, a MemoryError or a traceback. Also: ``inf``/``nan``,
empty and duplicated-key files, files that are not UTF-8 text wherever a file is read, env
keyword arguments and actions.

Every CLI case runs in-process through ``millinet.experiments.cli.main`` (exit status 2, one
line on stderr); the numbers in the file names are the limits the messages must quote.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from millinet.experiments.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "experiments" / "configs" / "ppo_tiny.yaml"
AGV = "  - {name: f, profile: custom, attach: access-0-1, workload: {agv_dispatch: %s}}\n"


def one_error_line(capsys, argv: list[str], budget_s: float = 20.0) -> str:
    """Run the CLI; it must fail with status 2 within ``budget_s`` and print one line."""
    t0 = time.monotonic()
    status = main(argv)
    elapsed = time.monotonic() - t0
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert elapsed < budget_s, f"{elapsed:.1f} s: {err}"
    return err


# --------------------------------------------------------------------------- scenarios
SCENARIOS = {
    # the issue's list
    "rate_1e30": (
        "factories:\n" + AGV % "{process: poisson, rate_per_s: 1.0e+30}",
        "factories[0].workload.agv_dispatch.rate_per_s",
        "less than or equal to 10000000",
    ),
    "streams_1e9": (
        "factories:\n  - {name: f, profile: custom, attach: access-0-1, workload: {robot_sync:"
        " {process: periodic, streams: 1000000000, period_min_us: 1000, period_max_us: 2000}}}\n",
        "factories[0].workload.robot_sync.streams",
        "less than or equal to 100000",
    ),
    "load_scale_1e30": ("load_scale: 1.0e+30\n", "load_scale", "less than or equal to 10000"),
    "duration_1e30": ("duration_s: 1.0e+30\n", "duration_s", "less than or equal to 86400"),
    "petals_100000": (
        "topology: {generator: sunflower, petals: 100000}\n",
        "topology.petals",
        "less than or equal to 500",
    ),
    # limits of the whole scenario (each field within its range, the product not)
    "total_rate": ("load_scale: 1000\n", "load_scale", r"limit is 10,000,000 tasks/s"),
    "tasks_per_run": ("duration_s: 3600\n", "duration_s", r"at most 20,000,000"),
    "scaled_streams": (
        "load_scale: 100\nfactories:\n  - {name: f, profile: car_plant, scale: 10000}\n",
        "factories[0].profile",
        r"limit is 100,000",
    ),
    "grid_nodes": (
        "name: g\ntopology: {generator: grid, rows: 100, cols: 100}\n"
        "factories: [{name: f, profile: brewery}]\n",
        "topology",
        r"rows x cols = 10,000 network nodes; the limit is 5,000",
    ),
    "priority_levels": (
        "classes: {robot_sync: {priority: 1000000000}}\n",
        "classes.robot_sync.priority",
        "less than or equal to 7",
    ),
    "fault_storm": (
        "faults: {random: {link_mtbf_s: 1.0e-9, link_mttr_s: 1}}\n",
        "faults.random.link_mtbf_s",
        "greater than or equal to 0.001",
    ),
    "servers_1e9": (
        "sites: {edge: {cpu: {servers: 1000000000}}}\n",
        "sites.edge.cpu.servers",
        "less than or equal to 100000",
    ),
    "payload_1e30": (
        "classes: {vision_qa: {up_bytes: {dist: constant, value: 1.0e+30}}}\n",
        "classes.vision_qa.up_bytes.value",
        "less than or equal to 1",
    ),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_absurd_scenarios_are_refused_by_validate(tmp_path, capsys, name):
    text, field, limit = SCENARIOS[name]
    path = tmp_path / "s.yaml"
    path.write_text(text if text.startswith("name:") else "extends: sunflower-metro\n" + text)
    line = one_error_line(capsys, ["scenarios", "validate", str(path)])

    assert f"s.yaml: {field}: " in line and re.search(limit, line), line


def test_duration_override_is_checked_before_simulating(capsys):
    line = one_error_line(capsys, ["simulate", "--duration", "100000s"])
    assert "--duration" in line and "at most 20,000,000" in line


# --------------------------------------------------------------------------- training configs
TRAIN = {
    "horizon_1e12": ("env: {horizon: 1000000000000}", "env.horizon", "less than or equal to"),
    "envs_100000": ("n_envs: 100000", "n_envs", "less than or equal to 256"),
    "rollout_buffer": (
        "n_envs: 256\nppo: {n_steps: 1000000, batch_size: 256}",
        "ppo.n_steps",
        r"GiB of buffer .* the limit is 4 GiB",
    ),
    "bc_buffer": (
        "pretrain: {teacher: nearest, steps: 10000000}",
        "pretrain.steps",
        r"GiB of buffer",
    ),
    "episode_records": (
        "env: {horizon: 10000000, agent_classes: [vision_qa]}",
        "env.horizon",
        r"an episode keeps at most 20,000,000",
    ),
    "layer_width": ("ppo: {policy: {pi: [1000000]}}", "ppo.policy.pi[0]", "less than or equal"),
    "inf_time_limit": ("time_limit_s: .inf", "time_limit_s", "finite number"),
    "nan_learning_rate": ("ppo: {learning_rate: .nan}", "ppo.learning_rate", "finite number"),
    "minus_inf_ent_coef": ("ppo: {ent_coef: -.inf}", "ppo.ent_coef", "finite number"),
    "nan_weight": (
        "env: {reward_weights: {robot_sync: .nan}}",
        "env.reward_weights.robot_sync",
        "finite number",
    ),
    "bool_horizon": ("env: {horizon: true}", "env.horizon", "must be an integer"),
    "string_horizon": ("env: {horizon: '12'}", "env.horizon", "must be an integer"),
    "no_agent_classes": ("env: {agent_classes: []}", "env.agent_classes", "at least 1"),
    "duplicate_key": ("seed: 1\nseed: 2", "line 2, column 1", "duplicate key 'seed'"),
    "empty_file": ("", "", "the training config is empty"),
    "comments_only": ("# nothing here\n", "", "the training config is empty"),
    "empty_mapping": ("{}", "", "the training config is empty"),
}


@pytest.mark.parametrize("name", sorted(TRAIN))
def test_absurd_training_configs_are_refused(tmp_path, capsys, name):
    text, field, reason = TRAIN[name]
    path = tmp_path / "train.yaml"
    path.write_text(text + "\n")  # every other key keeps its default
    runs = tmp_path / "runs"
    line = one_error_line(capsys, ["train", "--config", str(path), "--runs-dir", str(runs)])

    assert line.startswith(f"millinet train: error: {path}: {field}"), line
    assert re.search(reason, line), line
    assert not runs.exists()  # refused before anything was created


def test_a_scenario_without_arrivals_of_the_agent_classes_is_refused(tmp_path):
    """An env whose agent classes never arrive would wait forever for its first decision."""
    from millinet.envs.errors import ConfigError
    from millinet.envs.placement_env import PlacementEnv

    only_agv = {
        "extends": "sunflower-metro",
        "factories": [
            {"name": "f", "profile": "custom", "workload": {"agv_dispatch": {
                "process": "poisson", "rate_per_s": 100}}}
        ],
    }  # fmt: skip
    with pytest.raises(ConfigError, match="never reach a decision") as err:
        PlacementEnv(only_agv, agent_classes=["vision_qa"])
    assert err.value.field == "agent_classes"


# --------------------------------------------------------------------------- env kwargs, actions
@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"horizon": True}, "horizon"),
        ({"horizon": "12"}, "horizon"),
        ({"horizon": 2.5}, "horizon"),
        ({"reward_weights": {"vision_qa": float("nan")}}, "reward_weights.vision_qa"),
        ({"agent_classes": []}, "agent_classes"),
    ],
)
def test_env_keyword_arguments_are_validated(kwargs, field):
    from millinet.envs.errors import ConfigError
    from millinet.envs.placement_env import PlacementEnv

    with pytest.raises(ConfigError) as err:
        PlacementEnv("sunflower-metro", **kwargs)
    assert err.value.field == field


@pytest.fixture(scope="module")
def env():
    from millinet.envs.placement_env import PlacementEnv

    e = PlacementEnv("sunflower-metro", horizon=10_000)
    e.reset(seed=0)
    return e


@pytest.mark.parametrize(
    "action", [2.7, 1.0, "1", True, None, 8, -1, np.array([1]), np.float32(2.0)], ids=repr
)
def test_step_refuses_an_action_that_is_not_a_slot(env, action):
    from millinet.envs.errors import ActionError

    decisions = env._decisions
    with pytest.raises(ActionError, match="action"):
        env.step(action)
    assert env._decisions == decisions  # nothing was dispatched


@pytest.mark.parametrize("action", [3, np.int64(3), np.array(3), np.uint8(3)], ids=repr)
def test_step_takes_every_integer_form(env, action):
    _, _, _, _, info = env.step(action)
    assert isinstance(info["rejected"], bool)


# --------------------------------------------------------------------------- sweep configs
def _sweep(tmp_path: Path, **changes) -> Path:
    data = {
        "name": "t",
        "train": str(TINY),
        "overrides": {"n_envs": 1},
        "space": {"ppo.learning_rate": {"loguniform": [1.0e-4, 1.0e-3]}},
        "num_samples": 2,
        "chunk_timesteps": 256,
        "max_chunks": 1,
        "scheduler": {"type": "fifo"},
        "storage_path": str(tmp_path / "sweeps"),
    }
    data.update(changes)
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


SWEEPS = {
    "samples_1e9": ({"num_samples": 10**9}, "num_samples", "less than or equal to 100000"),
    "chunk_inf": ({"chunk_timesteps": float("inf")}, "chunk_timesteps", "finite number"),
    "cpus_1e6": ({"cpus_per_trial": 1e6}, "cpus_per_trial", "less than or equal to 1024"),
    "space_envs": (
        {"space": {"n_envs": {"choice": [1, 100000]}}},
        "space.n_envs",
        "value 100000 is invalid: n_envs",
    ),
    "space_buffer": (
        {"overrides": {"n_envs": 256}, "space": {"ppo.n_steps": {"choice": [256, 1000000]}}},
        "space.ppo.n_steps",
        "GiB of buffer",
    ),
}


@pytest.mark.parametrize("name", sorted(SWEEPS))
def test_absurd_sweep_configs_are_refused(tmp_path, capsys, name):
    changes, field, reason = SWEEPS[name]
    path = _sweep(tmp_path, **changes)
    line = one_error_line(capsys, ["sweep", "--config", str(path), "--check"])
    assert f"{path}: {field}" in line and reason in line, line


def test_a_trial_needing_more_cpus_than_the_sweep_has_is_refused_before_ray(tmp_path, capsys):
    path = _sweep(tmp_path, cpus_per_trial=4)
    line = one_error_line(capsys, ["sweep", "--config", str(path), "--num-cpus", "2"], 15)
    assert "cpus_per_trial" in line and "needs 4 CPUs" in line and "has 2" in line, line
    assert not (tmp_path / "sweeps" / "t").exists()


def test_an_empty_base_training_config_is_refused(tmp_path, capsys):
    (tmp_path / "empty.yaml").write_text("# nothing\n")
    path = _sweep(tmp_path, train=str(tmp_path / "empty.yaml"))
    line = one_error_line(capsys, ["sweep", "--config", str(path), "--check"])
    assert "train" in line and "the training config is empty" in line


# --------------------------------------------------------------------------- unreadable files
def _fill(path: Path, kind: str) -> None:
    if kind == "binary":
        path.write_bytes(b"\x00\x01\x02PK\x03\x04" * 20)
    elif kind == "latin1":
        path.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    else:  # a directory where a file belongs
        path.mkdir()


READERS = {
    "scenario": lambda f, t: ["scenarios", "validate", str(f)],
    "training_config": lambda f, t: ["train", "--config", str(f), "--runs-dir", str(t / "r")],
    "sweep_config": lambda f, t: ["sweep", "--config", str(f), "--check"],
    "resume_config": lambda f, t: ["train", "--resume", str(f.parent)],
    "baselines": lambda f, t: ["analyze", str(t / "run"), "--out", str(t / "o"),
                               "--baselines", str(f)],
}  # fmt: skip
REASONS = {"binary": "a binary file", "latin1": "not a UTF-8 text file", "dir": "is a directory"}


@pytest.mark.parametrize("kind", sorted(REASONS))
@pytest.mark.parametrize("reader", sorted(READERS))
def test_unreadable_files_are_one_line_wherever_a_file_is_read(tmp_path, capsys, reader, kind):
    if reader == "resume_config":
        path = tmp_path / "run" / "config.yaml"
        path.parent.mkdir()
    else:
        path = tmp_path / "input.yaml"
    if reader == "baselines":  # a real (empty) run for analyze to read
        (tmp_path / "run" / "tb").mkdir(parents=True)
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        w = EventFileWriter(str(tmp_path / "run" / "tb"))
        w.close()
    _fill(path, kind)
    line = one_error_line(capsys, READERS[reader](path, tmp_path))
    assert str(path) in line and REASONS[kind] in line, line

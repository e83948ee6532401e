"""PPO training: run folder contract, TensorBoard metrics, reload, resume, clear errors.

One tiny run (about a thousand steps, a few seconds) is shared by the tests of this module.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from millinet.agents.errors import CheckpointError, CheckpointNotFoundError
from millinet.agents.inference import load_run_policy, policy_from_model
from millinet.agents.ppo import Trainer
from millinet.agents.train_config import load_train_config, validate_train_config
from millinet.envs.errors import ConfigError
from millinet.envs.features import observation_size
from millinet.experiments.cli import main

TINY = Path(__file__).resolve().parent.parent / "experiments" / "configs" / "ppo_tiny.yaml"
STEPS = 1024


def tiny_config(**overrides):
    cfg = load_train_config(TINY)
    data = cfg.model_dump()
    data.update({"total_timesteps": STEPS, **overrides})
    data["env"]["horizon"] = 128
    data["ppo"].update(n_steps=128, batch_size=128, n_epochs=1)
    data["eval"].update(freq=512, episodes=1, final_episodes=2)
    data["checkpoint"]["freq"] = 512
    return validate_train_config(data, "<test>")


def scalars(tb_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(run folder, in-memory trainer after training) of one tiny MaskablePPO run."""
    trainer = Trainer.create(tiny_config(), runs_dir=tmp_path_factory.mktemp("runs"))
    metrics = trainer.train(STEPS, progress=False)
    yield trainer.root, trainer, metrics
    trainer.close()


def test_run_folder_contract(run):
    root, _, metrics = run
    assert root.name.startswith("sunflower-metro_maskppo_s0_")
    for rel in (
        "config.yaml",
        "best/best_model.zip",
        "best/vecnormalize.pkl",
        "final/model.zip",
        "final/vecnormalize.pkl",
        f"checkpoints/model_{STEPS}_steps.zip",
        f"checkpoints/vecnormalize_{STEPS}_steps.pkl",
        "checkpoints/model_512_steps.zip",
        "metrics.json",
    ):
        assert (root / rel).is_file(), rel
    saved = json.loads((root / "metrics.json").read_text())
    assert saved["timesteps"] == STEPS
    assert 0.0 <= saved["violation_rate_1ms"] <= 1.0
    assert set(saved["classes"]) == {"robot_sync", "agv_dispatch", "vision_qa"}
    assert "best" in saved and saved["last"]["episodes"] == 2
    assert 0.0 < saved["env_time_share"] < 1.0
    # the resolved config round-trips
    assert load_train_config(root / "config.yaml") == tiny_config()


def test_tensorboard_has_custom_scalars_and_hparams(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root, _, _ = run
    tags = scalars(root / "tb")
    for tag in (
        "millinet/violation_rate_1ms",
        "millinet/violation_rate",
        "millinet/violation_rate/robot_sync",
        "millinet/p99_us/robot_sync",
        "millinet/reward/violation",
        "millinet/reward/latency",
        "millinet/drops",
        "millinet/env_time_share",
        "eval/violation_rate_1ms",
        "eval/violation_rate/vision_qa",
        "eval/mean_reward",
    ):
        assert tag in tags, tag
    share = [v for _, v in tags["millinet/env_time_share"]]
    assert all(0.0 < v < 1.0 for v in share)
    assert max(s for s, _ in tags["millinet/violation_rate_1ms"]) <= STEPS
    acc = EventAccumulator(str(root / "tb"))
    acc.Reload()
    assert "_hparams_/session_start_info" in acc.PluginTagToContent("hparams")


def test_reloaded_model_acts_identically(run):
    """load_run_policy(last) == the in-memory model with its VecNormalize == SB3's predict."""
    from millinet.envs.placement_env import PlacementEnv

    root, trainer, _ = run
    live = policy_from_model(trainer.model, "live")
    loaded = load_run_policy(root, "last")
    vecnorm = trainer.model.get_vec_normalize_env()
    env = PlacementEnv(**trainer.cfg.env_kwargs())
    obs, _ = env.reset(seed=123)
    for _ in range(200):
        mask = env.action_masks()
        a = loaded.act(obs, mask)
        assert a == live.act(obs, mask)
        sb3, _ = trainer.model.predict(
            vecnorm.normalize_obs(obs[None]), deterministic=True, action_masks=mask[None]
        )
        assert a == int(sb3[0]) and mask[a]
        obs, _, _, truncated, _ = env.step(a)
        if truncated:
            obs, _ = env.reset()
    assert loaded.name.endswith(":last")
    assert isinstance(load_run_policy(root, "best").act(obs, env.action_masks()), int)


def test_resume_continues_step_count(run, tmp_path):
    import shutil

    root, _, _ = run
    copy = tmp_path / root.name
    shutil.copytree(root, copy)
    before = max(s for s, _ in scalars(copy / "tb")["millinet/violation_rate_1ms"])
    trainer = Trainer.resume(copy, total_timesteps=2 * STEPS)
    try:
        assert trainer.num_timesteps == STEPS
        metrics = trainer.train(512, progress=False, evaluate_best=False)
    finally:
        trainer.close()
    assert metrics["timesteps"] == STEPS + 512
    assert (copy / f"checkpoints/model_{STEPS + 512}_steps.zip").is_file()
    steps = [s for s, _ in scalars(copy / "tb")["millinet/violation_rate_1ms"]]
    assert max(steps) > before and max(steps) <= STEPS + 512
    assert load_train_config(copy / "config.yaml").total_timesteps == 2 * STEPS
    assert json.loads((copy / "metrics.json").read_text())["wall_s"] > metrics["wall_s"] / 2


def test_truncated_checkpoints_give_clear_errors(run, tmp_path):
    import shutil

    root, _, _ = run
    copy = tmp_path / "broken"
    shutil.copytree(root, copy)
    model = copy / "final" / "model.zip"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"model\.zip.*truncated or corrupted"):
        load_run_policy(copy, "last")
    norm = copy / "best" / "vecnormalize.pkl"
    norm.write_bytes(norm.read_bytes()[:40])
    with pytest.raises(CheckpointError, match=r"vecnormalize\.pkl.*truncated or corrupted"):
        load_run_policy(copy, "best")
    (copy / "best" / "best_model.zip").unlink()
    with pytest.raises(CheckpointNotFoundError, match="best_model.zip"):
        load_run_policy(copy, "best")
    with pytest.raises(FileNotFoundError):
        load_run_policy(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        ("ppo:\n  learning_rte: 0.1\n", "ppo.learning_rte", "unknown key"),
        ("n_envs: -2\n", "n_envs", "greater than 0"),
        ("algo: dqn\n", "algo", "'maskppo' or 'ppo'"),
        ("env:\n  agent_classes: [robots]\n", "env.agent_classes[0]", "robot_sync"),
        ("ppo: {batch_size: 9999, n_steps: 8}\n", "", "exceeds the rollout size"),
        ("scenario: no-such-city\n", "scenario", "no-such-city"),
        ("pretrain: {teacher: oracle}\n", "pretrain.teacher", "unknown heuristic 'oracle'"),
        ("- a list\n", "", "YAML mapping"),
        ("ppo: [unclosed\n", "", "not valid YAML"),
    ],
)
def test_bad_config_names_file_field_reason(tmp_path, text, field, reason):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_train_config(path)
    msg = str(info.value)
    assert msg.startswith(str(path)) and field in msg and reason in msg


def test_cli_bad_config_is_one_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("total_timesteps: lots\n")
    assert main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "total_timesteps" in err and str(path) in err


def test_cli_resume_skips_a_corrupted_checkpoint_and_fails_cleanly_without_any(
    run, tmp_path, capsys
):
    import shutil

    root, _, _ = run
    copy = tmp_path / root.name
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("train.lock"))
    (copy / "train.lock").write_text("")  # a finished run: its lock released
    ckpt = copy / f"checkpoints/model_{STEPS}_steps.zip"
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    config = (copy / "config.yaml").read_bytes()
    # the only other checkpoint is truncated too: nothing to resume from, nothing changed
    older = copy / "checkpoints/model_512_steps.zip"
    good = older.read_bytes()
    older.write_bytes(good[:100])
    before = sorted(p.relative_to(copy) for p in copy.rglob("*"))
    argv = ["train", "--resume", str(copy), "--total-timesteps", "4096", "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"model_{STEPS}_steps.zip" in err and "truncated" in err
    assert "model_512_steps.zip" in err
    assert sorted(p.relative_to(copy) for p in copy.rglob("*")) == before
    assert (copy / "config.yaml").read_bytes() == config  # a failed resume changes nothing
    # with the older checkpoint intact, resume says what it skipped and continues from it
    older.write_bytes(good)
    assert main(argv[:4] + ["1536", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert f"skipped {ckpt}: not a model zip" in err
    assert json.loads((copy / "metrics.json").read_text())["timesteps"] == 1536


def test_plain_ppo_option(tmp_path):
    cfg = tiny_config(algo="ppo", total_timesteps=256)
    trainer = Trainer.create(cfg, runs_dir=tmp_path)
    try:
        metrics = trainer.train(256, progress=False)
    finally:
        trainer.close()
    assert "_ppo_" in trainer.root.name and metrics["algo"] == "ppo"
    policy = load_run_policy(trainer.root, "last")
    mask = np.zeros(8, dtype=bool)
    mask[5] = True
    obs = np.zeros(observation_size(8), dtype=np.float32)
    assert policy.act(obs, mask) == 5  # masked argmax: always a feasible slot


def test_candidate_scorer_trains_and_reloads(tmp_path):
    """The candidate-scoring network (ppo.policy.arch: candidate) saves and reloads exactly."""
    from millinet.envs.placement_env import PlacementEnv

    cfg = tiny_config(total_timesteps=256)
    data = cfg.model_dump()
    data["ppo"]["policy"].update(arch="candidate", pi=[16, 16], vf=[16])
    data["normalize"]["norm_obs"] = False
    cfg = validate_train_config(data, "<test>")
    trainer = Trainer.create(cfg, runs_dir=tmp_path)
    try:
        trainer.train(256, progress=False, evaluate_best=False)
        live = policy_from_model(trainer.model, "live")
    finally:
        trainer.close()
    assert type(trainer.model.policy).__name__ == "CandidateMaskablePolicy"
    loaded = load_run_policy(trainer.root, "last")
    assert loaded.obs_mean is None  # norm_obs off: raw observations
    env = PlacementEnv(**cfg.env_kwargs())
    obs, _ = env.reset(seed=7)
    for _ in range(100):
        mask = env.action_masks()
        assert loaded.act(obs, mask) == live.act(obs, mask)
        np.testing.assert_allclose(loaded.logits(obs[None]), live.logits(obs[None]), rtol=1e-6)
        obs, _, _, truncated, _ = env.step(loaded.act(obs, mask))
        if truncated:
            obs, _ = env.reset()


def test_warm_start_imitates_teacher_and_time_limit_stops(tmp_path):
    """pretrain.teacher clones the heuristic (saved as pretrained/); time_limit_s stops PPO."""
    data = tiny_config().model_dump()
    data["ppo"]["policy"].update(arch="candidate", pi=[32, 32], vf=[32])
    data["pretrain"] = {"teacher": "earliest-finish", "steps": 2048, "epochs": 20}
    data["time_limit_s"] = 0.5
    data["total_timesteps"] = 10**6
    cfg = validate_train_config(data, "<test>")
    trainer = Trainer.create(cfg, runs_dir=tmp_path)
    try:
        metrics = trainer.train(10**6, progress=False, evaluate_best=False)
    finally:
        trainer.close()
    assert metrics["pretrain"]["accuracy"] > 0.8
    assert metrics["timesteps"] < 10**5  # stopped by the time limit
    assert load_run_policy(trainer.root, "pretrained").name.endswith(":pretrained")
    tags = scalars(trainer.root / "tb")
    assert "pretrain/accuracy" in tags


def test_privileged_teacher_labels_from_the_oracle_view_and_dagger_follows_the_student(tmp_path):
    """With ``pretrain.privileged`` the labels are the teacher's decisions on the oracle view of
    each state (not on the reports the student reads); DAgger rounds add the student's states."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from millinet.agents.heuristics import make_heuristic
    from millinet.agents.pretrain import collect
    from millinet.envs.placement_env import PlacementEnv

    spec = {"extends": "sunflower-metro", "load_scale": 2.0}  # 1 ms reports: often stale
    venv = DummyVecEnv([lambda: PlacementEnv(spec, horizon=4096)])
    venv.seed(3)
    teacher = make_heuristic("earliest-finish")
    data = collect(venv, teacher, 600, 0.99, privileged=True)
    from_reports = [teacher.act(o, m) for o, m in zip(data["raw"], data["masks"])]
    assert (data["actions"] != np.array(from_reports)).mean() > 0.02  # labels: another view
    env = PlacementEnv(spec, horizon=4096)  # replayed by hand: the oracle view's decisions
    env.reset(seed=3)
    for label in data["actions"]:
        assert label == teacher.act(env.oracle_observation(), env.action_masks())
        env.step(label)

    cfg = tiny_config().model_dump()
    cfg["scenario"] = "sunflower-metro-load2x"
    cfg["pretrain"] = {"teacher": "deadline-aware", "privileged": True, "steps": 1024,
                       "dagger_rounds": 2, "dagger_steps": 512, "epochs": 2}  # fmt: skip
    trainer = Trainer.create(validate_train_config(cfg, "<test>"), runs_dir=tmp_path)
    try:
        stats = trainer.train(256, progress=False, evaluate_best=False)["pretrain"]
    finally:
        trainer.close()
    assert stats["privileged"] and stats["samples"] == 1024 + 2 * 512
    assert len(stats["dagger_student_violation_rate_1ms"]) == 2


def test_policy_spec_selects_a_run_checkpoint(run):
    """``RUN@last`` / ``RUN@<steps>`` pick that checkpoint; bad suffixes are one clear line."""
    from millinet.agents.errors import CheckpointError
    from millinet.agents.specs import load_policy
    from millinet.envs.scenario import load_scenario

    root, _, _ = run
    scenario = load_scenario("sunflower-metro")
    assert load_policy(str(root), scenario).name.endswith(":best")
    assert load_policy(f"{root}@last", scenario).name.endswith(":last")
    assert load_policy(f"{root}@512", scenario).name.endswith(":512")
    with pytest.raises(CheckpointError, match="unknown checkpoint .newest.; use @best, @last"):
        load_policy(f"{root}@newest", scenario)
    with pytest.raises(CheckpointNotFoundError, match="pretrained.model.zip"):  # no BC start
        load_policy(f"{root}@pretrained", scenario)


def test_set_and_scenario_override_the_config_and_are_validated_like_it():
    cfg = load_train_config(
        TINY, ["ppo.ent_coef=0.01", "env.agent_classes=[robot_sync]"], scenario="link-failure"
    )
    assert cfg.ppo.ent_coef == 0.01 and cfg.env.agent_classes == ["robot_sync"]
    assert cfg.scenario == "link-failure"
    with pytest.raises(ConfigError, match=r"ppo_tiny\.yaml.*ppo\.ent_coeff.*unknown key"):
        load_train_config(TINY, ["ppo.ent_coeff=0.01"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_train_config(TINY, ["ppo.ent_coef"])
    with pytest.raises(ConfigError, match="ppo.n_steps: --set ppo.n_steps.x: .* not a mapping"):
        load_train_config(TINY, ["ppo.n_steps.x=1"])
    with pytest.raises(ConfigError, match="scenario.*atlantis"):
        load_train_config(TINY, scenario="atlantis")

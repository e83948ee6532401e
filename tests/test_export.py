"""``millinet export``: the ONNX policy decides exactly as the trained SB3 model.

Parity is measured on >= 10,000 observations collected from Placement-v0 (random feasible
actions through several seeds; every one has masked slots), each paired once with its env mask
and once with a random mask, against SB3's own ``VecNormalize.normalize_obs`` +
``MaskablePPO.predict(deterministic=True)`` and ``policy.get_distribution``.
"""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import onnx
import pytest
import torch
import yaml
from _export_fixtures import collect_env_samples, shared_run

from millinet.agents.run_folder import load_checkpoint
from millinet.envs.features import (
    CLASS_NAMES,
    FEATURES_VERSION,
    TASK_FIELDS,
    TELEMETRY_FIELDS,
    observation_size,
)
from millinet.experiments.cli import main as cli
from millinet.scheduler.manifest import sha256_file
from millinet.scheduler.runtime import load_policy_folder

N_ENV_OBS = 10_000


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return shared_run(tmp_path_factory)


def sb3_reference(run, obs, masks):
    """Deterministic actions, raw logits, unmasked log-probs and masked probs, all by SB3."""
    norm = run.normalize(obs)
    actions, _ = run.model.predict(norm, action_masks=masks, deterministic=True)
    policy = run.model.policy
    with torch.no_grad():
        x = torch.as_tensor(norm)
        features = policy.extract_features(x, policy.pi_features_extractor)
        raw = policy.action_net(policy.mlp_extractor.forward_actor(features)).numpy()
        log_probs = policy.get_distribution(x).distribution.logits.numpy()
        probs = policy.get_distribution(x, action_masks=masks).distribution.probs.numpy()
    return actions, raw, log_probs, probs


def test_folder_and_manifest(exported):
    run_dir, out = exported
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "policy.onnx"]
    m = json.loads((out / "manifest.json").read_text())
    assert m["format"] == "millinet-policy" and m["format_version"] == 1
    assert m["model"]["sha256"] == sha256_file(out / "policy.onnx")
    obs = m["observation"]
    assert obs["features_version"] == FEATURES_VERSION
    assert obs["task_fields"] == list(TASK_FIELDS)
    assert obs["telemetry_fields"] == list(TELEMETRY_FIELDS)
    assert m["K"] == 8 and obs["size"] == observation_size(8)
    assert m["classes"] == list(CLASS_NAMES) and m["agent_classes"] == list(CLASS_NAMES)
    assert m["normalisation"]["applied"] == "in_graph" and len(
        m["normalisation"]["mean"]
    ) == observation_size(8)
    assert m["training_config"]["env"]["horizon"] == 256
    # the shipped default's telemetry, which the policy's observations came from
    assert m["telemetry"]["mode"] == "reported" and m["telemetry"]["period_us"] == 1000.0
    assert m["telemetry"]["scheduler"] == "per_factory"
    assert m["metrics"]["eval"]["violation_rate_1ms"] == 0.5
    assert m["source"]["model_file"] == "best/best_model.zip"
    model = onnx.load(str(out / "policy.onnx"))
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert [i.name for i in model.graph.input] == ["observation", "mask"]
    assert [o.name for o in model.graph.output] == ["action", "logits", "probs"]


def test_parity_with_sb3_on_env_observations(exported):
    run_dir, out = exported
    obs, env_masks = collect_env_samples(N_ENV_OBS)
    assert (~env_masks).any(axis=1).mean() > 0.9  # nearly every observation has masked slots
    rng = np.random.default_rng(1)
    rand_masks = rng.random(env_masks.shape) < 0.5
    rand_masks[np.arange(len(obs)), rng.integers(env_masks.shape[1], size=len(obs))] = True
    all_obs = np.concatenate([obs, obs])
    all_masks = np.concatenate([env_masks, rand_masks])

    run = load_checkpoint(run_dir, "best")
    ref_actions, ref_raw, ref_log_probs, ref_probs = sb3_reference(run, all_obs, all_masks)
    policy = load_policy_folder(out)
    actions, logits, probs = policy.infer(all_obs, all_masks)

    agree = float(np.mean(actions == ref_actions))
    raw_err = float(np.abs(logits - ref_raw).max())
    lp = logits - logits.max(1, keepdims=True)
    lp = lp - np.log(np.exp(lp).sum(1, keepdims=True))
    lp_err = float(np.abs(lp - ref_log_probs).max())
    prob_err = float(np.abs(probs - ref_probs).max())
    # The masks matter: the unmasked argmax is infeasible for a good share of the samples.
    overridden = float(np.mean(~all_masks[np.arange(len(all_obs)), ref_raw.argmax(1)]))
    print(
        f"\nparity on {len(all_obs)} observations ({N_ENV_OBS} env, with env and random masks; "
        f"unmasked argmax infeasible in {overridden:.1%}): decisions agree {agree:.4%}, "
        f"max |raw logit diff| {raw_err:.2e}, max |log-prob diff| {lp_err:.2e}, "
        f"max |masked prob diff| {prob_err:.2e}"
    )
    assert agree == 1.0
    assert raw_err <= 1e-5 and lp_err <= 1e-5 and prob_err <= 1e-5
    assert overridden > 0.1
    # The batch-1 path used by the evaluation harness decides the same.
    single = [policy.act(o, m) for o, m in zip(obs, env_masks)]
    assert single == ref_actions[:N_ENV_OBS].tolist()


@pytest.mark.parametrize("how", ["norm_obs_off", "no_vecnormalize"])
def test_parity_without_observation_normalisation(exported, tmp_path, how):
    """VecNormalize(norm_obs=False) (which has no obs_rms at all), or a run trained without
    VecNormalize (config ``normalize.enabled: false``, no pkl)."""
    run_dir, _ = exported
    run2 = tmp_path / "run-no-norm"
    shutil.copytree(run_dir, run2)
    for sub in ("best", "final"):
        path = run2 / sub / "vecnormalize.pkl"
        if how == "no_vecnormalize":
            path.unlink()
            continue
        vn = pickle.loads(path.read_bytes())
        vn.norm_obs = False
        del vn.obs_rms  # as VecNormalize(norm_obs=False) would be
        vn.class_attributes, vn.returns = {}, None  # what VecNormalize.__getstate__ drops
        path.write_bytes(pickle.dumps(vn))
    if how == "no_vecnormalize":
        cfg = yaml.safe_load((run2 / "config.yaml").read_text())
        cfg["normalize"] = {"enabled": False}
        (run2 / "config.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "exported"
    assert cli(["export", str(run2), "--out", str(out), "--checkpoint", "last"]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["normalisation"]["applied"] == "none"
    assert m["source"]["model_file"] == "final/model.zip"
    obs, masks = collect_env_samples(2000, seeds=(7,))
    run = load_checkpoint(run2, "last")
    ref_actions, ref_raw, _, _ = sb3_reference(run, obs, masks)
    actions, logits, _ = load_policy_folder(out).infer(obs, masks)
    assert (actions == ref_actions).all()
    assert np.abs(logits - ref_raw).max() <= 1e-5


@pytest.mark.parametrize(
    ("remove", "message"),
    [
        ("best/vecnormalize.pkl", "vecnormalize.pkl: missing (and config.yaml does not say"),
        ("best/best_model.zip", "best_model.zip: missing"),
        ("config.yaml", "config.yaml: missing"),
    ],
)
def test_export_refuses_incomplete_runs(exported, tmp_path, capsys, remove, message):
    run_dir, _ = exported
    run2 = tmp_path / "run"
    shutil.copytree(run_dir, run2)
    (run2 / remove).unlink()
    assert cli(["export", str(run2), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "millinet export: error:" in err and message in err
    assert "Traceback" not in err
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_export_records_the_benchmarks_test_results(exported, tmp_path, capsys):
    """`millinet export --benchmark DIR` copies the run's rows of that leaderboard (rate and
    interval per test set, the best baseline's, the gap closed) and its test seeds into the
    manifest; a folder that is not a benchmark, or one without the run, is one line and no
    export."""
    import csv

    from _bench_suites import tiny_suite

    run_dir, _ = exported
    bench = tmp_path / "bench"
    suite = tiny_suite(tmp_path, ood=[], heuristics=["deadline-aware"])
    args = ["benchmark", "--suite", str(suite), "--out", str(bench), "--workers", "1"]
    assert cli([*args, "--policy", str(run_dir), "--no-bound"]) == 0
    out = tmp_path / "policy"
    assert cli(["export", str(run_dir), "--out", str(out), "--benchmark", str(bench)]) == 0
    record = json.loads((out / "manifest.json").read_text())["test_results"]["benchmarks"][0]
    with open(bench / "leaderboard.csv", newline="") as fh:
        (row,) = [r for r in csv.DictReader(fh) if r["entry"] == run_dir.name]
    scored = record["test_sets"]["sunflower-metro-load2x"]
    assert scored["violation_rate_1ms"][0] == pytest.approx(float(row["violation_rate_1ms"]))
    assert scored["best_baseline"] == row["best_baseline"]
    assert (
        record["test_engine_seeds"] == json.loads((bench / "run.json").read_text())["seeds"]["test"]
    )
    load_policy_folder(out)  # the extra field keeps the folder servable
    other = tmp_path / "other"
    assert cli([*args[:4], str(other), "--workers", "1", "--no-bound"]) == 0  # without the run
    capsys.readouterr()
    for folder, says in ((tmp_path, "not a benchmark output"), (other, "no entry")):
        target = tmp_path / f"refused-{folder.name}"
        assert cli(["export", str(run_dir), "--out", str(target), "--benchmark", str(folder)]) == 2
        err = capsys.readouterr().err.strip()
        assert says in err and len(err.splitlines()) == 1, err
        assert not target.exists()

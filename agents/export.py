"""Export a trained MaskablePPO run to an ONNX policy folder for the scheduler service.

:func:`export_policy` turns any checkpoint of a run folder (``best``, ``last``, ``pretrained`` or
a step count, loaded by ``millinet.agents.run_folder.load_checkpoint``: the same loader as
evaluation, so whatever evaluates also exports) into the folder described in
``scheduler/manifest.py``: ``policy.onnx`` (VecNormalize folded into the graph, masked argmax
inside) and ``manifest.json``. Before it writes the manifest it runs the exported graph with
onnxruntime against the torch policy on random inputs and refuses to finish on any mismatch.

:class:`SB3PredictPolicy` is the same checkpoint acting through SB3 itself
(``VecNormalize.normalize_obs`` then ``MaskablePPO.predict(deterministic=True)``): the reference
the export is tested against. (``millinet.agents.inference.RunPolicy`` is the evaluation
harness's fast numpy copy of the actor; this one deliberately goes through SB3's own code path.)
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from millinet.agents.run_folder import Checkpoint, load_checkpoint
from millinet.envs import jsonio
from millinet.envs.errors import MillinetError
from millinet.envs.features import CLASS_NAMES, SITE_TIERS, observation_size
from millinet.envs.files import check_output_dir, new_sibling_dir, output_dir, replace_dir
from millinet.envs.scenario import load_scenario
from millinet.scheduler import manifest as fmt

DEFAULT_OPSET = 17


class ExportError(MillinetError):
    """The run cannot be exported; the message names the file and the reason."""


class SB3PredictPolicy:
    """A run checkpoint acting through ``MaskablePPO.predict`` behind ``act(observation, mask)``:
    the slow, SB3-native reference that exports and the service benchmark compare against."""

    def __init__(self, run: Checkpoint) -> None:
        self.run = run
        self.name = f"{run.run_dir.name}@{run.name}:torch"

    def act(self, observation: np.ndarray, mask: np.ndarray) -> int:
        obs = self.run.normalize(np.asarray(observation, dtype=np.float32)[None])
        action, _ = self.run.model.predict(
            obs, action_masks=np.asarray(mask, dtype=bool)[None], deterministic=True
        )
        return int(action[0])


class ExportGraph(nn.Module):
    """Raw observation + mask -> (action, raw logits, masked probs), as SB3 computes them."""

    def __init__(self, run: Checkpoint) -> None:
        super().__init__()
        policy = run.model.policy
        self.features = policy.pi_features_extractor
        self.mlp = policy.mlp_extractor
        self.action_net = policy.action_net
        self.norm = run.norm_obs
        if self.norm:
            vn = run.vecnormalize
            mean = np.asarray(vn.obs_rms.mean, dtype=np.float64)
            std = np.sqrt(np.asarray(vn.obs_rms.var, dtype=np.float64) + vn.epsilon)
            self.register_buffer("mean", torch.from_numpy(mean))
            self.register_buffer("std", torch.from_numpy(std))
            self.clip = float(vn.clip_obs)

    def forward(self, observation: torch.Tensor, mask: torch.Tensor):
        x = observation
        if self.norm:  # float64 like numpy in VecNormalize, then float32 like its astype
            x = torch.clamp((x.double() - self.mean) / self.std, -self.clip, self.clip).float()
        logits = self.action_net(self.mlp.forward_actor(self.features(x)))
        masked = torch.where(mask, logits, torch.full_like(logits, fmt.MASKED_LOGIT))
        action = torch.argmax(masked, dim=1)
        probs = torch.softmax(masked, dim=1)
        return action, logits, probs


def _torch_reference(run: Checkpoint, obs: np.ndarray, mask: np.ndarray):
    """SB3's own computation: deterministic actions, raw logits, masked probabilities."""
    policy = run.model.policy
    norm = run.normalize(obs)
    actions, _ = run.model.predict(norm, action_masks=mask, deterministic=True)
    with torch.no_grad():
        x = torch.as_tensor(norm)
        features = policy.extract_features(x, policy.pi_features_extractor)
        logits = policy.action_net(policy.mlp_extractor.forward_actor(features))
        probs = policy.get_distribution(x, action_masks=mask).distribution.probs
    return np.asarray(actions), logits.numpy(), probs.numpy()


def _self_check(run: Checkpoint, onnx_path: Path, n: int = 512, seed: int = 0) -> dict:
    """Run the exported graph and SB3 on random observations and masks; raise on mismatch."""
    import onnxruntime as ort

    rng = np.random.default_rng(seed)
    d = observation_size(run.K)
    obs = rng.uniform(0.0, 2.0, size=(n, d)).astype(np.float32)
    mask = rng.random((n, run.K)) < 0.7
    mask[np.arange(n), rng.integers(run.K, size=n)] = True
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    action, logits, probs = sess.run(None, {fmt.INPUT_OBSERVATION: obs, fmt.INPUT_MASK: mask})
    ref_action, ref_logits, ref_probs = _torch_reference(run, obs, mask)
    agree = float(np.mean(action == ref_action))
    logit_err = float(np.max(np.abs(logits - ref_logits)))
    prob_err = float(np.max(np.abs(probs - ref_probs)))
    if agree < 1.0 or logit_err > 1e-5 or prob_err > 1e-5:
        raise ExportError(
            f"exported graph disagrees with the torch policy on random inputs: decisions agree "
            f"{agree:.2%}, max |logit diff| {logit_err:.2e}, max |prob diff| {prob_err:.2e}"
        )
    return {"samples": n, "decision_agreement": agree, "max_abs_logit_diff": logit_err}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def export_policy(
    run_dir: str | Path,
    out_dir: str | Path,
    checkpoint: str = "best",
    opset: int = DEFAULT_OPSET,
    test_results: dict | None = None,
) -> dict:
    """Export ``run_dir``'s ``checkpoint`` into ``out_dir``; returns the manifest written.
    ``test_results`` (JSON-ready: what the policy scored on held-out test seeds, e.g.
    ``millinet.experiments.benchmark.leaderboard.entry_record`` per benchmark) goes into the
    manifest beside the run's training metrics.

    ``out_dir`` is checked first (a new folder, or one holding only an earlier export, which is
    replaced); the export is built in a temporary sibling folder and put in place complete,
    so a failure or a kill leaves no half-written export, no ``.tmp`` file and no empty
    folder."""
    if opset < fmt.MIN_OPSET:
        raise ExportError(f"opset must be >= {fmt.MIN_OPSET}, got {opset}")
    out = check_output_dir(out_dir, "--out", only=(fmt.MODEL_FILE, fmt.MANIFEST_FILE))
    run = load_checkpoint(run_dir, checkpoint)
    if run.config.algo != "maskppo":
        raise ExportError(
            f"{run.run_dir}: only MaskablePPO runs export (config algo: {run.config.algo})"
        )
    check_finite(run)
    with output_dir(out.parent):  # missing parents; removed again if the export fails
        tmp = new_sibling_dir(out)
        try:
            manifest = _write_export(run, checkpoint, opset, tmp, test_results)
            replace_dir(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def check_finite(run: Checkpoint) -> None:
    """Refuse a checkpoint whose weights or normalisation statistics are not finite (a run
    that diverged): its graph would answer NaN."""
    bad = [n for n, p in run.model.policy.named_parameters() if not torch.isfinite(p).all()]
    if run.norm_obs:
        rms = run.vecnormalize.obs_rms
        if not (np.isfinite(rms.mean).all() and np.isfinite(rms.var).all()):
            bad.append("VecNormalize observation statistics")
    if bad:
        raise ExportError(
            f"{run.model_path}: non-finite values in {', '.join(bad[:3])}: the run diverged; "
            "export an earlier checkpoint (--checkpoint <steps>)"
        )


def _write_export(
    run: Checkpoint, checkpoint: str, opset: int, out: Path, test_results: dict | None = None
) -> dict:
    """Write ``policy.onnx`` (checked against the torch policy) and ``manifest.json`` into the
    folder ``out``; returns the manifest."""
    import onnx

    graph = ExportGraph(run).eval()
    d = observation_size(run.K)
    example = (torch.zeros(1, d, dtype=torch.float32), torch.ones(1, run.K, dtype=torch.bool))
    model_path = out / fmt.MODEL_FILE
    # The TorchScript exporter (dynamo=False): exact for this static MLP graph, no graph breaks,
    # and it honours opset 17; torch warns that it is legacy, which is not news here.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            graph,
            example,
            str(model_path),
            input_names=list(fmt.INPUTS),
            output_names=list(fmt.OUTPUTS),
            dynamic_axes={name: {0: "batch"} for name in (*fmt.INPUTS, *fmt.OUTPUTS)},
            opset_version=opset,
            dynamo=False,
        )
    model_proto = onnx.load(str(model_path))
    onnx.checker.check_model(model_proto, full_check=True)
    model_proto.doc_string = (
        f"millinet policy: run {run.run_dir.name}, checkpoint {checkpoint}. Inputs: raw "
        "featuriser observation (VecNormalize folded in) and feasibility mask. Outputs: masked "
        "argmax action, raw logits, masked probabilities."
    )
    onnx.save(model_proto, str(model_path))
    check = _self_check(run, model_path)
    sha = fmt.sha256_file(model_path)

    vn = run.vecnormalize
    if run.norm_obs:
        normalisation = {
            "applied": "in_graph",
            "formula": "clip((obs - mean) / sqrt(var + epsilon), -clip_obs, clip_obs), float64",
            "clip_obs": float(vn.clip_obs),
            "epsilon": float(vn.epsilon),
            "mean": np.asarray(vn.obs_rms.mean, dtype=float).tolist(),
            "var": np.asarray(vn.obs_rms.var, dtype=float).tolist(),
        }
    else:
        why = "VecNormalize with norm_obs off" if vn is not None else "no VecNormalize"
        normalisation = {"applied": "none", "reason": why}
    manifest = {
        "format": fmt.FORMAT,
        "format_version": fmt.FORMAT_VERSION,
        "model_version": f"{run.run_dir.name}@{checkpoint}:{sha[:12]}",
        "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model": {
            "file": fmt.MODEL_FILE,
            "sha256": sha,
            "opset": opset,
            "inputs": {
                fmt.INPUT_OBSERVATION: {"dtype": "float32", "shape": ["batch", d]},
                fmt.INPUT_MASK: {"dtype": "bool", "shape": ["batch", run.K]},
            },
            "outputs": {
                fmt.OUTPUT_ACTION: {"dtype": "int64", "shape": ["batch"], "is": "masked argmax"},
                fmt.OUTPUT_LOGITS: {"dtype": "float32", "shape": ["batch", run.K], "is": "raw"},
                fmt.OUTPUT_PROBS: {
                    "dtype": "float32",
                    "shape": ["batch", run.K],
                    "is": f"softmax with infeasible logits set to {fmt.MASKED_LOGIT:g}",
                },
            },
            "export_check": check,
        },
        "observation": fmt.observation_spec(run.K),
        "K": run.K,
        "classes": list(CLASS_NAMES),
        "agent_classes": list(run.agent_classes),
        "site_tiers": list(SITE_TIERS),
        "normalisation": normalisation,
        "source": {
            "run": run.run_dir.name,
            "run_dir": str(run.run_dir.resolve()),
            "checkpoint": checkpoint,
            "model_file": str(run.model_path.relative_to(run.run_dir)),
            "algorithm": "MaskablePPO",
            "num_timesteps": int(getattr(run.model, "num_timesteps", 0)),
            "versions": _versions(),
        },
        "training_config": _jsonable(run.config.model_dump()),
        # what the policy's observations meant in training (README, Telemetry)
        "telemetry": _jsonable(load_scenario(run.config.scenario).config.telemetry.model_dump()),
        "metrics": _jsonable(run.metrics),
        "test_results": _jsonable(test_results),
    }
    (out / fmt.MANIFEST_FILE).write_text(jsonio.dumps(manifest, indent=2) + "\n")  # no NaN
    return manifest


def _versions() -> dict[str, str]:
    import onnx
    import sb3_contrib
    import stable_baselines3

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "stable_baselines3": stable_baselines3.__version__,
        "sb3_contrib": sb3_contrib.__version__,
        "onnx": onnx.__version__,
    }

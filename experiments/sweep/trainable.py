"""The Ray Tune function trainable of ``millinet sweep``: MaskablePPO in chunks.

Each trial is an ordinary training run driven through :class:`millinet.agents.ppo.Trainer`, the same
code path as ``millinet train`` (``Trainer.create`` once, then ``Trainer.train(chunk)`` per
Tune iteration). After each chunk the trainer evaluates the last model on held-out report
episodes (``millinet.envs.seeds.REPORT``, never trained on), and the trial reports
``violation_rate_1ms``, ``violation_rate`` and the
:data:`~millinet.experiments.sweep.config.OBJECTIVE` with a Tune checkpoint.

Trial folder (``<storage>/<sweep>/trial_<id>/``): Tune's ``params.json``, ``result.json``,
``progress.csv``, TensorBoard events of the reported metrics, ``checkpoint_<n>/``, and the run
folder ``<sweep>_<id>/`` (``config.yaml``, ``tb/``, ``checkpoints/``, ``final/``,
``metrics.json``: what ``millinet train`` writes; synced from the trial's working directory as
a Tune artifact).

A Tune checkpoint holds what :meth:`Trainer.resume` needs: the model and VecNormalize of the
last chunk as ``model_<steps>_steps.zip`` / ``vecnormalize_<steps>_steps.pkl``,
``metrics.json`` (wall-clock counters), ``best/`` and ``state.json`` (chunks done). Restoring
(a resumed sweep, an errored trial, a PBT exploit) rebuilds the run folder from it; the
trial's config is then applied to the loaded model (:func:`apply_ppo_hyperparameters`), which is
how PBT's mutated hyperparameters take effect.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

from millinet.experiments.sweep.config import OBJECTIVE, decode_params

STATE_FILE = "state.json"


def run_folder_name(sweep: str, trial_id: str, seed: int | None = None) -> str:
    """``<sweep>_<trial number>`` (``..._s<seed>`` with several seeds per trial): unique per
    trial, so ``millinet analyze`` and TensorBoard tell the trials apart."""
    name = f"{sweep}_{trial_id.split('_')[-1]}"
    return name if seed is None else f"{name}_s{seed}"


def objective(metrics: dict[str, Any], secondary_weight: float) -> float:
    """``violation_rate_1ms + w * violation_rate``; a NaN 1 ms rate (no 1 ms task finished)
    counts as the worst possible, 1.0."""
    v1 = metrics.get("violation_rate_1ms")
    v = metrics.get("violation_rate")
    v1 = 1.0 if v1 is None or math.isnan(v1) else float(v1)
    v = 1.0 if v is None or math.isnan(v) else float(v)
    return v1 + secondary_weight * v


def report_row(
    metrics: list[dict[str, Any]],
    chunk: int,
    secondary_weight: float,
    history: list[float] | None = None,
    average_last: int = 1,
    seeds: list[int] | None = None,
) -> dict[str, Any]:
    """The flat result reported to Tune after a chunk, from the held-out metrics of each of
    the trial's training runs (one per seed): means over the seeds; with several seeds, the
    CI pools the report episodes of all seeds and ``violation_rate_1ms_s<seed>`` are added.

    ``objective`` is the mean over seeds, averaged over the last ``average_last`` chunks
    (``history``, the unsmoothed values of the earlier chunks, is appended to);
    ``objective_chunk`` is this chunk's value alone."""
    from millinet.envs.stats import mean_ci95

    rows = [_run_row(m, chunk, secondary_weight) for m in metrics]
    row: dict[str, Any] = {}
    for key, first in rows[0].items():
        if isinstance(first, float):
            vals = [r[key] for r in rows if not math.isnan(r[key])]
            row[key] = float(sum(vals) / len(vals)) if vals else math.nan
        else:
            row[key] = first
    if len(rows) > 1:
        episodes = [
            v for m in metrics for v in m.get("last", {}).get("per_episode_violation_rate_1ms", [])
        ]
        row["violation_rate_1ms_ci95"] = mean_ci95(episodes)[1]
        row["eval_episodes"] = sum(r["eval_episodes"] for r in rows)
        for seed, r in zip(seeds or range(len(rows)), rows):
            row[f"violation_rate_1ms_s{seed}"] = r["violation_rate_1ms"]
    history = [] if history is None else history
    history.append(row[OBJECTIVE])
    row["objective_chunk"] = row[OBJECTIVE]
    recent = history[-average_last:]
    row[OBJECTIVE] = float(sum(recent) / len(recent))
    return row


def _run_row(metrics: dict[str, Any], chunk: int, secondary_weight: float) -> dict[str, Any]:
    """One training run's row (NaN kept as NaN)."""

    def num(x: Any) -> float:
        return math.nan if x is None else float(x)

    row = {
        OBJECTIVE: objective(metrics, secondary_weight),
        "violation_rate_1ms": num(metrics.get("violation_rate_1ms")),
        "violation_rate_1ms_ci95": num(metrics.get("violation_rate_1ms_ci95")),
        "violation_rate": num(metrics.get("violation_rate")),
        "timesteps": int(metrics["timesteps"]),
        "chunk": chunk,
        "train_wall_s": num(metrics.get("wall_s")),
        "eval_episodes": int(metrics.get("last", {}).get("episodes", 0)),
    }
    for name, cls in metrics.get("classes", {}).items():
        row[f"violation_rate_{name}"] = num(cls.get("violation_rate"))
        row[f"p99_us_{name}"] = num(cls.get("p99_us"))
    return row


# --------------------------------------------------------------------------- hyperparameters
def apply_ppo_hyperparameters(model, cfg) -> None:
    """Set the PPO hyperparameters of ``cfg`` on a loaded ``model`` (and its VecNormalize).

    ``Trainer.resume`` loads the hyperparameters saved inside the model zip; after a PBT
    exploit the trial's config differs in the keys of
    :data:`~millinet.experiments.sweep.config.PBT_MUTABLE`, which this applies. A no-op otherwise.
    """
    from stable_baselines3.common.utils import FloatSchedule

    p = cfg.ppo
    model.learning_rate = p.learning_rate
    model._setup_lr_schedule()
    model.clip_range = FloatSchedule(p.clip_range)
    model.ent_coef = p.ent_coef
    model.vf_coef = p.vf_coef
    model.max_grad_norm = p.max_grad_norm
    model.n_epochs = p.n_epochs
    model.batch_size = p.batch_size
    model.target_kl = p.target_kl
    model.gamma = p.gamma
    model.gae_lambda = p.gae_lambda
    model.rollout_buffer.gamma = p.gamma
    model.rollout_buffer.gae_lambda = p.gae_lambda
    vecnorm = model.get_vec_normalize_env()
    if vecnorm is not None:
        vecnorm.gamma = p.gamma


# --------------------------------------------------------------------------- checkpoints
def save_trial_checkpoint(
    trainers: list, seeds: list[int], directory: Path, chunk: int, history: list[float]
) -> None:
    """A trial's Tune checkpoint: one ``s<seed>/`` folder per training run (see
    :func:`save_tune_checkpoint`) and ``state.json`` (chunks done, objective history)."""
    for trainer, seed in zip(trainers, seeds):
        sub = directory / f"s{seed}"
        sub.mkdir()
        save_tune_checkpoint(trainer, sub, chunk)
    state = {"chunk": chunk, "seeds": seeds, "objective_history": history}
    (directory / STATE_FILE).write_text(json.dumps(state))


def save_tune_checkpoint(trainer, directory: Path, chunk: int) -> None:
    """Write what :func:`restore_run_folder` needs into ``directory``."""
    paths = trainer.paths
    steps = paths.latest_checkpoint()
    model_path, norm_path = paths.model(str(steps))
    shutil.copy2(model_path, directory / model_path.name)
    if norm_path.is_file():
        shutil.copy2(norm_path, directory / norm_path.name)
    if paths.metrics.is_file():
        shutil.copy2(paths.metrics, directory / "metrics.json")
    if paths.best_dir.is_dir():
        shutil.copytree(paths.best_dir, directory / "best")
    (directory / STATE_FILE).write_text(json.dumps({"chunk": chunk, "timesteps": steps}))


def prune_checkpoints(trainer) -> None:
    """Keep only the newest ``model_<steps>_steps`` pair in the run folder (the Tune checkpoint
    holds the history that matters; the artifact sync copies less)."""
    paths = trainer.paths
    newest = paths.latest_checkpoint()
    for f in paths.checkpoints.glob("*_steps.*"):
        if f"_{newest}_steps." not in f.name:
            f.unlink(missing_ok=True)


def restore_run_folder(checkpoint_dir: Path, root: Path, cfg) -> int:
    """Rebuild the run folder ``root`` from a Tune checkpoint; returns the chunks done.

    TensorBoard files of ``root`` stay (curves continue); its models are replaced, so
    ``Trainer.resume`` picks the checkpoint's model even when ``root`` holds newer steps of
    its own (a PBT trial that exploits another trial).
    """
    from millinet.agents.run_folder import RunPaths, dump_run_config

    paths = RunPaths(root)
    for stale in (paths.checkpoints, paths.final_dir, paths.best_dir):
        shutil.rmtree(stale, ignore_errors=True)
    paths.checkpoints.mkdir(parents=True)
    for f in checkpoint_dir.glob("*_steps.*"):
        shutil.copy2(f, paths.checkpoints / f.name)
    if (checkpoint_dir / "best").is_dir():
        shutil.copytree(checkpoint_dir / "best", paths.best_dir)
    if (checkpoint_dir / "metrics.json").is_file():
        shutil.copy2(checkpoint_dir / "metrics.json", paths.metrics)
    dump_run_config(cfg, paths.config)
    state = json.loads((checkpoint_dir / STATE_FILE).read_text())
    return int(state["chunk"])


# --------------------------------------------------------------------------- trainable
def train_trial(config: dict[str, Any], spec: dict[str, Any]) -> None:
    """Ray Tune function trainable: one trial = one config's training run(s), chunk by chunk.

    ``config``: the trial's search-space values (flat dotted keys). ``spec``:
    ``{"sweep", "base", "encoded", "chunk_timesteps", "max_chunks", "secondary_weight",
    "seeds_per_trial", "average_last"}`` (bound with ``tune.with_parameters``). With
    ``seeds_per_trial`` n > 1 the trial trains n runs (seeds ``seed .. seed + n - 1``) one chunk
    each, in turn, and reports their mean.
    """
    import torch
    from ray import tune

    from millinet.agents.ppo import Trainer
    from millinet.agents.train_config import validate_train_config
    from millinet.experiments.sweep.config import with_params

    torch.set_num_threads(1)
    params = decode_params(config, spec["encoded"])
    cfg = validate_train_config(with_params(spec["base"], params), f"trial config {params}")
    seeds = [cfg.seed + i for i in range(spec.get("seeds_per_trial", 1))]
    cfgs = [
        validate_train_config({**cfg.model_dump(), "seed": seed}, f"trial config, seed {seed}")
        for seed in seeds
    ]
    ctx = tune.get_context()
    trial_dir = Path(ctx.get_trial_dir())
    several = len(seeds) > 1
    roots = [
        trial_dir / run_folder_name(spec["sweep"], ctx.get_trial_id(), s if several else None)
        for s in seeds
    ]

    trainers: list = []
    checkpoint = tune.get_checkpoint()
    try:
        if checkpoint is not None:
            with checkpoint.as_directory() as ckpt_dir:
                state = json.loads((Path(ckpt_dir) / STATE_FILE).read_text())
                chunk = int(state["chunk"])
                if chunk >= spec["max_chunks"]:
                    # Nothing left to train (a resumed sweep whose trial had finished, or a
                    # PBT exploit on the last chunk): leave the run folders as they are.
                    return
                history = [float(x) for x in state.get("objective_history", [])]
                for seed, root, run_cfg in zip(seeds, roots, cfgs):
                    restore_run_folder(Path(ckpt_dir) / f"s{seed}", root, run_cfg)
            for root, run_cfg in zip(roots, cfgs):
                trainers.append(Trainer.resume(root))
                apply_ppo_hyperparameters(trainers[-1].model, run_cfg)
        else:
            chunk, history = 0, []
            for root, run_cfg in zip(roots, cfgs):
                shutil.rmtree(root, ignore_errors=True)  # a restart from scratch
                trainers.append(Trainer.create(run_cfg, runs_dir=root.parent, name=root.name))
        while chunk < spec["max_chunks"]:
            metrics = []
            for trainer in trainers:
                metrics.append(
                    trainer.train(spec["chunk_timesteps"], progress=False, evaluate_best=False)
                )
                prune_checkpoints(trainer)
            chunk += 1
            row = report_row(
                metrics,
                chunk,
                spec["secondary_weight"],
                history,
                spec.get("average_last", 1),
                seeds,
            )
            with tempfile.TemporaryDirectory(prefix="millinet-ckpt-") as tmp:
                save_trial_checkpoint(trainers, seeds, Path(tmp), chunk, history)
                tune.report(row, checkpoint=tune.Checkpoint.from_directory(tmp))
    finally:
        for trainer in trainers:
            trainer.close()

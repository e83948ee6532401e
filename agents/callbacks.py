"""Training callbacks: millinet metrics in TensorBoard, held-out evaluation, checkpoints,
HParams and the progress bar.

TensorBoard tags written here (all scalars, x-axis = env steps):

=====================================  ==========================================================
``millinet/violation_rate_1ms``        training episodes: headline metric (late or dropped)
``millinet/violation_rate``            training episodes: all classes
``millinet/violation_rate/<class>``    training episodes, per class
``millinet/p99_us/<class>``            training episodes: p99 latency of completed tasks (us)
``millinet/reward/<term>``             episode sum of each reward term (``violation``, ``latency``)
``millinet/drops``                     dropped tasks per episode (all classes)
``millinet/rejected``                  masked (infeasible) actions chosen per episode
``millinet/env_time_share``            share of training wall time spent inside the VecEnv
``millinet/steps_per_s``               env steps per second of wall time, since training start
``eval/violation_rate_1ms`` ...        the same metrics on held-out validation episodes
=====================================  ==========================================================

Episode values are averaged over the episodes that ended during the last rollout.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from typing import Any

import numpy as np
from sb3_contrib.common.maskable.callbacks import MaskableEvalCallback
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import HParam

from millinet.agents.run_folder import RunPaths, save_checkpoint, save_named
from millinet.agents.wrappers import find_timed
from millinet.envs import jsonio
from millinet.envs.errors import MillinetError
from millinet.envs.features import CLASS_NAMES

HPARAM_METRICS = (
    "eval/violation_rate_1ms",
    "eval/violation_rate",
    "eval/mean_reward",
    "millinet/violation_rate_1ms",
)
"""Scalars shown next to the hyperparameters in TensorBoard's HParams tab."""


def episode_scalars(metrics: dict) -> dict[str, float]:
    """Flat ``{suffix: value}`` of one episode's ``millinet.envs.metrics.summarize`` dict (NaN
    kept)."""
    out = {
        "violation_rate_1ms": metrics["violation_rate_1ms"],
        "violation_rate": metrics["violation_rate"],
        "drops": metrics["dropped"],
    }
    for name in CLASS_NAMES:
        cls = metrics["classes"][name]
        out[f"violation_rate/{name}"] = cls["violation_rate"]
        out[f"p99_us/{name}"] = cls["p99_us"]
    return out


def record_means(logger, prefix: str, rows: list[dict[str, float]]) -> None:
    """Record the NaN-skipping mean of each key over ``rows`` as ``<prefix>/<key>``."""
    keys = {k for row in rows for k in row}
    for key in sorted(keys):
        vals = [row[key] for row in rows if key in row and not math.isnan(row[key])]
        if vals:
            logger.record(f"{prefix}/{key}", float(np.mean(vals)))


class MillinetMetricsCallback(BaseCallback):
    """Logs the env's episode metrics, reward terms, drops and the env's wall-time share."""

    def __init__(self) -> None:
        super().__init__()
        self._episodes: list[dict[str, float]] = []
        self._terms: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self._rejected: dict[int, int] = defaultdict(int)

    def _on_training_start(self) -> None:
        self._t0 = time.perf_counter()
        self._timed = find_timed(self.training_env)
        self._env_t0 = self._timed.env_time_s if self._timed else 0.0
        self._steps0 = self.num_timesteps

    def _on_step(self) -> bool:
        for i, info in enumerate(self.locals["infos"]):
            terms = self._terms[i]
            for name, value in info.get("reward_terms", {}).items():
                terms[name] += value
            self._rejected[i] += bool(info.get("rejected", False))
            if "episode_metrics" in info:
                row = episode_scalars(info["episode_metrics"])
                row.update({f"reward/{k}": v for k, v in terms.items()})
                row["rejected"] = float(self._rejected[i])
                self._episodes.append(row)
                self._terms[i] = defaultdict(float)
                self._rejected[i] = 0
        return True

    def _on_rollout_end(self) -> None:
        if self._episodes:
            record_means(self.logger, "millinet", self._episodes)
            self._episodes = []
        wall = time.perf_counter() - self._t0
        if wall > 0:
            if self._timed is not None:
                share = (self._timed.env_time_s - self._env_t0) / wall
                self.logger.record("millinet/env_time_share", share)
            self.logger.record("millinet/steps_per_s", (self.num_timesteps - self._steps0) / wall)


class ValidationEvalCallback(MaskableEvalCallback):
    """``MaskableEvalCallback`` on fixed held-out seeds that also logs millinet metrics.

    Before every evaluation the eval env's seed sequence is rewound, so each evaluation sees
    the same validation episodes. The best model (by mean episode reward, as in SB3) is saved
    by the parent class; ``callback_on_new_best`` saves its VecNormalize statistics.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rows: list[dict[str, float]] = []
        self.last_metrics: dict[str, float] = {}

    def _on_step(self) -> bool:
        if self.eval_freq > 0 and self.n_calls % self.eval_freq == 0:
            self.eval_env.env_method("restart_seeds")
            self._rows = []
        return super()._on_step()

    def _log_success_callback(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
        super()._log_success_callback(locals_, globals_)
        info = locals_["info"]
        if locals_["done"] and "episode_metrics" in info:
            self._rows.append(episode_scalars(info["episode_metrics"]))
            # Recorded before the parent's logger.dump(), so it lands at this eval's step.
            record_means(self.logger, "eval", self._rows)
            self.last_metrics = {
                k: float(np.nanmean([r[k] for r in self._rows])) for k in self._rows[0]
            }


class SaveBestCallback(BaseCallback):
    """Called by the eval callback on a new best model: writes ``best/`` whole
    (``best_model.zip``, ``vecnormalize.pkl`` and ``best.json``: timesteps, mean reward,
    validation metrics) through ``run_folder.save_named``, so the model and its statistics
    always match. (The eval callback itself saves nothing: ``best_model_save_path=None``.)"""

    def __init__(self, paths: RunPaths) -> None:
        super().__init__()
        self.paths = paths

    def _on_step(self) -> bool:
        parent = self.parent
        info = {
            "timesteps": int(self.model.num_timesteps),
            "mean_reward": float(parent.best_mean_reward),
            "validation": getattr(parent, "last_metrics", {}),
        }
        save_named(self.model, self.paths, "best", {"best.json": jsonio.dumps(info, indent=2)})
        return True


class StepCheckpointCallback(BaseCallback):
    """Saves ``model_<steps>_steps.zip`` and ``vecnormalize_<steps>_steps.pkl`` (atomically,
    ``run_folder.save_checkpoint``) each time the env-step count crosses a multiple of
    ``freq`` (steps stay round across ``--resume``)."""

    def __init__(self, paths: RunPaths, freq: int) -> None:
        super().__init__()
        self.paths = paths
        self.freq = freq

    def _on_training_start(self) -> None:
        self._last = self.num_timesteps // self.freq

    def _on_step(self) -> bool:
        if self.num_timesteps // self.freq > self._last:
            self._last = self.num_timesteps // self.freq
            save_checkpoint(self.model, self.paths)
        return True


class TrainingDivergedError(MillinetError):
    """The model's weights or normalisation statistics became NaN or infinite."""


def non_finite_parts(model) -> list[str]:
    """Names of the model's parameters (and VecNormalize statistics) holding NaN or inf."""
    import torch

    bad = [n for n, p in model.policy.named_parameters() if not torch.isfinite(p).all()]
    vecnorm = model.get_vec_normalize_env()
    rms = vars(vecnorm).get("obs_rms") if vecnorm is not None else None
    if rms is not None and not (np.isfinite(rms.mean).all() and np.isfinite(rms.var).all()):
        bad.append("VecNormalize observation statistics")
    return bad


class FiniteCheckCallback(BaseCallback):
    """After every PPO update (at the start of the next rollout) checks that the weights and
    normalisation statistics are finite; stops training with :class:`TrainingDivergedError`
    otherwise, before a NaN model acts, is evaluated or saved."""

    def _on_rollout_start(self) -> None:
        bad = non_finite_parts(self.model)
        if bad:
            raise TrainingDivergedError(diverged_message(self.model, bad))

    def _on_step(self) -> bool:
        return True


def diverged_message(model, bad: list[str]) -> str:
    """One line: where training diverged and what to do."""
    return (
        f"training diverged at step {model.num_timesteps:,}: non-finite values in "
        f"{', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}; nothing non-finite was saved "
        "(the newest checkpoint is the last finite model). Lower ppo.learning_rate or "
        "ppo.max_grad_norm, and resume from it or start again"
    )


class ClockCallback(BaseCallback):
    """Calls ``record()`` at the end of every rollout (the trainer writes ``clock.json``, so
    the wall time trained survives a kill)."""

    def __init__(self, record) -> None:
        super().__init__()
        self.record = record

    def _on_rollout_end(self) -> None:
        self.record()

    def _on_step(self) -> bool:
        return True


class HParamsCallback(BaseCallback):
    """Logs the flattened config to TensorBoard's HParams plugin at the start of training."""

    def __init__(self, hparams: dict[str, bool | int | float | str]) -> None:
        super().__init__()
        self.hparams = hparams

    def _on_training_start(self) -> None:
        metrics = dict.fromkeys(HPARAM_METRICS, 0.0)
        self.logger.record(
            "hparams",
            HParam(self.hparams, metrics),
            exclude=("stdout", "log", "json", "csv"),
        )

    def _on_step(self) -> bool:
        return True


class ProgressCallback(BaseCallback):
    """tqdm progress bar over env steps (resumed runs start where they stopped), showing the
    latest validation ``violation_rate_1ms``."""

    def __init__(self, target: int, eval_callback: ValidationEvalCallback | None = None) -> None:
        super().__init__()
        self.target = target
        self.eval_callback = eval_callback
        self._shown_eval: float | None = None

    def _on_training_start(self) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=self.target,
            initial=self.num_timesteps,
            unit="step",
            desc="train",
            dynamic_ncols=True,
            smoothing=0.05,
            mininterval=0.5,
            disable=None,  # no bar when stderr is not a terminal (logs, CI)
        )

    def _on_step(self) -> bool:
        self.bar.update(self.num_timesteps - self.bar.n)
        ev = self.eval_callback.last_metrics if self.eval_callback else {}
        v = ev.get("violation_rate_1ms")
        if v is not None and v != self._shown_eval:
            self._shown_eval = v
            self.bar.set_postfix_str(f"val viol_1ms {v:.4f}")
        return True

    def _on_training_end(self) -> None:
        self.bar.close()


class TimeLimitCallback(BaseCallback):
    """Stops training once ``limit_s`` seconds of wall time have passed since ``start``
    (a ``time.perf_counter()`` value)."""

    def __init__(self, limit_s: float, start: float) -> None:
        super().__init__()
        self.limit_s = limit_s
        self.start = start
        self.stopped = False

    def _on_step(self) -> bool:
        if time.perf_counter() - self.start >= self.limit_s:
            self.stopped = True
            return False
        return True

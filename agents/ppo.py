"""PPO training of placement policies: the vectorised env stack, the model and the
:class:`Trainer`.

Use :class:`Trainer` to train chunk by chunk (``Trainer.create(cfg).train(50_000)`` returns the
held-out metrics after each chunk; a Ray Tune trainable calls it repeatedly) and :func:`train`
for the whole thing. The run folder it writes is ``millinet.agents.run_folder``; trained runs
act as policies through ``millinet.agents.inference.load_run_policy``.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

from millinet.agents.callbacks import non_finite_parts
from millinet.agents.episodes import aggregate_episodes, run_episodes
from millinet.agents.errors import CheckpointError, CheckpointNotFoundError
from millinet.agents.inference import load_run_policy, policy_from_model
from millinet.agents.run_folder import (
    RunLock,
    RunPaths,
    algo_class,
    dump_run_config,
    load_model,
    load_vecnormalize,
    read_clock,
    read_metrics,
    read_run_config,
    run_name,
    save_checkpoint,
    save_named,
    write_clock,
)
from millinet.agents.train_config import TrainConfig, check_resources, validate_train_config
from millinet.envs.errors import ConfigError
from millinet.envs.files import output_dir, safe_name
from millinet.envs.jsonio import write_json
from millinet.envs.seeds import REPORT, TRAINING, VALIDATION


def with_total_timesteps(cfg: TrainConfig, total: int, source: str) -> TrainConfig:
    """``cfg`` with another ``total_timesteps`` (validated)."""
    return validate_train_config({**cfg.model_dump(), "total_timesteps": total}, source)


# --------------------------------------------------------------------------- environments
def make_vec_env(cfg: TrainConfig, seeds: list[int] | None = None, stream: int = 0, n_envs=None):
    """The vectorised env stack ``VecNormalize(TimedVecEnv(DummyVecEnv([Monitor(SeededResets(
    PlacementEnv))...])))``.

    ``seeds`` given: an evaluation env whose env ``j`` cycles through ``seeds[j::n_envs]``
    (rewind with ``env_method("restart_seeds")``); VecNormalize does not update and reward is
    not normalised. Otherwise a training env whose episodes are reset with seeds drawn
    reproducibly from (``cfg.seed``, env index, ``stream``) in ``millinet.envs.seeds.TRAINING``.
    """
    import gymnasium as gym
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

    import millinet.envs  # noqa: F401  (registers millinet/Placement-v0)
    from millinet.agents.wrappers import SeededResets, TimedVecEnv, cycle_seeds, random_seeds

    evaluation = seeds is not None
    n = n_envs or (min(cfg.n_envs, len(seeds)) if evaluation else cfg.n_envs)
    kwargs = cfg.env_kwargs()

    def factory(j: int):
        def make():
            env = gym.make("millinet/Placement-v0", disable_env_checker=True, **kwargs)
            if evaluation:
                nxt, restart = cycle_seeds(seeds[j::n])
                env = SeededResets(env, nxt, restart)
            else:
                env = SeededResets(env, random_seeds((cfg.seed, j, stream), TRAINING.stop))
            return Monitor(env)

        return make

    vec_cls = SubprocVecEnv if cfg.vec_env == "subproc" and not evaluation else DummyVecEnv
    venv = TimedVecEnv(vec_cls([factory(j) for j in range(n)]))
    norm = cfg.normalize
    if norm.enabled:
        venv = VecNormalize(
            venv,
            training=not evaluation,
            norm_obs=norm.norm_obs,
            norm_reward=norm.norm_reward and not evaluation,
            clip_obs=norm.clip_obs,
            clip_reward=norm.clip_reward,
            gamma=cfg.ppo.gamma,
        )
    return venv


def _new_model(cfg: TrainConfig, venv):
    p = cfg.ppo
    policy_kwargs = {
        "net_arch": {"pi": list(p.policy.pi), "vf": list(p.policy.vf)},
        "activation_fn": {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[p.policy.activation_fn],
        "ortho_init": p.policy.ortho_init,
    }
    policy: Any = "MlpPolicy"
    if p.policy.arch == "candidate":
        from millinet.agents.networks import CandidateMaskablePolicy, CandidatePolicy

        policy = CandidateMaskablePolicy if cfg.algo == "maskppo" else CandidatePolicy
    hyperparameters = p.model_dump(exclude={"policy"})  # PPOConfig's names are SB3's
    return algo_class(cfg.algo)(
        policy,
        venv,
        **hyperparameters,
        policy_kwargs=policy_kwargs,
        seed=cfg.seed,
        device="cpu",
        verbose=0,
    )


# --------------------------------------------------------------------------- trainer
class Trainer:
    """Owns one run folder, its model and envs; trains chunk by chunk.

    >>> t = Trainer.create(cfg, runs_dir="runs")   # or Trainer.resume("runs/<name>")
    >>> metrics = t.train(50_000)                  # 50k more env steps, held-out metrics
    >>> t.close()

    While a trainer exists it holds the run folder's lock (``run_folder.RunLock``): a second
    process that tries to train into the same folder gets a one-line error naming the holder.
    """

    def __init__(self, root: Path, cfg: TrainConfig, model, stream: int, lock: RunLock) -> None:
        from stable_baselines3.common.logger import configure

        self.root = Path(root)
        self.paths = RunPaths(self.root)
        self.cfg = cfg
        self.model = model
        self._stream = stream
        self._lock = lock
        self.model.set_logger(configure(str(self.paths.tb), ["tensorboard"]))
        self.eval_env = make_vec_env(cfg, VALIDATION.seeds(cfg.eval.episodes))
        self._hparams_logged = False
        self.pretrain_stats: dict[str, Any] | None = self._read_metrics().get("pretrain")
        clock = read_clock(self.root)
        self.wall_s, self.env_s = clock["wall_s"], clock["env_s"]
        self._running_since: float | None = None  # perf_counter() while learn() runs

    # -- construction ------------------------------------------------------------------
    @classmethod
    def create(cls, cfg: TrainConfig, runs_dir: str | Path = "runs", name: str | None = None):
        """A fresh run folder ``<runs_dir>/<name>`` (default name from :func:`run_name`; a
        given name goes through ``safe_name``, so the folder is always inside ``runs_dir``).
        If anything fails before training starts, the new folder is removed again."""
        check_resources(cfg, "<training config>")
        torch.set_num_threads(cfg.torch_threads)
        runs = Path(runs_dir)
        base = safe_name(name) if name else run_name(cfg)
        with output_dir(runs):
            root, i = runs / base, 1
            while root.exists():
                root, i = runs / f"{base}-{i}", i + 1
            root.mkdir()
            lock, trainer = RunLock.acquire(root), None
            try:
                dump_run_config(cfg, RunPaths(root).config)
                venv = make_vec_env(cfg, stream=0)
                trainer = cls(root, cfg, _new_model(cfg, venv), stream=0, lock=lock)
                if cfg.pretrain.teacher:
                    trainer._pretrain(venv)
            except BaseException:
                if trainer is not None:
                    trainer.close()  # envs, TensorBoard writer and the lock
                lock.release()
                shutil.rmtree(root, ignore_errors=True)
                raise
        return trainer

    def _pretrain(self, venv) -> None:
        """Behaviour cloning (``pretrain.teacher``); saves ``pretrained/``."""
        from millinet.agents.pretrain import behaviour_clone
        from millinet.agents.wrappers import find_timed

        t0 = time.perf_counter()
        timed = find_timed(venv)
        env0 = timed.env_time_s
        self.pretrain_stats = behaviour_clone(self.model, self.cfg, self.model.logger)
        self.wall_s += time.perf_counter() - t0
        self.env_s += timed.env_time_s - env0
        self._check_finite()
        save_named(self.model, self.paths, "pretrained")
        self.record_clock()

    @classmethod
    def resume(cls, run_dir: str | Path, total_timesteps: int | None = None):
        """Continue a run from its newest complete checkpoint (timestep count, wall time and
        TensorBoard curves continue). ``total_timesteps`` replaces the target stored in
        ``config.yaml``.

        Checkpoints that do not load (a damaged file, a missing VecNormalize) are skipped,
        each named on stderr with the reason. Nothing in the run folder changes unless the
        resume succeeds: the config, leftovers of killed writes and TensorBoard are touched
        only after a checkpoint has loaded."""
        root = Path(run_dir)
        paths = RunPaths(root)
        cfg = read_run_config(root)
        source = str(paths.config)
        if total_timesteps is not None:
            cfg = with_total_timesteps(cfg, total_timesteps, source)
        lock = RunLock.acquire(root)
        try:
            model, stream, skipped = _load_newest_checkpoint(root, cfg)
            if cfg.total_timesteps <= model.num_timesteps:
                model.get_env().close()
                raise ConfigError(
                    source,
                    "total_timesteps",
                    f"the run already has {model.num_timesteps:,} of {cfg.total_timesteps:,} "
                    "steps; pass a larger --total-timesteps to train further",
                )
        except BaseException:
            lock.release()
            raise
        for line in skipped:
            print(f"resume: skipped {line}", file=sys.stderr)
        for leftover in paths.leftovers():
            print(f"resume: removed {leftover} (a write that was interrupted)", file=sys.stderr)
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
        if total_timesteps is not None:
            dump_run_config(cfg, paths.config)
        torch.set_num_threads(cfg.torch_threads)
        try:
            trainer = cls(root, cfg, model, stream=stream, lock=lock)
        except BaseException:
            model.get_env().close()
            lock.release()
            raise
        trainer._restore_best()
        return trainer

    def _read_metrics(self) -> dict:
        return read_metrics(self.root) or {}

    def _best_file(self) -> Path:
        return self.paths.model("best")[0].parent / "best.json"

    def _restore_best(self) -> None:
        try:
            best = json.loads(self._best_file().read_text())
            self._best_reward = float(best["mean_reward"])
        except (OSError, ValueError, KeyError):
            self._best_reward = -math.inf

    # -- training ------------------------------------------------------------------------
    @property
    def num_timesteps(self) -> int:
        return int(self.model.num_timesteps)

    def record_clock(self) -> None:
        """Write ``clock.json``: the wall time trained so far, the current learn() included."""
        running = 0.0 if self._running_since is None else time.perf_counter() - self._running_since
        write_clock(self.root, self.wall_s + running, self.env_s, self.num_timesteps)

    def _check_finite(self) -> None:
        from millinet.agents.callbacks import TrainingDivergedError, diverged_message

        bad = non_finite_parts(self.model)
        if bad:
            raise TrainingDivergedError(diverged_message(self.model, bad))

    def _callbacks(self, target: int, progress: bool) -> list:
        from millinet.agents.callbacks import (
            ClockCallback,
            FiniteCheckCallback,
            HParamsCallback,
            MillinetMetricsCallback,
            ProgressCallback,
            SaveBestCallback,
            StepCheckpointCallback,
            ValidationEvalCallback,
        )

        cfg = self.cfg
        self.eval_callback = ValidationEvalCallback(
            self.eval_env,
            callback_on_new_best=SaveBestCallback(self.paths),
            n_eval_episodes=cfg.eval.episodes,
            eval_freq=max(cfg.eval.freq // cfg.n_envs, 1),
            best_model_save_path=None,  # SaveBestCallback writes best/ whole
            deterministic=True,
            use_masking=cfg.algo == "maskppo",
            verbose=0,
        )
        self.eval_callback.best_mean_reward = getattr(self, "_best_reward", -math.inf)
        cbs = [
            FiniteCheckCallback(),  # first: a NaN model neither acts nor is saved
            MillinetMetricsCallback(),
            self.eval_callback,
            StepCheckpointCallback(self.paths, cfg.checkpoint.freq),
            ClockCallback(self.record_clock),
        ]
        if not self._hparams_logged:
            cbs.append(HParamsCallback(cfg.flat()))
            self._hparams_logged = True
        if progress:
            cbs.append(ProgressCallback(target, self.eval_callback))
        if cfg.time_limit_s is not None:
            from millinet.agents.callbacks import TimeLimitCallback

            left = cfg.time_limit_s - self.wall_s
            cbs.append(TimeLimitCallback(left, time.perf_counter()))
        return cbs

    def train(self, timesteps: int, progress: bool = True, evaluate_best: bool = True) -> dict:
        """Train ``timesteps`` more env steps; then save a checkpoint and ``final/``, evaluate
        on the report seeds, write and return ``metrics.json``'s content.

        An interrupt (Ctrl-C) saves a checkpoint before it propagates, so ``--resume`` loses
        nothing. Training that diverges (NaN or infinite weights) stops with
        :class:`~millinet.agents.callbacks.TrainingDivergedError` and saves nothing of the
        diverged model. ``evaluate_best=False`` skips re-evaluating the best model (faster
        chunks).
        """
        from millinet.agents.wrappers import find_timed

        target = self.num_timesteps + int(timesteps)
        if self.cfg.time_limit_s is not None and self.wall_s >= self.cfg.time_limit_s:
            return self.evaluate(evaluate_best=evaluate_best)  # time budget already spent
        timed = find_timed(self.model.get_env())
        env0, self._running_since = timed.env_time_s, time.perf_counter()
        try:
            self.model.learn(
                total_timesteps=int(timesteps),
                callback=self._callbacks(target, progress),
                reset_num_timesteps=False,
                tb_log_name="",
            )
        except ValueError:  # torch refuses NaN logits inside an update
            self._check_finite()
            raise
        finally:
            self.wall_s += time.perf_counter() - self._running_since
            self._running_since = None
            self.env_s += timed.env_time_s - env0
            self._best_reward = self.eval_callback.best_mean_reward
            if not non_finite_parts(self.model):
                save_checkpoint(self.model, self.paths)
                save_named(self.model, self.paths, "last")
            self.record_clock()
        return self.evaluate(evaluate_best=evaluate_best)

    def evaluate(self, evaluate_best: bool = True) -> dict:
        """Held-out metrics of the last (and best) model on ``cfg.eval.final_episodes``
        report seeds; written to ``metrics.json`` and returned."""
        cfg = self.cfg
        seeds = REPORT.seeds(cfg.eval.final_episodes)
        last = aggregate_episodes(
            run_episodes(
                policy_from_model(self.model, "last", tuple(cfg.env.agent_classes)),
                cfg.env_kwargs(),
                seeds,
            )
        )
        out: dict[str, Any] = {
            "run": self.root.name,
            "algo": cfg.algo,
            "scenario": cfg.scenario,
            "seed": cfg.seed,
            "timesteps": self.num_timesteps,
            "wall_s": self.wall_s,
            "env_s": self.env_s,
            "env_time_share": self.env_s / self.wall_s if self.wall_s > 0 else None,
            "report_seeds": seeds,
            "violation_rate_1ms": last["violation_rate_1ms"],
            "violation_rate_1ms_ci95": last["violation_rate_1ms_ci95"],
            "violation_rate": last["violation_rate"],
            "classes": last["classes"],
            "last": last,
        }
        if self.pretrain_stats:
            out["pretrain"] = self.pretrain_stats
        prev = self._read_metrics()
        best_file = self._best_file()
        if evaluate_best and best_file.is_file():
            best = aggregate_episodes(
                run_episodes(load_run_policy(self.root, "best"), cfg.env_kwargs(), seeds)
            )
            best["timesteps"] = json.loads(best_file.read_text()).get("timesteps")
            out["best"] = best
        elif "best" in prev:
            out["best"] = prev["best"]
        write_json(self.paths.metrics, out)
        return out

    def close(self) -> None:
        """Close the envs, flush TensorBoard and release the run folder's lock."""
        try:
            self.model.get_env().close()
            self.eval_env.close()
            self.model.logger.close()
        finally:
            self._lock.release()


def _load_newest_checkpoint(root: Path, cfg: TrainConfig):
    """(model on a fresh training env, env stream, skipped) from the newest periodic
    checkpoint that loads; ``skipped`` names each newer one that did not, and why. Writes
    nothing."""
    paths = RunPaths(root)
    stream = 1 + len(list(paths.tb.glob("events.out.tfevents.*")))
    skipped: list[str] = []
    for steps in paths.checkpoint_steps():
        model_path, norm_path = paths.model(str(steps))
        venv = make_vec_env(cfg, stream=stream)
        try:
            if cfg.normalize.enabled:
                saved = load_vecnormalize(norm_path)
                saved.set_venv(venv.venv)
                saved.training = True
                venv = saved
            model = load_model(cfg, model_path, env=venv)
            bad = non_finite_parts(model)
            if bad:
                raise CheckpointError(f"{model_path}: non-finite values in {', '.join(bad[:3])}")
        except CheckpointError as exc:
            venv.close()
            skipped.append(str(exc))
            continue
        return model, stream, skipped
    reasons = f" (skipped: {'; '.join(skipped)})" if skipped else ""
    raise CheckpointNotFoundError(
        f"{paths.checkpoints}: no complete model_<steps>_steps.zip to resume from{reasons}"
    )


def train(
    cfg: TrainConfig | None = None,
    runs_dir: str | Path = "runs",
    resume: str | Path | None = None,
    total_timesteps: int | None = None,
    progress: bool = True,
) -> tuple[Path, dict]:
    """Train a new run from ``cfg`` (or continue ``resume``) up to its ``total_timesteps``;
    returns (run folder, metrics)."""
    if resume is not None:
        trainer = Trainer.resume(resume, total_timesteps)
    else:
        if cfg is None:
            raise ValueError("train() needs a config or a run folder to resume")
        if total_timesteps is not None:
            cfg = with_total_timesteps(cfg, total_timesteps, "--total-timesteps")
        trainer = Trainer.create(cfg, runs_dir)
    try:
        remaining = max(trainer.cfg.total_timesteps - trainer.num_timesteps, 1)
        metrics = trainer.train(remaining, progress=progress)
    except KeyboardInterrupt:
        print(
            f"stopped at step {trainer.num_timesteps:,}; checkpoint saved. Continue with: "
            f"millinet train --resume {trainer.root}",
            file=sys.stderr,
        )
        raise
    finally:
        trainer.close()
    return trainer.root, metrics

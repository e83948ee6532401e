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
import time
from pathlib import Path
from typing import Any

import torch

from millinet.agents.episodes import aggregate_episodes, run_episodes
from millinet.agents.errors import CheckpointNotFoundError
from millinet.agents.inference import load_run_policy, policy_from_model
from millinet.agents.run_folder import (
    RunPaths,
    algo_class,
    dump_run_config,
    load_model,
    load_vecnormalize,
    read_metrics,
    read_run_config,
    run_name,
)
from millinet.agents.train_config import TrainConfig, validate_train_config
from millinet.envs.errors import ConfigError
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
    """

    def __init__(self, root: Path, cfg: TrainConfig, model, stream: int) -> None:
        from stable_baselines3.common.logger import configure

        self.root = Path(root)
        self.paths = RunPaths(self.root)
        self.cfg = cfg
        self.model = model
        self._stream = stream
        self.model.set_logger(configure(str(self.paths.tb), ["tensorboard"]))
        self.eval_env = make_vec_env(cfg, VALIDATION.seeds(cfg.eval.episodes))
        self._hparams_logged = False
        previous = self._read_metrics()
        self.pretrain_stats: dict[str, Any] | None = previous.get("pretrain")
        self.wall_s = float(previous.get("wall_s") or 0.0)
        self.env_s = float(previous.get("env_s") or 0.0)

    # -- construction ------------------------------------------------------------------
    @classmethod
    def create(cls, cfg: TrainConfig, runs_dir: str | Path = "runs", name: str | None = None):
        """A fresh run folder ``<runs_dir>/<name>`` (default name from :func:`run_name`)."""
        torch.set_num_threads(cfg.torch_threads)
        base = name or run_name(cfg)
        root = Path(runs_dir) / base
        i = 1
        while root.exists():
            root = Path(runs_dir) / f"{base}-{i}"
            i += 1
        root.mkdir(parents=True)
        dump_run_config(cfg, RunPaths(root).config)
        venv = make_vec_env(cfg, stream=0)
        model = _new_model(cfg, venv)
        trainer = cls(root, cfg, model, stream=0)
        if cfg.pretrain.teacher:
            from millinet.agents.pretrain import behaviour_clone
            from millinet.agents.wrappers import find_timed

            t0 = time.perf_counter()
            timed = find_timed(venv)
            env0 = timed.env_time_s
            trainer.pretrain_stats = behaviour_clone(model, cfg, model.logger)
            trainer.wall_s += time.perf_counter() - t0
            trainer.env_s += timed.env_time_s - env0
            model_path, norm_path = trainer.paths.model("pretrained")
            model_path.parent.mkdir(parents=True, exist_ok=True)
            model.save(str(model_path))
            vecnorm = model.get_vec_normalize_env()
            if vecnorm is not None:
                vecnorm.save(str(norm_path))
        return trainer

    @classmethod
    def resume(cls, run_dir: str | Path, total_timesteps: int | None = None):
        """Continue a run from its newest checkpoint (timestep count and TensorBoard curves
        continue). ``total_timesteps`` replaces the target stored in ``config.yaml``."""
        root = Path(run_dir)
        cfg = read_run_config(root)
        if total_timesteps is not None:
            cfg = with_total_timesteps(cfg, total_timesteps, str(RunPaths(root).config))
            dump_run_config(cfg, RunPaths(root).config)
        torch.set_num_threads(cfg.torch_threads)
        paths = RunPaths(root)
        steps = paths.latest_checkpoint()
        if steps is None:
            raise CheckpointNotFoundError(f"{paths.checkpoints}: no model_<steps>_steps.zip")
        model_path, norm_path = paths.model(str(steps))
        stream = 1 + len(list(paths.tb.glob("events.out.tfevents.*")))
        venv = make_vec_env(cfg, stream=stream)
        if cfg.normalize.enabled:
            saved = load_vecnormalize(norm_path)
            saved.set_venv(venv.venv)
            saved.training = True
            venv = saved
        model = load_model(cfg, model_path, env=venv)
        trainer = cls(root, cfg, model, stream=stream)
        trainer._restore_best()
        return trainer

    def _read_metrics(self) -> dict:
        return read_metrics(self.root) or {}

    def _restore_best(self) -> None:
        try:
            best = json.loads((self.paths.best_dir / "best.json").read_text())
            self._best_reward = float(best["mean_reward"])
        except (OSError, ValueError, KeyError):
            self._best_reward = -math.inf

    # -- training ------------------------------------------------------------------------
    @property
    def num_timesteps(self) -> int:
        return int(self.model.num_timesteps)

    def _callbacks(self, target: int, progress: bool) -> list:
        from millinet.agents.callbacks import (
            HParamsCallback,
            MillinetMetricsCallback,
            ProgressCallback,
            SaveBestExtrasCallback,
            StepCheckpointCallback,
            ValidationEvalCallback,
        )

        cfg = self.cfg
        self.eval_callback = ValidationEvalCallback(
            self.eval_env,
            callback_on_new_best=SaveBestExtrasCallback(self.paths.best_dir),
            n_eval_episodes=cfg.eval.episodes,
            eval_freq=max(cfg.eval.freq // cfg.n_envs, 1),
            best_model_save_path=str(self.paths.best_dir),
            deterministic=True,
            use_masking=cfg.algo == "maskppo",
            verbose=0,
        )
        self.eval_callback.best_mean_reward = getattr(self, "_best_reward", -math.inf)
        cbs = [
            MillinetMetricsCallback(),
            self.eval_callback,
            StepCheckpointCallback(self.paths.checkpoints, cfg.checkpoint.freq),
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
        nothing. ``evaluate_best=False`` skips re-evaluating the best model (faster chunks).
        """
        from millinet.agents.callbacks import save_checkpoint
        from millinet.agents.wrappers import find_timed

        target = self.num_timesteps + int(timesteps)
        if self.cfg.time_limit_s is not None and self.wall_s >= self.cfg.time_limit_s:
            return self.evaluate(evaluate_best=evaluate_best)  # time budget already spent
        timed = find_timed(self.model.get_env())
        env0, t0 = timed.env_time_s, time.perf_counter()
        try:
            self.model.learn(
                total_timesteps=int(timesteps),
                callback=self._callbacks(target, progress),
                reset_num_timesteps=False,
                tb_log_name="",
            )
        finally:
            self.wall_s += time.perf_counter() - t0
            self.env_s += timed.env_time_s - env0
            self._best_reward = self.eval_callback.best_mean_reward
            save_checkpoint(self.model, self.paths.checkpoints)
            self._save_final()
        return self.evaluate(evaluate_best=evaluate_best)

    def _save_final(self) -> None:
        self.paths.final_dir.mkdir(parents=True, exist_ok=True)
        self.model.save(str(self.paths.final_dir / "model.zip"))
        vecnorm = self.model.get_vec_normalize_env()
        if vecnorm is not None:
            vecnorm.save(str(self.paths.final_dir / "vecnormalize.pkl"))

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
        best_file = self.paths.best_dir / "best.json"
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
        """Close the envs and flush TensorBoard."""
        self.model.get_env().close()
        self.eval_env.close()
        self.model.logger.close()


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
        run_cfg = read_run_config(resume)
        target = run_cfg.total_timesteps if total_timesteps is None else total_timesteps
        done = RunPaths(Path(resume)).latest_checkpoint() or 0
        if target <= done:
            raise ConfigError(
                str(RunPaths(Path(resume)).config),
                "total_timesteps",
                f"the run already has {done} of {target} steps; pass a larger "
                "--total-timesteps to train further",
            )
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
        import sys

        print(
            f"stopped at step {trainer.num_timesteps:,}; checkpoint saved. Continue with: "
            f"millinet train --resume {trainer.root}",
            file=sys.stderr,
        )
        raise
    finally:
        trainer.close()
    return trainer.root, metrics

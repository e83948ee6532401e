"""PPO training of placement policies, run folders, and loading trained runs as policies.

A run lives in ``runs/<run-name>/`` (name: ``<scenario>_<algo>_s<seed>_<time>``)::

    config.yaml                      the resolved TrainConfig (what ran; --resume reads it)
    tb/                              TensorBoard event files (see agents/callbacks.py for tags)
    checkpoints/model_<steps>_steps.zip, vecnormalize_<steps>_steps.pkl
    best/best_model.zip, best/vecnormalize.pkl, best/best.json   best validation reward
    final/model.zip, final/vecnormalize.pkl                      the last model
    pretrained/model.zip, pretrained/vecnormalize.pkl            behaviour-cloned start (optional)
    metrics.json                     held-out metrics of the last and the best model

Use :class:`Trainer` to train chunk by chunk (``Trainer.create(cfg).train(50_000)`` returns the
held-out metrics after each chunk; a Ray Tune trainable can call it repeatedly), :func:`train`
for the whole thing, and :func:`load_run_policy` to get a deterministic
``act(observation, mask)`` policy from a run folder.
"""

from __future__ import annotations

import json
import math
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from millinet.agents.errors import CheckpointError, CheckpointNotFoundError
from millinet.agents.train_config import (
    VALIDATION_SEED_BASE,
    ConfigError,
    TrainConfig,
    dump_train_config,
    run_name,
    validate_train_config,
)
from millinet.envs.features import CLASS_NAMES

REPORT_SEED_BASE = 950_000
"""``metrics.json`` is measured on reset seeds ``REPORT_SEED_BASE + i`` (held out from training
and from best-model selection, which uses ``VALIDATION_SEED_BASE + i``)."""
CHECKPOINTS = ("best", "last", "pretrained")


def is_checkpoint_name(checkpoint: str) -> bool:
    """Whether ``checkpoint`` names a run checkpoint: one of ``CHECKPOINTS`` or a step count."""
    return checkpoint in CHECKPOINTS or str(checkpoint).isdigit()


# --------------------------------------------------------------------------- run folder
@dataclass(frozen=True)
class RunPaths:
    """The files of a run folder (the contract other tools rely on)."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def tb(self) -> Path:
        return self.root / "tb"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def best_dir(self) -> Path:
        return self.root / "best"

    @property
    def final_dir(self) -> Path:
        return self.root / "final"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    def model(self, checkpoint: str) -> tuple[Path, Path]:
        """(model zip, vecnormalize pkl) of ``best``, ``last``, ``pretrained`` or a step count."""
        if checkpoint == "best":
            return self.best_dir / "best_model.zip", self.best_dir / "vecnormalize.pkl"
        if checkpoint == "last":
            return self.final_dir / "model.zip", self.final_dir / "vecnormalize.pkl"
        if checkpoint == "pretrained":  # the behaviour-cloned start (pretrain.teacher only)
            pre = self.root / "pretrained"
            return pre / "model.zip", pre / "vecnormalize.pkl"
        steps = int(checkpoint)
        return (
            self.checkpoints / f"model_{steps}_steps.zip",
            self.checkpoints / f"vecnormalize_{steps}_steps.pkl",
        )

    def latest_checkpoint(self) -> int | None:
        """Step count of the newest periodic checkpoint, or None."""
        steps = [
            int(p.stem.split("_")[1])
            for p in self.checkpoints.glob("model_*_steps.zip")
            if p.stem.split("_")[1].isdigit()
        ]
        return max(steps) if steps else None


def read_run_config(run_dir: str | Path) -> TrainConfig:
    """The resolved config of a run folder."""
    import yaml

    path = RunPaths(Path(run_dir)).config
    if not path.is_file():
        raise CheckpointNotFoundError(f"{path}: not found (is {run_dir} a millinet run folder?)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), "", f"not valid YAML: {exc}") from None
    return validate_train_config(data, str(path))


def with_total_timesteps(cfg: TrainConfig, total: int, source: str) -> TrainConfig:
    """``cfg`` with another ``total_timesteps`` (validated)."""
    return validate_train_config({**cfg.model_dump(), "total_timesteps": total}, source)


# --------------------------------------------------------------------------- environments
def _algo_class(algo: str):
    if algo == "maskppo":
        from sb3_contrib import MaskablePPO

        return MaskablePPO
    from stable_baselines3 import PPO

    return PPO


def make_vec_env(cfg: TrainConfig, seeds: list[int] | None = None, stream: int = 0, n_envs=None):
    """The vectorised env stack ``VecNormalize(TimedVecEnv(DummyVecEnv([Monitor(SeededResets(
    PlacementEnv))...])))``.

    ``seeds`` given: an evaluation env whose env ``j`` cycles through ``seeds[j::n_envs]``
    (rewind with ``env_method("restart_seeds")``); VecNormalize does not update and reward is
    not normalised. Otherwise a training env whose episodes are reset with seeds drawn
    reproducibly from (``cfg.seed``, env index, ``stream``) below ``VALIDATION_SEED_BASE``.
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
                env = SeededResets(env, random_seeds((cfg.seed, j, stream), VALIDATION_SEED_BASE))
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
    return _algo_class(cfg.algo)(
        policy,
        venv,
        learning_rate=p.learning_rate,
        n_steps=p.n_steps,
        batch_size=p.batch_size,
        n_epochs=p.n_epochs,
        gamma=p.gamma,
        gae_lambda=p.gae_lambda,
        clip_range=p.clip_range,
        normalize_advantage=p.normalize_advantage,
        ent_coef=p.ent_coef,
        vf_coef=p.vf_coef,
        max_grad_norm=p.max_grad_norm,
        target_kl=p.target_kl,
        policy_kwargs=policy_kwargs,
        seed=cfg.seed,
        device="cpu",
        verbose=0,
    )


# --------------------------------------------------------------------------- policies
class RunPolicy:
    """A trained actor as a :class:`millinet.agents.policy.Policy`: VecNormalize observation
    scaling, then the masked argmax of the actor's logits (deterministic)."""

    def __init__(
        self,
        name: str,
        sb3_policy,
        obs_rms=None,
        clip_obs: float = 10.0,
        epsilon: float = 1e-8,
        agent_classes: tuple[str, ...] = CLASS_NAMES,
    ) -> None:
        self.name = name
        self.K = int(sb3_policy.action_space.n)  # candidate slots (the harness checks it)
        # Classes the policy was trained to decide; the others get the nearest rule, as in its
        # training env (the evaluation harness reads this).
        self.agent_classes = tuple(agent_classes)
        self.policy = sb3_policy.to("cpu").eval()
        self.obs_mean = None if obs_rms is None else np.asarray(obs_rms.mean, dtype=np.float64)
        self.obs_std = None if obs_rms is None else np.sqrt(np.asarray(obs_rms.var) + epsilon)
        self.clip_obs = float(clip_obs)
        # act() runs once per task in evaluations (~50k per simulated second): a numpy copy of
        # the actor is ~10x faster than a torch call per observation. Used only if it
        # reproduces torch's logits; the weights are a snapshot taken now.
        self._fast = _numpy_actor(self.policy, self.K)
        if self._fast is not None:
            probe = np.random.default_rng(0).uniform(
                0, 2, (4, self.policy.observation_space.shape[0])
            )
            ref = self._torch_logits(probe.astype(np.float32))
            got = np.stack([self._fast(row.astype(np.float32)) for row in probe])
            if not np.allclose(ref, got, rtol=1e-4, atol=1e-5):
                self._fast = None

    def normalize(self, observation: np.ndarray) -> np.ndarray:
        """Observation as the network sees it (float32, same shape)."""
        obs = np.asarray(observation, dtype=np.float64)
        if self.obs_mean is not None:
            obs = np.clip((obs - self.obs_mean) / self.obs_std, -self.clip_obs, self.clip_obs)
        return obs.astype(np.float32)

    def logits(self, observation: np.ndarray) -> np.ndarray:
        """Unmasked action logits (torch forward), shape (N, K) for observations (N, D)."""
        return self._torch_logits(self.normalize(observation))

    def _torch_logits(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return actor_logits(self.policy, torch.as_tensor(obs)).numpy()

    def act(self, observation: np.ndarray, mask: np.ndarray) -> int:
        obs = self.normalize(observation)
        if self._fast is not None:
            logits = self._fast(obs)
        else:
            logits = self._torch_logits(obs[None])[0]
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            logits = np.where(mask, logits, -np.inf)
        return int(np.argmax(logits))


def _numpy_layers(seq) -> list | None:
    """(W.T, b) / activation steps of an ``nn.Sequential`` of Linear/Tanh/ReLU, or None."""
    ops: list = []
    for m in seq:
        if isinstance(m, torch.nn.Linear):
            w = m.weight.detach().numpy().astype(np.float32).T.copy()
            ops.append((w, m.bias.detach().numpy().astype(np.float32).copy()))
        elif isinstance(m, torch.nn.Tanh):
            ops.append(np.tanh)
        elif isinstance(m, torch.nn.ReLU):
            ops.append(lambda x: np.maximum(x, 0.0))
        else:
            return None
    return ops


def _run_layers(ops: list, x: np.ndarray) -> np.ndarray:
    for op in ops:
        x = x @ op[0] + op[1] if isinstance(op, tuple) else op(x)
    return x


def _numpy_actor(policy, k: int):
    """A numpy ``obs (D,) -> logits (K,)`` copy of an SB3 actor (MLP or candidate scorer), or
    None for other architectures (then torch is used)."""
    from stable_baselines3.common.torch_layers import FlattenExtractor

    if not isinstance(policy.pi_features_extractor, FlattenExtractor):
        return None
    ext = policy.mlp_extractor
    net = _numpy_layers(getattr(ext, "policy_net", ()))
    if net is None:
        return None
    from millinet.agents.networks import N_CAND, N_TASK, CandidateExtractor, CandidateHead

    if isinstance(ext, CandidateExtractor) and isinstance(policy.action_net, CandidateHead):
        head = _numpy_layers([policy.action_net.score])
        eye = np.eye(k, dtype=np.float32)

        def candidate(obs: np.ndarray) -> np.ndarray:
            task = np.broadcast_to(obs[:N_TASK], (k, N_TASK))
            x = np.concatenate((task, obs[N_TASK:].reshape(k, N_CAND), eye), axis=1)
            return _run_layers(head, _run_layers(net, x))[:, 0]

        return candidate
    if not isinstance(policy.action_net, torch.nn.Linear):
        return None
    head = _numpy_layers([policy.action_net])
    return lambda obs: _run_layers(head, _run_layers(net, obs))


def actor_logits(policy, obs: torch.Tensor) -> torch.Tensor:
    """Logits of an SB3 (Maskable)ActorCriticPolicy's categorical actor for ``obs`` (N, D)."""
    features = policy.extract_features(obs, policy.pi_features_extractor)
    return policy.action_net(policy.mlp_extractor.forward_actor(features))


def _load_model(cfg: TrainConfig, path: Path, env=None):
    if not path.is_file():
        raise CheckpointNotFoundError(f"{path}: model file not found")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a model zip, the file is truncated or corrupted")
    try:
        return _algo_class(cfg.algo).load(str(path), env=env, device="cpu")
    except Exception as exc:  # SB3 raises assertions, zip, pickle and torch errors alike
        raise CheckpointError(
            f"{path}: cannot load the model, the file is truncated or corrupted or was saved "
            f"for another algorithm or env ({type(exc).__name__}: {exc})"
        ) from None


def _load_vecnormalize(path: Path):
    import pickle

    if not path.is_file():
        raise CheckpointNotFoundError(f"{path}: VecNormalize statistics not found")
    try:
        with open(path, "rb") as fh:
            vecnorm = pickle.load(fh)
    except Exception as exc:  # unpickling can raise nearly anything on a damaged file
        raise CheckpointError(
            f"{path}: cannot load the VecNormalize statistics, the file is truncated or "
            f"corrupted ({type(exc).__name__}: {exc})"
        ) from None
    from stable_baselines3.common.vec_env import VecNormalize

    if not isinstance(vecnorm, VecNormalize):
        raise CheckpointError(f"{path}: not a VecNormalize pickle ({type(vecnorm).__name__})")
    return vecnorm


def load_run_policy(run_dir: str | Path, checkpoint: str = "best") -> RunPolicy:
    """The run's ``best`` (validation) or ``last`` model, or a checkpoint step count, as a
    deterministic :class:`RunPolicy`. Raises :class:`CheckpointError` (missing files:
    :class:`CheckpointNotFoundError`) with the file's path."""
    root = Path(run_dir)
    if not root.is_dir():
        raise CheckpointNotFoundError(f"{root}: run folder not found")
    if not is_checkpoint_name(checkpoint):
        raise ValueError(
            f"checkpoint must be one of {CHECKPOINTS} or a step count, got {checkpoint!r}"
        )
    cfg = read_run_config(root)
    paths = RunPaths(root)
    model_path, norm_path = paths.model(checkpoint)
    model = _load_model(cfg, model_path)
    obs_rms, clip = None, cfg.normalize.clip_obs
    if cfg.normalize.enabled:
        vecnorm = _load_vecnormalize(norm_path)
        if vecnorm.norm_obs:
            obs_rms, clip = vecnorm.obs_rms, vecnorm.clip_obs
    return RunPolicy(
        f"{root.name}:{checkpoint}",
        model.policy,
        obs_rms,
        clip,
        agent_classes=tuple(cfg.env.agent_classes),
    )


def policy_from_model(model, name: str, agent_classes=CLASS_NAMES) -> RunPolicy:
    """A :class:`RunPolicy` from an in-memory model and its (training) VecNormalize."""
    vecnorm = model.get_vec_normalize_env()
    if vecnorm is None or not vecnorm.norm_obs:
        return RunPolicy(name, model.policy, agent_classes=agent_classes)
    return RunPolicy(
        name, model.policy, vecnorm.obs_rms, vecnorm.clip_obs, vecnorm.epsilon, agent_classes
    )


# --------------------------------------------------------------------------- evaluation
def run_episodes(policy, env_kwargs: dict[str, Any], seeds: list[int]) -> list[dict]:
    """Run ``policy`` (``act(observation, mask)``) for one ``Placement-v0`` episode per reset
    seed; returns each episode's ``millinet.envs.metrics.summarize`` dict."""
    from millinet.envs.placement_env import PlacementEnv

    env = PlacementEnv(**env_kwargs)
    out = []
    for seed in seeds:
        obs, _ = env.reset(seed=int(seed))
        while True:
            obs, _, terminated, truncated, info = env.step(policy.act(obs, env.action_masks()))
            if terminated or truncated:
                out.append(info["episode_metrics"])
                break
    return out


def mean_ci95(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of its 95% Student-t confidence interval (NaNs skipped)."""
    vals = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if vals.size == 0:
        return math.nan, math.nan
    if vals.size == 1:
        return float(vals[0]), math.nan
    from scipy import stats

    half = stats.t.ppf(0.975, vals.size - 1) * vals.std(ddof=1) / math.sqrt(vals.size)
    return float(vals.mean()), float(half)


def aggregate_episodes(episodes: list[dict]) -> dict[str, Any]:
    """Across-episode summary with the simulator's metric names: means (and 95% CI
    half-widths) of ``violation_rate_1ms`` and ``violation_rate``; per class the mean violation
    rate and p99 latency (us) and the summed counts."""
    v1, v1_ci = mean_ci95([e["violation_rate_1ms"] for e in episodes])
    v, v_ci = mean_ci95([e["violation_rate"] for e in episodes])
    classes = {}
    for name in episodes[0]["classes"]:
        rows = [e["classes"][name] for e in episodes]
        classes[name] = {
            "violation_rate": mean_ci95([r["violation_rate"] for r in rows])[0],
            "p99_us": mean_ci95([r["p99_us"] for r in rows])[0],
            "finished": int(sum(r["finished"] for r in rows)),
            "dropped": int(sum(r["dropped"] for r in rows)),
        }
    return {
        "episodes": len(episodes),
        "violation_rate_1ms": v1,
        "violation_rate_1ms_ci95": v1_ci,
        "violation_rate": v,
        "violation_rate_ci95": v_ci,
        "dropped": int(sum(e["dropped"] for e in episodes)),
        "finished": int(sum(e["finished"] for e in episodes)),
        "classes": classes,
        "per_episode_violation_rate_1ms": [e["violation_rate_1ms"] for e in episodes],
    }


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    return obj


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
        self.eval_env = make_vec_env(
            cfg, [VALIDATION_SEED_BASE + i for i in range(cfg.eval.episodes)]
        )
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
        dump_train_config(cfg, RunPaths(root).config)
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
            dump_train_config(cfg, RunPaths(root).config)
        torch.set_num_threads(cfg.torch_threads)
        paths = RunPaths(root)
        steps = paths.latest_checkpoint()
        if steps is None:
            raise CheckpointNotFoundError(f"{paths.checkpoints}: no model_<steps>_steps.zip")
        model_path, norm_path = paths.model(str(steps))
        stream = 1 + len(list(paths.tb.glob("events.out.tfevents.*")))
        venv = make_vec_env(cfg, stream=stream)
        if cfg.normalize.enabled:
            saved = _load_vecnormalize(norm_path)
            saved.set_venv(venv.venv)
            saved.training = True
            venv = saved
        model = _load_model(cfg, model_path, env=venv)
        trainer = cls(root, cfg, model, stream=stream)
        trainer._restore_best()
        return trainer

    def _read_metrics(self) -> dict:
        try:
            return json.loads(self.paths.metrics.read_text())
        except (OSError, ValueError):
            return {}

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
        seeds = [REPORT_SEED_BASE + i for i in range(cfg.eval.final_episodes)]
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
        self.paths.metrics.write_text(json.dumps(_json_safe(out), indent=2))
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

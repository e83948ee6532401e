"""A trained run as a deterministic policy: the numpy copy of the actor behind
``act(observation, mask)``.

:func:`load_run_policy` loads any checkpoint of a run folder (``millinet.agents.run_folder``)
as a :class:`RunPolicy`: the run's VecNormalize observation scaling, then the masked argmax of
the actor's logits. The evaluation harness, ``millinet simulate`` and the warm start's teacher
checks use it; ``millinet.agents.export.SB3PredictPolicy`` is the slow SB3-native reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from millinet.agents.run_folder import load_checkpoint
from millinet.envs.features import CLASS_NAMES


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


def load_run_policy(run_dir: str | Path, checkpoint: str = "best") -> RunPolicy:
    """A run's checkpoint (``best``, ``last``, ``pretrained`` or a step count) as a
    deterministic :class:`RunPolicy`. Raises :class:`~millinet.agents.errors.CheckpointError`
    (missing files: ``CheckpointNotFoundError``) naming the file."""
    ckpt = load_checkpoint(run_dir, checkpoint)
    obs_rms, clip, eps = None, 10.0, 1e-8
    if ckpt.norm_obs:
        vn = ckpt.vecnormalize
        obs_rms, clip, eps = vn.obs_rms, vn.clip_obs, vn.epsilon
    return RunPolicy(
        f"{ckpt.run_dir.name}:{checkpoint}",
        ckpt.model.policy,
        obs_rms,
        clip,
        eps,
        agent_classes=ckpt.agent_classes,
    )


def policy_from_model(model, name: str, agent_classes=CLASS_NAMES) -> RunPolicy:
    """A :class:`RunPolicy` from an in-memory model and its (training) VecNormalize."""
    vecnorm = model.get_vec_normalize_env()
    if vecnorm is None or not vecnorm.norm_obs:
        return RunPolicy(name, model.policy, agent_classes=agent_classes)
    return RunPolicy(
        name, model.policy, vecnorm.obs_rms, vecnorm.clip_obs, vecnorm.epsilon, agent_classes
    )

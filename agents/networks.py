"""Actor-critic networks for placement: a plain MLP (SB3's default) or a *candidate scorer*.

The candidate scorer (``ppo.policy.arch: candidate``) scores each of the K candidate slots with
one shared MLP that sees the task features, that slot's 19 features and a one-hot of the slot
index; the logits are the K scores. Comparing candidates is what placement is about, and a
shared scorer learns it once instead of once per slot (a plain MLP over the flat observation
must learn that ``est_latency`` of slot 3 matters for logit 3 separately for every slot). The
critic is an MLP over the whole observation.

Both are ordinary SB3 ``ActorCriticPolicy`` subclasses: ``features -> mlp_extractor ->
action_net``, so saving, loading and :func:`millinet.agents.inference.actor_logits` (used for
serving and export) work unchanged; the only difference is that ``action_net`` maps the (N, K * h)
latent to (N, K) logits with one shared ``Linear(h, 1)``.
"""

from __future__ import annotations

import numpy as np
import torch
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from stable_baselines3.common.policies import ActorCriticPolicy
from torch import nn

from millinet.envs.features import CANDIDATE_FEATURES, TASK_FEATURES

N_TASK, N_CAND = len(TASK_FEATURES), len(CANDIDATE_FEATURES)


def _mlp(sizes: list[int], activation_fn: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), activation_fn()]
    return nn.Sequential(*layers)


class CandidateExtractor(nn.Module):
    """``mlp_extractor`` of the candidate scorer.

    * actor: observation (N, 7 + 19 K) -> per-slot inputs (N, K, 7 + 19 + K) -> shared MLP
      -> latent (N, K * h), h = ``pi[-1]``;
    * critic: observation -> MLP ``vf`` -> (N, ``vf[-1]``).
    """

    def __init__(
        self, features_dim: int, pi: list[int], vf: list[int], activation_fn: type[nn.Module]
    ) -> None:
        super().__init__()
        k = (features_dim - N_TASK) // N_CAND
        if k < 1 or N_TASK + k * N_CAND != features_dim or not pi or not vf:
            raise ValueError(
                f"candidate policy needs a 7 + 19 K observation and non-empty pi/vf layers; "
                f"got {features_dim} features, pi={pi}, vf={vf}"
            )
        self.k = k
        self.hidden = pi[-1]
        self.policy_net = _mlp([N_TASK + N_CAND + k, *pi], activation_fn)
        self.value_net = _mlp([features_dim, *vf], activation_fn)
        self.latent_dim_pi = k * self.hidden
        self.latent_dim_vf = vf[-1]
        self.register_buffer("slot_one_hot", torch.eye(k), persistent=False)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_actor(features), self.forward_critic(features)

    def forward_actor(self, features: torch.Tensor) -> torch.Tensor:
        n = features.shape[0]
        task = features[:, :N_TASK].unsqueeze(1).expand(n, self.k, N_TASK)
        cand = features[:, N_TASK:].reshape(n, self.k, N_CAND)
        slots = self.slot_one_hot.unsqueeze(0).expand(n, self.k, self.k)
        latent = self.policy_net(torch.cat((task, cand, slots), dim=-1))
        return latent.reshape(n, self.latent_dim_pi)

    def forward_critic(self, features: torch.Tensor) -> torch.Tensor:
        return self.value_net(features)


class CandidateHead(nn.Module):
    """``action_net``: one shared ``Linear(h, 1)`` per slot, (N, K * h) -> logits (N, K)."""

    def __init__(self, k: int, hidden: int) -> None:
        super().__init__()
        self.k, self.hidden = k, hidden
        self.score = nn.Linear(hidden, 1)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.score(latent.reshape(-1, self.k, self.hidden)).squeeze(-1)


class _CandidateMixin:
    """Swaps SB3's MLP extractor and action head for the candidate scorer."""

    def _build_mlp_extractor(self) -> None:
        arch = self.net_arch if isinstance(self.net_arch, dict) else {}
        self.mlp_extractor = CandidateExtractor(
            self.features_dim,
            list(arch.get("pi", [64, 64])),
            list(arch.get("vf", [128, 128])),
            self.activation_fn,
        ).to(self.device)

    def _build(self, lr_schedule) -> None:
        super()._build(lr_schedule)
        ext = self.mlp_extractor
        self.action_net = CandidateHead(ext.k, ext.hidden).to(self.device)
        if self.ortho_init:
            self.action_net.apply(lambda m: self.init_weights(m, gain=0.01))
        self.optimizer = self.optimizer_class(
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )


class CandidateMaskablePolicy(_CandidateMixin, MaskableActorCriticPolicy):
    """Candidate-scoring actor-critic for sb3-contrib ``MaskablePPO``."""


class CandidatePolicy(_CandidateMixin, ActorCriticPolicy):
    """Candidate-scoring actor-critic for SB3 ``PPO``."""


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return int(np.sum([p.numel() for p in module.parameters() if p.requires_grad]))

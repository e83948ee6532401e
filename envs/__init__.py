"""millinet simulator and Gymnasium environments.

``import millinet.envs`` registers ``millinet/Placement-v0`` with Gymnasium (a plain, idempotent
registration), so ``gym.make("millinet/Placement-v0")`` works after it, in SubprocVecEnv workers
(``gym.make("millinet.envs:millinet/Placement-v0")`` imports this package first) and in RL
Zoo (``--gym-packages millinet.envs``).
"""

from __future__ import annotations

import gymnasium

ENV_ID = "millinet/Placement-v0"
"""The Gymnasium id of the placement-and-routing environment."""

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="millinet.envs.placement_env:PlacementEnv")

__all__ = ["ENV_ID"]

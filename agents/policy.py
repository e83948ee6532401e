"""The one policy interface shared by heuristics, trained runs and exported policies.

A policy sees only what the scheduler service could see: the observation built by
``millinet.envs.features.featurize`` and the feasibility mask. Anything satisfying this protocol can
be evaluated by the harness, run inside the simulator, or served.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Policy(Protocol):
    """``act(observation, mask) -> action``.

    * ``observation``: float32 array of shape (7 + 19 K,), see ``millinet.envs.features``.
    * ``mask``: bool array of shape (K,), True for feasible candidate slots.
    * returns an ``int`` slot in [0, K). A policy must return a feasible slot whenever one
      exists.
    """

    name: str

    def act(self, observation: np.ndarray, mask: np.ndarray) -> int: ...

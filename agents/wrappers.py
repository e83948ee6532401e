"""Env wrappers used by the trainer: explicit episode seeds, and timing of the VecEnv.

* :class:`SeededResets` gives every episode an explicit reset seed from a sequence, so training
  episodes stay in the training seed range and validation episodes are the same fixed,
  held-out seeds at every evaluation.
* :class:`TimedVecEnv` measures the wall time spent inside the vectorised env (``step``,
  ``reset`` and ``env_method``, which is how MaskablePPO fetches action masks), so the trainer
  can report the env's share of the training wall time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper


class SeededResets(gym.Wrapper):
    """Reset every episode with the next seed of ``next_seed()`` when no seed is given.

    ``next_seed`` is a zero-argument callable returning an ``int``. :meth:`restart_seeds`
    rewinds a cyclic sequence (see :func:`cycle_seeds`).
    """

    def __init__(self, env: gym.Env, next_seed: Callable[[], int], restart=None) -> None:
        super().__init__(env)
        self._next_seed = next_seed
        self._restart = restart
        self.last_seed: int | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is None:
            seed = int(self._next_seed())
        self.last_seed = seed
        return self.env.reset(seed=seed, options=options)

    def restart_seeds(self) -> None:
        """Start the seed sequence again from its first seed (no-op for random streams)."""
        if self._restart is not None:
            self._restart()

    def action_masks(self) -> np.ndarray:
        return self.env.unwrapped.action_masks()


def cycle_seeds(seeds: Sequence[int]) -> tuple[Callable[[], int], Callable[[], None]]:
    """``(next_seed, restart)`` cycling through ``seeds`` in order."""
    state = {"i": 0}

    def next_seed() -> int:
        seed = seeds[state["i"] % len(seeds)]
        state["i"] += 1
        return int(seed)

    def restart() -> None:
        state["i"] = 0

    return next_seed, restart


def random_seeds(entropy: Sequence[int], high: int) -> Callable[[], int]:
    """Reproducible stream of seeds in [0, high) from ``np.random.default_rng(entropy)``."""
    rng = np.random.default_rng(list(entropy))
    return lambda: int(rng.integers(high))


class TimedVecEnv(VecEnvWrapper):
    """Pass-through ``VecEnv`` wrapper that accumulates the wall time spent in the env
    (``env_time_s``, seconds) and the env steps taken (``steps``)."""

    def __init__(self, venv: VecEnv) -> None:
        super().__init__(venv)
        self.env_time_s = 0.0
        self.steps = 0

    def reset(self):
        t0 = time.perf_counter()
        try:
            return self.venv.reset()
        finally:
            self.env_time_s += time.perf_counter() - t0

    def step_async(self, actions: np.ndarray) -> None:
        t0 = time.perf_counter()
        try:
            self.venv.step_async(actions)
        finally:
            self.env_time_s += time.perf_counter() - t0

    def step_wait(self):
        t0 = time.perf_counter()
        try:
            return self.venv.step_wait()
        finally:
            self.env_time_s += time.perf_counter() - t0
            self.steps += self.num_envs

    def env_method(self, method_name: str, *args: Any, indices=None, **kwargs: Any) -> list:
        t0 = time.perf_counter()
        try:
            return self.venv.env_method(method_name, *args, indices=indices, **kwargs)
        finally:
            self.env_time_s += time.perf_counter() - t0


def find_timed(venv: VecEnv) -> TimedVecEnv | None:
    """The :class:`TimedVecEnv` inside a stack of VecEnv wrappers, if any."""
    while venv is not None:
        if isinstance(venv, TimedVecEnv):
            return venv
        venv = getattr(venv, "venv", None)
    return None

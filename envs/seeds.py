"""Seed ranges: evaluation seeds are disjoint from training seeds, by construction.

A *seed* here is the workload seed of the engine (``Engine(scenario, seed)``,
``millinet.envs.simulation.simulate(..., seed)``): it fixes every arrival and random fault.

* **Training** uses seeds below ``EVAL_SEED_BASE`` (= 2**31). The environment
  ``PlacementEnv.reset(seed=s)`` draws its engine seed with ``np_random.integers(2**31 - 1)``,
  so whatever seeds a trainer passes to ``reset``, every training episode runs on an engine
  seed in [0, 2**31 - 1). Trainers that drive the engine directly must call
  :func:`check_training_seed`.
* **Evaluation** episode ``i`` uses engine seed ``EVAL_SEED_BASE + i`` (``eval_seeds``), which
  no training episode can draw. (A base of, say, 1_000_000 would not do: the environment's
  derived engine seeds cover the whole 31-bit range.)
"""

from __future__ import annotations

EVAL_SEED_BASE = 2**31
"""First evaluation seed; every training (engine) seed is below it."""


def eval_seeds(n: int, start: int = 0) -> list[int]:
    """Engine seeds of evaluation episodes ``start .. start + n - 1``."""
    if n < 1 or start < 0:
        raise ValueError(f"need n >= 1 and start >= 0, got n={n}, start={start}")
    return [EVAL_SEED_BASE + start + i for i in range(n)]


def is_eval_seed(seed: int) -> bool:
    """True for seeds reserved for evaluation."""
    return seed >= EVAL_SEED_BASE


def check_training_seed(seed: int) -> int:
    """Return ``seed`` if it may be used for training; ``ValueError`` if it is reserved."""
    if not 0 <= seed < EVAL_SEED_BASE:
        raise ValueError(
            f"training seed {seed} is outside [0, {EVAL_SEED_BASE}); seeds from "
            f"{EVAL_SEED_BASE} on are reserved for evaluation (envs/seeds.py)"
        )
    return seed

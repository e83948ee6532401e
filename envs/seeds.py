"""The seed ranges of every protocol in millinet, in one table: disjoint by construction.

Two kinds of seed exist:

* an **engine seed** (``Engine(scenario, seed)``, ``simulate(..., seed)``) fixes every arrival
  and random fault of an episode;
* a **reset seed** (``PlacementEnv.reset(seed=s)``) seeds the env's generator, from which it
  draws the engine seed with ``np_random.integers(ENV_ENGINE_SEEDS)``: always below 2**31.

============  =====  ========================  ===============================================
range         kind   seeds                     used for
============  =====  ========================  ===============================================
training      reset  [0, 900_000)              training episodes (drawn from the run seed)
validation    reset  900_000 + i               evaluation during training, best-model choice
report        reset  950_000 + i               a run's ``metrics.json``, sweep objectives
test          engine 2**31 + i                 the evaluation harness (``millinet evaluate``,
                                               ``millinet benchmark``; ``--seed-base`` shifts i)
============  =====  ========================  ===============================================

A benchmark suite (``millinet.experiments.benchmark``) picks its splits inside these ranges:
its validation episodes are the engine seeds that ``PlacementEnv.reset`` derives from
validation reset seeds (:func:`engine_seed_of_reset`), its test episodes are test engine seeds.

Every engine seed a training, validation or report episode can reach is below 2**31, so no
test episode (engine seed >= 2**31) is ever trained on, tuned on, or used to pick a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ENV_ENGINE_SEEDS = 2**31 - 1
"""``PlacementEnv.reset`` draws engine seeds from [0, ENV_ENGINE_SEEDS)."""


@dataclass(frozen=True)
class SeedRange:
    """Seeds ``start, start + 1, ...`` below ``stop`` of one protocol (see the module table)."""

    name: str
    kind: Literal["reset", "engine"]
    start: int
    stop: int

    def seeds(self, n: int, offset: int = 0) -> list[int]:
        """Seeds ``start + offset .. start + offset + n - 1``; ``ValueError`` outside the range."""
        if n < 1 or offset < 0:
            raise ValueError(f"need n >= 1 and offset >= 0, got n={n}, offset={offset}")
        if self.start + offset + n > self.stop:
            raise ValueError(
                f"{self.name} seeds {self.start + offset} .. {self.start + offset + n - 1} leave "
                f"the range [{self.start}, {self.stop})"
            )
        return [self.start + offset + i for i in range(n)]

    def __contains__(self, seed: int) -> bool:
        return self.start <= seed < self.stop


TRAINING = SeedRange("training", "reset", 0, 900_000)
VALIDATION = SeedRange("validation", "reset", 900_000, 950_000)
REPORT = SeedRange("report", "reset", 950_000, 1_000_000)
TEST = SeedRange("test", "engine", 2**31, 2**63)
SEED_RANGES = {r.name: r for r in (TRAINING, VALIDATION, REPORT, TEST)}

EVAL_SEED_BASE = TEST.start
"""First test (evaluation) engine seed; every training engine seed is below it."""


def eval_seeds(n: int, start: int = 0) -> list[int]:
    """Engine seeds of evaluation (test) episodes ``start .. start + n - 1``."""
    return TEST.seeds(n, start)


def engine_seed_of_reset(reset_seed: int) -> int:
    """The engine seed that ``PlacementEnv.reset(seed=reset_seed)`` runs: its first draw from
    the generator gymnasium seeds with ``reset_seed`` (``np.random.default_rng``, PCG64 with a
    SeedSequence). Replaying a validation or report episode outside the env (a heuristic tuned
    on a suite's validation seeds) thus sees the arrivals a trained policy was selected on.
    Always below 2**31: never a test seed."""
    import numpy as np

    return int(np.random.default_rng(reset_seed).integers(ENV_ENGINE_SEEDS))


def is_eval_seed(seed: int) -> bool:
    """True for engine seeds reserved for evaluation."""
    return seed in TEST


def check_training_seed(seed: int) -> int:
    """Return ``seed`` if it may drive a training engine; ``ValueError`` if it is reserved."""
    if not 0 <= seed < EVAL_SEED_BASE:
        raise ValueError(
            f"training seed {seed} is outside [0, {EVAL_SEED_BASE}); seeds from "
            f"{EVAL_SEED_BASE} on are reserved for evaluation (millinet.envs.seeds)"
        )
    return seed

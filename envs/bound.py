"""A proven lower bound on the deadline violations of *any* placement-and-routing policy.

``lower_bound(scenario, seed, duration_s)`` answers: over the arrivals of this episode (exactly
those ``millinet simulate --seed --duration`` admits), how many 1 ms tasks must *every* policy
leave late or dropped, even one that knows every future arrival? And how large must the
class-weighted violations (the env's reward weights) be? The answer comes from a linear
relaxation of the engine (per-resource service windows and demand-bound intervals, solved
with scipy's HiGHS by row generation) and is certified by weak duality, so neither the
interval search nor the solver's tolerances can make it invalid. ``docs/bound.md`` has the
proof; ``envs/bound_windows.py``, ``envs/bound_cuts.py`` and ``envs/bound_lp.py`` the parts.

Two objectives:

* ``violations_1ms``: tasks of the classes with a deadline <= 1 ms, weight 1 each. The other
  classes leave the problem (a policy may reject them, so they may vanish). The bound is an
  integer: the certificate rounded up (minus 1e-6 for float round-off).
* ``weighted``: every task, weighted by its class's ``weight`` (10 / 2 / 1 by default). With
  integer weights the violations are a multiple of the weights' gcd and the bound is rounded
  up to one; otherwise it is the certificate minus 1e-6.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from millinet.envs.bound_lp import LPOutcome, row_generation
from millinet.envs.bound_windows import Episode, build_windows, collect_episode
from millinet.envs.config import ScenarioConfig
from millinet.envs.metrics import ONE_MS_US
from millinet.envs.scenario import Scenario, load_scenario

ONE_MS, WEIGHTED = "violations_1ms", "weighted"
OBJECTIVES = (ONE_MS, WEIGHTED)
ROUNDING_TOL = 1e-6
"""Subtracted from the certificate before rounding up: far above its float round-off."""


@dataclass
class ObjectiveBound:
    """The bound for one objective, and how it was obtained."""

    objective: str  # "violations_1ms" or "weighted"
    tasks: int  # tasks in the objective
    total_weight: float  # their summed weight (= tasks for violations_1ms)
    lower_bound: float  # every policy's (weighted) violations in this episode are >= this
    share: float  # lower_bound / total_weight (NaN without tasks): compare with a violation rate
    certificate: float  # the dual certificate before rounding
    lp_value: float  # the last LP's optimum as HiGHS reports it (NaN if no LP was needed)
    structural: float  # weight of tasks that no feasible candidate can serve on time at all
    status: str  # "optimal": no violated interval left; "time limit"; "round limit"; solver
    rounds: int  # LPs solved
    cuts: int  # interval rows generated
    lp_vars: int  # columns of the last LP
    lp_rows: int  # rows of the last LP
    solve_s: float  # time inside HiGHS
    separate_s: float  # time searching violated intervals
    wall_s: float  # all of it, windows included
    binding: dict[str, int]  # resource -> interval rows with a positive multiplier


@dataclass
class BoundResult:
    """Lower bounds for one episode (``to_dict`` gives the JSON form)."""

    scenario: str
    seed: int
    duration_s: float
    arrivals: int  # tasks admitted in [0, duration_s)
    bounds: dict[str, ObjectiveBound]  # objective name -> its bound
    wall_s: float  # total, arrivals included

    def to_dict(self) -> dict:
        """Plain, JSON-ready data (NaN stays NaN; ``millinet.envs.jsonio`` writes it as null)."""
        return asdict(self)


Progress = Callable[[str, float], None]
"""``progress(stage, value)``: ``("arrivals", simulated s)`` while the episode is read, then
``(objective, bound)`` after every LP round."""


def _objective_weights(scenario: Scenario, objective: str) -> np.ndarray:
    """Violation weight per class, shape (n_classes,); 0 leaves the class out."""
    if objective == ONE_MS:
        return np.array([1.0 if c.deadline_us <= ONE_MS_US else 0.0 for c in scenario.classes])
    return np.array([c.weight for c in scenario.classes])


def _round(certificate: float, task_weights: np.ndarray, structural: float) -> float:
    """The certificate as a bound on an attainable value. When every task's weight is an
    integer, the weighted violations are a multiple of g, the gcd of those weights: round up
    to one (less ROUNDING_TOL first). Otherwise subtract ROUNDING_TOL."""
    value = certificate - ROUNDING_TOL
    if task_weights.size and np.all(task_weights == np.round(task_weights)):
        g = math.gcd(*{int(w) for w in task_weights})
        value = float(g * math.ceil(value / g))
    return max(value, structural, 0.0)


def bound_objective(
    scenario: Scenario,
    episode: Episode,
    objective: str,
    deadline: float,
    max_rounds: int = 200,
    on_round: Callable[[float], None] | None = None,
) -> ObjectiveBound:
    """The bound of one objective over ``episode``; ``deadline`` is a ``perf_counter`` time."""
    start = time.perf_counter()
    weights = _objective_weights(scenario, objective)
    table = build_windows(scenario, episode, weights)
    total = math.fsum(table.weight)
    if table.task.size == 0:
        lp = LPOutcome(0.0, math.nan, "no tasks", 0, 0, 0, 0, 0.0, 0.0, 0.0)
    else:
        callback = None if on_round is None else (lambda _r, b, _c: on_round(b))
        lp = row_generation(table, deadline, max_rounds, callback)
    bound = _round(lp.bound, table.weight, lp.structural) if table.task.size else 0.0
    return ObjectiveBound(
        objective=objective,
        tasks=int(table.task.size),
        total_weight=total,
        lower_bound=bound,
        share=bound / total if total > 0 else math.nan,
        certificate=lp.bound,
        lp_value=lp.lp_value,
        structural=lp.structural,
        status=lp.status,
        rounds=lp.rounds,
        cuts=lp.cuts,
        lp_vars=lp.lp_vars,
        lp_rows=lp.lp_rows,
        solve_s=lp.solve_s,
        separate_s=lp.separate_s,
        wall_s=time.perf_counter() - start,
        binding=lp.binding,
    )


def lower_bound(
    scenario: Scenario | ScenarioConfig | dict | str | Path,
    seed: int = 0,
    duration_s: float | None = None,
    *,
    objectives: tuple[str, ...] = OBJECTIVES,
    time_limit_s: float = 540.0,
    max_rounds: int = 200,
    progress: Progress | None = None,
) -> BoundResult:
    """Lower bounds on the violations of every policy in one episode.

    Args:
        scenario: a built :class:`Scenario`, or anything ``load_scenario`` accepts.
        seed: the engine seed (the arrivals and random faults of the episode).
        duration_s: arrivals with time < duration_s are admitted (default: the scenario's
            ``duration_s``), as in ``millinet simulate``; in-flight tasks drain afterwards.
        objectives: any of ``"violations_1ms"`` and ``"weighted"`` (module docstring).
        time_limit_s: wall-clock budget (s) for all objectives together; an objective stopped
            by it still returns a valid, weaker bound (status ``"time limit"``).
        max_rounds: LP rounds per objective.
        progress: optional callback, see :data:`Progress`.

    Returns:
        :class:`BoundResult`; ``bounds[name].lower_bound`` is proven: no policy, even one that
        knows the future, has fewer (weighted) violations in this episode.
    """
    unknown = [o for o in objectives if o not in OBJECTIVES]
    if unknown or not objectives:
        raise ValueError(f"objectives must be some of {OBJECTIVES}, got {objectives!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    start = time.perf_counter()
    built = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    duration = built.config.duration_s if duration_s is None else float(duration_s)
    if not duration > 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
    collect = None if progress is None else (lambda t: progress("arrivals", t))
    episode = collect_episode(built, seed, duration, collect)
    deadline = start + time_limit_s
    bounds = {}
    for i, objective in enumerate(objectives):
        share = (deadline - time.perf_counter()) / (len(objectives) - i)
        on_round = None if progress is None else (lambda b, o=objective: progress(o, b))
        bounds[objective] = bound_objective(
            built, episode, objective, time.perf_counter() + share, max_rounds, on_round
        )
    return BoundResult(
        scenario=built.name,
        seed=seed,
        duration_s=duration,
        arrivals=episode.size,
        bounds=bounds,
        wall_s=time.perf_counter() - start,
    )


__all__ = [
    "OBJECTIVES",
    "BoundResult",
    "ObjectiveBound",
    "bound_objective",
    "lower_bound",
]

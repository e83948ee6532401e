"""The leaderboard's lower-bound column: the one place that calls ``millinet bound``.

``millinet.envs.bound.lower_bound(scenario, seed, duration_s, objectives=...)`` proves, per
episode, a lower bound on the 1 ms violations of *every* policy (clairvoyant: it knows every
arrival; docs/bound.md). Each test set gets a ``bound`` cell: one bound per test seed, its
share of the episode's 1 ms tasks as ``violation_rate_1ms``. A bound covers the whole episode,
so with a warm-up (metrics that leave the first tasks out) it is not comparable and is not
computed.
"""

from __future__ import annotations

import time

from millinet.envs.bound import lower_bound
from millinet.experiments.evaluation.harness import EpisodeResult, Job, cached_scenario, id_fields

OBJECTIVE = "violations_1ms"


def bound_episode(job: Job) -> EpisodeResult:
    """The lower bound of one test episode as a metric row (top-level: it runs in worker
    processes and Ray tasks like :func:`~millinet.experiments.evaluation.harness.run_episode`).
    ``violation_rate_1ms`` is the bound's share of the episode's 1 ms tasks."""
    scenario = cached_scenario(job.scenario)
    start, cpu = time.perf_counter(), time.process_time()
    result = lower_bound(
        scenario, seed=job.seed, duration_s=job.duration_s, objectives=(OBJECTIVE,)
    )
    bound = result.bounds[OBJECTIVE]
    row = {
        **id_fields(job, scenario),
        "tasks_1ms": int(bound.tasks),
        "violations_1ms": float(bound.lower_bound),
        "violation_rate_1ms": float(bound.share),
        "bound_status": str(bound.status),
    }
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return EpisodeResult(row, [], wall, cpu)

"""Evaluation episodes as tasks on a running Ray cluster (``--address`` of ``millinet
benchmark``), the way sweeps use one.

Each :class:`~millinet.experiments.evaluation.harness.Job` becomes one Ray task (1 CPU) that
calls :func:`~millinet.experiments.evaluation.harness.run_episode`, the function the local
process pool calls, so a result does not depend on where it ran: an episode is a deterministic
function of its job. Every node needs millinet installed (the same version), and file paths
in a job (a scenario file, a tuned-heuristic file, a trained run) must exist at the same path
on every node (a shared mount), as sweeps require of their ``storage_path``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from millinet.experiments.evaluation.harness import EpisodeResult, Job, run_episode

CONNECT_TIMEOUT_S = 30.0


def run_jobs_on_ray(
    jobs: Sequence[Job],
    address: str,
    connect_timeout: float = CONNECT_TIMEOUT_S,
    fn: Callable[[Job], EpisodeResult] = run_episode,
) -> Iterator[tuple[Job, EpisodeResult]]:
    """Submit ``fn(job)`` for every job (default :func:`run_episode`) to the Ray cluster at
    ``address`` and yield ``(job, result)`` as each finishes. Disconnects at the end; if the
    consumer stops early, unfinished tasks are cancelled. An unreachable address is a
    one-line ``UserError`` within ``connect_timeout`` seconds."""
    from millinet.envs.errors import require_extra

    require_extra("sweep", "running episodes on a Ray cluster (--address)")
    from millinet.experiments.errors import UserError
    from millinet.experiments.sweep.driver import SweepError, connect_ray

    try:
        connect_ray(address, None, connect_timeout, command="millinet benchmark")
    except SweepError as exc:  # unreachable, or not a Ray head: one line, no traceback
        raise UserError(str(exc)) from None
    import ray

    try:
        remote = ray.remote(num_cpus=1)(fn)
        refs = {remote.remote(job): job for job in jobs}
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    yield refs[ref], ray.get(ref)
        finally:
            for ref in pending:  # the consumer stopped early: free the cluster
                ray.cancel(ref, force=True)
    finally:
        ray.shutdown()

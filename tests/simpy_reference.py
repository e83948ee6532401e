"""An independent SimPy model of the latency engine, used as a correctness anchor.

Written from the model description (DESIGN.md section 2), not from ``envs/engine.py``: nothing
here imports ``envs``. A task visits the resources of its *trip* in order:

* a queue id ``q >= 0`` is one direction of a link: a ``simpy.Resource(capacity=1)`` held for
  the serialisation time ``bytes * s_per_byte[q]`` (the uplink payload before the compute pool,
  the downlink payload after it); after releasing the link the task travels for
  ``delay_s[q]`` (propagation + forwarding) before it reaches the next resource. The payload
  crosses a hop as one unit (store-and-forward);
* ``-(p + 1)`` is compute pool ``p``: a ``simpy.Resource(capacity=servers[p])`` (FIFO, any free
  server) held for ``work_s / speed[p]``.

With ``priorities`` given, links are ``simpy.PriorityResource``: non-preemptive strict priority
(0 = highest), FIFO within a level. Queue limits and faults are not modelled.

The model takes plain lists/arrays so that tests and the simulator benchmark
(``experiments/bench/benchmarks.py``) can feed it the same tasks and decisions as the engine.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import simpy


def simulate_reference(
    arrival_s: Sequence[float],
    trips: Sequence[Sequence[int]],
    up_bytes: Sequence[float],
    down_bytes: Sequence[float],
    work_s: Sequence[float],
    q_s_per_byte: Sequence[float],
    q_delay_s: Sequence[float],
    pool_servers: Sequence[int],
    pool_speed: Sequence[float],
    priorities: Sequence[int] | None = None,
) -> np.ndarray:
    """End-to-end latency (s) of every task, shape (n,), in input order.

    Task ``i`` arrives at ``arrival_s[i]`` (s) and follows ``trips[i]`` (queue ids >= 0, then the
    pool as ``-(pool + 1)``, then queue ids). ``up_bytes``/``down_bytes`` are its payloads (B),
    ``work_s`` its service time on a speed-1.0 server (s). Network arrays are indexed by queue id
    (``q_s_per_byte`` s/B, ``q_delay_s`` s) and by pool (``pool_servers``, ``pool_speed``).
    ``priorities`` (optional, per task) switches links to strict priority.
    """
    n = len(arrival_s)
    if not all(len(x) == n for x in (trips, up_bytes, down_bytes, work_s)):
        raise ValueError("arrival_s, trips, up_bytes, down_bytes and work_s differ in length")
    env = simpy.Environment()
    if priorities is None:
        links = [simpy.Resource(env, capacity=1) for _ in q_s_per_byte]
    else:
        links = [simpy.PriorityResource(env, capacity=1) for _ in q_s_per_byte]
    pools = [simpy.Resource(env, capacity=int(c)) for c in pool_servers]
    latency = np.full(n, np.nan)

    def task(i: int):
        t0 = float(arrival_s[i])
        # Every task process starts at t = 0 and sleeps until its arrival, so the arrival
        # instant is exactly t0 (0 + t0), and equal instants keep the input order.
        yield env.timeout(t0)
        payload = float(up_bytes[i])
        for r in trips[i]:
            if r >= 0:
                req = (
                    links[r].request()
                    if priorities is None
                    else links[r].request(priority=int(priorities[i]))
                )
                with req:
                    yield req
                    yield env.timeout(payload * q_s_per_byte[r])
                yield env.timeout(q_delay_s[r])
            else:
                p = -r - 1
                with pools[p].request() as req:
                    yield req
                    yield env.timeout(float(work_s[i]) / pool_speed[p])
                payload = float(down_bytes[i])
        latency[i] = env.now - t0

    for i in np.argsort(np.asarray(arrival_s, dtype=float), kind="stable"):
        env.process(task(int(i)))
    env.run()
    return latency

"""Telemetry: what a scheduler knows when it decides (DESIGN §2 "Telemetry").

A real scheduler does not see the network's state; it sees **reports**. Under ``reported``
telemetry (scenario section ``telemetry:``, :class:`~millinet.envs.config.TelemetryConfig`):

* every link direction and every compute pool measures itself at the times
  ``phase + n * period (+ jitter)``, n = 0, 1, ...; the phase is drawn per element from the
  engine seed (``phase: random``) or 0 (``aligned``), the jitter per report from a hash of
  (seed, element, n), so reports are exact, deterministic and seeded;
* a link direction is measured at its transmitting node and reports the bytes it has queued
  (its transmit backlog, here as the time its queue needs to drain); a pool is measured at its
  site and reports its busy servers, queued tasks, the declared service demand of the queued
  tasks, the mean declared demand of its recent arrivals and the site's recent violation share.
  Nothing reports when a server will free: that needs the remaining service of tasks in
  progress;
* a report reaches scheduler ``s`` after the one-way fiber delay (propagation + forwarding on
  the lowest-latency path) from the element to ``s``, plus ``processing_us``. Before the first
  report of an element arrives, the scheduler knows it empty (as at t = 0);
* the link directions that leave the scheduler's own node (a per-factory scheduler's uplink
  and LAN toward its on-prem site) are its own interfaces: it reads their queues directly,
  without reports;
* a scheduler also knows its own dispatches: per pool, the tasks it sent there since the
  report it reads was measured. ``central``: one scheduler (at ``controller``, default the
  first city site) makes every decision; ``per_factory``: each factory's scheduler (at the
  factory) decides its own tasks and knows only its own dispatches, so schedulers that read the
  same stale report herd onto the same site.

``oracle`` telemetry is the same measurements taken now, with no delay: the full-telemetry
reference. A report's values are computed from the engine's history at the report's time
(``Engine.link_drain_at``, ``Engine.pool_state``, ``Engine.site_violation_at``), not by
polling every element every period, so the cost per decision does not grow with the city or
with a shorter period.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass
from heapq import heapreplace
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np

from millinet.envs.config import TelemetryConfig
from millinet.envs.errors import ScenarioError

if TYPE_CHECKING:
    from millinet.envs.engine import Engine
    from millinet.envs.network import CompiledNetwork

_MASK64 = (1 << 64) - 1

PoolReport = tuple[float, float, float, float, float, float]
"""(measured at (s), busy servers, queued tasks, queued work (s), mean service (s), violation)."""


@dataclass(frozen=True)
class ReportPlan:
    """The static part of a scenario's reported telemetry: who decides, and how long each
    element's report takes to reach each scheduler.

    ``delay_q[s][q]`` and ``delay_p[s][p]`` are seconds from the measurement of link direction
    ``q`` (pool ``p``) to its arrival at scheduler ``s``. ``local_q[s]`` are the link directions
    that leave scheduler ``s``'s node, read directly. ``lookback_s`` bounds how far back any
    visible report can have been measured (the engine keeps that much history).
    """

    config: TelemetryConfig
    scheduler_nodes: tuple[int, ...]
    scheduler_of_factory: tuple[int, ...]
    delay_q: tuple[tuple[float, ...], ...]
    delay_p: tuple[tuple[float, ...], ...]
    local_q: tuple[tuple[int, ...], ...]
    lookback_s: float

    @classmethod
    def build(cls, net: CompiledNetwork, config: TelemetryConfig, source: str) -> ReportPlan:
        """Delays of every element's reports to every scheduler of ``net`` (``source`` names
        the scenario in errors, e.g. an unknown ``controller`` node)."""
        topo = net.topology
        if config.scheduler == "per_factory":
            nodes = tuple(net.factories)
            of_factory = tuple(range(len(net.factories)))
        else:
            nodes = (_controller_node(net, config, source),)
            of_factory = (0,) * len(net.factories)
        graph = topo.graph()
        processing = config.processing_us * 1e-6
        delay_q, delay_p = [], []
        for node in nodes:
            if config.propagation:
                dist = nx.single_source_dijkstra_path_length(graph, node, weight="delay")
            else:
                dist = {}
            delay_q.append(tuple(dist.get(a, 0.0) + processing for a, _ in net.q_nodes))
            delay_p.append(tuple(dist.get(site, 0.0) + processing for site in net.pool_site))
        longest = max((max(d, default=0.0) for d in (*delay_q, *delay_p)), default=0.0)
        period = config.period_us * 1e-6
        return cls(
            config=config,
            scheduler_nodes=nodes,
            scheduler_of_factory=of_factory,
            delay_q=tuple(delay_q),
            delay_p=tuple(delay_p),
            local_q=tuple(
                tuple(q for q, (a, _) in enumerate(net.q_nodes) if a == node) for node in nodes
            ),
            lookback_s=longest + period + config.jitter_us * 1e-6,
        )


def _controller_node(net: CompiledNetwork, config: TelemetryConfig, source: str) -> int:
    topo = net.topology
    if config.controller is not None:
        if config.controller not in topo.index:
            raise ScenarioError(
                source, "telemetry.controller", f"no node named {config.controller!r}"
            )
        return topo.index[config.controller]
    for role in ("city", "edge", "core", "aggregation"):
        found = topo.by_role(role)
        if found:
            return found[0]
    return net.factories[0]


class ReportedView:
    """What each scheduler of one episode knows: its latest visible report of every element it
    reads, and its own dispatches since. Built by the engine at reset (reported mode only).

    Reports are refreshed lazily: each scheduler keeps a heap of the times at which the next
    report of each element it reads (the links and pools of its factories' candidates) becomes
    visible; :meth:`refresh` replaces the due ones. A decision costs one comparison when no
    report is due, and each element one history lookup per period.
    """

    def __init__(self, engine: Engine, plan: ReportPlan, seed: int) -> None:
        net = engine.net
        cfg = plan.config
        self.engine = engine
        self.plan = plan
        self.scheduler_of_factory = plan.scheduler_of_factory
        self.period = cfg.period_us * 1e-6
        self.jitter = cfg.jitter_us * 1e-6
        n_q, n_p = net.n_queues, len(net.pool_site)
        self._n_q = n_q
        if cfg.phase == "random":
            rng = np.random.default_rng([seed, 0x7E1E])
            self.phase_q = (rng.random(n_q) * self.period).tolist()
            self.phase_p = (rng.random(n_p) * self.period).tolist()
        else:
            self.phase_q, self.phase_p = [0.0] * n_q, [0.0] * n_p
        self._jitter_key = (seed * 0x9E3779B97F4A7C15 + 0x7E1E) & _MASK64
        self.carries_links = "link_backlog" in cfg.carries
        self.carries_pools = "pool_occupancy" in cfg.carries
        self.carries_violations = "recent_violation" in cfg.carries
        n_s = len(plan.scheduler_nodes)
        # per scheduler: the time each link direction's reported queue drains, the latest
        # report of each pool, and a heap of (next report visible at, element) of the elements
        # it reads (queues q < n_q, pools n_q + p); -1: read at the first decision
        self.q_drain = [[0.0] * n_q for _ in range(n_s)]
        self.p_report: list[list[PoolReport]] = [[(0.0,) * 6] * n_p for _ in range(n_s)]
        self._due: list[list[tuple[float, int]]] = []
        for s in range(n_s):
            sets = [
                cset
                for f, sched in enumerate(plan.scheduler_of_factory)
                if sched == s
                for cset in net.candidates[f].values()
            ]
            queues = {q for cset in sets for q in cset.queues} - set(plan.local_q[s])
            pools = {n_q + c.pool for cset in sets for _, c in cset.live}
            self._due.append([(-1.0, e) for e in sorted(queues | pools)] or [(math.inf, -1)])
        # per scheduler and pool: own dispatch times and the running sum of their work (s)
        self.own_t: list[list[list[float]]] = [[[] for _ in range(n_p)] for _ in range(n_s)]
        self.own_work: list[list[list[float]]] = [[[0.0] for _ in range(n_p)] for _ in range(n_s)]

    # ------------------------------------------------------------------ report timing
    def _jitter(self, element: int, n: int) -> float:
        """Deterministic jitter of report ``n`` of ``element`` in [0, jitter) (splitmix64)."""
        if self.jitter <= 0.0:
            return 0.0
        z = (self._jitter_key ^ (element * 0xBF58476D1CE4E5B9) ^ (n * 0x94D049BB133111EB)) & _MASK64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        z ^= z >> 31
        return self.jitter * (z / 2.0**64)

    def visible(self, element: int, phase: float, delay: float, now: float) -> tuple[float, float]:
        """(measurement time of the newest report of ``element`` visible at ``now``, the time
        the next one becomes visible). Before the first report: an empty-network report
        measured at 0."""
        period = self.period
        n = math.floor((now - delay - phase) / period)
        if n >= 0:
            measured = phase + n * period + self._jitter(element, n)
            if measured + delay > now:  # jitter pushed report n past now: the one before
                n -= 1
                measured = phase + n * period + self._jitter(element, n)
        if n < 0:
            n, measured = -1, 0.0
        return measured, phase + (n + 1) * period + self._jitter(element, n + 1) + delay

    # ------------------------------------------------------------------ reads
    def refresh(self, s: int, now: float) -> None:
        """Bring scheduler ``s``'s view up to ``now``: read its own interfaces, and replace
        every report whose successor has become visible."""
        engine = self.engine
        drain = self.q_drain[s]
        for q in self.plan.local_q[s]:
            drain[q] = engine.link_drain_now(q)
        due = self._due[s]
        n_q, delay_q, delay_p = self._n_q, self.plan.delay_q[s], self.plan.delay_p[s]
        while due[0][0] <= now:
            e = due[0][1]
            if e < n_q:
                measured, visible = self.visible(e, self.phase_q[e], delay_q[e], now)
                at = engine.link_drain_at(e, measured) if self.carries_links else 0.0
                drain[e] = at if at > measured else measured
            else:
                p = e - n_q
                measured, visible = self.visible(e, self.phase_p[p], delay_p[p], now)
                busy, queued, work, mean = (
                    engine.pool_state(p, measured) if self.carries_pools else (0, 0, 0.0, 0.0)
                )
                viol = (
                    engine.site_violation_at(engine.net.pool_site[p], measured)
                    if self.carries_violations
                    else 0.0
                )
                self.p_report[s][p] = (measured, busy, queued, work, mean, viol)
            heapreplace(due, (visible, e))

    def pool(self, s: int, p: int) -> tuple[PoolReport, int, float]:
        """(scheduler ``s``'s latest report of pool ``p``, own dispatches to ``p`` since it was
        measured, their work (s)); call :meth:`refresh` first."""
        report = self.p_report[s][p]
        times = self.own_t[s][p]
        i = bisect_left(times, report[0])
        cum = self.own_work[s][p]
        return report, len(times) - i, cum[-1] - cum[i]

    # ------------------------------------------------------------------ bookkeeping
    def record_dispatch(self, factory: int, pool: int, t: float, work_s: float) -> None:
        """The scheduler of ``factory`` sent a task of ``work_s`` service to ``pool`` at ``t``."""
        s = self.scheduler_of_factory[factory]
        self.own_t[s][pool].append(t)
        cum = self.own_work[s][pool]
        cum.append(cum[-1] + work_s)

    def prune(self, horizon: float) -> None:
        """Forget own dispatches before ``horizon`` (no visible report is measured earlier)."""
        for per_pool_t, per_pool_w in zip(self.own_t, self.own_work):
            for times, cum in zip(per_pool_t, per_pool_w):
                if times and times[0] < horizon:
                    i = bisect_left(times, horizon)
                    del times[:i]
                    del cum[:i]

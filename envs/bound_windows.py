"""The data of the lower bound: an episode's tasks and their per-resource service windows.

A task that is on time through candidate ``k`` must be served by every resource of ``k``'s trip
(each uplink hop, the compute pool, each downlink hop) inside a *window* fixed by its arrival,
its deadline and the queue-free latencies of the other stages (``docs/bound.md`` proves it):

* earliest start at stage j: ``E_j = t0 + sum_{i<j} (work_i + delay_i)``;
* latest finish at stage j:  ``L_j = t0 + deadline - delay_j - sum_{i>j} (work_i + delay_i)``,

where a link stage's work is its serialisation (``bytes * s_per_byte``) and its delay the
propagation plus forwarding that follow it, and the pool stage's work is ``work / speed`` with
no delay. Every window has length ``work_j + slack``, the slack being the deadline minus the
queue-free latency of the whole trip; a candidate with negative slack cannot be on time.

Times here are in microseconds (the LP's unit), widened by :data:`EPS_US` on each side so that
float rounding in the engine's clock can never put an on-time service outside its window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from millinet.envs.config import RESOURCES
from millinet.envs.engine import Arrival, Engine
from millinet.envs.network import Candidate, CandidateSet
from millinet.envs.scenario import Scenario
from millinet.envs.simulation import simulate

EPS_US = 1e-3
"""Each window is widened by 1 ns on both sides. The engine's clock is a float64 sum of a few
dozen terms per trip; at times below 10^4 s its rounding error is far below 1 ns."""


@dataclass(frozen=True)
class Episode:
    """The admitted arrivals of one episode and the slots feasible at each arrival.

    Arrays have shape (n,) in arrival order, except ``mask``: (n, K) bool, the engine's
    ``mask`` at the task's arrival (a task dispatched to a masked slot is rejected).
    """

    time_s: np.ndarray
    cls: np.ndarray
    factory: np.ndarray
    up_bytes: np.ndarray
    down_bytes: np.ndarray
    work_s: np.ndarray
    mask: np.ndarray

    @property
    def size(self) -> int:
        return int(self.time_s.size)


def collect_episode(
    scenario: Scenario,
    seed: int,
    duration_s: float,
    progress: Callable[[float], None] | None = None,
) -> Episode:
    """The arrivals that ``simulate(scenario, ..., duration_s, seed)`` admits (time < duration),
    with the feasible slots at each arrival.

    It is the simulator's own loop (:func:`~millinet.envs.simulation.simulate`); every task is
    rejected, so no queue builds and the pass costs a few µs per task. Arrivals
    and faults do not depend on decisions, so they are those of any policy's episode.
    ``progress`` (optional) gets the simulated time (s) about every 10 ms simulated.
    """
    rows, masks = [], []

    def record_and_reject(engine: Engine, arrival: Arrival) -> int:
        rows.append(arrival)
        masks.append(engine.mask(arrival))
        return -1  # an out-of-range slot: rejected, nothing queues

    simulate(scenario, record_and_reject, duration_s, seed, progress)
    n, K = len(rows), scenario.network.K
    cols = list(zip(*rows)) if rows else [()] * len(Arrival._fields)
    return Episode(
        time_s=np.array(cols[1], dtype=float),
        cls=np.array(cols[2], dtype=np.int64),
        factory=np.array(cols[3], dtype=np.int64),
        up_bytes=np.array(cols[4], dtype=float),
        down_bytes=np.array(cols[5], dtype=float),
        work_s=np.array(cols[6], dtype=float),
        mask=np.array(masks, dtype=bool).reshape(n, K),
    )


@dataclass
class ResourceWindows:
    """The windows of every (task, candidate) pair whose trip visits one resource.

    Arrays have shape (m,) and are sorted by ``start_us``. ``var`` indexes the LP variables
    of :class:`WindowTable`.
    """

    name: str  # "a->b" for a link direction, "site/cpu" for a pool
    capacity: float  # servers: 1 for a link direction, c for a pool of c servers
    var: np.ndarray
    start_us: np.ndarray
    end_us: np.ndarray
    work_us: np.ndarray

    @property
    def size(self) -> int:
        return int(self.var.size)


@dataclass
class WindowTable:
    """The LP's variables (one per task and slot that could be on time) and their windows.

    ``task`` indexes the episode's tasks that enter the objective (shape (n_tasks,)), with
    ``weight`` their violation weight; variable j is task ``var_task[j]`` (an index into
    ``task``) on a candidate whose pool serves ``var_compute[j]`` (servers x speed).
    ``resources`` lists only resources with at least one window.
    """

    task: np.ndarray
    weight: np.ndarray
    var_task: np.ndarray
    var_compute: np.ndarray
    resources: list[ResourceWindows]

    @property
    def n_vars(self) -> int:
        return int(self.var_task.size)


def _resource_names(scenario: Scenario) -> tuple[list[str], list[str]]:
    net = scenario.network
    nodes = net.topology.nodes
    links = [f"{nodes[a].name}->{nodes[b].name}" for a, b in net.q_nodes]
    pools = [f"{nodes[s].name}/{r}" for s, r in zip(net.pool_site, net.pool_resource)]
    return links, pools


class _WindowBuilder:
    """Accumulates variables and window pieces, one (factory, resource type) group at a time."""

    def __init__(self, scenario: Scenario, episode: Episode, task: np.ndarray) -> None:
        self.net = scenario.network
        self.episode = episode
        self.task = task
        self.deadline_us = np.array([c.deadline_us for c in scenario.classes])
        self.var_task: list[np.ndarray] = []
        self.var_compute: list[np.ndarray] = []
        self.pieces: dict[int, list[tuple[np.ndarray, ...]]] = {}  # resource key -> pieces
        self.n_vars = 0

    def _stages(self, cand: Candidate, up, down, work) -> list[tuple[int, np.ndarray, float]]:
        """(resource key, work_us per task, delay_us after the work) of each trip stage; the
        key is the queue id of a link direction, ``n_queues + pool`` of a pool."""
        net = self.net
        stages = []
        for j, r in enumerate(cand.trip):
            if r >= 0:
                nbytes = up if j < cand.compute_stage else down
                stages.append((r, nbytes * (net.q_s_per_byte[r] * 1e6), net.q_delay_s[r] * 1e6))
            else:
                p = -r - 1
                stages.append((net.n_queues + p, work / net.pool_speed[p], 0.0))
        return stages

    def add_group(self, members: np.ndarray, cset: CandidateSet) -> None:
        """Tasks ``self.task[members]``, all of one factory and resource type (``cset``)."""
        ep = self.episode
        idx = self.task[members]
        t0 = ep.time_s[idx] * 1e6
        up, down, work = ep.up_bytes[idx], ep.down_bytes[idx], ep.work_s[idx] * 1e6
        deadline = self.deadline_us[ep.cls[idx]]
        for k, cand in cset.live:
            stages = self._stages(cand, up, down, work)
            slack = deadline - sum(w + d for _, w, d in stages)
            sel = np.flatnonzero(ep.mask[idx, k] & (slack >= -2 * EPS_US))
            if not sel.size:
                continue
            var = self.n_vars + np.arange(sel.size)
            self.n_vars += sel.size
            self.var_task.append(members[sel])
            self.var_compute.append(np.full(sel.size, cand.servers * cand.speed))
            earliest = t0[sel]  # earliest start of the current stage
            for r, w, d in stages:
                w = w[sel]
                latest_finish = earliest + w + slack[sel]
                self.pieces.setdefault(r, []).append(
                    (var, earliest - EPS_US, latest_finish + EPS_US, w)
                )
                earliest = earliest + w + d

    def resources(self, scenario: Scenario) -> list[ResourceWindows]:
        """One :class:`ResourceWindows` per resource with a window, in resource-key order."""
        net = self.net
        links, pools = _resource_names(scenario)
        out = []
        for r in sorted(self.pieces):
            var, start, end, work = (np.concatenate(p) for p in zip(*self.pieces[r]))
            order = np.argsort(start, kind="stable")
            if r < net.n_queues:
                name, cap = links[r], 1.0
            else:
                name, cap = pools[r - net.n_queues], float(net.pool_servers[r - net.n_queues])
            out.append(
                ResourceWindows(name, cap, var[order], start[order], end[order], work[order])
            )
        return out


def build_windows(scenario: Scenario, episode: Episode, class_weight: np.ndarray) -> WindowTable:
    """Variables and windows of the tasks whose class has ``class_weight[cls] > 0``.

    ``class_weight`` has shape (n_classes,). A (task, slot) pair gets a variable when the slot
    is feasible at the task's arrival and its queue-free latency fits the deadline (slack
    >= -2 EPS_US); every other pair is a certain violation and has none.
    """
    net = scenario.network
    task = np.flatnonzero(class_weight[episode.cls] > 0)
    builder = _WindowBuilder(scenario, episode, task)
    resource_type = np.array([RESOURCES.index(c.resource) for c in scenario.classes])
    task_factory, task_resource = episode.factory[task], resource_type[episode.cls[task]]
    for f, sets in enumerate(net.candidates):
        for ri, res_type in enumerate(RESOURCES):
            members = np.flatnonzero((task_factory == f) & (task_resource == ri))
            if members.size:
                builder.add_group(members, sets[res_type])

    def joined(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

    return WindowTable(
        task=task,
        weight=class_weight[episode.cls[task]].astype(float),
        var_task=joined(builder.var_task, np.int64),
        var_compute=joined(builder.var_compute, float),
        resources=builder.resources(scenario),
    )

"""The discrete-event latency engine.

A task visits the resources of its *trip* (``envs/network.py``) in order: each uplink hop, the
compute pool, each downlink hop. One event = one task arriving at one resource; events are
processed in time order from a binary heap (ties in insertion order), so every queue sees its
arrivals in true arrival order.

* **FIFO link direction** (the default): the Lindley recursion is exact. A task arriving at
  time t starts transmission at ``max(t, free)``, holds the link for ``bytes * 8 / capacity``,
  and reaches the next node ``propagation + forwarding`` later.
  A whole payload crosses a hop as one unit (store-and-forward at message level).
* **Strict priority** (scenario option): non-preemptive; when a transmission ends the link takes
  the waiting task of the highest class priority, FIFO within a level.
* **Compute pool** of c servers, FIFO: a task starts on the earliest-free server at
  ``max(t, earliest_free)`` and is served for ``work / speed``.
* **Drop-tail**: with a queue limit, a task that finds more than ``limit`` bytes backlogged
  (its own included) is dropped. A task that reaches a failed link, node or site is dropped.
* **Measurements** (what telemetry reports, ``envs/telemetry.py``): the time each link
  direction's queue drains, a pool's busy servers, queued tasks and their declared work, the
  mean declared work of its recent arrivals, a site's recent violation share; at any past
  time within the telemetry's look-back, from a short history kept per element.

Every arrival ends as exactly one record: completed on time, completed late, or dropped.
Per-task cost is O(hops * log(in-flight tasks)); nothing scales with the size of the city.
"""

from __future__ import annotations

import gc
from bisect import bisect_right, insort
from collections import deque
from heapq import heappop, heappush, heapreplace
from typing import NamedTuple

import numpy as np

from millinet.envs.features import EMPTY_TELEMETRY_ROW
from millinet.envs.network import CandidateSet
from millinet.envs.scenario import Scenario
from millinet.envs.telemetry import ReportedView
from millinet.envs.workload import WorkloadEndedError

# Outcome status of a finished task.
ON_TIME, LATE, DROPPED = 0, 1, 2
# Why a task was dropped (``Record.reason``).
DROP_NONE, DROP_FAILED, DROP_QUEUE_FULL, DROP_REJECTED = 0, 1, 2, 3
DROP_REASONS = ("", "failed_element", "queue_full", "rejected")

# Layout of the per-task state list (a list, not an object, because the event loop is hot).
_TRIP, _STAGE, _CSTAGE, _UP, _DOWN, _WORK, _T0, _CLS, _FAC, _SLOT, _SITE = range(11)
_LWAIT, _SER, _PROP, _CWAIT, _CSVC, _ID, _PRIO, _ENQ = range(11, 19)


MEAN_SERVICE_WINDOW = 16
"""A pool's mean declared service time is measured over its last this many arrivals."""
PRUNE_EVERY_S = 0.002
"""Measurement histories older than the telemetry's look-back are dropped this often (s)."""

RECORD_FIELDS = (
    "task_id",
    "cls",
    "factory",
    "slot",
    "site",
    "arrival_s",
    "latency_s",
    "link_wait_s",
    "serialisation_s",
    "propagation_s",
    "compute_wait_s",
    "compute_s",
    "status",
    "reason",
)
"""Columns of ``Engine.records`` tuples. ``latency_s`` is NaN for dropped tasks and equals the
sum of the five component columns for completed ones."""


class Arrival(NamedTuple):
    """A task that has arrived at its factory and awaits a placement decision."""

    task_id: int
    time_s: float
    cls: int  # index into CLASS_NAMES
    factory: int  # index into the scenario's factories
    up_bytes: float
    down_bytes: float
    work_s: float  # service time on a speed-1.0 server (s)


class Engine:
    """Simulates one scenario. Call :meth:`next_arrival`, decide, :meth:`dispatch`; repeat.

    ``seed`` fixes the arrivals and random faults. The engine makes no random draw of its own
    beyond those, so equal seeds and equal decisions give identical records.
    """

    ewma_alpha = 0.05
    """Weight of the newest outcome in a site's recent-violation average."""

    def __init__(self, scenario: Scenario, seed: int = 0) -> None:
        # The scenario's static objects (topology, candidate sets) live as long as the engine;
        # moving them out of the cyclic GC's reach keeps full collections, which the per-task
        # allocations trigger, from costing more in a larger city.
        gc.freeze()
        self.scenario = scenario
        self.net = scenario.network
        self.deadline_s = [c.deadline_us * 1e-6 for c in scenario.classes]
        self.class_priority = [c.priority for c in scenario.classes]
        self.class_resource = [c.resource for c in scenario.classes]
        self.priority_links = scenario.config.network.link_scheduling == "strict_priority"
        limit = scenario.config.network.queue_limit_bytes
        self.queue_limit = float("inf") if limit is None else float(limit)
        self.report_plan = scenario.report_plan  # None under oracle telemetry
        self.reset(seed)

    # ----------------------------------------------------------------------- lifecycle
    def reset(self, seed: int) -> None:
        """Start over at t = 0 with empty queues and the arrivals of ``seed``."""
        net = self.net
        self.seed = seed
        self.now = 0.0
        self._heap: list = []
        self._seq = 0
        self._q_free = [0.0] * net.n_queues
        # when each link direction's queue drains: its transmitter's free time, plus the
        # waiting bytes' serialisation on a strict-priority link
        self._q_drain = [0.0] * net.n_queues if self.priority_links else self._q_free
        self._q_busy_s = [0.0] * net.n_queues
        self._q_ok = [True] * net.n_queues
        self._pool_free = [[0.0] * c for c in net.pool_servers]
        self._pool_busy_s = [0.0] * len(net.pool_servers)
        self._pool_ok = [True] * len(net.pool_servers)
        n_pools = len(net.pool_servers)
        # per pool, in arrival order: arrival and start times (both non-decreasing under FIFO),
        # the running sum of service times; end times sorted; counts of forgotten entries
        self._p_arr: list[list[float]] = [[] for _ in range(n_pools)]
        self._p_start: list[list[float]] = [[] for _ in range(n_pools)]
        self._p_work: list[list[float]] = [[0.0] for _ in range(n_pools)]
        self._p_end: list[list[float]] = [[] for _ in range(n_pools)]
        self._p_forgotten = [0] * n_pools
        self._p_ended = [0] * n_pools
        self._site_viol = [0.0] * len(net.topology.nodes)
        self._link_down = [0] * len(net.topology.links)
        self._node_down = [0] * len(net.topology.nodes)
        self.fault_epoch = 0
        self._mask_cache: dict[tuple[int, str], tuple[int, np.ndarray]] = {}
        self._waiting: dict[int, list[deque]] = {}  # priority mode: queue -> levels of tasks
        self._waiting_bytes = [0.0] * net.n_queues
        self._workload = self.scenario.workload(seed)
        self._load_batch()
        self._next_id = 0
        self.records: list[tuple] = []
        self.in_flight = 0
        plan = self.report_plan
        self._view = None if plan is None else ReportedView(self, plan, seed)
        self._lookback = 0.0 if plan is None else plan.lookback_s
        self._next_prune = PRUNE_EVERY_S
        # reported telemetry only: per link direction the (time, drain time) of every change,
        # per site the (time, violation share) of every change
        self._qh_t: list[list[float]] | None = None
        self._qh_v: list[list[float]] = []
        self._sv_t: list[list[float]] | None = None
        self._sv_v: list[list[float]] = []
        if plan is not None:
            self._qh_t = [[] for _ in range(net.n_queues)]
            self._qh_v = [[] for _ in range(net.n_queues)]
            self._sv_t = [[] for _ in range(len(net.topology.nodes))]
            self._sv_v = [[] for _ in range(len(net.topology.nodes))]
        self._faults: list = []
        for t, kind, idx, up in self.scenario.scheduled_faults:
            self._push_fault(t, kind, idx, up)
        rf = self.scenario.config.faults.random
        self._fault_rng = np.random.default_rng([seed, 0xFA17])
        if rf is not None:
            for link in self._random_fault_links():
                self._push_fault(self._fault_rng.exponential(rf.link_mtbf_s), "rlink", link, False)

    def _load_batch(self) -> None:
        """Fetch the next window of arrivals as Python lists (cheap per-task indexing)."""
        b = self._workload.next_batch()
        self._batch = (
            b.time_s.tolist(),
            b.cls.tolist(),
            b.factory.tolist(),
            b.up_bytes.tolist(),
            b.down_bytes.tolist(),
            b.work_s.tolist(),
        )
        self._ptr = 0

    def _random_fault_links(self) -> list[int]:
        """Links between network nodes (not factory uplinks or site attachments)."""
        nodes = self.net.topology.nodes
        network_roles = ("access", "aggregation", "core")
        return [
            i
            for i, link in enumerate(self.net.topology.links)
            if nodes[link.a].role in network_roles and nodes[link.b].role in network_roles
        ]

    # ----------------------------------------------------------------------- decisions
    def next_arrival(self) -> Arrival:
        """Advance the simulation to the next task arrival and return it (not yet placed).

        Raises :class:`~millinet.envs.workload.WorkloadEndedError` when the workload has no more
        tasks (only a scenario whose every source is a trace without ``loop`` ends)."""
        while self._ptr >= len(self._batch[0]):
            if self._workload.exhausted:
                raise WorkloadEndedError(
                    f"{self.scenario.name}: no more tasks at t = {self.now:.6f} s: every "
                    "arrival source is a trace that has ended (set loop: true to repeat it)"
                )
            self._load_batch()
        times, cls, fac, up, down, work = self._batch
        i = self._ptr
        t = times[i]
        self.advance(t)
        return Arrival(self._next_id, t, cls[i], fac[i], up[i], down[i], work[i])

    def candidates(self, arrival: Arrival) -> CandidateSet:
        """The K candidate slots of this task (by factory and the class's resource type)."""
        return self.net.candidates[arrival.factory][self.class_resource[arrival.cls]]

    def mask(self, arrival: Arrival) -> np.ndarray:
        """Feasible slots, shape (K,), bool: a candidate exists and all its elements are up.

        The array is cached until the next fault; callers must not modify it."""
        key = (arrival.factory, self.class_resource[arrival.cls])
        cached = self._mask_cache.get(key)
        if cached is not None and cached[0] == self.fault_epoch:
            return cached[1]
        cset = self.net.candidates[key[0]][key[1]]
        mask = cset.present.copy()
        if self.fault_epoch:
            for k, c in enumerate(cset.slots):
                if c is not None:
                    mask[k] = self._pool_ok[c.pool] and all(self._q_ok[q] for q in c.trip if q >= 0)
        self._mask_cache[key] = (self.fault_epoch, mask)
        return mask

    def dispatch(self, arrival: Arrival, slot: int) -> bool:
        """Place ``arrival`` on candidate ``slot``. An infeasible slot drops the task as
        ``rejected`` (a violation). Returns whether the slot was feasible."""
        self._ptr += 1
        self._next_id += 1
        valid = 0 <= slot < self.net.K and bool(self.mask(arrival)[slot])
        cand = self.candidates(arrival).slots[slot] if valid else None
        site = cand.site if cand is not None else -1
        task = [
            cand.trip if cand else (),
            0,
            0,
            arrival.up_bytes,
            arrival.down_bytes,
            arrival.work_s,
            arrival.time_s,
            arrival.cls,
            arrival.factory,
            slot,
            site,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            arrival.task_id,
            self.class_priority[arrival.cls],
            0.0,
        ]
        self.in_flight += 1
        if cand is None:
            self._drop(task, DROP_REJECTED, arrival.time_s)
            return False
        if self._view is not None:
            self._view.record_dispatch(
                arrival.factory, cand.pool, arrival.time_s, arrival.work_s / cand.speed
            )
        task[_CSTAGE] = cand.compute_stage
        self._seq += 1
        heappush(self._heap, (arrival.time_s, self._seq, task))
        return True

    # ----------------------------------------------------------------------- time
    def advance(self, until: float) -> None:
        """Process every event (and fault) with time <= ``until``; the clock ends at ``until``."""
        faults = self._faults
        while faults and faults[0][0] <= until:
            t = faults[0][0]
            self._run_events(t)
            self._apply_fault(*heappop(faults))
        self._run_events(until)
        self.now = max(self.now, until)
        if until >= self._next_prune:
            self._forget(until - self._lookback)
            self._next_prune = until + PRUNE_EVERY_S

    def drain(self) -> None:
        """Run until every dispatched task has finished (no new arrivals are admitted)."""
        while self._heap:
            self.advance(self._heap[0][0])

    def _run_events(self, until: float) -> None:
        heap = self._heap
        q_free, q_busy, q_ok = self._q_free, self._q_busy_s, self._q_ok
        q_spb, q_delay = self.net.q_s_per_byte, self.net.q_delay_s
        pool_free, pool_ok, pool_speed = self._pool_free, self._pool_ok, self.net.pool_speed
        pool_busy = self._pool_busy_s
        p_arr, p_start, p_work, p_end = self._p_arr, self._p_start, self._p_work, self._p_end
        qh_t, qh_v = self._qh_t, self._qh_v  # None unless telemetry is reported
        limit, prio = self.queue_limit, self.priority_links
        seq = self._seq  # local copy in the hot loop; synced around calls that push events
        while heap and heap[0][0] <= until:
            t, _, task = heappop(heap)
            if task.__class__ is int:  # a strict-priority link finished a transmission
                self._seq = seq
                self._serve_next(task, t)
                seq = self._seq
                continue
            trip, st = task[_TRIP], task[_STAGE]
            if st == len(trip):
                self._complete(task, t)
                continue
            r = trip[st]
            if r >= 0:  # ---- a link direction
                if not q_ok[r]:
                    self._drop(task, DROP_FAILED, t)
                    continue
                nbytes = task[_UP] if st < task[_CSTAGE] else task[_DOWN]
                if prio:
                    self._seq = seq
                    self._enqueue_priority(task, r, t, nbytes)
                    seq = self._seq
                    continue
                free = q_free[r]
                start = free if free > t else t
                if start > t and (start - t) / q_spb[r] + nbytes > limit:
                    self._drop(task, DROP_QUEUE_FULL, t)
                    continue
                ser = nbytes * q_spb[r]
                done = start + ser
                q_free[r] = done
                if qh_t is not None:
                    qh_t[r].append(t)
                    qh_v[r].append(done)
                q_busy[r] += ser
                task[_LWAIT] += start - t
                task[_SER] += ser
                task[_PROP] += q_delay[r]
                task[_STAGE] = st + 1
                seq += 1
                heappush(heap, (done + q_delay[r], seq, task))
            else:  # ---- the compute pool
                p = -r - 1
                if not pool_ok[p]:
                    self._drop(task, DROP_FAILED, t)
                    continue
                servers = pool_free[p]
                free = servers[0]
                start = free if free > t else t
                svc = task[_WORK] / pool_speed[p]
                heapreplace(servers, start + svc)
                p_arr[p].append(t)
                p_start[p].append(start)
                work = p_work[p]
                work.append(work[-1] + svc)
                insort(p_end[p], start + svc)
                pool_busy[p] += svc
                task[_CWAIT] = start - t
                task[_CSVC] = svc
                task[_STAGE] = st + 1
                seq += 1
                heappush(heap, (start + svc, seq, task))
        self._seq = seq

    # ----------------------------------------------------------------------- strict priority
    def _enqueue_priority(self, task: list, r: int, t: float, nbytes: float) -> None:
        levels = self._waiting.get(r)
        idle = self._q_free[r] <= t and not (levels and any(levels))
        if idle:
            self._transmit(task, r, t, t)
            return
        backlog = max(0.0, self._q_free[r] - t) / self.net.q_s_per_byte[r] + self._waiting_bytes[r]
        if backlog + nbytes > self.queue_limit:
            self._drop(task, DROP_QUEUE_FULL, t)
            return
        if levels is None:
            levels = self._waiting[r] = [deque() for _ in range(max(self.class_priority) + 1)]
        task[_ENQ] = t
        levels[task[_PRIO]].append(task)
        self._waiting_bytes[r] += nbytes
        self._note_drain(r, t)

    def _note_drain(self, r: int, t: float) -> None:
        """A strict-priority link's queue changed at ``t``: update (and record) when it drains."""
        drain = self._q_free[r] + self._waiting_bytes[r] * self.net.q_s_per_byte[r]
        self._q_drain[r] = drain
        if self._qh_t is not None:
            self._qh_t[r].append(t)
            self._qh_v[r].append(drain)

    def _serve_next(self, r: int, t: float) -> None:
        """Link ``r`` became free at ``t``: start the highest-priority waiting task. If the link
        has failed meanwhile, every waiting task is dropped (nothing waits forever)."""
        if self._q_free[r] > t:  # an arrival at exactly t already took the idle link
            return
        for level in self._waiting.get(r, ()):
            while level:
                task = level.popleft()
                nbytes = task[_UP] if task[_STAGE] < task[_CSTAGE] else task[_DOWN]
                self._waiting_bytes[r] -= nbytes
                if not self._q_ok[r]:
                    self._drop(task, DROP_FAILED, t)
                    self._note_drain(r, t)
                    continue
                self._transmit(task, r, task[_ENQ], t)
                return

    def _transmit(self, task: list, r: int, t_arrive: float, start: float) -> None:
        nbytes = task[_UP] if task[_STAGE] < task[_CSTAGE] else task[_DOWN]
        ser = nbytes * self.net.q_s_per_byte[r]
        done = start + ser
        delay = self.net.q_delay_s[r]
        self._q_free[r] = done
        self._note_drain(r, start)
        self._q_busy_s[r] += ser
        task[_LWAIT] += start - t_arrive
        task[_SER] += ser
        task[_PROP] += delay
        task[_STAGE] += 1
        self._seq += 1
        heappush(self._heap, (done + delay, self._seq, task))
        self._seq += 1
        heappush(self._heap, (done, self._seq, r))

    # ----------------------------------------------------------------------- outcomes
    def _complete(self, task: list, t: float) -> None:
        latency = t - task[_T0]
        late = latency > self.deadline_s[task[_CLS]]
        site = task[_SITE]
        self._note_violation(site, late, t)
        self.in_flight -= 1
        self.records.append(
            (
                task[_ID],
                task[_CLS],
                task[_FAC],
                task[_SLOT],
                site,
                task[_T0],
                latency,
                task[_LWAIT],
                task[_SER],
                task[_PROP],
                task[_CWAIT],
                task[_CSVC],
                LATE if late else ON_TIME,
                DROP_NONE,
            )
        )

    def _note_violation(self, site: int, violated: bool, t: float) -> None:
        """Update (and record) the site's moving average of violations with one outcome."""
        viol = self._site_viol[site] + self.ewma_alpha * (violated - self._site_viol[site])
        self._site_viol[site] = viol
        if self._sv_t is not None:
            self._sv_t[site].append(t)
            self._sv_v[site].append(viol)

    def _drop(self, task: list, reason: int, t: float) -> None:
        site = task[_SITE]
        if site >= 0:
            self._note_violation(site, True, t)
        self.in_flight -= 1
        self.records.append(
            (
                task[_ID],
                task[_CLS],
                task[_FAC],
                task[_SLOT],
                site,
                task[_T0],
                float("nan"),
                task[_LWAIT],
                task[_SER],
                task[_PROP],
                task[_CWAIT],
                task[_CSVC],
                DROPPED,
                reason,
            )
        )

    # ----------------------------------------------------------------------- faults
    def _push_fault(self, t: float, kind: str, idx: int, up: bool) -> None:
        self._seq += 1
        heappush(self._faults, (t, self._seq, kind, idx, up))

    def _apply_fault(self, t: float, _seq: int, kind: str, idx: int, up: bool) -> None:
        delta = -1 if up else 1
        if kind == "node":
            self._node_down[idx] += delta
        else:
            self._link_down[idx] += delta
        if kind == "rlink":
            rf = self.scenario.config.faults.random
            mean = rf.link_mtbf_s if up else rf.link_mttr_s
            self._push_fault(t + self._fault_rng.exponential(mean), "rlink", idx, not up)
        self._refresh_status()

    def _refresh_status(self) -> None:
        net = self.net
        for q in range(net.n_queues):
            a, b = net.q_nodes[q]
            self._q_ok[q] = (
                self._link_down[net.q_link[q]] == 0
                and self._node_down[a] == 0
                and self._node_down[b] == 0
            )
        for p, site in enumerate(net.pool_site):
            self._pool_ok[p] = self._node_down[site] == 0
        self.fault_epoch += 1

    # ----------------------------------------------------------------------- measurements
    def link_drain_at(self, q: int, t: float) -> float:
        """When link direction ``q``'s queue drains, as measured at ``t`` (s): its transmit
        backlog at ``t`` is ``max(0, drain - t)``. ``t`` is at most ``now`` and, under reported
        telemetry, within the look-back; under oracle telemetry only ``t = now`` is kept."""
        if self._qh_t is None:
            return self._q_drain[q]
        i = bisect_right(self._qh_t[q], t) - 1
        return self._qh_v[q][i] if i >= 0 else 0.0

    def link_drain_now(self, q: int) -> float:
        """When link direction ``q``'s queue drains, as it stands now (s)."""
        return self._q_drain[q]

    def pool_state(self, p: int, t: float) -> tuple[int, int, float, float]:
        """Pool ``p`` as its site measures it at ``t`` (``now`` or within the look-back):
        (busy servers, queued tasks, declared work of the queued tasks (s), mean declared work
        of the last ``MEAN_SERVICE_WINDOW`` arrivals (s))."""
        arrived = bisect_right(self._p_arr[p], t)
        started = bisect_right(self._p_start[p], t)
        ended = self._p_ended[p] + bisect_right(self._p_end[p], t)
        work = self._p_work[p]
        first = arrived - MEAN_SERVICE_WINDOW if arrived > MEAN_SERVICE_WINDOW else 0
        mean = (work[arrived] - work[first]) / (arrived - first) if arrived > first else 0.0
        busy = self._p_forgotten[p] + started - ended
        return busy, arrived - started, work[arrived] - work[started], mean

    def site_violation_at(self, site: int, t: float) -> float:
        """The site's moving average of violations as it stood at ``t`` (0..1)."""
        if self._sv_t is None:
            return self._site_viol[site]
        i = bisect_right(self._sv_t[site], t) - 1
        return self._sv_v[site][i] if i >= 0 else 0.0

    def _forget(self, horizon: float) -> None:
        """Drop measurement history that no report can need any more (before ``horizon``),
        keeping what a measurement at ``horizon`` or later still reads."""
        for p, start in enumerate(self._p_start):
            cut = bisect_right(start, horizon) - MEAN_SERVICE_WINDOW  # keep the mean's window
            if cut > 0:
                del self._p_arr[p][:cut], start[:cut], self._p_work[p][:cut]
                self._p_forgotten[p] += cut
            ends = self._p_end[p]
            done = bisect_right(ends, horizon)
            if done:
                del ends[:done]
                self._p_ended[p] += done
        if self._qh_t is not None:
            sites = set(self.net.pool_site)
            for times, values, elements in (
                (self._qh_t, self._qh_v, self.net.trip_queues),  # no task visits the others
                (self._sv_t, self._sv_v, sites),
            ):
                for i in elements:
                    ts = times[i]
                    keep = bisect_right(ts, horizon) - 1  # the value in force at the horizon
                    if keep > 0:
                        del ts[:keep], values[i][:keep]
        if self._view is not None:
            self._view.prune(horizon)

    # ----------------------------------------------------------------------- telemetry
    def telemetry(self, arrival: Arrival, oracle: bool = False) -> np.ndarray:
        """What the deciding scheduler knows of each candidate: shape (K, 16), columns
        ``millinet.envs.features.TELEMETRY_FIELDS`` (see ``envs/telemetry.py``). ``oracle``:
        the oracle view (measurements now) whatever the scenario's telemetry, e.g. for a
        privileged teacher."""
        return np.array(self.telemetry_rows(arrival, oracle))

    def telemetry_rows(self, arrival: Arrival, oracle: bool = False) -> list[tuple[float, ...]]:
        """``telemetry`` as K plain tuples (the env's fast path into the featuriser)."""
        cset = self.candidates(arrival)
        mask = self.mask(arrival).tolist()
        now = self.now
        view = None if oracle else self._view
        up_bytes, down_bytes, work_us = arrival.up_bytes, arrival.down_bytes, arrival.work_s * 1e6
        if view is None:
            drain = self._q_drain
        else:
            sched = view.scheduler_of_factory[arrival.factory]
            view.refresh(sched, now)
            drain = view.q_drain[sched]
        pools: dict[int, tuple] = {}
        rows = [EMPTY_TELEMETRY_ROW] * len(cset.slots)
        for k, c in cset.live:
            up = 0.0
            for q in c.up:
                if drain[q] > now:
                    up += drain[q] - now
            down = 0.0
            for q in c.down:
                if drain[q] > now:
                    down += drain[q] - now
            pool = pools.get(c.pool)
            if pool is None:
                if view is None:
                    busy, queued, qwork, mean = self.pool_state(c.pool, now)
                    viol = self._site_viol[c.site]
                    age = own = own_work = 0.0
                else:
                    report, own, own_work = view.pool(sched, c.pool)
                    measured, busy, queued, qwork, mean, viol = report
                    age = now - measured
                pool = pools[c.pool] = (
                    viol,
                    age * 1e6,
                    busy,
                    queued,
                    qwork * 1e6,
                    mean * 1e6,
                    own,
                    own_work * 1e6,
                )
            rows[k] = (
                mask[k], c.base_rtt_s * 1e6,
                (up_bytes * c.up_s_per_byte + down_bytes * c.down_s_per_byte) * 1e6,
                up * 1e6, down * 1e6, work_us / c.speed, c.servers, c.tier, *pool,
            )  # fmt: skip
        return rows

    def task_vector(self, arrival: Arrival) -> np.ndarray:
        """The task as ``millinet.envs.features.TASK_FIELDS``: shape (5,)."""
        return np.array(self.task_row(arrival))

    def task_row(self, arrival: Arrival) -> tuple[float, ...]:
        """``task_vector`` as a plain tuple (the env's fast path into the featuriser)."""
        deadline_us = self.deadline_s[arrival.cls] * 1e6
        return (arrival.cls, arrival.up_bytes, arrival.down_bytes, arrival.work_s * 1e6,
                deadline_us)  # fmt: skip

    # ----------------------------------------------------------------------- results
    def record_array(self) -> np.ndarray:
        """All finished tasks as a structured array with the columns of RECORD_FIELDS."""
        dtype = [(f, "i8") for f in RECORD_FIELDS[:5]] + [(f, "f8") for f in RECORD_FIELDS[5:12]]
        dtype += [("status", "i8"), ("reason", "i8")]
        return np.array(self.records, dtype=dtype) if self.records else np.zeros(0, dtype=dtype)

    def utilisation(self, window_s: float) -> dict[str, dict[str, float]]:
        """Work served by each link direction and pool per second of ``window_s`` (the arrival
        window), per server: 0..1 for a stable element; above 1 means the element was offered
        more work than it could serve in the window and the excess queued past its end."""
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        nodes = self.net.topology.nodes
        links = {
            f"{nodes[a].name}->{nodes[b].name}": self._q_busy_s[q] / window_s
            for q, (a, b) in enumerate(self.net.q_nodes)
        }
        pools = {
            f"{nodes[s].name}/{r}": self._pool_busy_s[p] / (window_s * self.net.pool_servers[p])
            for p, (s, r) in enumerate(zip(self.net.pool_site, self.net.pool_resource))
        }
        return {"links": links, "pools": pools}

    def queue_state(self) -> dict[str, np.ndarray]:
        """The network's load now, for pictures and diagnostics (not the observation).

        ``link_busy_s`` (n_queues,): transmit time served per link direction since reset (s);
        ``link_backlog_s`` (n_queues,): time until the direction's queue drains (s);
        ``pool_busy_s`` (n_pools,): service time served since reset (s);
        ``pool_wait_s`` (n_pools,): time until the pool's earliest server frees (s)."""
        now = self.now
        return {
            "link_busy_s": np.array(self._q_busy_s),
            "link_backlog_s": np.maximum(np.array(self._q_drain) - now, 0.0),
            "pool_busy_s": np.array(self._pool_busy_s),
            "pool_wait_s": np.array([max(free[0] - now, 0.0) for free in self._pool_free]),
        }

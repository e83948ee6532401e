"""The observation featuriser, shared by the environment and the scheduler service.

numpy only: the scheduler service imports this module without gymnasium, torch or the engine,
so training and serving build observations with the very same code.

Inputs (what a scheduler knows when a task arrives; ``envs/telemetry.py`` explains how the
simulator produces them under ``oracle`` and ``reported`` telemetry):

* ``task``: float array of shape (5,) with columns ``TASK_FIELDS``:
  class index (into ``CLASS_NAMES``), uplink payload (bytes), downlink payload (bytes),
  compute demand on a speed-1.0 server (us), deadline (us).
* ``telemetry``: float array of shape (K, 16) with columns ``TELEMETRY_FIELDS``, one row per
  candidate (compute site, path) slot, in the candidate order documented in
  ``envs/network.py`` (slot = site rank * paths + path rank; nearest site first):

  ================= =======================================================================
  valid             1 if the slot is feasible (candidate exists, right resource, all elements up)
  base_rtt_us       propagation + forwarding along the path, both directions (us)
  serialisation_us  this task's payloads over the path's links, up + down (us)
  up_backlog_us     the uplink hops' transmit backlogs as last reported, each aged to now
                    (a link drains at line rate: reported backlog minus the report's age,
                    floored at 0), summed (us)
  down_backlog_us   same for the downlink hops (us)
  compute_us        this task's service time at that site (demand / site speed) (us)
  servers           servers in the site's pool
  tier              0 on_prem, 1 edge, 2 city, -1 empty slot
  recent_violation  the site's moving average of deadline violations (0..1), as reported
  report_age_us     age of the pool's report: now minus the time it was measured (us)
  busy_servers      servers busy when the pool's report was measured
  queued_tasks      tasks waiting in the pool's queue then
  queued_work_us    their declared service demand at the site's speed, summed (us)
  mean_service_us   the pool's mean declared service time over its recent arrivals (us)
  own_dispatches    tasks this scheduler sent to the pool since the report was measured
  own_work_us       their service demand at the site's speed, summed (us)
  ================= =======================================================================

Under ``oracle`` telemetry every report is measured now (age 0, no unreported dispatches).

Output: float32 vector of length ``observation_size(K)`` = 7 + K * 19, all values in
[0, FEATURE_CLIP]. Layout: ``TASK_FEATURES`` then, per slot, ``CANDIDATE_FEATURES``. Latency terms
are divided by the task's deadline, so one policy reads every class on the same scale. The
compute wait is estimated from the pool's report (:func:`compute_wait_estimate_us`). Empty
slots are all zeros.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

FEATURES_VERSION = 2
"""Bump whenever the layout or scaling changes; exported policies record it (a policy exported
for another version is refused). 2: reported telemetry (report age, pool occupancy, own
dispatches); the compute wait is estimated from measurable pool state."""

CLASS_NAMES = ("robot_sync", "agv_dispatch", "vision_qa")
SITE_TIERS = ("on_prem", "edge", "city")
TASK_FIELDS = ("cls", "up_bytes", "down_bytes", "compute_us", "deadline_us")
TELEMETRY_FIELDS = (
    "valid", "base_rtt_us", "serialisation_us", "up_backlog_us", "down_backlog_us",
    "compute_us", "servers", "tier", "recent_violation", "report_age_us",
    "busy_servers", "queued_tasks", "queued_work_us", "mean_service_us",
    "own_dispatches", "own_work_us",
)  # fmt: skip
TIER_COLUMN = TELEMETRY_FIELDS.index("tier")
EMPTY_TELEMETRY_ROW = tuple(-1.0 if f == "tier" else 0.0 for f in TELEMETRY_FIELDS)
"""Telemetry of an empty slot: every measurement 0, tier -1."""
TASK_FEATURES = (
    "is_robot_sync", "is_agv_dispatch", "is_vision_qa",
    "log_up_bytes", "log_down_bytes", "log_compute_us", "log_deadline_us",
)  # fmt: skip
CANDIDATE_FEATURES = (
    "valid", "rtt_per_deadline", "serialisation_per_deadline", "up_backlog_per_deadline",
    "down_backlog_per_deadline", "compute_wait_per_deadline", "compute_per_deadline",
    "est_latency_per_deadline", "meets_deadline", "log_servers",
    "is_on_prem", "is_edge", "is_city", "recent_violation",
    "report_age_per_deadline", "busy_fraction", "queued_per_server",
    "own_dispatches_per_server", "own_wait_per_deadline",
)  # fmt: skip
FEATURE_CLIP = 10.0
"""Ratios to the deadline (and per-server counts) are clipped to [0, FEATURE_CLIP]."""

# Column indices, for policies that read the observation.
EST_LATENCY = CANDIDATE_FEATURES.index("est_latency_per_deadline")
RTT = CANDIDATE_FEATURES.index("rtt_per_deadline")
VALID = CANDIDATE_FEATURES.index("valid")
_N_TASK, _N_CAND = len(TASK_FEATURES), len(CANDIDATE_FEATURES)


def telemetry_row(**values: float) -> tuple[float, ...]:
    """One telemetry row from ``TELEMETRY_FIELDS`` given by name; the others are an empty
    slot's (0, tier -1). ``telemetry_row(valid=1, base_rtt_us=200, compute_us=50,
    servers=16, tier=1)`` is an idle edge site 200 us away. ``KeyError`` for an unknown name."""
    unknown = set(values) - set(TELEMETRY_FIELDS)
    if unknown:
        raise KeyError(f"unknown telemetry field(s) {sorted(unknown)}; known: {TELEMETRY_FIELDS}")
    return tuple(
        float(values.get(f, empty)) for f, empty in zip(TELEMETRY_FIELDS, EMPTY_TELEMETRY_ROW)
    )


def observation_size(k: int) -> int:
    """Length of the observation vector for K candidate slots."""
    return _N_TASK + k * _N_CAND


def candidate_matrix(obs: np.ndarray, k: int) -> np.ndarray:
    """View the per-candidate block of ``obs`` (shape (..., D)) as shape (..., K, 19)."""
    obs = np.asarray(obs)
    return obs[..., _N_TASK:].reshape(*obs.shape[:-1], k, _N_CAND)


def compute_wait_estimate_us(
    busy: float, queued_work_us: float, mean_service_us: float, servers: float, age_us: float
) -> float:
    """Estimated wait (us) at a pool of ``servers`` FIFO servers, from a report ``age_us`` old.

    If a server was idle when measured, the queue was empty: no wait. Otherwise the task waits
    for the queued work spread over the servers, plus about one mean service time spread over
    them (the running tasks' remaining service is not measurable; a mean service time per
    server is its estimate). The pool has served for ``age_us`` since, so that much of the
    wait is gone (floored at 0)."""
    if busy < servers or servers <= 0:
        return 0.0
    wait = (queued_work_us + mean_service_us) / servers - age_us
    return wait if wait > 0.0 else 0.0


def featurize(task: np.ndarray, telemetry: np.ndarray) -> np.ndarray:
    """Observation (float32, shape (7 + K*19,)) from a task (5,) and its telemetry (K, 16).

    Validates shapes and finiteness (``ValueError`` names the problem); negative measurements
    are treated as 0 and an out-of-range tier as an empty slot's. This is the entry point for
    untrusted input such as service requests.
    """
    task = np.asarray(task, dtype=np.float64)
    tel = np.asarray(telemetry, dtype=np.float64)
    if task.shape != (len(TASK_FIELDS),) or tel.ndim != 2 or tel.shape[1] != len(TELEMETRY_FIELDS):
        raise ValueError(
            f"featurize expects task shape ({len(TASK_FIELDS)},) and telemetry shape "
            f"(K, {len(TELEMETRY_FIELDS)}); got {task.shape} and {tel.shape}"
        )
    if not (np.isfinite(task).all() and np.isfinite(tel).all()):
        raise ValueError("task and telemetry must be finite")
    tier = tel[:, TIER_COLUMN].copy()
    task, tel = np.maximum(task, 0.0), np.maximum(tel, 0.0)
    tel[:, TIER_COLUMN] = np.where((tier >= 0) & (tier < len(SITE_TIERS)), np.floor(tier), -1)
    return featurize_rows(task.tolist(), tel.tolist())


_EMPTY_CANDIDATE = (0.0,) * _N_CAND
_LOG10 = math.log10


def featurize_rows(task: Sequence[float], rows: Sequence[Sequence[float]]) -> np.ndarray:
    """``featurize`` on plain sequences, without input checks: for inputs the engine produced
    (finite, non-negative, tier in {-1, 0, 1, 2}). Plain Python arithmetic, because at K ~ 8 it
    is faster than numpy's per-call overhead; ``featurize`` delegates here, so there is one
    implementation."""
    cls, up_bytes, down_bytes, compute_us, deadline_us = task
    inv = 1.0 / deadline_us if deadline_us > 1.0 else 1.0
    out = [0.0, 0.0, 0.0]
    if 0 <= cls < len(CLASS_NAMES):
        out[int(cls)] = 1.0
    out += (_LOG10(1.0 + up_bytes) / 7.0, _LOG10(1.0 + down_bytes) / 7.0,
            _LOG10(1.0 + compute_us) / 5.0, _LOG10(1.0 + deadline_us) / 5.0)  # fmt: skip
    for (valid, rtt, ser, up, down, comp, servers, tier, viol, age, busy, queued, qwork, msvc,
         own, own_work) in rows:  # fmt: skip
        if valid < 0.5:
            out += _EMPTY_CANDIDATE
            continue
        cwait = compute_wait_estimate_us(busy, qwork, msvc, servers, age)
        per_server = 1.0 / servers if servers > 0 else 0.0
        rtt, ser, up, down, cwait, comp = (
            rtt * inv, ser * inv, up * inv, down * inv, cwait * inv, comp * inv,
        )  # fmt: skip
        est = rtt + ser + up + down + cwait + comp
        out += (1.0, rtt, ser, up, down, cwait, comp, est, 1.0 if est <= 1.0 else 0.0,
                _LOG10(1.0 + servers) / 3.0, 1.0 if tier == 0 else 0.0,
                1.0 if tier == 1 else 0.0, 1.0 if tier == 2 else 0.0,
                viol if viol < 1.0 else 1.0, age * inv, busy * per_server,
                queued * per_server, own * per_server,
                own_work * per_server * inv)  # fmt: skip
    obs = np.array(out, dtype=np.float32)
    np.minimum(obs, FEATURE_CLIP, out=obs)
    return obs

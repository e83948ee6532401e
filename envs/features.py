"""The observation featuriser, shared by the environment and the scheduler service.

numpy only: the scheduler service imports this module without gymnasium, torch or the engine,
so training and serving build observations with the very same code.

Inputs (what a real scheduler can know or measure when a task arrives):

* ``task``: float array of shape (5,) with columns ``TASK_FIELDS``:
  class index (into ``CLASS_NAMES``), uplink payload (bytes), downlink payload (bytes),
  compute demand on a speed-1.0 server (us), deadline (us).
* ``telemetry``: float array of shape (K, 10) with columns ``TELEMETRY_FIELDS``, one row per
  candidate (compute site, path) slot, in the candidate order documented in
  ``envs/network.py`` (slot = site rank * paths + path rank; nearest site first):

  ============== ==========================================================================
  valid          1 if the slot is feasible (candidate exists, right resource, all elements up)
  base_rtt_us    propagation + forwarding along the path, both directions (us)
  serialisation_us  this task's payloads over the path's links, up + down (us)
  up_backlog_us  sum over the uplink hops of the link's current transmit backlog (us)
  down_backlog_us  same for the downlink hops (us)
  compute_wait_us  time until the site's earliest server of the resource frees (us)
  compute_us     this task's service time at that site (demand / site speed) (us)
  servers        servers in the site's pool
  tier           0 on_prem, 1 edge, 2 city, -1 empty slot
  recent_violation  the site's moving average of deadline violations (0..1)
  ============== ==========================================================================

Output: float32 vector of length ``observation_size(K)`` = 7 + K * 14, all values in
[0, FEATURE_CLIP]. Layout: ``TASK_FEATURES`` then, per slot, ``CANDIDATE_FEATURES``. Latency terms
are divided by the task's deadline, so one policy reads every class on the same scale.
Empty slots are all zeros.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

FEATURES_VERSION = 1
"""Bump whenever the layout or scaling changes; exported policies record it."""

CLASS_NAMES = ("robot_sync", "agv_dispatch", "vision_qa")
SITE_TIERS = ("on_prem", "edge", "city")
TASK_FIELDS = ("cls", "up_bytes", "down_bytes", "compute_us", "deadline_us")
TELEMETRY_FIELDS = (
    "valid", "base_rtt_us", "serialisation_us", "up_backlog_us", "down_backlog_us",
    "compute_wait_us", "compute_us", "servers", "tier", "recent_violation",
)  # fmt: skip
EMPTY_TELEMETRY_ROW = (0.0,) * 8 + (-1.0, 0.0)
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
)  # fmt: skip
FEATURE_CLIP = 10.0
"""Ratios to the deadline are clipped to [0, FEATURE_CLIP]."""

# Column indices, for policies that read the observation.
EST_LATENCY = CANDIDATE_FEATURES.index("est_latency_per_deadline")
RTT = CANDIDATE_FEATURES.index("rtt_per_deadline")
VALID = CANDIDATE_FEATURES.index("valid")
_N_TASK, _N_CAND = len(TASK_FEATURES), len(CANDIDATE_FEATURES)


def observation_size(k: int) -> int:
    """Length of the observation vector for K candidate slots."""
    return _N_TASK + k * _N_CAND


def candidate_matrix(obs: np.ndarray, k: int) -> np.ndarray:
    """View the per-candidate block of ``obs`` (shape (..., D)) as shape (..., K, 14)."""
    obs = np.asarray(obs)
    return obs[..., _N_TASK:].reshape(*obs.shape[:-1], k, _N_CAND)


def estimated_latency_us(telemetry: np.ndarray) -> np.ndarray:
    """No-interference end-to-end latency estimate per slot (us), shape (K,)."""
    t = telemetry
    return t[:, 1] + t[:, 2] + t[:, 3] + t[:, 4] + t[:, 5] + t[:, 6]


def featurize(task: np.ndarray, telemetry: np.ndarray) -> np.ndarray:
    """Observation (float32, shape (7 + K*14,)) from a task (5,) and its telemetry (K, 10).

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
    tier = tel[:, 8].copy()
    task, tel = np.maximum(task, 0.0), np.maximum(tel, 0.0)
    tel[:, 8] = np.where((tier >= 0) & (tier < len(SITE_TIERS)), np.floor(tier), -1)
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
    for valid, rtt, ser, up, down, cwait, comp, servers, tier, viol in rows:
        if valid < 0.5:
            out += _EMPTY_CANDIDATE
            continue
        rtt, ser, up, down, cwait, comp = (
            rtt * inv,
            ser * inv,
            up * inv,
            down * inv,
            cwait * inv,
            comp * inv,
        )
        est = rtt + ser + up + down + cwait + comp
        out += (1.0, rtt, ser, up, down, cwait, comp, est, 1.0 if est <= 1.0 else 0.0,
                _LOG10(1.0 + servers) / 3.0, 1.0 if tier == 0 else 0.0,
                1.0 if tier == 1 else 0.0, 1.0 if tier == 2 else 0.0,
                viol if viol < 1.0 else 1.0)  # fmt: skip
    obs = np.array(out, dtype=np.float32)
    np.minimum(obs, FEATURE_CLIP, out=obs)
    return obs

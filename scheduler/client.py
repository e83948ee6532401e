"""Build ``/v1/decide`` requests from arrays, and a small blocking client (httpx).

``build_request`` turns the featuriser's inputs (a task (5,) in ``TASK_FIELDS``, telemetry
(K, 16) in ``TELEMETRY_FIELDS``, a mask (K,)) into the service's JSON request, so anything that
can call ``featurize`` (the simulator's ``engine.task_vector`` / ``engine.telemetry`` /
``engine.mask``, or a real network's measurements) can also ask the service.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from millinet.envs.features import CLASS_NAMES, SITE_TIERS, TELEMETRY_FIELDS

_NUMERIC = (
    "base_rtt_us", "serialisation_us", "up_backlog_us", "down_backlog_us", "compute_us",
    "recent_violation", "report_age_us", "queued_work_us", "mean_service_us", "own_work_us",
)  # fmt: skip
_COUNTS = ("servers", "busy_servers", "queued_tasks", "own_dispatches")
_COL = {name: i for i, name in enumerate(TELEMETRY_FIELDS)}


def build_request(
    task: np.ndarray,
    telemetry: np.ndarray,
    mask: np.ndarray | None = None,
    sites: Sequence[str | None] | None = None,
    paths: Sequence[str | None] | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """The JSON body of ``POST /v1/decide``. Rows with tier < 0 are empty slots (null);
    ``valid`` is ``mask[k]`` (default: the telemetry's valid column); ``sites``/``paths`` are
    optional per-slot identifiers echoed back for the chosen slot."""
    task = np.asarray(task, dtype=float)
    tel = np.asarray(telemetry, dtype=float)
    valid = tel[:, _COL["valid"]] > 0.5 if mask is None else np.asarray(mask, dtype=bool)
    candidates: list[dict | None] = []
    for k, row in enumerate(tel):
        tier = int(row[_COL["tier"]])
        if tier < 0:
            candidates.append(None)
            continue
        cand: dict[str, Any] = {"valid": bool(valid[k])}
        if sites is not None and sites[k] is not None:
            cand["site"] = sites[k]
        if paths is not None and paths[k] is not None:
            cand["path"] = paths[k]
        for name in _NUMERIC:
            cand[name] = float(row[_COL[name]])
        for name in _COUNTS:
            cand[name] = int(row[_COL[name]])
        cand["tier"] = SITE_TIERS[tier]
        candidates.append(cand)
    body: dict[str, Any] = {
        "task": {
            "cls": CLASS_NAMES[int(task[0])],
            "up_bytes": float(task[1]),
            "down_bytes": float(task[2]),
            "compute_us": float(task[3]),
            "deadline_us": float(task[4]),
        },
        "candidates": candidates,
    }
    if request_id is not None:
        body["request_id"] = request_id
    return body


class SchedulerClient:
    """Blocking client of a running scheduler service (one keep-alive connection)."""

    def __init__(self, base_url: str, timeout_s: float = 5.0) -> None:
        import httpx

        self._http = httpx.Client(base_url=base_url, timeout=timeout_s)

    def decide(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/decide; raises ``httpx.HTTPStatusError`` on a 4xx/5xx answer."""
        resp = self._http.post("/v1/decide", json=body)
        resp.raise_for_status()
        return resp.json()

    def decide_batch(self, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        resp = self._http.post("/v1/decide/batch", json={"requests": bodies})
        resp.raise_for_status()
        return resp.json()["decisions"]

    def health(self) -> dict[str, Any]:
        resp = self._http.get("/healthz")
        resp.raise_for_status()
        return resp.json()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SchedulerClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

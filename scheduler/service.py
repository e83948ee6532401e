"""The reference scheduler service: an exported policy behind HTTP (FastAPI + uvicorn).

Endpoints (OpenAPI at ``/openapi.json``, browsable at ``/docs``):

* ``POST /v1/decide``: one task and its candidates -> the chosen slot, the candidate's
  identifiers (``site``, ``path``, as given), its score (policy probability), raw logit and the
  model version;
* ``POST /v1/decide/batch``: up to ``max_batch`` such requests, decided in one inference call;
* ``GET /healthz``: liveness, with the model version and the count of fallbacks (decisions
  where the model's answer was unusable and the nearest feasible candidate was chosen);
* ``GET /v1/model``: what was loaded (manifest summary: version, K, classes, training config,
  metrics).

A request gives the task in ``TASK_FIELDS`` units and, per candidate slot in the order the
policy was trained on (nearest site first, then its paths), what the scheduler knows of it in
``TELEMETRY_FIELDS`` (``millinet.envs.features``): the static path and site facts, the link
backlogs and the pool measurements of the latest reports with the pool report's age, and the
scheduler's own dispatches since that report: per candidate (``own_dispatches``,
``own_work_us``), plus those of the request's ``own_dispatch_log`` (recent dispatches by site)
that are newer than the candidate's report, so an operator can send either its counts or its
log. ``valid`` is the
feasibility of the slot; ``null`` marks an empty slot and fewer than K candidates are padded
with empty slots. Every field is
typed and bounded, unknown fields are refused, so a malformed request gets 4xx with the
offending field and reason (422, also for a body that is not JSON), or 413 for a body over
``max_body_bytes``; never 5xx.

Every request is logged on the ``millinet.scheduler`` logger: method, path, status, duration.
This module imports numpy, onnxruntime (via the runtime), FastAPI and pydantic; never torch.
"""

import json
import logging
import math
import time
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from millinet.envs.features import (
    EMPTY_TELEMETRY_ROW,
    SITE_TIERS,
    TASK_FIELDS,
    featurize_rows,
)
from millinet.scheduler.runtime import FALLBACK_REASONS, ExportedPolicy, load_policy_folder

log = logging.getLogger("millinet.scheduler")

MAX_US = 1e9
"""Largest accepted time value (us), 1000 s: anything beyond is a unit error."""
MAX_BYTES = 1e10
"""Largest accepted payload (bytes)."""
MAX_ID = 128
"""Longest accepted identifier string."""
MAX_LOG = 10_000
"""Most entries accepted in a request's ``own_dispatch_log``."""
DEFAULT_MAX_BATCH = 256
DEFAULT_MAX_BODY = 4 << 20

_Us = Annotated[float, Field(ge=0.0, le=MAX_US, allow_inf_nan=False)]
_Bytes = Annotated[float, Field(ge=0.0, le=MAX_BYTES, allow_inf_nan=False)]
_Count = Annotated[
    int,
    Field(ge=0, le=1_000_000),
    # JSON Schema counts 16.0 as an integer; strict pydantic would not.
    BeforeValidator(lambda v: int(v) if isinstance(v, float) and v.is_integer() else v),
]
_Id = Annotated[str | None, Field(default=None, max_length=MAX_ID)]
_STRICT = ConfigDict(strict=True, extra="forbid")
_TIER_INDEX = {name: i for i, name in enumerate(SITE_TIERS)}


class Candidate(BaseModel):
    """What the scheduler knows of one (compute site, path) candidate slot, in
    ``TELEMETRY_FIELDS`` (see ``millinet.envs.features`` for each field's meaning)."""

    model_config = _STRICT
    site: _Id = None
    path: _Id = None
    valid: bool = Field(description="the slot is feasible: right resource, every element up")
    base_rtt_us: _Us = Field(description="propagation + forwarding, both directions (us)")
    serialisation_us: _Us = Field(description="this task's payloads over the path (us)")
    up_backlog_us: _Us = Field(
        0.0, description="uplink hops' reported transmit backlogs, each aged to now, summed (us)"
    )
    down_backlog_us: _Us = Field(0.0, description="same for the downlink hops (us)")
    compute_us: _Us = Field(description="this task's service time at the site (us)")
    servers: _Count = Field(description="servers in the site's pool")
    tier: Literal[SITE_TIERS] = Field(description="site tier")  # type: ignore[valid-type]
    recent_violation: float = Field(
        0.0, ge=0.0, le=1.0, allow_inf_nan=False, description="site's recent violation share"
    )
    report_age_us: _Us = Field(0.0, description="age of the pool's latest report (us)")
    busy_servers: _Count = Field(0, description="busy servers in that report")
    queued_tasks: _Count = Field(0, description="tasks queued at the pool in that report")
    queued_work_us: _Us = Field(0.0, description="their declared service demand, summed (us)")
    mean_service_us: _Us = Field(0.0, description="the pool's recent mean service demand (us)")
    own_dispatches: _Count = Field(
        0, description="tasks this scheduler sent to the site since the report"
    )
    own_work_us: _Us = Field(0.0, description="their service demand, summed (us)")


class OwnDispatch(BaseModel):
    """One recent dispatch of this scheduler, for ``own_dispatch_log``."""

    model_config = _STRICT
    site: str = Field(max_length=MAX_ID, description="the site it was sent to (a candidate's)")
    age_us: _Us = Field(description="how long ago it was sent (us)")
    work_us: _Us = Field(description="its service demand at that site (us)")


class Task(BaseModel):
    """The task to place, in ``TASK_FIELDS`` units."""

    model_config = _STRICT
    cls: str = Field(description="task class name")
    up_bytes: _Bytes
    down_bytes: _Bytes
    compute_us: _Us = Field(description="compute demand on a speed-1.0 server (us)")
    deadline_us: float = Field(gt=0.0, le=MAX_US, allow_inf_nan=False)


class Decision(BaseModel):
    """The choice. ``slot`` is None (and ``feasible`` false) when no candidate is feasible:
    reject the task. ``score``: the policy's probability of the chosen slot. ``decided_by``:
    ``nearest`` for a task class the policy was not trained to decide (first feasible slot, as
    in its training environment; no score); ``fallback`` when the model's answer was unusable
    (an action outside 0..K-1 or on an infeasible candidate, a NaN score, malformed outputs, a
    failed inference): the nearest feasible candidate is chosen instead, ``fallback_reason``
    says why, and ``/healthz`` counts it; else ``policy``."""

    slot: int | None
    feasible: bool
    site: str | None
    path: str | None
    score: float | None
    logit: float | None
    decided_by: Literal["policy", "nearest", "fallback"]
    fallback_reason: Literal[FALLBACK_REASONS] | None = None  # type: ignore[valid-type]
    model_version: str
    request_id: str | None


class BatchDecision(BaseModel):
    decisions: list[Decision]
    model_version: str


class Health(BaseModel):
    status: Literal["ok"]
    model_version: str
    K: int
    uptime_s: float
    fallbacks: dict[str, int] = Field(
        description="decisions since start where the model's answer was unusable, by reason"
    )


class ErrorMessage(BaseModel):
    detail: str


def create_app(
    policy: ExportedPolicy,
    *,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_body_bytes: int = DEFAULT_MAX_BODY,
) -> FastAPI:
    """The service's ASGI app for a loaded policy (request models are sized by its K)."""
    K = policy.K
    classes = tuple(policy.classes)
    class_index = {name: i for i, name in enumerate(classes)}
    version = policy.model_version
    started = time.monotonic()

    class TaskIn(Task):
        cls: Literal[classes] = Field(description="task class")  # type: ignore[valid-type]

    class DecideRequest(BaseModel):
        """One task and its K candidate slots (fewer are padded with empty slots)."""

        model_config = _STRICT
        request_id: _Id = None
        task: TaskIn
        candidates: list[Candidate | None] = Field(min_length=1, max_length=K)
        own_dispatch_log: list[OwnDispatch] | None = Field(
            None,
            max_length=MAX_LOG,
            description="recent dispatches of this scheduler: those to a candidate's site "
            "newer than its report add to its own_dispatches / own_work_us",
        )

    class BatchRequest(BaseModel):
        model_config = _STRICT
        requests: list[DecideRequest] = Field(min_length=1, max_length=max_batch)

    def observe(req: DecideRequest) -> tuple[np.ndarray, list[bool]]:
        """Observation and mask of a validated request. Validation guarantees what
        ``featurize_rows`` needs (finite, non-negative, tier in {-1, 0, 1, 2})."""
        t = req.task
        task = (class_index[t.cls], t.up_bytes, t.down_bytes, t.compute_us, t.deadline_us)
        rows: list[tuple] = []
        mask: list[bool] = []
        log_ = req.own_dispatch_log
        for c in req.candidates:
            if c is None:
                rows.append(EMPTY_TELEMETRY_ROW)
                mask.append(False)
                continue
            own, own_work = c.own_dispatches, c.own_work_us
            if log_ and c.site is not None:  # sent to this site after its report was measured
                newer = [d.work_us for d in log_ if d.site == c.site and d.age_us < c.report_age_us]
                own, own_work = own + len(newer), own_work + sum(newer)
            rows.append((
                1.0 if c.valid else 0.0, c.base_rtt_us, c.serialisation_us, c.up_backlog_us,
                c.down_backlog_us, c.compute_us, c.servers, _TIER_INDEX[c.tier],
                c.recent_violation, c.report_age_us, c.busy_servers, c.queued_tasks,
                c.queued_work_us, c.mean_service_us, own, own_work,
            ))  # fmt: skip
            mask.append(c.valid)
        pad = K - len(rows)
        return featurize_rows(task, rows + [EMPTY_TELEMETRY_ROW] * pad), mask + [False] * pad

    def answer(req: DecideRequest, d) -> Decision:
        cand = req.candidates[d.slot] if d.slot is not None else None
        return Decision(
            slot=d.slot,
            feasible=d.slot is not None,
            site=cand.site if cand is not None else None,
            path=cand.path if cand is not None else None,
            score=d.score,
            logit=d.logit,
            decided_by=d.decided_by,
            fallback_reason=d.fallback,
            model_version=version,
            request_id=req.request_id,
        )

    app = SchedulerApp(
        title="millinet scheduler",
        version=version,
        description=__doc__.split("\n\n")[0]
        + f" Model {version}, K = {K}; task fields {list(TASK_FIELDS)}.",
    )
    err = {413: {"model": ErrorMessage, "description": "request body too large"}}

    def decide_one(req: DecideRequest) -> Decision:
        obs, mask = observe(req)
        cls = [class_index[req.task.cls]]
        return answer(req, policy.decide_observations(obs[None], np.array([mask]), cls)[0])

    def decide_many(batch: BatchRequest) -> BatchDecision:
        pairs = [observe(r) for r in batch.requests]
        obs = np.stack([p[0] for p in pairs])
        cls = [class_index[r.task.cls] for r in batch.requests]
        out = policy.decide_observations(obs, np.array([p[1] for p in pairs]), cls)
        return BatchDecision(
            decisions=[answer(r, d) for r, d in zip(batch.requests, out)], model_version=version
        )

    @app.post("/v1/decide", response_model=Decision, responses=err)
    async def decide(req: DecideRequest) -> Decision:
        """Place one task: the chosen candidate slot, its identifiers and score."""
        return decide_one(req)

    @app.post("/v1/decide/batch", response_model=BatchDecision, responses=err)
    async def decide_batch(batch: BatchRequest) -> BatchDecision:
        """Place up to ``max_batch`` tasks in one inference call (order preserved)."""
        return decide_many(batch)

    @app.get("/healthz", response_model=Health)
    async def healthz() -> Health:
        """Liveness and the loaded model's version."""
        return Health(
            status="ok",
            model_version=version,
            K=K,
            uptime_s=time.monotonic() - started,
            fallbacks=dict(policy.fallbacks),
        )

    @app.get("/v1/model")
    async def model_info() -> dict[str, Any]:
        """The loaded model: version, K, classes, observation fields, training config, metrics."""
        return policy.summary()

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes the offending input, which may be inf, nan or bytes that
        # cannot be rendered as JSON: render it safely.
        return JSONResponse({"detail": _error_detail(exc.errors())}, 422)

    @app.exception_handler(ValueError)
    async def value_error(_: Request, exc: ValueError) -> JSONResponse:
        # Same shape as FastAPI's own 422 (HTTPValidationError in the OpenAPI spec).
        detail = [{"loc": ["body"], "msg": str(exc), "type": "value_error"}]
        return JSONResponse({"detail": detail}, status_code=422)

    app.front_door = FrontDoor(
        app.handle_with_fastapi,
        max_body_bytes=max_body_bytes,
        fast_routes={
            "/v1/decide": (DecideRequest, decide_one),
            "/v1/decide/batch": (BatchRequest, decide_many),
        },
    )
    return app


class SchedulerApp(FastAPI):
    """FastAPI with :class:`FrontDoor` outermost: every request passes the front door first,
    which answers the decide routes itself and hands the rest to FastAPI's middleware stack."""

    front_door: "FrontDoor"

    async def __call__(self, scope, receive, send) -> None:
        await self.front_door(scope, receive, send)

    async def handle_with_fastapi(self, scope, receive, send) -> None:
        await super().__call__(scope, receive, send)


def _json_safe(value: Any, depth: int = 0) -> Any:
    """``value`` as plain JSON data, whatever the input was: non-finite floats and odd objects
    become strings, bytes are decoded leniently, long strings are cut."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        return value if len(value) <= 200 else value[:200] + "..."
    if depth < 8 and isinstance(value, dict):
        return {str(k): _json_safe(v, depth + 1) for k, v in value.items()}
    if depth < 8 and isinstance(value, (list, tuple)):
        return [_json_safe(v, depth + 1) for v in value]
    return _json_safe(str(value), depth + 1)


def _error_detail(errors: list[dict], prefix: tuple = ()) -> list[dict]:
    """FastAPI's 422 ``detail`` list for pydantic errors (type, loc, msg, input, ctx)."""
    out = []
    for e in errors:
        item = {"type": e["type"], "loc": [*prefix, *e["loc"]], "msg": e["msg"]}
        if "input" in e:
            item["input"] = e["input"]
        if e.get("ctx"):
            item["ctx"] = e["ctx"]
        out.append(item)
    return _json_safe(out)


class FrontDoor:
    """ASGI middleware in front of the FastAPI app (outermost, see :class:`SchedulerApp`).

    * refuses bodies over ``max_body_bytes`` with 413;
    * logs every request on ``millinet.scheduler`` (method, path, status, duration in ms);
    * answers ``POST`` on the ``fast_routes`` itself: the same pydantic request model parses and
      validates the raw body in one step (``model_validate_json``), the same handler as the
      FastAPI route decides, and errors have FastAPI's 422 shape. This skips FastAPI's
      per-request routing and dependency machinery, which costs more than the decision itself;
      the OpenAPI spec is still FastAPI's, generated from the very same models.
    """

    def __init__(self, app, max_body_bytes: int, fast_routes: dict) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.fast_routes = fast_routes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 0

        async def send_logged(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            body, too_large = await self._read_body(receive)
            if too_large:
                msg = {"detail": f"request body larger than {self.max_body} bytes"}
                return await _send_json(send_logged, 413, msg)
            route = self.fast_routes.get(scope["path"]) if scope["method"] == "POST" else None
            if route is not None:
                return await self._fast(scope, body, route, send_logged)
            replayed = False

            async def replay():
                nonlocal replayed
                if replayed:
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            await self.app(scope, replay, send_logged)
        finally:
            log.info(
                "%s %s %d %.3f ms",
                scope.get("method"),
                scope.get("path"),
                status,
                (time.perf_counter() - start) * 1e3,
            )

    async def _fast(self, scope, body: bytes, route, send) -> None:
        model, handler = route
        if not _is_json(scope):
            detail = [
                {
                    "type": "content_type",
                    "loc": ["body"],
                    "msg": "Content-Type must be application/json",
                    "input": None,
                }
            ]
            return await _send_json(send, 422, {"detail": detail})
        try:
            request = model.model_validate_json(body)
        except ValidationError as exc:
            detail = _error_detail(exc.errors(include_url=False), ("body",))
            return await _send_json(send, 422, {"detail": detail})
        try:
            answer = handler(request)
        except ValueError as exc:
            detail = [{"loc": ["body"], "msg": str(exc), "type": "value_error"}]
            return await _send_json(send, 422, {"detail": detail})
        await _send_raw(send, 200, answer.model_dump_json().encode())

    async def _read_body(self, receive) -> tuple[bytes, bool]:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # client went away
                return b"".join(chunks), False
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return b"", True
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), False


def _is_json(scope) -> bool:
    """Whether the request's Content-Type is JSON (application/json or a +json type)."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or (
                media.startswith(b"application/") and media.endswith(b"+json")
            )
    return False


async def _send_json(send, status: int, payload: Any) -> None:
    await _send_raw(send, status, json.dumps(payload, allow_nan=False).encode())


async def _send_raw(send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def serve(
    folder: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    max_batch: int = DEFAULT_MAX_BATCH,
) -> None:
    """Load ``folder`` and serve it with uvicorn until interrupted."""
    import uvicorn

    policy = load_policy_folder(folder)
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log.info("serving %s (K = %d) on http://%s:%d", policy.model_version, policy.K, host, port)
    uvicorn.run(
        create_app(policy, max_batch=max_batch),
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,  # RequestLogAndLimit logs every request with its duration
    )

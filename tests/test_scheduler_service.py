"""``millinet serve`` as a real HTTP server on loopback: answers, 4xx on malformed input (fuzzed
with schemathesis), request log, no torch in the process, and a closed simulator loop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from _export_fixtures import shared_run

from millinet.envs.scenario import load_scenario
from millinet.envs.simulation import simulate
from millinet.experiments.bench.service_process import running_service
from millinet.scheduler.client import SchedulerClient, build_request
from millinet.scheduler.runtime import load_policy_folder

FUZZ_EXAMPLES = 60  # per operation and phase: ~450 cases


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return shared_run(tmp_path_factory)[1]


@pytest.fixture(scope="module")
def service(exported, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with running_service(exported, log_path=log) as svc:
        yield svc


CANDIDATE = {
    "site": "edge-1",
    "path": "access-0-1>agg-0>edge-1",
    "valid": True,
    "base_rtt_us": 180.0,
    "serialisation_us": 2.5,
    "up_backlog_us": 0.0,
    "down_backlog_us": 0.0,
    "compute_us": 60.0,
    "servers": 16,
    "tier": "edge",
    "recent_violation": 0.0,
    "report_age_us": 400.0,
    "busy_servers": 3,
    "queued_tasks": 0,
}
TASK = {"cls": "robot_sync", "up_bytes": 200, "down_bytes": 200, "compute_us": 60}
TASK["deadline_us"] = 1000.0
REQUEST = {
    "request_id": "r-1",
    "task": TASK,
    "candidates": [
        CANDIDATE,
        dict(CANDIDATE, site="city-0", tier="city", servers=64, base_rtt_us=320.0),
        None,
        dict(CANDIDATE, site="on-prem", tier="on_prem", servers=2, valid=False),
    ],
}


def test_decide_batch_health_and_model(service):
    with httpx.Client(base_url=service.url) as http:
        health = http.get("/healthz").json()
        assert health["status"] == "ok" and health["K"] == 8
        d = http.post("/v1/decide", json=REQUEST).json()
        assert d["slot"] in (0, 1) and d["feasible"] and d["request_id"] == "r-1"
        assert d["site"] == REQUEST["candidates"][d["slot"]]["site"]
        assert 0 < d["score"] <= 1 and d["model_version"] == health["model_version"]
        assert d["decided_by"] == "policy"
        batch = http.post("/v1/decide/batch", json={"requests": [REQUEST] * 3}).json()
        assert batch["decisions"] == [d] * 3
        none = http.post("/v1/decide", json=dict(REQUEST, candidates=[None, None])).json()
        assert none["slot"] is None and none["feasible"] is False
        model = http.get("/v1/model").json()
        assert model["training_config"]["env"]["horizon"] == 256
        spec = http.get("/openapi.json").json()
        assert {"/v1/decide", "/v1/decide/batch", "/healthz"} <= set(spec["paths"])


def with_task(**kw):
    return dict(REQUEST, task=dict(TASK, **kw))


def with_candidate(**kw):
    return dict(REQUEST, candidates=[dict(CANDIDATE, **kw)])


@pytest.mark.parametrize(
    ("body", "status", "where"),
    [
        (dict(REQUEST, task={"cls": "robot_sync"}), 422, "up_bytes"),
        (with_task(cls="teleport"), 422, "cls"),
        (with_task(deadline_us=0), 422, "deadline_us"),
        (with_task(up_bytes="200"), 422, "up_bytes"),
        (with_task(compute_us=1e12), 422, "compute_us"),
        (with_candidate(base_rtt_us=-1), 422, "base_rtt_us"),
        (with_candidate(tier="moon"), 422, "tier"),
        (with_candidate(servers=1.5), 422, "servers"),
        (with_candidate(valid=1), 422, "valid"),
        (with_candidate(recent_violation=2), 422, "recent_violation"),
        (with_candidate(extra_field=1), 422, "extra_field"),
        (dict(REQUEST, candidates=[CANDIDATE] * 9), 422, "candidates"),
        (dict(REQUEST, candidates=[]), 422, "candidates"),
        (b'{"task": {"cls": "robot_sync", "up_bytes": NaN', 422, "Invalid JSON"),
        (b'{"task": {"cls": "robot_sync", "up_bytes": 1e999}}', 422, "finite number"),
        (b"\xff\xfe", 422, "Invalid JSON"),
        (b"\xd3\x05\xd1\x05R\x90", 422, "Invalid JSON"),  # once a 500 (schemathesis)
        (b"", 422, "Invalid JSON"),
        ([1, 2, 3], 422, "Input should be an object"),
        (b"x" * (5 << 20), 413, "larger than"),
    ],
)
def test_malformed_requests_get_4xx_saying_what_is_wrong(service, body, status, where):
    kw = {"content": body} if isinstance(body, bytes) else {"json": body}
    resp = httpx.post(
        service.url + "/v1/decide", headers={"content-type": "application/json"}, **kw
    )
    assert resp.status_code == status, resp.text
    assert where in resp.text


def test_non_json_content_type_gets_422(service):
    resp = httpx.post(
        service.url + "/v1/decide",
        content=json.dumps(REQUEST),
        headers={"content-type": "text/plain"},
    )
    assert resp.status_code == 422 and "Content-Type must be application/json" in resp.text


def test_every_request_is_logged(service):
    httpx.post(service.url + "/v1/decide", json=REQUEST)
    httpx.post(service.url + "/v1/decide", json={})
    log = service.log_path.read_text()
    assert "POST /v1/decide 200" in log and "POST /v1/decide 422" in log
    assert "GET /healthz 200" in log


def test_server_process_has_no_torch_loaded(service):
    maps = Path(f"/proc/{service.pid}/maps")
    if not maps.exists():
        pytest.skip("needs Linux /proc")
    loaded = maps.read_text()
    assert "onnxruntime" in loaded  # the check can see shared libraries
    assert "libtorch" not in loaded and "/torch/" not in loaded


def test_schemathesis_finds_no_server_error(service, tmp_path):
    """Fuzz the OpenAPI spec of the running server (positive and negative cases, all checks)."""
    st = Path(sys.executable).with_name("schemathesis")
    report = tmp_path / "schemathesis.json"
    cmd = [
        str(st), "run", service.url + "/openapi.json", "--checks", "all",
        "--max-examples", str(FUZZ_EXAMPLES), "--seed", "7", "--workers", "2",
        "--report", "json", "--report-json-path", str(report),
    ]  # fmt: skip
    out = subprocess.run(  # cwd: schemathesis keeps a cache folder where it runs
        cmd,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
    )
    summary = json.loads(report.read_text())
    cases = summary["test_cases"]["generated"]
    print(f"\nschemathesis: {cases} cases, failures {summary['failures']}")
    assert out.returncode == 0, out.stdout[-4000:]
    assert summary["failures"] == [] and summary["errors"] == []
    assert summary["operations"]["tested"] == 4 and cases >= 300


SHIPPED = Path(__file__).resolve().parents[1] / "results" / "policies" / "ppo-privileged-load2x"
"""The committed policy (results/ppo_privileged.md): trained on 1 ms reports at 2x load."""


def closed_loop_local(folder: Path, scenario_name: str, duration: float, seed: int):
    """(scenario, the episode decided by ``folder``'s policy in process)."""
    scenario = load_scenario(scenario_name)
    policy = load_policy_folder(folder)

    def in_process(engine, arrival):
        d = policy.decide(
            engine.task_vector(arrival), engine.telemetry(arrival), engine.mask(arrival)
        )
        return 0 if d.slot is None else d.slot

    return scenario, simulate(scenario, in_process, duration, seed)


def closed_loop(url: str, folder: Path, scenario_name: str, duration: float, seed: int):
    """One episode decided by the service at ``url`` over HTTP and the same episode decided by
    ``folder``'s policy in process: (remote, local) simulation results."""
    scenario, local = closed_loop_local(folder, scenario_name, duration, seed)

    with SchedulerClient(url) as client:

        def over_http(engine, arrival):
            nodes = engine.net.topology.nodes
            slots = engine.candidates(arrival).slots
            sites = [None if c is None else nodes[c.site].name for c in slots]
            paths = [None if c is None else ">".join(nodes[n].name for n in c.path) for c in slots]
            body = build_request(
                engine.task_vector(arrival),
                engine.telemetry(arrival),
                engine.mask(arrival),
                sites=sites,
                paths=paths,
                request_id=str(arrival.task_id),
            )
            d = client.decide(body)
            assert d["request_id"] == str(arrival.task_id)
            if d["slot"] is None:
                return 0
            assert d["site"] == sites[d["slot"]] and d["path"] == paths[d["slot"]]
            return d["slot"]

        remote = simulate(scenario, over_http, duration, seed)
    return remote, local


def assert_same_episode(remote, local) -> None:
    assert np.array_equal(remote.records["slot"], local.records["slot"])
    assert np.array_equal(remote.records["status"], local.records["status"])
    assert json.dumps(remote.metrics, sort_keys=True) == json.dumps(local.metrics, sort_keys=True)
    print(
        f"\nclosed loop: {remote.records.size} tasks, slots used "
        f"{sorted(set(remote.records['slot'].tolist()))}, "
        f"violation_rate_1ms {remote.metrics['violation_rate_1ms']:.4f} (HTTP == in process)"
    )


def test_closed_loop_over_http_equals_in_process(service, exported):
    """A sunflower-metro episode decided by the service over HTTP gives the same records and
    metrics as the same exported policy called in process."""
    remote, local = closed_loop(service.url, exported, "sunflower-metro", 0.01, 11)
    assert remote.records.size > 300
    assert_same_episode(remote, local)


def test_shipped_policy_closed_loop_on_a_headroom_scenario(tmp_path):
    """The committed policy, served by `millinet serve` on loopback, decides a
    sunflower-metro-load2x episode (2x load, 1 ms reports to per-factory schedulers, each
    request carrying the scheduler's own dispatches) exactly as in process; its manifest
    records its training and test results."""
    manifest = json.loads((SHIPPED / "manifest.json").read_text())
    assert manifest["metrics"]["violation_rate_1ms"] is not None
    (bench,) = manifest["test_results"]["benchmarks"][:1]
    assert "sunflower-metro-load2x" in bench["test_sets"]
    assert manifest["telemetry"]["mode"] == "reported"
    with running_service(SHIPPED, log_path=tmp_path / "serve.log") as svc:
        remote, local = closed_loop(svc.url, SHIPPED, "sunflower-metro-load2x", 0.01, 5)
    assert remote.records.size > 500
    assert len(set(remote.records["slot"].tolist())) > 2  # it does spread the load
    assert_same_episode(remote, local)


def test_shipped_policy_is_a_policy_spec_of_evaluate_and_benchmark(tmp_path):
    """`millinet evaluate` and `millinet benchmark` take the committed folder as a policy, and
    the harness gets the same episode as the in-process runtime decides."""
    from millinet.experiments.cli import main
    from millinet.experiments.evaluation.harness import evaluate

    ev = evaluate("sunflower-metro-load2x", [str(SHIPPED)], [5], duration_s=0.01)
    (rate,) = ev.values(str(SHIPPED), "violation_rate_1ms")
    _, local = closed_loop_local(SHIPPED, "sunflower-metro-load2x", 0.01, 5)
    assert rate == pytest.approx(local.metrics["violation_rate_1ms"])
    suite = tmp_path / "one.yaml"
    suite.write_text(
        "name: one\nduration_s: 0.005\n"
        "seeds: {validation: {first: 0, count: 1}, test: {first: 0, count: 2}}\n"
        "scenarios: [{scenario: sunflower-metro-load2x, tag: headroom}]\n"
        "heuristics: [deadline-aware]\n"
    )
    out = tmp_path / "bench"
    args = ["benchmark", "--suite", str(suite), "--policy", str(SHIPPED), "--out", str(out)]
    assert main([*args, "--workers", "1", "--no-bound"]) == 0
    assert SHIPPED.name in (out / "leaderboard.md").read_text()

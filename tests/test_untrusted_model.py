"""The service never trusts the model (issue 18, class 4).

Deliberately broken ``policy.onnx`` graphs, built with ``onnx.helper`` and given the genuine
export's signature and manifest (checksum updated), answer with an action outside 0..K-1, a
negative one, an infeasible one, NaN scores, outputs of the wrong shape, or fail inside
onnxruntime. Every decision must still be a feasible slot (the nearest one), flagged
``decided_by="fallback"`` with its reason, and counted; over HTTP that is a 200 answer and a
count in ``/healthz``, never a 500 (schemathesis fuzzes the broken service too). Manifests with
a field of the wrong type (``model_version`` a dict ...) are refused at load.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from _export_fixtures import shared_run

from millinet.envs.engine import Engine
from millinet.envs.scenario import load_scenario
from millinet.experiments.bench.service_process import running_service
from millinet.scheduler.runtime import PolicyFolderError, load_policy_folder

EXPECTED = {
    "out_of_range": "action_out_of_range",
    "negative": "action_out_of_range",
    "masked": "action_masked",
    "nan_scores": "non_finite_output",
    "wrong_shape": "malformed_output",
    "fails_at_inference": "inference_error",
}


def broken_graph(k: int, d: int, kind: str) -> bytes:
    """A graph with the exported signature (observation (batch, d) float, mask (batch, k) bool
    -> action, logits, probs) whose answers are wrong in the way ``kind`` says (``mixed``:
    actions from -1 to K+1 that depend on the input, and NaN scores)."""
    from onnx import TensorProto, helper

    def const(name, value, dtype=TensorProto.INT64):
        vals = value if isinstance(value, list) else [value]
        return helper.make_node(
            "Constant", [], [name], value=helper.make_tensor(name, dtype, [len(vals)], vals)
        )

    nodes = [
        const("zero", 0), const("k", k), const("axis1", 1),
        helper.make_node("Slice", ["observation", "zero", "k", "axis1"], ["raw"]),
        const("nan", float("nan"), TensorProto.FLOAT),
        helper.make_node("Mul", ["raw", "nan"], ["nan_logits"]),
        helper.make_node("Cast", ["mask"], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Not", ["mask"], ["infeasible"]),
        helper.make_node("Cast", ["infeasible"], ["infeasiblef"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["observation", "axis1"], ["total"], keepdims=0),
        helper.make_node("Cast", ["total"], ["total_i"], to=TensorProto.INT64),
    ]  # fmt: skip
    logits = "nan_logits" if kind in ("nan_scores", "mixed") else "raw"
    if kind in ("out_of_range", "negative"):
        nodes += [
            const("far", k + 3 if kind == "out_of_range" else -1),
            helper.make_node("Mul", ["total_i", "zero"], ["zeros"]),
            helper.make_node("Add", ["zeros", "far"], ["action"]),
        ]
    elif kind == "masked":  # the first infeasible slot
        nodes.append(helper.make_node("ArgMax", ["infeasiblef"], ["action"], axis=1, keepdims=0))
    elif kind == "nan_scores":  # a feasible slot, NaN scores
        nodes.append(helper.make_node("ArgMax", ["maskf"], ["action"], axis=1, keepdims=0))
    elif kind == "wrong_shape":
        nodes.append(helper.make_node("ArgMax", ["maskf"], ["action"], axis=1, keepdims=1))
    elif kind == "fails_at_inference":  # a column far beyond the observation's width
        nodes += [
            const("far_column", 10 * d),
            helper.make_node("Gather", ["observation", "far_column"], ["bad"], axis=1),
            helper.make_node("ArgMax", ["bad"], ["action"], axis=1, keepdims=0),
        ]
    else:  # mixed
        nodes += [
            const("span", k + 3), const("one", 1),
            helper.make_node("Mod", ["total_i", "span"], ["wrapped"]),
            helper.make_node("Sub", ["wrapped", "one"], ["action"]),
        ]  # fmt: skip
    nodes += [
        helper.make_node("Identity", [logits], ["logits"]),
        helper.make_node("Softmax", [logits], ["probs"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "broken",
        [
            helper.make_tensor_value_info("observation", TensorProto.FLOAT, ["batch", d]),
            helper.make_tensor_value_info("mask", TensorProto.BOOL, ["batch", k]),
        ],
        [
            helper.make_tensor_value_info("action", TensorProto.INT64, None),
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", k]),
            helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", k]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString()


def broken_folder(genuine: Path, dst: Path, kind: str) -> Path:
    """The genuine export with its graph replaced by a broken one (manifest checksum
    updated: the folder is well-formed, only the model lies)."""
    from millinet.scheduler.manifest import sha256_file

    shutil.copytree(genuine, dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    k, d = manifest["K"], manifest["observation"]["size"]
    (dst / "policy.onnx").write_bytes(broken_graph(k, d, kind))
    manifest["model"]["sha256"] = sha256_file(dst / "policy.onnx")
    (dst / "manifest.json").write_text(json.dumps(manifest))
    return dst


@pytest.fixture(scope="module")
def genuine(tmp_path_factory):
    return shared_run(tmp_path_factory)[1]


@pytest.fixture(scope="module")
def samples():
    """(task, telemetry, mask) of 200 arrivals, some with infeasible candidates (a fault)."""
    scenario = load_scenario(
        {"extends": "sunflower-metro",
         "faults": {"scheduled": [{"element": "agg-0-edge", "down_at_s": 0.0}]}}
    )  # fmt: skip
    engine = Engine(scenario, 3)
    out = []
    for _ in range(200):
        a = engine.next_arrival()
        mask = engine.mask(a).copy()
        out.append((engine.task_vector(a), engine.telemetry(a), mask))
        engine.dispatch(a, int(np.flatnonzero(mask)[0]) if mask.any() else 0)
    return out


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_unusable_answers_fall_back_to_the_nearest_feasible_slot(genuine, tmp_path, samples, kind):
    policy = load_policy_folder(broken_folder(genuine, tmp_path / kind, kind))
    decisions = [policy.decide(t, tel, m) for t, tel, m in samples]
    batch = policy.decide_batch(*zip(*samples))
    # the "masked" graph can only pick an infeasible slot when there is one
    broken = [m.any() and (kind != "masked" or not m.all()) for _, _, m in samples]
    assert sum(broken) >= 20
    fallbacks = 0
    for (task, tel, mask), d, b, lies in zip(samples, decisions, batch, broken):
        assert d == b
        assert d.slot is None if not mask.any() else mask[d.slot]  # always a feasible slot
        if lies and policy.decides(task[0]):
            assert d.decided_by == "fallback" and d.fallback == EXPECTED[kind], d
            feasible = np.flatnonzero(mask)  # the nearest rule: least propagation
            assert d.slot == feasible[np.argmin(tel[feasible, 1])] and d.score is None
            fallbacks += 1
        else:
            assert d.decided_by != "fallback"
    assert policy.fallbacks[EXPECTED[kind]] == 2 * fallbacks  # decide and decide_batch
    assert sum(policy.fallbacks.values()) == 2 * fallbacks
    task, tel, mask = next(s for s in samples if s[2].any())
    from millinet.envs.features import featurize

    assert mask[policy.act(featurize(task, tel), mask)]


def test_the_genuine_model_never_falls_back(genuine, samples):
    policy = load_policy_folder(genuine)
    for task, tel, mask in samples:
        d = policy.decide(task, tel, mask)
        assert d.decided_by != "fallback" and (d.slot is None or mask[d.slot])
    assert sum(policy.fallbacks.values()) == 0


REQUEST = {
    "task": {"cls": "robot_sync", "up_bytes": 200, "down_bytes": 200, "compute_us": 60,
             "deadline_us": 1000},
    "candidates": [
        {"site": "edge-1", "valid": False, "base_rtt_us": 180, "serialisation_us": 2.5,
         "compute_us": 60, "servers": 16, "tier": "edge"},
        {"site": "city-0", "valid": True, "base_rtt_us": 320, "serialisation_us": 2.5,
         "compute_us": 40, "servers": 64, "tier": "city"},
    ],
}  # fmt: skip


def test_a_broken_model_behind_http_gives_flagged_fallbacks_and_no_server_error(genuine, tmp_path):
    """The ``mixed`` graph (actions -1..K+1 varying with the input, NaN scores) behind the real
    server: answers are 200 with a feasible slot, ``/healthz`` counts the fallbacks, and a
    schemathesis run against it finds no server error and no schema violation."""
    folder = broken_folder(genuine, tmp_path / "mixed", "mixed")
    with running_service(folder, log_path=tmp_path / "serve.log") as svc:
        for i in range(6):
            body = json.loads(json.dumps(REQUEST))
            body["task"]["up_bytes"] = 200 + 997 * i  # moves the broken action around
            r = httpx.post(svc.url + "/v1/decide", json=body, timeout=10)
            assert r.status_code == 200, r.text
            d = r.json()
            assert d["slot"] == 1 and d["site"] == "city-0" and d["decided_by"] == "fallback"
            assert d["fallback_reason"] in ("action_out_of_range", "action_masked",
                                            "non_finite_output")  # fmt: skip
        batch = {"requests": [REQUEST] * 5}
        r = httpx.post(svc.url + "/v1/decide/batch", json=batch, timeout=10)
        assert r.status_code == 200 and {d["slot"] for d in r.json()["decisions"]} == {1}
        health = httpx.get(svc.url + "/healthz", timeout=10).json()
        assert sum(health["fallbacks"].values()) == 11, health
        report = tmp_path / "schemathesis.json"
        st = Path(sys.executable).with_name("schemathesis")
        cmd = [
            str(st), "run", svc.url + "/openapi.json", "--checks", "all",
            "--max-examples", "25", "--seed", "18", "--workers", "2",
            "--report", "json", "--report-json-path", str(report),
        ]  # fmt: skip
        out = subprocess.run(
            cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path,
            env={**os.environ, "NO_COLOR": "1"},
        )  # fmt: skip
        summary = json.loads(report.read_text())
        print(f"\nschemathesis (broken model): {summary['test_cases']['generated']} cases")
        assert out.returncode == 0, out.stdout[-4000:]
        assert summary["failures"] == [] and summary["errors"] == []
        assert summary["test_cases"]["generated"] >= 100
        assert sum(httpx.get(svc.url + "/healthz").json()["fallbacks"].values()) > 11
    assert " 500 " not in (tmp_path / "serve.log").read_text()


# --------------------------------------------------------------------------- manifest types
@pytest.mark.parametrize(
    "path, value, says",
    [
        ("model_version", {"v": 1}, "model_version must be a string, got dict"),
        ("model_version", "", "model_version must be 1..200 printable characters"),
        ("model_version", "x\n" * 3, "model_version must be 1..200 printable characters"),
        ("model_version", "v" * 201, "model_version must be 1..200 printable characters"),
        ("K", "8", "K must be an integer, got str"),
        ("K", True, "K must be an integer, got bool"),
        ("classes", "robot_sync", "classes must be a list of strings"),
        ("agent_classes", [1, 2], "agent_classes must be a list of strings"),
        ("metrics", [0.5], "metrics must be an object or null, got list"),
        ("source", "run-1", "source must be an object or null, got str"),
        ("training_config", 7, "training_config must be an object or null"),
        ("created_utc", 20260101, "created_utc must be a string, got int"),
        ("normalisation", None, "normalisation must be an object, got NoneType"),
        ("model.opset", 17.5, "model.opset must be an integer, got float"),
        ("model.sha256", None, "model.sha256 must be a string"),
        ("observation.size", "119", "observation.size must be an integer, got str"),
        ("observation.features_version", [1], "observation.features_version must be an int"),
        ("model.inputs", "x", "model.inputs must be an object, got str"),
    ],
)
def test_every_manifest_field_is_type_checked_at_load(genuine, tmp_path, path, value, says):
    folder = tmp_path / "policy"
    shutil.copytree(genuine, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    *parents, leaf = path.split(".")
    node = manifest
    for p in parents:
        node = node[p]
    node[leaf] = value
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PolicyFolderError, match="manifest.json: ") as err:
        load_policy_folder(folder)
    assert says in str(err.value) and "\n" not in str(err.value), err.value


def test_a_manifest_with_nan_is_refused(genuine, tmp_path):
    """NaN is not JSON: served as is, /v1/model could not be rendered (a 500)."""
    folder = tmp_path / "policy"
    shutil.copytree(genuine, folder)
    text = (folder / "manifest.json").read_text()
    manifest = json.loads(text)
    manifest["metrics"] = {"violation_rate_1ms": float("nan")}
    (folder / "manifest.json").write_text(json.dumps(manifest))  # writes the token NaN
    with pytest.raises(PolicyFolderError, match="not valid JSON .*NaN is not a JSON value"):
        load_policy_folder(folder)

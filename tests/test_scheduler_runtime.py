"""The scheduler runtime: refuses bad folders, decides like ``act``, imports no training stack."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from _export_fixtures import shared_run

from millinet.agents.policy import Policy
from millinet.envs.engine import Engine
from millinet.envs.features import featurize, observation_size
from millinet.envs.scenario import load_scenario
from millinet.experiments.cli import main as cli
from millinet.scheduler.runtime import PolicyFolderError, load_policy_folder

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return shared_run(tmp_path_factory)[1]


@pytest.fixture
def copy(exported, tmp_path):
    dst = tmp_path / "policy"
    shutil.copytree(exported, dst)
    return dst


def edit_manifest(folder: Path, **changes) -> None:
    path = folder / "manifest.json"
    m = json.loads(path.read_text())
    for dotted, value in changes.items():
        node = m
        *parents, leaf = dotted.split("__")
        for p in parents:
            node = node[p]
        node[leaf] = value
    path.write_text(json.dumps(m))


def engine_samples(n: int = 300, seed: int = 4):
    """(task, telemetry, mask) of n consecutive arrivals, placed on the first feasible slot."""
    engine = Engine(load_scenario("sunflower-metro"), seed)
    out = []
    for _ in range(n):
        a = engine.next_arrival()
        mask = engine.mask(a).copy()
        out.append((engine.task_vector(a), engine.telemetry(a), mask))
        engine.dispatch(a, int(np.flatnonzero(mask)[0]))
    return out


def test_loads_and_follows_the_policy_protocol(exported):
    policy = load_policy_folder(exported)
    assert isinstance(policy, Policy)
    assert policy.K == 8 and policy.name.startswith("onnx:")


def test_refuses_a_modified_model(copy):
    with open(copy / "policy.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(PolicyFolderError, match=r"policy.onnx: checksum mismatch"):
        load_policy_folder(copy)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format_version": 99}, r"unknown format_version 99"),
        ({"observation__features_version": 99}, r"unknown featuriser version 99"),
        ({"format": "something-else"}, r"format is 'something-else'"),
        ({"classes": ["a", "b", "c"]}, r"classes .* differ"),
        (
            {"K": 9},
            rf"observation.size {observation_size(8)} != observation_size\(K\) = "
            rf"{observation_size(9)}",
        ),
    ],
)
def test_refuses_unknown_versions_and_layouts(copy, changes, message):
    edit_manifest(copy, **changes)
    with pytest.raises(PolicyFolderError, match=message):
        load_policy_folder(copy)


@pytest.mark.parametrize("missing", ["policy.onnx", "manifest.json"])
def test_refuses_a_folder_with_a_missing_file(copy, missing):
    (copy / missing).unlink()
    with pytest.raises(PolicyFolderError, match=rf"{missing}: missing"):
        load_policy_folder(copy)


def test_refuses_a_manifest_that_is_not_json(copy):
    (copy / "manifest.json").write_text("{not json")
    with pytest.raises(PolicyFolderError, match="manifest.json: not valid JSON"):
        load_policy_folder(copy)


def test_serve_refuses_with_one_line(copy, capsys):
    with open(copy / "policy.onnx", "ab") as fh:
        fh.write(b"\0")
    assert cli(["serve", str(copy), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("millinet serve: error: refusing to serve:") and "checksum" in err
    assert "Traceback" not in err


def test_decide_matches_act_on_engine_inputs(exported):
    policy = load_policy_folder(exported)
    slots = []
    for task, tel, mask in engine_samples():
        d = policy.decide(task, tel, mask)
        assert d.slot == policy.act(featurize(task, tel), mask)
        assert mask[d.slot] and 0.0 < d.score <= 1.0
        slots.append(d.slot)
    batch = policy.decide_batch(*zip(*engine_samples()))
    assert [d.slot for d in batch] == slots


def test_decide_pads_short_candidate_lists_and_reports_no_feasible_slot(exported):
    policy = load_policy_folder(exported)
    task, tel, mask = engine_samples(1)[0]
    present = int(np.flatnonzero(tel[:, 8] >= 0).max()) + 1
    assert policy.decide(task, tel[:present], mask[:present]) == policy.decide(task, tel, mask)
    assert policy.decide(task, tel, np.zeros(8, bool)).slot is None
    with pytest.raises(ValueError, match="finite"):
        policy.decide(np.array([0, 1, 1, np.nan, 1000.0]), tel)
    with pytest.raises(ValueError, match="K = 8"):
        policy.decide(task, np.vstack([tel, tel]))


def test_classes_the_policy_did_not_decide_go_to_the_nearest_rule(copy):
    """As in the training env (and the evaluation harness): agent_classes from the run."""
    edit_manifest(copy, agent_classes=["vision_qa"])
    policy = load_policy_folder(copy)
    assert policy.agent_classes == ("vision_qa",)
    seen = set()
    for task, tel, mask in engine_samples(200):
        d = policy.decide(task, tel, mask)
        if int(task[0]) == 2:
            assert d.decided_by == "policy" and d.score is not None
        else:
            assert d.decided_by == "nearest" and d.slot == int(np.flatnonzero(mask)[0])
        seen.add(d.decided_by)
    assert seen == {"policy", "nearest"}
    edit_manifest(copy, agent_classes=["teleport"])
    with pytest.raises(PolicyFolderError, match="agent_classes"):
        load_policy_folder(copy)


def test_runtime_and_service_import_no_training_stack(exported):
    """In a fresh interpreter: load, decide and build the app; torch, gymnasium and the engine
    stay unimported."""
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from millinet.scheduler.runtime import load_policy_folder
        from millinet.scheduler.service import create_app
        from millinet.scheduler.client import build_request
        p = load_policy_folder({str(exported)!r})
        from millinet.envs.features import telemetry_row
        tel = np.array([telemetry_row()] * 8)
        tel[0] = telemetry_row(valid=1, base_rtt_us=200, serialisation_us=2, compute_us=50,
                               servers=16, tier=1)
        d = p.decide(np.array([0, 200, 200, 50, 1000.0]), tel)
        assert d.slot == 0, d
        create_app(p); build_request(np.array([0, 200, 200, 50, 1000.0]), tel)
        bad = sorted(m for m in sys.modules
                     if m.split(".")[0] in ("torch", "stable_baselines3", "ray",
                                            "sb3_contrib") or m == "millinet.envs.engine")
        print("FORBIDDEN", bad)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "FORBIDDEN []" in out.stdout


def test_scheduler_sources_import_only_the_serving_stack():
    allowed = {"numpy", "onnxruntime", "fastapi", "pydantic", "uvicorn", "httpx", "starlette"}
    allowed |= set(sys.stdlib_module_names)
    for path in sorted((ROOT / "scheduler").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                ok = name.startswith("millinet.scheduler")
                ok = ok or name in ("millinet.envs.features", "millinet.envs.errors")
                ok = ok or top in allowed
                assert ok, f"{path.name} imports {name}"


def test_runtime_nearest_rule_matches_the_heuristic_under_faults():
    """Slot 0 (near site, first path) masked: the near site's second path (slot 1) is slower
    than the next site's first path (slot 2), so 'first feasible' would be wrong."""
    from millinet.agents.heuristics import HEURISTICS
    from millinet.envs.features import telemetry_row
    from millinet.scheduler.runtime import _nearest

    tel = np.array(
        [telemetry_row(valid=1, tier=1, base_rtt_us=rtt) for rtt in (100.0, 400.0, 250.0, 500.0)]
    )
    mask = np.array([False, True, True, True])
    obs = featurize(np.array([0, 100, 100, 50, 1000.0]), tel)
    expected = HEURISTICS["nearest"]().act(obs, mask)
    assert expected == 2
    assert _nearest(obs, mask, 4).slot == expected

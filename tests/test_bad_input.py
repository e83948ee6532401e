"""Bad input gives one clear message naming the file, the field and the reason.

Each case is a scenario file (plus any files it refers to). It is checked twice:

* through ``load_scenario``: a ``ScenarioError`` whose ``.source`` is the offending file,
  ``.field`` the exact location as written in the file and ``.reason`` the cause;
* through the CLI (``millinet scenarios validate FILE`` and ``millinet simulate --scenario FILE
  --json out.json``): exit status 2, stderr is one line without a traceback naming file, field and
  reason, and ``out.json`` is not created.

The CLI runs in-process for every case (fast); two cases also run as a real subprocess.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from millinet.envs.errors import ScenarioError
from millinet.envs.scenario import load_scenario
from millinet.experiments.cli import main

REPO = Path(__file__).resolve().parents[1]

FACTORY = "  - {name: f, profile: brewery, attach: access-0-1}\n"


@dataclass
class Case:
    files: dict[str, str]  # file name -> text; the first one is the scenario given to the loader
    source: str  # file the message must name (.source ends with it)
    field: str  # exact .field
    reason: str  # regex that .reason must match
    also_names: list[str] = field(default_factory=list)  # further words the CLI line must hold

    @property
    def main(self) -> str:
        return next(iter(self.files))


CASES = {
    "unknown_key": Case(
        {"s.yaml": "extends: sunflower-metro\nnetwork: {link_schedulng: fifo}\n"},
        "s.yaml",
        "network.link_schedulng",
        r"unknown key; did you mean 'link_scheduling'\?",
    ),
    "unknown_top_level_key": Case(
        {"s.yaml": "extends: sunflower-metro\ncolour: red\n"},
        "s.yaml",
        "colour",
        r"unknown key; known keys: candidates, .*topology",
    ),
    "negative_rate": Case(
        {
            "s.yaml": "extends: sunflower-metro\nfactories:\n"
            "  - name: f\n    profile: custom\n    attach: access-0-1\n"
            "    workload:\n      agv_dispatch: {process: poisson, rate_per_s: -5}\n"
        },
        "s.yaml",
        "factories[0].workload.agv_dispatch.rate_per_s",
        r"must be greater than 0 \(got -5\)",
    ),
    "infinite_rate": Case(
        {
            "s.yaml": "extends: sunflower-metro\nfactories:\n"
            "  - name: f\n    profile: custom\n    attach: access-0-1\n"
            "    workload:\n      agv_dispatch: {process: poisson, rate_per_s: .inf}\n"
        },
        "s.yaml",
        "factories[0].workload.agv_dispatch.rate_per_s",
        r"must be a finite number",
    ),
    "zero_deadline": Case(
        {"s.yaml": "extends: sunflower-metro\nclasses:\n  robot_sync: {deadline_us: 0}\n"},
        "s.yaml",
        "classes.robot_sync.deadline_us",
        r"must be greater than 0 \(got 0\)",
    ),
    "negative_deadline": Case(
        {"s.yaml": "extends: sunflower-metro\nclasses:\n  vision_qa: {deadline_us: -30000}\n"},
        "s.yaml",
        "classes.vision_qa.deadline_us",
        r"must be greater than 0 \(got -30000\)",
    ),
    "disconnected_topology": Case(
        {
            "s.yaml": "name: islands\ntopology:\n  generator: explicit\n  nodes:\n"
            "    - {name: a, role: access}\n    - {name: b, role: access, x_km: 3}\n"
            "    - {name: c, role: access, x_km: 20}\n    - {name: dc, role: edge, x_km: 21}\n"
            "  links:\n    - {a: a, b: b}\n    - {a: c, b: dc}\n"
            "factories:\n  - {name: f, profile: brewery, attach: a}\n"
        },
        "s.yaml",
        "topology",
        r"the network is disconnected \(2 components\)",
    ),
    "vision_without_reachable_gpu": Case(
        # No edge or city GPUs and an on-prem site without GPUs: vision_qa has nowhere to run.
        # (Another factory's on-prem GPU does not count: on-prem sites are private.)
        {
            "s.yaml": "extends: sunflower-metro\n"
            "sites:\n  edge: {gpu: {servers: 0}}\n  city: {gpu: {servers: 0}}\n"
            "factories:\n  - {name: other, profile: brewery, attach: access-2-0,"
            " on_prem: {cpu: {servers: 1}, gpu: {servers: 4}}}\n"
            "  - {name: fab, profile: display_factory, attach: access-0-1,"
            " on_prem: {cpu: {servers: 2}}}\n"
        },
        "s.yaml",
        "factories[1].profile",
        r"factory 'fab' has vision_qa tasks but no reachable compute site with a GPU pool",
    ),
    "vision_workload_without_gpu": Case(
        {
            "s.yaml": "extends: sunflower-metro\n"
            "sites:\n  edge: {gpu: {servers: 0}}\n  city: {gpu: {servers: 0}}\n"
            "factories:\n  - name: cam\n    profile: custom\n    attach: access-0-1\n"
            "    on_prem: {cpu: {servers: 1}}\n    workload:\n      vision_qa: {process: periodic,"
            " streams: 2, period_min_us: 40000, period_max_us: 40000}\n"
        },
        "s.yaml",
        "factories[0].workload.vision_qa",
        r"no reachable compute site with a GPU pool",
    ),
    "malformed_graphml": Case(
        {
            "g.yaml": "name: g\ntopology: {generator: graphml, path: broken.graphml}\n"
            "factories:\n  - {name: f, profile: brewery}\n",
            "broken.graphml": '<graphml><graph><node id="a"></graph>',
        },
        "broken.graphml",
        "line 1, column 31",
        r"malformed GraphML \(XML\): mismatched tag; fix the XML there .*"
        r"\(read for topology.path of .*g.yaml\)",
    ),
    "graphml_without_coordinates": Case(
        {
            "g.yaml": "name: g\ntopology: {generator: graphml, path: nocoords.graphml}\n"
            "factories:\n  - {name: f, profile: brewery}\n",
            "nocoords.graphml": '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">'
            '<graph edgedefault="undirected"><node id="a"/><node id="b"/>'
            '<edge source="a" target="b"/></graph></graphml>',
        },
        "nocoords.graphml",
        "node 'a'",
        r"no node has Latitude and Longitude \(degrees\).*add both attributes to every node",
    ),
    "graphml_zero_link_speed": Case(
        {
            "g.yaml": "name: g\ntopology: {generator: graphml, path: slow.graphml}\n"
            "factories:\n  - {name: f, profile: brewery}\n",
            "slow.graphml": '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">'
            '<key attr.name="Latitude" attr.type="double" for="node" id="la"/>'
            '<key attr.name="Longitude" attr.type="double" for="node" id="lo"/>'
            '<key attr.name="LinkSpeedRaw" attr.type="double" for="edge" id="s"/>'
            '<graph edgedefault="undirected">'
            '<node id="a"><data key="la">48.1</data><data key="lo">11.5</data></node>'
            '<node id="b"><data key="la">48.2</data><data key="lo">11.6</data></node>'
            '<edge source="a" target="b"><data key="s">0</data></edge></graph></graphml>',
        },
        "slow.graphml",
        "link a--b",
        r"LinkSpeedRaw must be a positive speed \(got 0.0\); give LinkSpeedRaw in bit/s",
    ),
    **{
        f"trace_{name}": Case(
            {
                "s.yaml": "extends: sunflower-metro\nfactories:\n  - name: f\n    profile: custom\n"
                "    attach: access-0-1\n    workload:\n"
                f"      robot_sync: {{process: trace, path: t.csv{extra}}}\n",
                "t.csv": "time_s,class,factory,up_bytes,down_bytes,compute_us\n"
                "0.001,robot_sync,f,200,200,50\n" + row,
            },
            source,
            field,
            reason,
        )
        for name, (row, extra, source, field, reason) in {
            "negative_bytes": (
                "0.002,robot_sync,f,-3,200,50\n",
                "",
                "t.csv",
                "line 3, column up_bytes",
                r"must be a finite number >= 0 \(got '-3'\) \(read for "
                r"factories\[0\]\.workload\.robot_sync\.path of .*s\.yaml\)",
            ),
            "unknown_class": (
                "0.002,robot_synk,f,200,200,50\n",
                "",
                "t.csv",
                "line 3, column class",
                r"unknown task class 'robot_synk'; known: robot_sync, agv_dispatch, vision_qa",
            ),
            "unsorted": (
                "0.0005,robot_sync,f,200,200,50\n",
                "",
                "t.csv",
                "line 3, column time_s",
                r"0.0005 is before the previous row's 0.001; sort the trace by time",
            ),
            "not_a_number": (
                "soon,robot_sync,f,200,200,50\n",
                "",
                "t.csv",
                "line 3, column time_s",
                r"must be a finite number >= 0 \(got 'soon'\)",
            ),
            "short_row": (
                "0.002,robot_sync,f\n",
                "",
                "t.csv",
                "line 3",
                r"3 fields, the header has at least 6; fill in every column",
            ),
            "unreplayed_factory": (
                "0.002,robot_sync,g,200,200,50\n",
                "",
                "t.csv",
                "line 3, column factory",
                r"no workload entry replays robot_sync tasks of factory 'g' \(entries reading "
                r"this file: f/robot_sync\)",
            ),
            "unreplayed_class": (
                "0.002,vision_qa,f,200,200,50\n",
                "",
                "t.csv",
                "line 3, column factory",
                r"no workload entry replays vision_qa tasks of factory 'f'",
            ),
            "loop_period_too_short": (
                "0.002,robot_sync,f,200,200,50\n",
                ", loop: true, period_s: 0.0015",
                "s.yaml",
                "factories[0].workload.robot_sync.period_s",
                r"must be > 0 and cover the trace, whose last row is at 0.002 s \(got 0.0015\)",
            ),
        }.items()
    },
    "trace_missing_column": Case(
        {
            "s.yaml": "extends: sunflower-metro\nfactories:\n  - name: f\n    profile: custom\n"
            "    attach: access-0-1\n    workload:\n"
            "      robot_sync: {process: trace, path: t.csv}\n",
            "t.csv": "time_s,class,factory,up_bytes,compute_us\n0.001,robot_sync,f,200,50\n",
        },
        "t.csv",
        "line 1",
        r"the header lacks column\(s\) down_bytes; a trace needs time_s,class,factory,",
    ),
    "trace_file_missing": Case(
        {
            "s.yaml": "extends: sunflower-metro\nfactories:\n  - name: f\n    profile: custom\n"
            "    attach: access-0-1\n    workload:\n"
            "      robot_sync: {process: trace, path: nowhere.csv}\n",
        },
        "s.yaml",
        "factories[0].workload.robot_sync.path",
        r"trace file 'nowhere.csv' not found",
    ),
    "extends_loop": Case(
        {
            "one.yaml": "extends: two.yaml\nname: one\n",
            "two.yaml": "extends: one.yaml\nname: two\n",
        },
        "two.yaml",
        "extends",
        r"circular extends: one.yaml -> two.yaml -> one.yaml",
    ),
    "extends_self": Case(
        {"self.yaml": "extends: self.yaml\nname: me\n"},
        "self.yaml",
        "extends",
        r"circular extends: self.yaml -> self.yaml",
    ),
    "extends_missing_name": Case(
        {"s.yaml": "extends: sunflower-metropolis\n"},
        "s.yaml",
        "extends",
        r"base scenario 'sunflower-metropolis' not found; shipped: .*sunflower-metro",
    ),
    "extends_missing_file": Case(
        {"s.yaml": "extends: ../nowhere/base.yaml\n"},
        "s.yaml",
        "extends",
        r"base scenario file '.*nowhere/base.yaml' not found",
    ),
    "yaml_syntax_error": Case(
        {"s.yaml": "name: x\ntopology: {generator: ring\nfactories: []\n"},
        "s.yaml",
        "line 3, column 10",
        r"not valid YAML: expected ',' or '}', but got ':'",
    ),
    "yaml_duplicate_key": Case(
        {"s.yaml": "extends: sunflower-metro\nseed: 1\nseed: 2\n"},
        "s.yaml",
        "line 3, column 1",
        r"not valid YAML: duplicate key 'seed'",
    ),
    "unknown_attach_node": Case(
        {
            "s.yaml": "extends: sunflower-metro\nfactories:\n  - {name: f, profile: brewery,"
            " attach: access-9-9}\n"
        },
        "s.yaml",
        "factories[0].attach",
        r"no node named 'access-9-9' in the topology",
    ),
    "attach_to_compute_site": Case(
        {
            "s.yaml": "extends: sunflower-metro\nfactories:\n  - {name: f, profile: brewery,"
            " attach: agg-0-edge}\n"
        },
        "s.yaml",
        "factories[0].attach",
        r"'agg-0-edge' is a compute site \(edge\)",
    ),
    "unknown_generator": Case(
        {"s.yaml": "name: x\ntopology: {generator: star}\nfactories:\n" + FACTORY},
        "s.yaml",
        "topology.generator",
        r"unknown value 'star'; expected one of 'explicit', 'sunflower'",
    ),
    "missing_required_key": Case(
        {"s.yaml": "topology: {generator: sunflower}\nfactories:\n" + FACTORY},
        "s.yaml",
        "name",
        r"required key is missing",
    ),
    "unknown_task_class": Case(
        {"s.yaml": "extends: sunflower-metro\nclasses:\n  robot: {deadline_us: 500}\n"},
        "s.yaml",
        "classes",
        r"unknown task class\(es\) \['robot'\]",
    ),
    "scheduled_fault_on_missing_link": Case(
        {
            "s.yaml": "extends: sunflower-metro\nfaults:\n  scheduled:\n"
            "    - {element: core-0--core-3, down_at_s: 0.1}\n"
        },
        "s.yaml",
        "faults.scheduled[0].element",
        r"no link 'core-0--core-3'",
    ),
}


def _write(tmp_path: Path, case: Case) -> Path:
    for name, text in case.files.items():
        (tmp_path / name).write_text(text)
    return tmp_path / case.main


@pytest.mark.parametrize("name", sorted(CASES))
def test_loader_names_file_field_and_reason(tmp_path, name):
    case = CASES[name]
    path = _write(tmp_path, case)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    err = info.value
    assert err.source.endswith(case.source), err
    assert err.field == case.field, err
    assert re.search(case.reason, err.reason), err
    assert "\n" not in str(err)


def _check_cli_line(stderr: str, case: Case) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    line = lines[0]
    assert "Traceback" not in line
    assert case.source in line and case.field in line, line
    assert re.search(case.reason, line), line


@pytest.mark.parametrize("name", sorted(CASES))
def test_cli_validate_and_simulate_fail_cleanly(tmp_path, name, capsys, monkeypatch):
    case = CASES[name]
    path = _write(tmp_path, case)
    monkeypatch.chdir(tmp_path)
    assert main(["scenarios", "validate", str(path)]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    _check_cli_line(out.err, case)

    json_out = tmp_path / "out.json"
    assert main(["simulate", "--scenario", str(path), "--json", str(json_out)]) == 2
    _check_cli_line(capsys.readouterr().err, case)
    assert not json_out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(case.files)  # nothing else


@pytest.mark.parametrize(
    "name, command",
    [("negative_rate", "validate"), ("malformed_graphml", "simulate")],
)
def test_real_process_exit_status_and_stderr(tmp_path, name, command):
    case = CASES[name]
    path = _write(tmp_path, case)
    json_out = tmp_path / "out.json"
    args = (
        ["scenarios", "validate", str(path)]
        if command == "validate"
        else ["simulate", "--scenario", str(path), "--json", str(json_out)]
    )
    proc = subprocess.run(
        [sys.executable, "-m", "millinet.experiments.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    _check_cli_line(proc.stderr, case)
    assert not json_out.exists()


def test_json_into_missing_folder_fails_before_simulating(tmp_path, capsys):
    target = tmp_path / "no-such-dir" / "out.json"
    assert main(["simulate", "--duration", "1ms", "--json", str(target)]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "no-such-dir" in err
    assert not target.parent.exists()


def test_good_file_writes_json_and_no_temporary(tmp_path, capsys):
    target = tmp_path / "out.json"
    assert main(["simulate", "--duration", "2ms", "--json", str(target)]) == 0
    capsys.readouterr()
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
    assert '"violation_rate_1ms"' in target.read_text()


def test_dict_with_bad_value_names_dict_source():
    with pytest.raises(ScenarioError) as info:
        load_scenario({"extends": "sunflower-metro", "duration_s": -1})
    assert (info.value.source, info.value.field) == ("<dict>", "duration_s")
    assert "greater than 0" in info.value.reason

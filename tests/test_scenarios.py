"""Shipped scenarios load; bad input gives one clear message naming file, field and reason."""

import subprocess
import sys
from pathlib import Path

import pytest

from millinet.envs.errors import ScenarioError
from millinet.envs.scenario import list_scenarios, load_scenario


@pytest.mark.parametrize("name", list_scenarios())
def test_shipped_scenario_builds(name):
    scenario = load_scenario(name)
    assert scenario.network.K >= 2
    assert scenario.sources


def test_unknown_scenario_lists_the_shipped_ones():
    with pytest.raises(ScenarioError, match="unknown scenario; shipped: .*sunflower-metro"):
        load_scenario("atlantis")


def test_cli_error_is_one_line_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntopology: {generator: ring}\nfactories: []\n")
    out = subprocess.run(
        [sys.executable, "-m", "millinet.experiments.cli", "scenarios", "validate", str(bad)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert str(bad) in out.stderr and "factories" in out.stderr


def test_load_scale_multiplies_every_factorys_workload(tmp_path):
    base = load_scenario("sunflower-metro")
    busy = load_scenario(
        Path(__file__).parent.parent / "envs/scenarios/sunflower-metro-load2x.yaml"
    )
    assert busy.name == "sunflower-metro-load2x"
    assert [s[3] for s in busy.sources] == [2.0 * s[3] for s in base.sources]
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: sunflower-metro\nname: x\nload_scale: -1\n")
    with pytest.raises(ScenarioError, match="load_scale"):
        load_scenario(bad)

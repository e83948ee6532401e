"""Propagation is physics: checked against the speed of light and the fiber group index."""

import pytest

from millinet.envs.physics import propagation_s, serialisation_s
from millinet.envs.scenario import load_scenario


def test_100km_smf_costs_490us_one_way():
    assert propagation_s(100.0, "smf") * 1e6 == pytest.approx(490.0, rel=0.01)


def test_hollow_core_is_about_a_third_faster():
    ratio = propagation_s(1.0, "smf") / propagation_s(1.0, "hollow_core")
    assert 1.4 < ratio < 1.5  # n_g 1.468 vs ~1.0


def test_serialisation_of_1500_bytes_at_10g_is_1_2us():
    assert serialisation_s(1500, 10.0) == pytest.approx(1.2e-6)


def test_unknown_fiber_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown fiber type 'copper'"):
        propagation_s(1.0, "copper")


def test_100km_path_in_a_scenario_costs_490us_plus_forwarding():
    """Two 50 km SMF spans between factory and site: base RTT = 2 x (490 us + forwarding)."""
    scenario = load_scenario(
        {
            "name": "line",
            "topology": {
                "generator": "explicit",
                "nodes": [
                    {"name": "a", "role": "access"},
                    {"name": "m", "role": "core"},
                    {"name": "dc", "role": "city"},
                ],
                "links": [
                    {"a": "a", "b": "m", "length_km": 50, "forwarding_us": 0},
                    {"a": "m", "b": "dc", "length_km": 50, "forwarding_us": 0},
                ],
            },
            "factories": [
                {
                    "name": "f",
                    "profile": "brewery",
                    "attach": "a",
                    "uplink_km": 0,
                    "uplink_forwarding_us": 0,
                    "on_prem": {},
                }
            ],
        }
    )
    cset = scenario.network.candidates[0]["cpu"]
    assert cset.base_rtt_s[0] * 1e6 / 2 == pytest.approx(490.0, rel=0.01)

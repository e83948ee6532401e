"""Real networks in: every Topology Zoo quirk of issue 17, on small files written here.

Expected lengths, capacities and positions are computed in this file from the file's own
numbers (haversine, unit prefixes), so a wrong repair fails; each warning must be one line and
name the nodes or links it concerns.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest
from _zoo_files import QUIRKY_EDGES, QUIRKY_NODES, write_gml, write_graphml

from millinet.envs.errors import MillinetWarning, ScenarioError
from millinet.envs.graphml import parse_speed_bps, read_network
from millinet.envs.scaffold import scaffold_yaml
from millinet.envs.scenario import load_scenario
from millinet.envs.simulation import nearest_slot, simulate
from millinet.experiments.cli import main

WRITERS = {"graphml": write_graphml, "gml": write_gml}
LATLON = {label: (lat, lon) for _, label, lat, lon in QUIRKY_NODES if label}


def haversine_km(p: tuple[float, float], q: tuple[float, float]) -> float:
    (la1, lo1), (la2, lo2) = (tuple(map(math.radians, x)) for x in (p, q))
    h = (
        math.sin((la2 - la1) / 2) ** 2
        + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    )
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


def read(path: Path, **kwargs) -> tuple[object, list[str]]:
    """The imported network and the MillinetWarning lines it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = read_network(path, **kwargs)
    lines = [str(w.message) for w in caught if issubclass(w.category, MillinetWarning)]
    assert all("\n" not in line for line in lines)
    return net, lines


def links_by_name(net) -> dict[frozenset, object]:
    return {frozenset((net.names[lk.a], net.names[lk.b])): lk for lk in net.links}


def one(lines: list[str], word: str) -> str:
    hits = [line for line in lines if word in line]
    assert len(hits) == 1, (word, lines)
    return hits[0]


@pytest.fixture(params=sorted(WRITERS))
def quirky(request, tmp_path) -> Path:
    return WRITERS[request.param](tmp_path / f"zoo.{request.param}", QUIRKY_NODES, QUIRKY_EDGES)


# --------------------------------------------------------------------------- each quirk
def test_nodes_without_coordinates_are_dropped_with_their_links_and_one_warning(quirky):
    net, lines = read(quirky)
    assert "Peer Vienna" not in net.names and "Peer Zurich" not in net.names
    line = one(lines, "dropped")
    for word in ("'Peer Vienna'", "'Peer Zurich'", "3 link(s) removed", "Peer Vienna--Schwabing"):
        assert word in line
    assert len(net.links) == 8  # 12 file edges - 3 to peers - 1 parallel


def test_nodes_without_coordinates_can_be_placed_from_their_neighbours(tmp_path):
    nodes = [
        ("a", "A", 48.10, 11.50),
        ("b", "B", 48.20, 11.70),
        ("p", "Peer", None, None),  # between A and B
        ("q", "Far peer", None, None),  # only next to Peer: placed in a second round
    ]
    edges = [("a", "b", {}), ("a", "p", {}), ("b", "p", {}), ("p", "q", {})]
    net, lines = read(
        write_graphml(tmp_path / "p.graphml", nodes, edges),
        missing_coordinates="place_from_neighbours",
    )
    pos = dict(zip(net.names, net.latlon))
    assert pos["Peer"] == pytest.approx((48.15, 11.60))
    assert pos["Far peer"] == pytest.approx((48.15, 11.60))
    assert "'Peer', 'Far peer'" in one(lines, "placed 2 node(s)")


def test_dropping_that_disconnects_the_network_is_an_error_with_the_fix(tmp_path):
    nodes = [("a", "A", 48.1, 11.5), ("h", "Hub", None, None), ("b", "B", 48.2, 11.6)]
    path = write_graphml(tmp_path / "cut.graphml", nodes, [("a", "h", {}), ("h", "b", {})])
    with pytest.raises(ScenarioError) as err:
        read(path)
    assert err.value.source == str(path) and err.value.field == "graph"
    assert "'B' cannot reach 'A'" in err.value.reason
    assert "missing_coordinates: place_from_neighbours" in err.value.reason


def test_shared_and_missing_labels_become_unique_stable_names(quirky, tmp_path):
    net, lines = read(quirky)
    assert {"Laim#3", "Laim#4", "5"} <= set(net.names)
    assert len(set(net.names)) == len(net.names)
    assert net.shared_labels == {"Laim": ["Laim#3", "Laim#4"]}
    assert "'Laim' -> Laim#3, Laim#4" in one(lines, "share a label")
    assert "'5'" in one(lines, "without a label")
    # stable: the same nodes in another order get the same names
    shuffled = write_graphml(tmp_path / "rev.graphml", QUIRKY_NODES[::-1], QUIRKY_EDGES[::-1])
    assert sorted(read(shuffled)[0].names) == sorted(net.names)


def test_a_generated_name_never_takes_another_nodes_label(tmp_path):
    nodes = [("1", "X", 48.1, 11.5), ("2", "X", 48.2, 11.5), ("3", "X#1", 48.3, 11.5)]
    net, _ = read(write_graphml(tmp_path / "x.graphml", nodes, [("1", "2", {}), ("2", "3", {})]))
    assert net.names[2] == "X#1" and len(set(net.names)) == 3


def test_zero_length_link_gets_the_minimum_length_with_a_warning(quirky):
    net, lines = read(quirky, min_link_km=0.25)
    assert links_by_name(net)[frozenset(("Centre", "Centre-2"))].length_km == 0.25
    assert "Centre--Centre-2 (0 km)" in one(lines, "min_link_km = 0.25 km")


def test_parallel_links_merge_into_one_of_summed_capacity(quirky):
    net, lines = read(quirky)
    link = links_by_name(net)[frozenset(("Centre", "Schwabing"))]
    assert link.capacity_gbps == pytest.approx(10 + 100)  # LinkSpeedRaw 10e9 + "100" "G"
    assert link.length_km == pytest.approx(haversine_km(LATLON["Centre"], LATLON["Schwabing"]))
    assert "Centre--Schwabing (2 -> 110 Gbit/s)" in one(lines, "merged parallel links")


def test_link_speeds_with_units_are_parsed(quirky):
    net, lines = read(quirky, default_capacity_gbps=40)
    cap = {k: v.capacity_gbps for k, v in links_by_name(net).items()}
    assert cap[frozenset(("Centre", "Giesing"))] == pytest.approx(2.5)  # "2.5 Gbps"
    assert cap[frozenset(("Centre", "Laim#3"))] == pytest.approx(0.155)  # "155" + "M"
    assert cap[frozenset(("Laim#3", "Laim#4"))] == pytest.approx(40)  # none: the default
    assert "1 of 9 link(s)" in one(lines, "no LinkSpeedRaw or LinkSpeed")


@pytest.mark.parametrize(
    ("value", "units", "bps"),
    [
        ("10", "G", 10e9),
        ("2.5 Gbps", None, 2.5e9),
        ("155 Mbit/s", None, 155e6),
        ("100M", None, 100e6),
        ("1.5 t", None, 1.5e12),
        ("64k", "", 64e3),
        (10e9, None, 10e9),
        ("40", "g", 40e9),
    ],
)
def test_parse_speed(value, units, bps):
    assert parse_speed_bps(value, units) == pytest.approx(bps)


@pytest.mark.parametrize(
    ("value", "units"), [("fast", None), ("10G", "M"), ("10", "X"), ("", None)]
)
def test_parse_speed_refuses_what_it_cannot_read(value, units):
    assert parse_speed_bps(value, units) is None


def test_an_unreadable_link_speed_names_the_link_and_the_fix(tmp_path):
    nodes = [("a", "A", 48.1, 11.5), ("b", "B", 48.2, 11.6)]
    path = write_graphml(tmp_path / "s.graphml", nodes, [("a", "b", {"LinkSpeed": "fast"})])
    with pytest.raises(ScenarioError) as err:
        read(path)
    assert err.value.field == "link A--B"
    assert "LinkSpeed must be a positive speed (got 'fast')" in err.value.reason
    assert "LinkSpeedRaw in bit/s" in err.value.reason


def test_a_national_network_warns_that_no_factory_site_pair_meets_1ms(tmp_path):
    # Munich - Berlin - Hamburg: ~500 km apart, 5 ms of fiber round trip and more
    nodes = [
        ("m", "Munich", 48.14, 11.58),
        ("b", "Berlin", 52.52, 13.40),
        ("h", "Hamburg", 53.55, 9.99),
    ]
    path = write_graphml(tmp_path / "de.graphml", nodes, [("m", "b", {}), ("b", "h", {})])
    spec = {"generator": "graphml", "path": str(path), "city_sites": ["Berlin"]}
    factory = {"name": "f", "profile": "brewery", "attach": "Munich"}
    with pytest.warns(MillinetWarning) as caught:
        load_scenario({"name": "de", "topology": spec, "factories": [factory]})
    line = one([str(w.message) for w in caught], "1 ms")
    assert "no factory-site pair can meet 1 ms" in line and "f to Berlin-city" in line
    rtt_ms = float(line.split(" is ")[1].split(" ms")[0])
    # 2 x [(haversine + 2 km uplink + 0.5 km site link) x 4.897 us/km + 5 + 5 + 2 us forwarding]
    km = haversine_km((48.14, 11.58), (52.52, 13.40)) + 2.0 + 0.5
    assert rtt_ms == pytest.approx(2 * (km * 4.8974e-3 + 0.012), abs=0.01)


def test_a_city_network_does_not_warn_about_1ms(tmp_path):
    path = write_graphml(tmp_path / "zoo.graphml", QUIRKY_NODES[:4], QUIRKY_EDGES[1:4])
    spec = {"generator": "graphml", "path": str(path), "edge_sites": ["Giesing"]}
    with warnings.catch_warnings():
        warnings.simplefilter("error", MillinetWarning)
        load_scenario(
            {"name": "m", "topology": spec, "factories": [{"name": "f", "profile": "brewery"}]}
        )


# --------------------------------------------------------------------------- malformed files
MALFORMED = {
    "duplicate node id": (
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns"><graph edgedefault="undirected">'
        '<node id="a"/><node id="a"/><node id="b"/></graph></graphml>',
        '<node id="a">',
        "give every <node> its own id",
    ),
    "edge to an undeclared node": (
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns"><graph edgedefault="undirected">'
        '<node id="a"/><edge source="a" target="zz"/></graph></graphml>',
        '<edge source="a" target="zz">',
        "declare the node or remove the edge",
    ),
    "broken XML": (
        '<graphml><graph><node id="a"></graph>',
        "line 1, column 31",
        "mismatched tag; fix the XML there",
    ),
    "no coordinates at all": (
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns"><graph edgedefault="undirected">'
        '<node id="a"/><node id="b"/><edge source="a" target="b"/></graph></graphml>',
        "node 'a'",
        "add both attributes to every node",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_graphml_names_the_file_the_element_and_the_fix(case, tmp_path):
    text, element, fix = MALFORMED[case]
    path = tmp_path / "bad.graphml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as err:
        read(path)
    assert err.value.source == str(path)
    assert err.value.field == element
    assert fix in err.value.reason


def test_a_malformed_gml_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "bad.gml"
    path.write_text('graph [ node [ id 0 label "A" ] node [ id 0 label "B" ] ]')
    with pytest.raises(ScenarioError) as err:
        read(path)
    assert err.value.source == str(path) and err.value.field == "GML"
    assert "duplicated" in err.value.reason and "fix the file there" in err.value.reason


def test_a_site_on_a_shared_label_says_which_names_to_use(quirky):
    spec = {"generator": "graphml", "path": str(quirky), "edge_sites": ["Laim"]}
    with pytest.raises(ScenarioError) as err, warnings.catch_warnings():
        warnings.simplefilter("ignore", MillinetWarning)
        load_scenario(
            {"name": "m", "topology": spec, "factories": [{"name": "f", "profile": "brewery"}]}
        )
    assert err.value.field == "topology.edge_sites"
    assert "name one of 'Laim#3', 'Laim#4'" in err.value.reason


# --------------------------------------------------------------------------- scaffold + CLI
def test_scaffold_places_sites_centrally_and_simulates(quirky, tmp_path):
    out = tmp_path / "city.yaml"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MillinetWarning)
        out.write_text(scaffold_yaml(quirky, out))
        scenario = load_scenario(out)
    topo = scenario.topology
    # Centre is the most central PoP of the quirky metro (closeness over fiber length)
    assert [n.name for n in topo.nodes if n.role == "city"] == ["Centre-city"]
    assert len([n for n in topo.nodes if n.role == "edge"]) == 3
    assert sorted(f.profile for f in scenario.config.factories) == [
        "brewery",
        "car_plant",
        "display_factory",
    ]
    result = simulate(scenario, nearest_slot, 0.02, seed=0)
    assert result.records.size > 500
    assert all(result.metrics["classes"][c]["finished"] > 0 for c in result.metrics["classes"])


def test_cli_scenarios_new_prints_the_quirk_warnings_and_writes_a_valid_file(tmp_path, capsys):
    zoo = write_graphml(tmp_path / "zoo.graphml", QUIRKY_NODES, QUIRKY_EDGES)
    out = tmp_path / "city.yaml"
    assert main(["scenarios", "new", "--graphml", str(zoo), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "wrote" in captured.out and "valid scenario 'city'" in captured.out
    warned = [
        ln for ln in captured.err.splitlines() if ln.startswith("millinet scenarios: warning:")
    ]
    assert len(warned) == 6 == len(captured.err.splitlines())  # each quirk once, one line each
    assert "missing_coordinates: drop" in out.read_text()
    assert main(["scenarios", "validate", str(out)]) == 0
    # refuses to overwrite
    assert main(["scenarios", "new", "--graphml", str(zoo), "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err


def test_cli_scenarios_new_on_a_malformed_file_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.graphml"
    bad.write_text(MALFORMED["duplicate node id"][0])
    out = tmp_path / "city.yaml"
    assert main(["scenarios", "new", "--graphml", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.graphml" in err[0] and "own id" in err[0]
    assert list(tmp_path.iterdir()) == [bad]


def test_a_directed_file_gives_one_full_duplex_link_per_pair(tmp_path):
    """a->b and b->a are the two directions of one link (not parallel links); a peer reached
    only by an edge *into* it is still dropped with that edge."""
    path = tmp_path / "d.graphml"
    path.write_text(
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">'
        '<key attr.name="Latitude" attr.type="double" for="node" id="la"/>'
        '<key attr.name="Longitude" attr.type="double" for="node" id="lo"/>'
        '<key attr.name="LinkSpeedRaw" attr.type="double" for="edge" id="s"/>'
        '<graph edgedefault="directed">'
        '<node id="a"><data key="la">48.1</data><data key="lo">11.5</data></node>'
        '<node id="b"><data key="la">48.2</data><data key="lo">11.6</data></node>'
        '<node id="p"/>'
        '<edge source="a" target="b"><data key="s">10e9</data></edge>'
        '<edge source="b" target="a"><data key="s">40e9</data></edge>'
        '<edge source="b" target="p"/></graph></graphml>'
    )
    net, lines = read(path)
    assert [(net.names[lk.a], net.names[lk.b], lk.capacity_gbps) for lk in net.links] == [
        ("a", "b", 40.0)
    ]
    assert not any("parallel" in line for line in lines)
    assert "1 link(s) removed: b--p" in one(lines, "dropped")

"""Topology generators, GraphML import and candidate sets, checked against values computed here.

Delays are recomputed in this file from the physics (group index / speed of light) and graphs
are rebuilt from the link list with networkx, so a wrong generator or candidate builder fails.
"""

from __future__ import annotations

import math
from itertools import combinations

import networkx as nx
import numpy as np
import pytest

from millinet.envs.scenario import DATA_DIR, load_scenario

C_KM_PER_S = 299_792.458
GROUP_INDEX = {"smf": 1.4682, "hollow_core": 1.0003}  # G.652 SMF at 1550 nm; air-core fiber
NETWORK_ROLES = ("access", "aggregation", "core")
FACTORY = {"name": "f", "profile": "brewery"}


def hop_s(link) -> float:
    """Fixed one-way delay of a hop: propagation + forwarding, from first principles."""
    return link.length_km * GROUP_INDEX[link.fiber] / C_KM_PER_S + link.forwarding_us * 1e-6


def graph_of(topo, roles=None) -> nx.Graph:
    """Undirected graph by node *name*, built from the link list (weight = hop delay in s)."""
    keep = {n.name for n in topo.nodes if roles is None or n.role in roles}
    g = nx.Graph()
    g.add_nodes_from(keep)
    for link in topo.links:
        a, b = topo.nodes[link.a].name, topo.nodes[link.b].name
        if a in keep and b in keep:
            g.add_edge(a, b, delay=hop_s(link))
    return g


def names(topo, *roles) -> list[str]:
    return [n.name for n in topo.nodes if n.role in roles]


def build(topology: dict, factories=None, **extra) -> object:
    return load_scenario(
        {"name": "t", "topology": topology, "factories": factories or [FACTORY], **extra}
    )


# --------------------------------------------------------------------------- sunflower
SUNFLOWER = {"generator": "sunflower", "petals": 5, "access_per_petal": 3, "city_sites": 2}


@pytest.fixture(scope="module")
def sunflower():
    return build(SUNFLOWER, factories=[{**FACTORY, "attach": "access-2-1"}]).topology


def test_sunflower_counts(sunflower):
    p, m, city = 5, 3, 2
    by_role = {r: len(names(sunflower, r)) for r in ("core", "aggregation", "access", "edge")}
    assert by_role == {"core": p, "aggregation": p, "access": p * m, "edge": p}
    assert len(names(sunflower, "city")) == city
    # core ring p + each petal ring (core, agg, m access, next core) m + 2 + one site link per
    # edge/city site + the factory's uplink and on-prem LAN.
    assert len(sunflower.links) == p + p * (m + 2) + p + city + 2


def test_sunflower_core_is_a_ring_of_petals_nodes(sunflower):
    core = graph_of(sunflower, roles=("core",))
    assert core.number_of_nodes() == 5 and core.number_of_edges() == 5
    assert all(d == 2 for _, d in core.degree()) and nx.is_connected(core)


def test_sunflower_access_nodes_are_dual_homed(sunflower):
    """Every access node has two node-disjoint routes to the core (a single cut keeps it on)."""
    g = graph_of(sunflower, roles=NETWORK_ROLES)
    g.add_edges_from(("CORE", c) for c in names(sunflower, "core"))
    for node in names(sunflower, "access", "aggregation"):
        assert nx.node_connectivity(g, node, "CORE") >= 2, node
    # and no single network link disconnects anything
    assert not list(nx.bridges(graph_of(sunflower, roles=NETWORK_ROLES)))


def test_sunflower_edge_site_per_petal_and_city_sites_on_core(sunflower):
    g = graph_of(sunflower)
    for i in range(5):
        sites = [n for n in g[f"agg-{i}"] if n.endswith("-edge")]
        assert sites == [f"agg-{i}-edge"]
        assert g.degree(f"agg-{i}-edge") == 1
    for city in names(sunflower, "city"):
        (pop,) = g[city]
        assert pop.startswith("core-")
    assert nx.is_connected(g)


def test_sunflower_link_lengths_follow_coordinates(sunflower):
    for link in sunflower.links:
        a, b = sunflower.nodes[link.a], sunflower.nodes[link.b]
        if a.role in NETWORK_ROLES and b.role in NETWORK_ROLES:
            assert link.length_km == pytest.approx(math.dist((a.x_km, a.y_km), (b.x_km, b.y_km)))


def test_sunflower_default_city_stays_inside_the_1ms_budget():
    """In the default city every access node reaches an edge site in well under 1 ms RTT."""
    topo = load_scenario("sunflower-metro").topology
    g = graph_of(topo)
    edge_sites = names(topo, "edge")
    for node in names(topo, "access"):
        dist = nx.single_source_dijkstra_path_length(g, node, weight="delay")
        assert 2 * min(dist[s] for s in edge_sites) < 500e-6, node


# --------------------------------------------------------------------------- ring / grid
def test_ring_counts_and_connectivity():
    topo = build({"generator": "ring", "nodes": 9, "edge_sites": 3, "city_sites": 1}).topology
    access = graph_of(topo, roles=("access",))
    assert access.number_of_nodes() == 9 and access.number_of_edges() == 9
    assert all(d == 2 for _, d in access.degree()) and nx.is_connected(access)
    assert len(names(topo, "edge")) == 3 and len(names(topo, "city")) == 1
    assert len(topo.nodes) == 9 + 3 + 1 + 2  # + factory and its on-prem site
    assert nx.is_connected(graph_of(topo))


def test_grid_counts_and_spacing():
    topo = build({"generator": "grid", "rows": 3, "cols": 5, "spacing_km": 4.0}).topology
    access = graph_of(topo, roles=("access",))
    assert access.number_of_nodes() == 15
    assert access.number_of_edges() == 3 * 4 + 5 * 2
    for link in topo.links:
        if topo.nodes[link.a].role == topo.nodes[link.b].role == "access":
            assert link.length_km == pytest.approx(4.0)
    assert nx.is_connected(graph_of(topo))


# --------------------------------------------------------------------------- random geometric
def _rgg(seed: int, radius: float, nodes: int = 60) -> object:
    spec = {
        "generator": "random_geometric",
        "nodes": nodes,
        "side_km": 30.0,
        "radius_km": radius,
        "seed": seed,
    }
    return build(spec).topology


def _access_links(topo) -> set[tuple[str, str]]:
    out = set()
    for link in topo.links:
        a, b = topo.nodes[link.a], topo.nodes[link.b]
        if a.role == b.role == "access":
            out.add(tuple(sorted((a.name, b.name))))
    return out


def test_random_geometric_links_every_pair_within_radius():
    topo = _rgg(seed=3, radius=6.0)
    pos = {n.name: (n.x_km, n.y_km) for n in topo.nodes if n.role == "access"}
    assert len(pos) == 60
    within = {tuple(sorted(p)) for p in combinations(pos, 2) if math.dist(*map(pos.get, p)) <= 6}
    links = _access_links(topo)
    assert within <= links
    # whatever is longer than the radius comes from the spanning tree: at most n - 1 links
    assert len(links - within) <= 59
    assert all(0 <= x <= 30 and 0 <= y <= 30 for x, y in pos.values())


def test_random_geometric_is_deterministic_per_seed():
    a, b, c = _rgg(7, 5.0), _rgg(7, 5.0), _rgg(8, 5.0)
    coords = [[(n.name, n.x_km, n.y_km) for n in t.nodes] for t in (a, b, c)]
    assert coords[0] == coords[1] and coords[0] != coords[2]
    assert _access_links(a) == _access_links(b) != _access_links(c)


def test_random_geometric_is_connected_even_with_a_tiny_radius():
    topo = _rgg(seed=1, radius=0.01)  # ~no pair is that close: only the spanning tree remains
    access = graph_of(topo, roles=("access",))
    assert nx.is_connected(access) and access.number_of_edges() == 59  # a tree
    assert nx.is_connected(graph_of(topo))


def test_a_2000_node_city_builds_quickly():
    """A ~2,000-PoP city with 12 factories builds, connected, with candidates for every
    factory (its build time is reported by ``millinet bench sim``, not asserted here)."""
    scenario = load_scenario(
        {
            "name": "big-city",
            "topology": {
                "generator": "random_geometric",
                "nodes": 2000,
                "side_km": 60.0,
                "radius_km": 2.0,
                "edge_sites": 40,
                "city_sites": 4,
                "seed": 5,
            },
            "factories": [{"name": f"f{i}", "profile": "car_plant"} for i in range(12)],
        }
    )
    topo = scenario.topology
    assert len(names(topo, "access")) == 2000
    assert nx.is_connected(graph_of(topo))
    assert all(
        c["cpu"].present.any() and c["gpu"].present.any() for c in scenario.network.candidates
    )


# --------------------------------------------------------------------------- GraphML
FIXTURE = {  # label: (lat, lon) as in envs/data/metro-fixture.graphml
    "Centre": (48.1374, 11.5755),
    "Schwabing": (48.1650, 11.5860),
    "Giesing": (48.1100, 11.5850),
    "Moosach": (48.1790, 11.5110),
}


def great_circle_km(p: tuple[float, float], q: tuple[float, float]) -> float:
    """Central angle by the Vincenty (atan2) formula on a sphere of the IUGG mean radius."""
    (la1, lo1), (la2, lo2) = (tuple(map(math.radians, x)) for x in (p, q))
    dl = lo2 - lo1
    num = math.hypot(
        math.cos(la2) * math.sin(dl),
        math.cos(la1) * math.sin(la2) - math.sin(la1) * math.cos(la2) * math.cos(dl),
    )
    den = math.sin(la1) * math.sin(la2) + math.cos(la1) * math.cos(la2) * math.cos(dl)
    return 6371.0088 * math.atan2(num, den)


@pytest.fixture(scope="module")
def munich():
    return build(
        {
            "generator": "graphml",
            "path": "metro-fixture.graphml",
            "edge_sites": ["Schwabing", "Giesing"],
            "city_sites": ["Centre"],
            "route_factor": 1.25,
        },
        factories=[{**FACTORY, "attach": "Moosach"}],
    ).topology


def test_graphml_nodes_and_sites(munich):
    assert len(names(munich, "aggregation")) == 8
    assert sorted(names(munich, "edge")) == ["Giesing-edge", "Schwabing-edge"]
    assert names(munich, "city") == ["Centre-city"]
    assert len(munich.links) == 10 + 3 + 2  # file links + site links + factory uplink and LAN
    assert nx.is_connected(graph_of(munich))


@pytest.mark.parametrize(("a", "b"), [("Centre", "Schwabing"), ("Centre", "Giesing")])
def test_graphml_link_length_is_great_circle_times_route_factor(munich, a, b):
    link = munich.links[munich.find_link(munich.index[a], munich.index[b])]
    expected = great_circle_km(FIXTURE[a], FIXTURE[b]) * 1.25
    assert 2.0 < expected < 5.0  # sanity of the fixture itself: a few km across Munich
    assert link.length_km == pytest.approx(expected, rel=1e-9)


def test_graphml_capacities_come_from_link_speed_raw(munich):
    def cap(a, b):
        return munich.links[munich.find_link(munich.index[a], munich.index[b])].capacity_gbps

    assert cap("Centre", "Giesing") == pytest.approx(400.0)  # LinkSpeedRaw 4e11 bit/s
    assert cap("Centre", "Laim") == pytest.approx(400.0)
    assert cap("Centre", "Schwabing") == pytest.approx(100.0)
    assert cap("Moosach", "Schwabing") == pytest.approx(100.0)


def test_graphml_projection_keeps_city_distances(munich):
    """Node coordinates in km agree with great-circle distance to well under 1 % at city scale."""
    for a, b in combinations(FIXTURE, 2):
        na, nb = munich.nodes[munich.index[a]], munich.nodes[munich.index[b]]
        projected = math.dist((na.x_km, na.y_km), (nb.x_km, nb.y_km))
        assert projected == pytest.approx(great_circle_km(FIXTURE[a], FIXTURE[b]), rel=0.005)


def test_graphml_fixture_is_shipped():
    assert (DATA_DIR / "metro-fixture.graphml").is_file()


# --------------------------------------------------------------------------- candidates
@pytest.fixture(scope="module")
def default_city():
    return load_scenario("sunflower-metro")


def _eligible_sites(topo, net, f: int, resource: str) -> list[str]:
    """Sites with a pool of ``resource`` that factory ``f`` may use (not another's on-prem)."""
    own = f"{topo.nodes[net.factories[f]].name}-on_prem"
    return [
        n.name
        for n in topo.nodes
        if n.is_site
        and n.pools.get(resource) is not None
        and n.pools[resource].servers > 0
        and (n.role != "on_prem" or n.name == own)
    ]


def _path_delay(g: nx.Graph, path: list[str]) -> float:
    return sum(g[u][v]["delay"] for u, v in zip(path[:-1], path[1:]))


@pytest.mark.parametrize("resource", ["cpu", "gpu"])
def test_candidates_are_the_nearest_sites_in_order(default_city, resource):
    topo, net = default_city.topology, default_city.network
    g = graph_of(topo)
    for f, fnode in enumerate(net.factories):
        src = topo.nodes[fnode].name
        dist = nx.single_source_dijkstra_path_length(g, src, weight="delay")
        eligible = sorted(dist[s] for s in _eligible_sites(topo, net, f, resource))
        cset = net.candidates[f][resource]
        site_delays = []
        for s in range(net.n_sites):
            first = cset.slots[s * net.n_paths]
            if first is None:
                continue
            site = topo.nodes[first.site].name
            site_delays.append(dist[site])
            delays = [
                _path_delay(g, [topo.nodes[i].name for i in c.path])
                for c in cset.slots[s * net.n_paths : (s + 1) * net.n_paths]
                if c is not None
            ]
            assert delays[0] == pytest.approx(dist[site], rel=1e-12)  # path 0 is the shortest
            assert delays == sorted(delays)  # then by path latency
        assert site_delays == sorted(site_delays)  # sites by distance
        np.testing.assert_allclose(site_delays, eligible[: net.n_sites], rtol=1e-12)


@pytest.mark.parametrize("resource", ["cpu", "gpu"])
def test_base_rtt_is_twice_the_sum_of_hop_delays(default_city, resource):
    topo, net = default_city.topology, default_city.network
    g = graph_of(topo)
    checked = 0
    for f in range(len(net.factories)):
        cset = net.candidates[f][resource]
        for k, c in enumerate(cset.slots):
            if c is None:
                assert not cset.present[k]
                continue
            path = [topo.nodes[i].name for i in c.path]
            assert path[0] == topo.nodes[net.factories[f]].name and c.site == c.path[-1]
            expected = 2 * _path_delay(g, path)
            assert c.base_rtt_s == pytest.approx(expected, rel=1e-12)
            assert cset.base_rtt_s[k] == pytest.approx(expected, rel=1e-12)
            checked += 1
    assert checked >= 20


def test_k_shortest_paths_are_distinct_simple_and_truly_shortest():
    """Against a brute-force enumeration of every simple path in a small sunflower."""
    scenario = load_scenario(
        {
            "name": "small",
            "topology": {"generator": "sunflower", "petals": 3, "access_per_petal": 2},
            "candidates": {"sites": 3, "paths": 3},
            "factories": [{**FACTORY, "attach": "access-0-1", "on_prem": {}}],
        }
    )
    topo, net = scenario.topology, scenario.network
    g = graph_of(topo)
    cset = net.candidates[0]["cpu"]
    for s in range(3):
        group = [c for c in cset.slots[s * 3 : s * 3 + 3] if c is not None]
        assert len(group) == 3
        paths = [tuple(topo.nodes[i].name for i in c.path) for c in group]
        assert len(set(paths)) == 3
        for p in paths:
            assert len(set(p)) == len(p) and all(g.has_edge(u, v) for u, v in zip(p, p[1:]))
        every = sorted(_path_delay(g, p) for p in nx.all_simple_paths(g, paths[0][0], paths[0][-1]))
        np.testing.assert_allclose([_path_delay(g, p) for p in paths], every[:3], rtol=1e-12)


def test_on_prem_sites_are_private_to_their_factory(default_city):
    topo, net = default_city.topology, default_city.network
    on_prem = set(names(topo, "on_prem"))
    assert len(on_prem) == 4
    for f, fnode in enumerate(net.factories):
        own = f"{topo.nodes[fnode].name}-on_prem"
        for resource in ("cpu", "gpu"):
            sites = {
                topo.nodes[c.site].name for c in net.candidates[f][resource].slots if c is not None
            }
            assert not (sites & on_prem) - {own}
            if topo.nodes[topo.index[own]].pools.get(resource):
                assert topo.nodes[net.candidates[f][resource].slots[0].site].name == own

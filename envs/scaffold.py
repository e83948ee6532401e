"""Scaffold a scenario file from a real network (``millinet scenarios new --graphml FILE``).

The network is read by :func:`millinet.envs.graphml.read_network` (its quirks repaired, with
warnings). Sites go on the most central PoPs by closeness over fiber length: the most central
hosts the city compute centre, the next ones (skipping PoPs co-located with a chosen one) host
edge DCs. One factory of each profile (car plant, display factory, brewery) attaches to the
free PoP nearest an edge site, so as many 1 ms tasks as the network allows can reach shared
compute. The YAML carries comments that say what to edit; it validates and simulates as it is.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

from millinet.envs.graphml import ImportedNetwork, read_network
from millinet.envs.physics import propagation_s_per_km

EDGE_SITES = 3
"""Edge DCs placed by the scaffold (fewer on a network with fewer PoPs)."""
CO_LOCATED_KM = 0.5
"""PoPs closer than this (km of fiber) count as one site location."""
PROFILES = (
    ("car-plant", "car_plant", "32 robot cells syncing every 1-2 ms, 250 AGV jobs/s, 4 cameras"),
    ("display-fab", "display_factory", "12 AOI cameras at 20-40 fps, 400 AGV jobs/s, 6 robots"),
    ("brewery", "brewery", "filling-line sync every 2 ms, 60 AGV jobs/s, 6 cameras"),
)
FORWARDING_US = 5.0
"""Per-hop forwarding delay written into the scaffold's ``topology.link`` (us)."""


@dataclass(frozen=True)
class Placement:
    """Where the scaffold puts sites and factories (PoP names)."""

    city: str
    edges: list[str]
    factories: list[tuple[str, str, str]]  # (factory name, profile, PoP)
    central: list[str]  # every PoP, most central first
    rtt_us: dict[str, tuple[str, float]]  # factory name -> (nearest site PoP, fiber RTT us)


def place(net: ImportedNetwork) -> Placement:
    """Choose the PoPs of the city site, the edge sites and the three factories."""
    g = net.graph()
    closeness = nx.closeness_centrality(g, distance="length_km")
    central = sorted(range(len(net.names)), key=lambda i: (-closeness[i], net.names[i]))
    dist = dict(nx.all_pairs_dijkstra_path_length(g, weight="length_km"))
    hops = dict(nx.all_pairs_shortest_path_length(g))
    sites = [central[0]]
    for i in central[1:]:
        if len(sites) > EDGE_SITES:
            break
        if all(dist[i][s] >= CO_LOCATED_KM for s in sites):
            sites.append(i)
    edges = sites[1:] or sites[:1]
    used = set(sites)
    factories, rtt = [], {}
    for k, (name, profile, _) in enumerate(PROFILES):
        near = edges[k % len(edges)]
        free = sorted((dist[near][i], net.names[i], i) for i in dist[near] if i not in used)
        pop = free[0][2] if free else near
        used.add(pop)
        site = min(sites, key=lambda s: dist[pop][s])
        one_way_s = dist[pop][site] * propagation_s_per_km("smf") + hops[pop][site] * (
            FORWARDING_US * 1e-6
        )
        factories.append((name, profile, net.names[pop]))
        rtt[name] = (net.names[site], 2 * one_way_s * 1e6)
    return Placement(
        city=net.names[sites[0]],
        edges=[net.names[i] for i in sites[1:]],
        factories=factories,
        central=[net.names[i] for i in central],
        rtt_us=rtt,
    )


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


def scaffold_yaml(
    network: Path, out: Path, *, name: str | None = None, missing_coordinates: str = "drop"
) -> str:
    """The text of a scenario for ``network`` to be saved as ``out`` (paths as given)."""
    net = read_network(network, missing_coordinates=missing_coordinates)
    p = place(net)
    name = name or out.stem
    try:
        rel = os.path.relpath(network.resolve(), out.resolve().parent)
    except ValueError:  # another drive (Windows)
        rel = str(network.resolve())
    chosen = {p.city, *p.edges}
    others = ", ".join(_q(n) for n in [n for n in p.central if n not in chosen][:12]) or "none"
    edge_list = ", ".join(_q(e) for e in p.edges)
    lines = [
        f"# {name}: scaffolded by `millinet scenarios new` from {network.name}",
        f"# ({len(net.names)} PoPs, {len(net.links)} links after import).",
        "# It validates and simulates as it is. Edit what the comments point at, then check it:",
        f"#   millinet scenarios validate {out.name}",
        f"#   millinet render --scenario {out.name} --out {out.stem}.png",
        f"name: {_q(name)}",
        "description: >",
        f"  Three factories on the {network.name} network, with a city compute centre and",
        "  edge DCs on its most central PoPs. Describe your city here.",
        "duration_s: 1.0                # simulated seconds of arrivals per run",
        "seed: 0                        # default of `millinet simulate --seed`",
        "topology:",
        "  generator: graphml           # GraphML or GML (by suffix), Topology Zoo attributes",
        f"  path: {_q(rel)}   # relative to this file",
        f"  missing_coordinates: {missing_coordinates}   # nodes without Latitude/Longitude: "
        "drop | place_from_neighbours",
        "  route_factor: 1.0            # fiber / great-circle length; real ducts: ~1.2-1.5",
        "  min_link_km: 0.1             # length given to links between co-located PoPs",
        f"  link: {{capacity_gbps: 100, forwarding_us: {FORWARDING_US:g}}}   "
        "# links whose file gives no speed; per-hop forwarding",
        "  # Compute sites sit on the most central PoPs (closeness over fiber length). Move them",
        "  # to the PoPs where your operator has space; node names are as printed by",
        "  # `millinet scenarios show` (a shared label becomes <label>#<node id>).",
        f"  city_sites: [{_q(p.city)}]   # city compute centre: large and cheap",
        f"  edge_sites: [{edge_list}]   # district edge DCs",
        f"  # Next most central PoPs: {others}",
        "sites:                         # servers per site; edit to your racks",
        "  edge: {cpu: {servers: 16}, gpu: {servers: 4}}",
        "  city: {cpu: {servers: 64}, gpu: {servers: 16, speed: 1.5}}",
        "candidates: {sites: 4, paths: 2}   # K = 8 (site, path) choices per task",
        "network:",
        "  link_scheduling: fifo        # or strict_priority (robot_sync first)",
        "  queue_limit_bytes: 12500000  # drop-tail per link direction (10 ms at 10 Gbit/s)",
        "# One factory of each profile next to an edge site. Rename them, move `attach` to the",
        "# PoP each plant connects to, set `scale` for its size or give a `workload:` of its own",
        "# (periodic, poisson or a recorded `process: trace`).",
        "factories:",
    ]
    for fname, profile, pop in p.factories:
        what = next(text for n, _, text in PROFILES if n == fname)
        site, rtt = p.rtt_us[fname]
        lines += [
            f"  - name: {fname}",
            f"    profile: {profile}   # {what}",
            f"    attach: {_q(pop)}   # {rtt:.0f} us round trip from here to the site at {site}",
            "    uplink_km: 2.0             # fiber from the plant to its PoP",
            "    uplink_gbps: 10",
            "    on_prem: {cpu: {servers: 2}, gpu: {servers: 1}}   # the plant's own servers",
        ]
    return "\n".join(lines) + "\n"


__all__ = ["Placement", "place", "scaffold_yaml"]

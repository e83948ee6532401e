"""Topology generators: sunflower, ring, grid, random_geometric and explicit lists.

Each generator returns a :class:`~millinet.envs.topology.Topology` with the network nodes and the
edge and city compute sites; factories (and their on-prem sites) are attached later by
``envs/scenario.py``. Coordinates are in km; link lengths default to straight-line distance.
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
from scipy.sparse.csgraph import minimum_spanning_tree

from millinet.envs import config as schema
from millinet.envs.errors import FieldError
from millinet.envs.topology import Pool, Topology

SITE_LINK_KM = 0.5
"""Fiber from a PoP to the compute site housed next to it (same campus), km."""


def pools_of(site: schema.SitePools) -> dict[str, Pool]:
    """Convert a config ``SitePools`` into engine pools (resources with zero servers dropped)."""
    out = {}
    for resource in schema.RESOURCES:
        pool = getattr(site, resource)
        if pool.servers > 0:
            out[resource] = Pool(pool.servers, pool.speed)
    return out


def _attach_site(
    topo: Topology, pop: str, role: str, pools: schema.SitePools, link: schema.LinkClass
) -> None:
    """Add compute site ``<pop>-<role>`` next to node ``pop``."""
    node = topo.nodes[topo.index[pop]]
    name = f"{pop}-{role}"
    topo.add_node(name, role, node.x_km, node.y_km + SITE_LINK_KM, pools_of(pools))
    topo.add_link(
        pop,
        name,
        capacity_gbps=link.capacity_gbps,
        forwarding_us=link.forwarding_us,
        length_km=SITE_LINK_KM,
    )


def _spread(n_total: int, n_pick: int) -> list[int]:
    """``n_pick`` indices evenly spread over range(n_total)."""
    if n_pick <= 0:
        return []
    return sorted({int(i * n_total / n_pick) for i in range(n_pick)})


def sunflower(spec: schema.SunflowerTopology, tiers: schema.SiteTiers) -> Topology:
    """Core ring of city sites with dual-homed petal rings (see ``SunflowerTopology``)."""
    topo = Topology()
    p, m = spec.petals, spec.access_per_petal
    for i in range(p):
        ang = 2 * math.pi * i / p
        topo.add_node(
            f"core-{i}",
            "core",
            spec.core_radius_km * math.cos(ang),
            spec.core_radius_km * math.sin(ang),
        )
    for i in range(p):
        topo.add_link(
            f"core-{i}",
            f"core-{(i + 1) % p}",
            capacity_gbps=spec.core.capacity_gbps,
            forwarding_us=spec.core.forwarding_us,
        )
    for i in range(p):
        # The petal fans out between the angles of core i and core i+1.
        a0, a1 = 2 * math.pi * i / p, 2 * math.pi * (i + 1) / p
        ring = [f"core-{i}", f"agg-{i}"] + [f"access-{i}-{j}" for j in range(m)]
        for j, name in enumerate(ring[1:]):
            frac = (j + 0.5) / (m + 1)
            ang = a0 + (a1 - a0) * frac
            r = spec.core_radius_km + spec.petal_length_km * math.sin(math.pi * (j + 1) / (m + 2))
            role = "aggregation" if j == 0 else "access"
            topo.add_node(name, role, r * math.cos(ang), r * math.sin(ang))
        ring.append(f"core-{(i + 1) % p}")
        for u, v in zip(ring[:-1], ring[1:]):
            topo.add_link(
                u, v, capacity_gbps=spec.petal.capacity_gbps, forwarding_us=spec.petal.forwarding_us
            )
        _attach_site(topo, f"agg-{i}", "edge", tiers.edge, spec.site_link)
    for i in _spread(p, spec.city_sites):
        _attach_site(topo, f"core-{i}", "city", tiers.city, spec.site_link)
    return topo


def _sites_on(
    topo: Topology,
    names: list[str],
    edge: int,
    city: int,
    tiers: schema.SiteTiers,
    link: schema.LinkClass,
) -> None:
    """Attach ``edge`` edge sites and ``city`` city sites spread over the named PoPs.

    City sites are offset by half a spacing from edge sites so a PoP rarely hosts both.
    """
    for key, n in (("edge_sites", edge), ("city_sites", city)):
        if n > len(names):
            raise FieldError(
                f"topology.{key}", f"{n} sites but only {len(names)} PoPs to host them"
            )
    for i in _spread(len(names), edge):
        _attach_site(topo, names[i], "edge", tiers.edge, link)
    offset = len(names) // max(2 * city, 1)
    for i in _spread(len(names), city):
        _attach_site(topo, names[(i + offset) % len(names)], "city", tiers.city, link)


def ring(spec: schema.RingTopology, tiers: schema.SiteTiers) -> Topology:
    """``nodes`` access nodes on a circle, each linked to its two neighbours."""
    topo = Topology()
    names = [f"access-{i}" for i in range(spec.nodes)]
    for i, name in enumerate(names):
        ang = 2 * math.pi * i / spec.nodes
        topo.add_node(
            name, "access", spec.radius_km * math.cos(ang), spec.radius_km * math.sin(ang)
        )
    for i in range(spec.nodes):
        topo.add_link(
            names[i],
            names[(i + 1) % spec.nodes],
            capacity_gbps=spec.link.capacity_gbps,
            forwarding_us=spec.link.forwarding_us,
        )
    _sites_on(topo, names, spec.edge_sites, spec.city_sites, tiers, spec.link)
    return topo


def grid(spec: schema.GridTopology, tiers: schema.SiteTiers) -> Topology:
    """A rows x cols Manhattan grid of access nodes."""
    topo = Topology()
    names = []
    for r in range(spec.rows):
        for c in range(spec.cols):
            name = f"access-{r}-{c}"
            names.append(name)
            topo.add_node(name, "access", c * spec.spacing_km, r * spec.spacing_km)
    for r in range(spec.rows):
        for c in range(spec.cols):
            for dr, dc in ((0, 1), (1, 0)):
                if r + dr < spec.rows and c + dc < spec.cols:
                    topo.add_link(
                        f"access-{r}-{c}",
                        f"access-{r + dr}-{c + dc}",
                        capacity_gbps=spec.link.capacity_gbps,
                        forwarding_us=spec.link.forwarding_us,
                    )
    _sites_on(topo, names, spec.edge_sites, spec.city_sites, tiers, spec.link)
    return topo


def random_geometric(spec: schema.RandomGeometricTopology, tiers: schema.SiteTiers) -> Topology:
    """Uniform points in a square, linked within ``radius_km`` plus a spanning tree."""
    rng = np.random.default_rng(spec.seed)
    pts = rng.uniform(0.0, spec.side_km, (spec.nodes, 2))
    topo = Topology()
    names = [f"access-{i}" for i in range(spec.nodes)]
    for name, (x, y) in zip(names, pts):
        topo.add_node(name, "access", float(x), float(y))
    rgg = nx.random_geometric_graph(spec.nodes, spec.radius_km, pos=dict(enumerate(pts)))
    edges = {tuple(sorted(e)) for e in rgg.edges()}
    # Add a Euclidean minimum spanning tree so the city is always connected.
    dist = np.sqrt(((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1))
    mst = minimum_spanning_tree(dist).tocoo()
    edges |= {tuple(sorted((int(i), int(j)))) for i, j in zip(mst.row, mst.col)}
    for i, j in sorted(edges):
        topo.add_link(
            names[i],
            names[j],
            capacity_gbps=spec.link.capacity_gbps,
            forwarding_us=spec.link.forwarding_us,
        )
    _sites_on(topo, names, spec.edge_sites, spec.city_sites, tiers, spec.link)
    return topo


def explicit(spec: schema.ExplicitTopology, tiers: schema.SiteTiers) -> Topology:
    """Nodes and links exactly as listed; sites without pools get their tier's defaults."""
    topo = Topology()
    for i, n in enumerate(spec.nodes):
        pools = None
        if n.role in ("edge", "city"):
            pools = pools_of(n.pools or getattr(tiers, n.role))
        elif n.role == "on_prem":
            pools = pools_of(n.pools or schema.SitePools())
        try:
            topo.add_node(n.name, n.role, n.x_km, n.y_km, pools)
        except ValueError as exc:
            raise FieldError(f"topology.nodes[{i}].name", str(exc)) from None
    for i, link in enumerate(spec.links):
        try:
            topo.add_link(
                link.a,
                link.b,
                capacity_gbps=link.capacity_gbps,
                forwarding_us=link.forwarding_us,
                fiber=link.fiber,
                length_km=link.length_km,
            )
        except ValueError as exc:
            raise FieldError(f"topology.links[{i}]", str(exc)) from None
    return topo

"""City network topology: nodes with roles and coordinates, full-duplex fiber links.

A :class:`Topology` is plain data. Generators (``envs/generators.py``) and the GraphML importer
(``envs/graphml.py``) build one; ``envs/network.py`` compiles it into the index arrays the
engine runs on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import networkx as nx

from millinet.envs.physics import propagation_s


@dataclass
class Pool:
    """Identical servers of one resource type at a site; ``speed`` scales service rate."""

    servers: int
    speed: float = 1.0


@dataclass
class Node:
    """A network node. Compute sites (roles on_prem/edge/city) carry pools by resource."""

    name: str
    role: str
    x_km: float
    y_km: float
    pools: dict[str, Pool] = field(default_factory=dict)

    @property
    def is_site(self) -> bool:
        return self.role in ("on_prem", "edge", "city")


@dataclass
class Link:
    """A full-duplex fiber link between node indices ``a`` and ``b``."""

    a: int
    b: int
    length_km: float
    fiber: str
    capacity_gbps: float
    forwarding_us: float

    @property
    def propagation_s(self) -> float:
        """One-way propagation delay (s), from length and fiber group index."""
        return propagation_s(self.length_km, self.fiber)

    @property
    def hop_delay_s(self) -> float:
        """Fixed per-hop delay (s): propagation plus the receiving node's forwarding."""
        return self.propagation_s + self.forwarding_us * 1e-6


@dataclass
class Topology:
    """Nodes and links of a city network, addressable by node name."""

    nodes: list[Node] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)
    link_index: dict[tuple[int, int], int] = field(default_factory=dict)

    def add_node(
        self,
        name: str,
        role: str,
        x_km: float = 0.0,
        y_km: float = 0.0,
        pools: dict[str, Pool] | None = None,
    ) -> int:
        """Add a node and return its index. Names must be unique."""
        if name in self.index:
            raise ValueError(f"duplicate node name {name!r}")
        self.index[name] = len(self.nodes)
        self.nodes.append(Node(name, role, x_km, y_km, dict(pools or {})))
        return self.index[name]

    def distance_km(self, a: int, b: int) -> float:
        """Straight-line distance between two nodes (km)."""
        na, nb = self.nodes[a], self.nodes[b]
        return math.hypot(na.x_km - nb.x_km, na.y_km - nb.y_km)

    def add_link(
        self,
        a: str,
        b: str,
        *,
        capacity_gbps: float,
        forwarding_us: float,
        fiber: str = "smf",
        length_km: float | None = None,
    ) -> Link:
        """Add a link between named nodes; length defaults to their straight-line distance."""
        for end in (a, b):
            if end not in self.index:
                raise ValueError(f"link {a}--{b}: unknown node {end!r}")
        ia, ib = self.index[a], self.index[b]
        if ia == ib:
            raise ValueError(f"link {a}--{b}: a link needs two different nodes")
        if self.find_link(ia, ib) is not None:
            raise ValueError(f"duplicate link {a}--{b}")
        length = self.distance_km(ia, ib) if length_km is None else length_km
        link = Link(ia, ib, length, fiber, capacity_gbps, forwarding_us)
        self.link_index[(min(ia, ib), max(ia, ib))] = len(self.links)
        self.links.append(link)
        return link

    def find_link(self, a: int, b: int) -> int | None:
        """Index of the link joining nodes ``a`` and ``b`` (either order), or None."""
        return self.link_index.get((min(a, b), max(a, b)))

    def graph(self) -> nx.Graph:
        """Undirected graph; edge attrs: ``delay`` = per-hop fixed delay (s), ``link`` = index."""
        g = nx.Graph()
        g.add_nodes_from(range(len(self.nodes)))
        for i, link in enumerate(self.links):
            g.add_edge(link.a, link.b, delay=link.hop_delay_s, link=i)
        return g

    def by_role(self, *roles: str) -> list[int]:
        """Indices of nodes whose role is one of ``roles``, in insertion order."""
        return [i for i, n in enumerate(self.nodes) if n.role in roles]

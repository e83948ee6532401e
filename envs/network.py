"""Compile a topology into the index arrays the engine runs on.

* Every link is full duplex: link ``l`` owns queue ``2l`` (a->b) and ``2l+1`` (b->a).
* Every (site, resource) with servers is a pool.
* For every factory and resource, the candidate set is fixed: the ``sites`` nearest sites with
  that resource (by lowest-latency path), and for each the ``paths`` lowest-latency simple
  paths. Slot ``s * paths + p`` holds site rank ``s``, path rank ``p``; slots with no such site or
  path are empty (always masked). This ordering is the one the mask, the observation and every
  policy use.

A candidate's *trip* is the tuple of resources a task visits: uplink queue ids (>= 0), then the
pool as ``-(pool + 1)``, then the downlink queue ids (the reverse path, opposite direction).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice

import networkx as nx
import numpy as np

from millinet.envs.config import RESOURCES, SITE_TIERS
from millinet.envs.topology import Topology


@dataclass(frozen=True)
class Candidate:
    """One (compute site, path) option of a factory for one resource type."""

    site: int  # node index of the compute site
    pool: int  # pool index at that site for the resource
    path: tuple[int, ...]  # node indices, factory first, site last
    links: tuple[int, ...]  # link indices along the path
    trip: tuple[int, ...]  # queue ids up, -(pool+1), queue ids down
    up: tuple[int, ...]  # uplink queue ids
    compute_stage: int  # index of the pool in ``trip`` (= number of uplink hops)
    down: tuple[int, ...]  # downlink queue ids
    base_rtt_s: float  # propagation + forwarding, both directions (s)
    up_s_per_byte: float  # sum of serialisation time per byte over the uplink hops (s/B)
    down_s_per_byte: float  # same for the downlink hops (s/B)
    speed: float  # the pool's service-rate multiplier
    servers: int  # servers in the pool
    tier: int  # index into SITE_TIERS


@dataclass
class CandidateSet:
    """K slots for one (factory, resource); static per-slot arrays have shape (K,)."""

    slots: list[Candidate | None]
    base_rtt_s: np.ndarray
    up_s_per_byte: np.ndarray
    down_s_per_byte: np.ndarray
    speed: np.ndarray
    servers: np.ndarray
    tier: np.ndarray  # int index into SITE_TIERS, -1 for empty slots
    present: np.ndarray  # bool: slot holds a candidate
    live: list[tuple[int, Candidate]]  # (slot, candidate) of the non-empty slots
    queues: tuple[int, ...]  # every link direction some candidate's trip visits, once


class CompiledNetwork:
    """Queues, pools and candidate sets of a topology with its factories."""

    def __init__(
        self,
        topo: Topology,
        factories: list[int],
        private_sites: dict[int, int],
        n_sites: int,
        n_paths: int,
    ) -> None:
        """``factories``: node indices where tasks originate. ``private_sites`` maps an on-prem
        site to the factory that owns it (no other factory may use it)."""
        self.topology = topo
        self.factories = factories
        self.n_sites = n_sites
        self.n_paths = n_paths
        self.K = n_sites * n_paths
        links = topo.links
        self.n_queues = 2 * len(links)
        self.q_link = [i // 2 for i in range(self.n_queues)]
        self.q_s_per_byte = [
            8.0 / (links[i // 2].capacity_gbps * 1e9) for i in range(self.n_queues)
        ]
        self.q_delay_s = [links[i // 2].hop_delay_s for i in range(self.n_queues)]
        self.q_nodes = [
            (links[i // 2].a, links[i // 2].b) if i % 2 == 0 else (links[i // 2].b, links[i // 2].a)
            for i in range(self.n_queues)
        ]
        self.pool_site: list[int] = []
        self.pool_resource: list[str] = []
        self.pool_servers: list[int] = []
        self.pool_speed: list[float] = []
        self.pool_index: dict[tuple[int, str], int] = {}
        for n, node in enumerate(topo.nodes):
            for resource in RESOURCES:
                pool = node.pools.get(resource)
                if node.is_site and pool is not None and pool.servers > 0:
                    self.pool_index[(n, resource)] = len(self.pool_site)
                    self.pool_site.append(n)
                    self.pool_resource.append(resource)
                    self.pool_servers.append(pool.servers)
                    self.pool_speed.append(pool.speed)
        self.private_sites = private_sites
        graph = topo.graph()
        self._graph = graph
        # candidates[f][resource] for factory position f
        self.candidates: list[dict[str, CandidateSet]] = [
            {r: self._candidate_set(graph, fnode, r) for r in RESOURCES} for fnode in factories
        ]
        self.trip_queues: tuple[int, ...] = tuple(
            sorted({q for per_factory in self.candidates for cs in per_factory.values()
                    for q in cs.queues})
        )  # fmt: skip
        """Every link direction some task can visit: the only ones with a queue history."""

    def queue(self, u: int, v: int) -> int:
        """Queue id of the direction u -> v of the link joining u and v."""
        link = self.topology.find_link(u, v)
        if link is None:
            raise KeyError(f"no link between nodes {u} and {v}")
        return 2 * link if self.topology.links[link].a == u else 2 * link + 1

    def _candidate(self, path: list[int], pool: int) -> Candidate:
        up = tuple(self.queue(u, v) for u, v in zip(path[:-1], path[1:]))
        down = tuple(q ^ 1 for q in reversed(up))  # same links, opposite direction
        links = tuple(q // 2 for q in up)
        one_way = sum(self.q_delay_s[q] for q in up)
        return Candidate(
            site=path[-1],
            pool=pool,
            path=tuple(path),
            links=links,
            trip=(*up, -(pool + 1), *down),
            up=up,
            compute_stage=len(up),
            down=down,
            base_rtt_s=2 * one_way,
            up_s_per_byte=sum(self.q_s_per_byte[q] for q in up),
            down_s_per_byte=sum(self.q_s_per_byte[q] for q in down),
            speed=self.pool_speed[pool],
            servers=self.pool_servers[pool],
            tier=SITE_TIERS.index(self.topology.nodes[path[-1]].role),
        )

    def _candidate_set(self, graph: nx.Graph, fnode: int, resource: str) -> CandidateSet:
        dist = nx.single_source_dijkstra_path_length(graph, fnode, weight="delay")
        sites = [
            (d, n)
            for n, d in dist.items()
            if (n, resource) in self.pool_index and self.private_sites.get(n, fnode) == fnode
        ]
        sites.sort()
        slots: list[Candidate | None] = [None] * self.K
        for s, (_, site) in enumerate(sites[: self.n_sites]):
            pool = self.pool_index[(site, resource)]
            paths = islice(
                nx.shortest_simple_paths(graph, fnode, site, weight="delay"), self.n_paths
            )
            for p, path in enumerate(paths):
                slots[s * self.n_paths + p] = self._candidate(path, pool)

        def col(fn, empty):
            return np.array([fn(c) if c is not None else empty for c in slots])

        return CandidateSet(
            slots=slots,
            base_rtt_s=col(lambda c: c.base_rtt_s, 0.0),
            up_s_per_byte=col(lambda c: c.up_s_per_byte, 0.0),
            down_s_per_byte=col(lambda c: c.down_s_per_byte, 0.0),
            speed=col(lambda c: c.speed, 1.0),
            servers=col(lambda c: c.servers, 0),
            tier=col(lambda c: c.tier, -1),
            present=np.array([c is not None for c in slots]),
            live=[(k, c) for k, c in enumerate(slots) if c is not None],
            queues=tuple(sorted({q for c in slots if c is not None for q in (*c.up, *c.down)})),
        )

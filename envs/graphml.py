"""Import of GraphML topologies in the Internet Topology Zoo convention.

Topology Zoo files give each node a ``label`` and ``Latitude``/``Longitude`` in degrees; links may
carry ``LinkSpeedRaw`` (bit/s). Node positions are projected to km around the graph's centre
(equirectangular, exact enough at city scale) and link lengths are great-circle distances times
the scenario's ``route_factor``.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx

from millinet.envs import config as schema
from millinet.envs.errors import ScenarioError
from millinet.envs.generators import _attach_site
from millinet.envs.topology import Topology

EARTH_RADIUS_KM = 6371.0088
"""Mean Earth radius (IUGG), km."""


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance between two points given in degrees (km)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, h)))


def _read(path: Path, source: str) -> nx.Graph:
    if path.is_dir():
        raise ScenarioError(source, "topology.path", f"{str(path)!r} is a directory, not a file")
    if not path.is_file():
        raise ScenarioError(source, "topology.path", f"GraphML file {str(path)!r} not found")
    try:
        g = nx.read_graphml(path)
    except ET.ParseError as exc:
        line, column = exc.position
        what = str(exc.msg).split(": line ")[0]
        raise ScenarioError(
            str(path), f"line {line}, column {column}", f"malformed GraphML (XML): {what}"
        ) from None
    except (nx.NetworkXError, KeyError, ValueError, UnicodeDecodeError) as exc:
        raise ScenarioError(str(path), "graphml", f"malformed GraphML: {exc}") from None
    return nx.Graph(g)  # Zoo files are sometimes multigraphs; parallel links collapse


def load_graphml(
    path: Path,
    spec: schema.GraphMLTopology,
    tiers: schema.SiteTiers,
    source: str | None = None,
) -> Topology:
    """Build a topology from a Topology Zoo GraphML file (see module docstring).

    Problems in the file's content name the GraphML file; problems in the scenario's
    ``topology`` settings name ``source`` (the scenario file; default: the GraphML file).
    """
    source = str(path) if source is None else source
    g = _read(path, source)
    if g.number_of_nodes() == 0:
        raise ScenarioError(str(path), "graph", "the graph has no nodes")
    labels: dict[str, str] = {}
    coords: dict[str, tuple[float, float]] = {}
    for nid, data in g.nodes(data=True):
        label = str(data.get("label", nid))
        if label in labels.values():
            label = f"{label}-{nid}"
        try:
            lat, lon = float(data["Latitude"]), float(data["Longitude"])
        except (KeyError, TypeError, ValueError):
            raise ScenarioError(
                str(path), f"node {label!r}", "needs numeric Latitude and Longitude attributes"
            ) from None
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ScenarioError(
                str(path), f"node {label!r}", f"coordinates out of range: lat {lat}, lon {lon}"
            )
        labels[nid] = label
        coords[nid] = (lat, lon)
    lat0 = sum(c[0] for c in coords.values()) / len(coords)
    lon0 = sum(c[1] for c in coords.values()) / len(coords)
    kx = math.radians(1) * EARTH_RADIUS_KM * math.cos(math.radians(lat0))
    ky = math.radians(1) * EARTH_RADIUS_KM
    topo = Topology()
    for nid in g.nodes:
        lat, lon = coords[nid]
        topo.add_node(labels[nid], "aggregation", (lon - lon0) * kx, (lat - lat0) * ky)
    for u, v, data in g.edges(data=True):
        if u == v:
            continue
        length = great_circle_km(*coords[u], *coords[v]) * spec.route_factor
        capacity = spec.link.capacity_gbps
        if "LinkSpeedRaw" in data:
            try:
                capacity = float(data["LinkSpeedRaw"]) / 1e9
            except (TypeError, ValueError):
                capacity = math.nan
            if not (capacity > 0 and math.isfinite(capacity)):
                raise ScenarioError(
                    str(path),
                    f"link {labels[u]}--{labels[v]}",
                    f"LinkSpeedRaw must be a positive number of bit/s "
                    f"(got {data['LinkSpeedRaw']!r})",
                )
        topo.add_link(
            labels[u],
            labels[v],
            capacity_gbps=capacity,
            forwarding_us=spec.link.forwarding_us,
            length_km=length,
        )
    for role, names in (("edge", spec.edge_sites), ("city", spec.city_sites)):
        for name in names:
            if name not in topo.index:
                raise ScenarioError(
                    source,
                    f"topology.{role}_sites",
                    f"no node labelled {name!r} in {path.name}",
                )
            _attach_site(topo, name, role, getattr(tiers, role), spec.link)
    return topo

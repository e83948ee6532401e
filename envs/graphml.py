"""Import of real networks in the Internet Topology Zoo convention (GraphML or GML).

Topology Zoo files give each node a ``label`` and ``Latitude``/``Longitude`` in degrees; links
may carry ``LinkSpeedRaw`` (bit/s) or ``LinkSpeed`` + ``LinkSpeedUnits`` ("10" and "G").
Node positions are projected to km around the graph's centre (equirectangular, exact enough at
city scale) and link lengths are great-circle distances times the scenario's ``route_factor``.

Published files are messy. Each quirk is either repaired, with one warning line
(:func:`millinet.envs.errors.warn`) that names the nodes or links concerned, or refused with a
message that names the file, the element and the fix; the importer never builds a silently
wrong city:

=====================================  ======================================================
quirk                                  handling
=====================================  ======================================================
node without coordinates (external     ``missing_coordinates: drop`` (default): dropped with
peer, "international link")            its links, one warning naming each node and link; the
                                       rest must stay connected (else an error naming the
                                       cut-off nodes). ``place_from_neighbours``: placed at the
                                       mean position of its neighbours with coordinates
                                       (repeatedly, for chains), one warning
several nodes with one label, or none  unique, stable names ``<label>#<id>`` / ``node-<id>``
                                       from the file's node id, one warning; a scenario that
                                       names the shared label is told the new names
link of zero length (co-located PoPs)  ``min_link_km`` (default 0.1 km), one warning
parallel links between one pair        merged into one link of summed capacity, one warning
link speed as a string with units      ``LinkSpeedRaw``, else ``LinkSpeed`` x
                                       ``LinkSpeedUnits``; "10 Gbps", "2.5G", "155 Mbit/s"
                                       parse; no speed: ``topology.link.capacity_gbps``, one
                                       warning counting such links; unparsable: an error
self-loop                              ignored, one warning
duplicate node id, edge to an          an error naming the element and the fix
undeclared node, broken XML/GML
=====================================  ======================================================

A network whose factories cannot reach any shared site within a 1 ms round trip is warned
about by the scenario builder (``envs/scenario.py``), which knows where the factories are.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Any

import networkx as nx

from millinet.envs import config as schema
from millinet.envs.errors import ScenarioError, warn
from millinet.envs.generators import _attach_site
from millinet.envs.topology import Topology

EARTH_RADIUS_KM = 6371.0088
"""Mean Earth radius (IUGG), km."""

_UNIT_PREFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}
_SPEED = re.compile(
    r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmgt]?)\s*(?:bps|bit/s|bits/s|b/s|bit|b)?\s*$",
    re.IGNORECASE,
)
_SPEED_FIX = "give LinkSpeedRaw in bit/s (e.g. 10000000000), or LinkSpeed 10 with LinkSpeedUnits G"


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance between two points given in degrees (km)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, h)))


def parse_speed_bps(value: Any, units: Any = None) -> float | None:
    """A link speed in bit/s from a number or a string with units, or None if unparsable.

    ``"10 Gbps"``, ``"2.5G"``, ``"155 Mbit/s"`` and ``10e9`` parse; ``units`` (Topology Zoo's
    ``LinkSpeedUnits``: "K", "M", "G", "T") multiplies a bare number. Case does not matter.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number, prefix = float(value), ""
    else:
        m = _SPEED.match(str(value))
        if m is None:
            return None
        number, prefix = float(m.group(1)), m.group(2)
    if units is not None and str(units).strip():
        if prefix:
            return None  # "10G" with units "M": contradictory
        m = _SPEED.match(f"1{units}")
        if m is None:
            return None
        prefix = m.group(2)
    return number * _UNIT_PREFIX[prefix.lower()]


@dataclass(frozen=True)
class ImportedLink:
    """A link between PoP indices ``a`` < ``b``: fiber length (km) and capacity (Gbit/s)."""

    a: int
    b: int
    length_km: float
    capacity_gbps: float


@dataclass
class ImportedNetwork:
    """The PoPs and links of an imported file, quirks resolved.

    ``names``, ``latlon`` (degrees) and ``xy_km`` (projected, km) are indexed by PoP.
    ``shared_labels`` maps a label that several nodes carried to the names they got.
    """

    path: Path
    names: list[str]
    latlon: list[tuple[float, float]]
    xy_km: list[tuple[float, float]]
    links: list[ImportedLink]
    shared_labels: dict[str, list[str]]

    def graph(self) -> nx.Graph:
        """Undirected graph over PoP indices; edge attribute ``length_km``."""
        g = nx.Graph()
        g.add_nodes_from(range(len(self.names)))
        g.add_edges_from((lk.a, lk.b, {"length_km": lk.length_km}) for lk in self.links)
        return g


# --------------------------------------------------------------------------- reading
def _prescan_graphml(path: Path) -> None:
    """Refuse what networkx would silently accept: duplicate node ids, edges to undeclared
    nodes. XML errors name the line and column."""
    ids: Counter[str] = Counter()
    ends: list[tuple[str, str]] = []
    try:
        for _, elem in ET.iterparse(path):
            tag = elem.tag.rsplit("}", 1)[-1]
            if tag == "node":
                ids[elem.get("id", "")] += 1
            elif tag == "edge":
                ends.append((elem.get("source", ""), elem.get("target", "")))
    except ET.ParseError as exc:
        line, column = exc.position
        what = str(exc.msg).split(": line ")[0]
        raise ScenarioError(
            str(path),
            f"line {line}, column {column}",
            f"malformed GraphML (XML): {what}; fix the XML there (an unclosed or mistyped tag?)",
        ) from None
    dupes = sorted(i for i, n in ids.items() if n > 1)
    if dupes:
        raise ScenarioError(
            str(path),
            f'<node id="{dupes[0]}">',
            f"{len(dupes)} node id(s) used more than once ({', '.join(map(repr, dupes[:5]))}); "
            "give every <node> its own id",
        )
    for source, target in ends:
        for end in (source, target):
            if end not in ids:
                raise ScenarioError(
                    str(path),
                    f'<edge source="{source}" target="{target}">',
                    f"refers to node {end!r}, which has no <node> element; "
                    "declare the node or remove the edge",
                )


def _read_gml(path: Path) -> nx.MultiGraph:
    text = path.read_text(encoding="utf-8")
    # Topology Zoo GML marks parallel links with "multigraph 1"; read every file as one, so a
    # parallel link is merged below instead of refused by networkx.
    text = re.sub(r"\bmultigraph\s+0\b", "multigraph 1", text)
    if not re.search(r"\bmultigraph\s+1\b", text):
        text = re.sub(r"\bgraph\s*\[", "graph [ multigraph 1 ", text, count=1)
    return nx.parse_gml(text, label="id")


def _read_graph(path: Path, source: str) -> nx.MultiGraph | nx.MultiDiGraph:
    """The file as a networkx multigraph (node keys as str), or a ``ScenarioError``."""
    if path.is_dir():
        raise ScenarioError(source, "topology.path", f"{str(path)!r} is a directory, not a file")
    if not path.is_file():
        raise ScenarioError(source, "topology.path", f"network file {str(path)!r} not found")
    gml = path.suffix.lower() == ".gml"
    kind = "GML" if gml else "GraphML"
    try:
        if gml:
            g = _read_gml(path)
        else:
            _prescan_graphml(path)
            g = nx.read_graphml(path, force_multigraph=True)
    except ScenarioError:
        raise
    except (nx.NetworkXError, KeyError, ValueError, UnicodeDecodeError, ET.ParseError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ScenarioError(
            str(path),
            kind,
            f"malformed {kind}: {reason}; fix the file there, or export it again from its source "
            f"(a Topology Zoo {kind} file is read as published)",
        ) from None
    return nx.relabel_nodes(g, str)


def _node_names(g: nx.MultiGraph, path: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Unique, stable names per node id: the label; ``<label>#<id>`` for a label that several
    nodes share; the node id for a node without a label (``node-<id>`` if that id is another
    node's label). Names depend on labels and ids, not on the order of the file's elements.
    Also returns shared label -> names."""
    labels = {nid: " ".join(str(d.get("label", "")).split()) for nid, d in g.nodes(data=True)}
    counts = Counter(labels.values())
    names: dict[str, str] = {}
    shared: dict[str, list[str]] = defaultdict(list)
    for nid, label in labels.items():
        if label and counts[label] == 1:
            name = label
        elif label:
            name = f"{label}#{nid}"
        else:
            name = nid if nid not in counts else f"node-{nid}"
        names[nid] = name
    while len(set(names.values())) < len(names):  # a label equal to another's generated name
        taken = Counter(names.values())
        for nid, name in names.items():
            if taken[name] > 1 and name != labels[nid]:
                names[nid] = f"{name}#{nid}"
    for nid, label in labels.items():
        if label and counts[label] > 1:
            shared[label].append(names[nid])
    unlabelled = [names[nid] for nid, label in labels.items() if not label]
    if shared:
        renamed = ", ".join(f"{label!r} -> {', '.join(v)}" for label, v in shared.items())
        warn(str(path), f"nodes that share a label are named <label>#<node id>: {renamed}")
    if unlabelled and len(unlabelled) < len(labels):
        warn(
            str(path),
            f"{len(unlabelled)} node(s) without a label are named by their node id: "
            f"{', '.join(map(repr, unlabelled))}",
        )
    return names, dict(shared)


def _coordinates(
    g: nx.MultiGraph, names: dict[str, str], path: Path
) -> dict[str, tuple[float, float]]:
    """(lat, lon) of every node that has both; a present but bad value is an error."""
    coords = {}
    for nid, data in g.nodes(data=True):
        raw = (data.get("Latitude"), data.get("Longitude"))
        if any(v is None or (isinstance(v, str) and not v.strip()) for v in raw):
            continue
        try:
            lat, lon = float(raw[0]), float(raw[1])
        except (TypeError, ValueError):
            lat = lon = math.nan
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):  # also False for NaN
            raise ScenarioError(
                str(path),
                f"node {names[nid]!r}",
                f"Latitude/Longitude must be numbers in degrees within ±90/±180 "
                f"(got {raw[0]!r}, {raw[1]!r}); correct them or delete both attributes",
            )
        coords[nid] = (lat, lon)
    return coords


def _resolve_missing(
    g: nx.MultiGraph,
    names: dict[str, str],
    coords: dict[str, tuple[float, float]],
    mode: str,
    path: Path,
) -> None:
    """Drop nodes without coordinates or place them from their neighbours (``mode``)."""
    missing = [nid for nid in g.nodes if nid not in coords]
    if not missing:
        return
    und = g.to_undirected(as_view=True) if g.is_directed() else g  # neighbours both ways
    if len(missing) == g.number_of_nodes():
        raise ScenarioError(
            str(path),
            f"node {names[missing[0]]!r}",
            "no node has Latitude and Longitude (degrees); a network needs positioned PoPs: "
            "add both attributes to every node",
        )
    if mode == "drop":
        removed = sorted(
            {
                tuple(sorted((names[u], names[v])))
                for nid in missing
                for u, v in und.edges(nid)
                if u != v
            }
        )
        g.remove_nodes_from(missing)
        links = ", ".join(f"{a}--{b}" for a, b in removed) or "none"
        warn(
            str(path),
            f"dropped {len(missing)} node(s) without Latitude/Longitude "
            f"(topology.missing_coordinates: drop): {', '.join(repr(names[n]) for n in missing)}; "
            f"{len(removed)} link(s) removed: {links}",
        )
        return
    placed = []
    todo = list(missing)
    while todo:
        progress = []
        for nid in todo:
            known = [coords[m] for m in und.neighbors(nid) if m in coords and m != nid]
            if known:
                progress.append(
                    (
                        nid,
                        (
                            sum(c[0] for c in known) / len(known),
                            sum(c[1] for c in known) / len(known),
                        ),
                    )
                )
        if not progress:
            stuck = ", ".join(repr(names[n]) for n in todo)
            raise ScenarioError(
                str(path),
                f"node {names[todo[0]]!r}",
                f"no coordinates and no neighbour with coordinates to place it from ({stuck}); "
                "add Latitude/Longitude, or set topology.missing_coordinates: drop",
            )
        for nid, position in progress:  # a round places from the previous round's nodes only
            coords[nid] = position
            placed.append(nid)
        done = {nid for nid, _ in progress}
        todo = [n for n in todo if n not in done]
    warn(
        str(path),
        f"placed {len(placed)} node(s) without Latitude/Longitude at the mean position of "
        f"their neighbours (topology.missing_coordinates: place_from_neighbours): "
        f"{', '.join(repr(names[n]) for n in placed)}",
    )


def _check_connected(g: nx.MultiGraph, names: dict[str, str], path: Path, mode: str) -> None:
    parts = sorted(nx.connected_components(nx.Graph(g)), key=len, reverse=True)
    if len(parts) <= 1:
        return
    cut = sorted(names[n] for part in parts[1:] for n in part)
    hint = (
        "set topology.missing_coordinates: place_from_neighbours, or add coordinates to the "
        "dropped nodes"
        if mode == "drop"
        else "add the missing links to the file"
    )
    raise ScenarioError(
        str(path),
        "graph",
        f"the network is disconnected ({len(parts)} parts): {', '.join(map(repr, cut[:8]))}"
        f"{' ...' if len(cut) > 8 else ''} cannot reach {names[min(parts[0])]!r}; {hint}",
    )


def _link_capacity_bps(data: dict, path: Path, link: str) -> float | None:
    """Speed of one file edge in bit/s: LinkSpeedRaw, else LinkSpeed x LinkSpeedUnits."""
    if data.get("LinkSpeedRaw") not in (None, ""):
        value, units, field = data["LinkSpeedRaw"], None, "LinkSpeedRaw"
    elif data.get("LinkSpeed") not in (None, ""):
        value, units, field = data["LinkSpeed"], data.get("LinkSpeedUnits"), "LinkSpeed"
    else:
        return None
    bps = parse_speed_bps(value, units)
    if bps is None or not (bps > 0 and math.isfinite(bps)):
        shown = f"{value!r}" + (f" with LinkSpeedUnits {units!r}" if units else "")
        raise ScenarioError(
            str(path),
            f"link {link}",
            f"{field} must be a positive speed (got {shown}); {_SPEED_FIX}",
        )
    return bps


def read_network(
    path: Path,
    *,
    missing_coordinates: str = "drop",
    route_factor: float = 1.0,
    min_link_km: float = 0.1,
    default_capacity_gbps: float = 100.0,
    source: str | None = None,
) -> ImportedNetwork:
    """Read a Topology Zoo GraphML/GML file into PoPs and links (see the module docstring).

    Problems in the file name the file; a missing file names ``source`` (the scenario).
    """
    path = Path(path)
    source = str(path) if source is None else source
    g = _read_graph(path, source)
    names, shared = _node_names(g, path)
    coords = _coordinates(g, names, path)
    _resolve_missing(g, names, coords, missing_coordinates, path)
    if g.number_of_nodes() == 0:
        raise ScenarioError(
            str(path), "graph", "no node with Latitude/Longitude; a network needs positioned PoPs"
        )
    _check_connected(g, names, path, missing_coordinates)

    order = list(g.nodes)
    index = {nid: i for i, nid in enumerate(order)}
    lat0 = sum(coords[n][0] for n in order) / len(order)
    lon0 = sum(coords[n][1] for n in order) / len(order)
    kx = math.radians(1) * EARTH_RADIUS_KM * math.cos(math.radians(lat0))
    ky = math.radians(1) * EARTH_RADIUS_KM
    xy = [((coords[n][1] - lon0) * kx, (coords[n][0] - lat0) * ky) for n in order]

    # Edges grouped per direction: a directed file's a->b and b->a are one full-duplex link.
    per_direction: dict[tuple[int, int], list[float | None]] = defaultdict(list)
    loops = []
    for u, v, data in g.edges(data=True):
        if u == v:
            loops.append(names[u])
            continue
        label = f"{names[u]}--{names[v]}"
        cap = _link_capacity_bps(data, path, label)
        per_direction[(index[u], index[v])].append(None if cap is None else cap / 1e9)
    directed = g.is_directed()
    pairs: dict[tuple[int, int], list[list[float | None]]] = defaultdict(list)
    for (a, b), caps in per_direction.items():
        pairs[(min(a, b), max(a, b))].append(caps)
    links, merged, unknown, short = [], [], 0, []
    for (a, b), directions in sorted(pairs.items()):
        flat = [c for caps in directions for c in caps]
        unknown += sum(c is None for c in flat)
        totals = [
            sum(default_capacity_gbps if c is None else c for c in caps) for caps in directions
        ]
        parallel = max(len(caps) for caps in directions) if directed else len(flat)
        capacity = max(totals) if directed else sum(totals)
        if parallel > 1:
            merged.append(
                f"{names[order[a]]}--{names[order[b]]} ({parallel} -> {capacity:g} Gbit/s)"
            )
        length = great_circle_km(*coords[order[a]], *coords[order[b]]) * route_factor
        if length < min_link_km:
            short.append(f"{names[order[a]]}--{names[order[b]]} ({length:.3g} km)")
            length = min_link_km
        links.append(ImportedLink(a, b, length, capacity))
    if loops:
        warn(str(path), f"ignored {len(loops)} self-loop(s) at {', '.join(map(repr, loops))}")
    if merged:
        warn(
            str(path),
            f"merged parallel links into one link of summed capacity: {', '.join(merged)}",
        )
    if short:
        warn(
            str(path),
            f"{len(short)} link(s) shorter than topology.min_link_km = {min_link_km:g} km "
            f"(co-located PoPs) get that length: {', '.join(short)}",
        )
    if unknown:
        warn(
            str(path),
            f"{unknown} of {sum(len(c) for c in per_direction.values())} link(s) give no "
            f"LinkSpeedRaw or LinkSpeed; they get topology.link.capacity_gbps = "
            f"{default_capacity_gbps:g} Gbit/s",
        )
    return ImportedNetwork(
        path=path,
        names=[names[n] for n in order],
        latlon=[coords[n] for n in order],
        xy_km=xy,
        links=links,
        shared_labels=shared,
    )


# --------------------------------------------------------------------------- topology
def _site_pop(net: ImportedNetwork, name: str, role: str, source: str) -> None:
    """Check that a site's PoP name exists; say what to write instead if it does not."""
    if name in net.names:
        return
    if name in net.shared_labels:
        reason = (
            f"label {name!r} is carried by several nodes of {net.path.name}; name one of "
            f"{', '.join(map(repr, net.shared_labels[name]))}"
        )
    else:
        close = get_close_matches(name, net.names, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        reason = f"no node named {name!r} in {net.path.name}{hint}"
    raise ScenarioError(source, f"topology.{role}_sites", reason)


def load_graphml(
    path: Path,
    spec: schema.GraphMLTopology,
    tiers: schema.SiteTiers,
    source: str | None = None,
) -> Topology:
    """Build a topology from a Topology Zoo GraphML or GML file (see module docstring).

    Problems in the file's content name the file; problems in the scenario's ``topology``
    settings name ``source`` (the scenario file; default: the network file).
    """
    source = str(path) if source is None else source
    net = read_network(
        path,
        missing_coordinates=spec.missing_coordinates,
        route_factor=spec.route_factor,
        min_link_km=spec.min_link_km,
        default_capacity_gbps=spec.link.capacity_gbps,
        source=source,
    )
    topo = Topology()
    for name, (x, y) in zip(net.names, net.xy_km):
        topo.add_node(name, "aggregation", x, y)
    for link in net.links:
        topo.add_link(
            net.names[link.a],
            net.names[link.b],
            capacity_gbps=link.capacity_gbps,
            forwarding_us=spec.link.forwarding_us,
            length_km=link.length_km,
        )
    for role, names in (("edge", spec.edge_sites), ("city", spec.city_sites)):
        for name in names:
            _site_pop(net, name, role, source)
            _attach_site(topo, name, role, getattr(tiers, role), spec.link)
    return topo

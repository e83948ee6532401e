"""Small Internet Topology Zoo-style files for the importer tests, written into tmp_path.

The attribute names, key declarations and value types follow the published Zoo files
(``Latitude``/``Longitude`` doubles, ``LinkSpeed`` as a string with ``LinkSpeedUnits``,
``LinkSpeedRaw`` in bit/s, ``Internal`` 0 for external peers). Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import quoteattr

NodeSpec = tuple[str, str | None, float | None, float | None]  # id, label, lat, lon
EdgeSpec = tuple[str, str, dict[str, object]]  # source, target, attributes

# A metro around Munich with every quirk of the issue (ids as in a Zoo file):
QUIRKY_NODES: list[NodeSpec] = [
    ("0", "Centre", 48.1374, 11.5755),
    ("1", "Schwabing", 48.1650, 11.5860),
    ("2", "Giesing", 48.1100, 11.5850),
    ("3", "Laim", 48.1400, 11.5030),
    ("4", "Laim", 48.1790, 11.5110),  # a second "Laim": the label is shared
    ("5", None, 48.1250, 11.6320),  # no label
    ("6", "Centre-2", 48.1374, 11.5755),  # co-located with Centre (zero-length link)
    ("7", "Peer Vienna", None, None),  # external peer without coordinates
    ("8", "Peer Zurich", None, None),  # external peer without coordinates
]
QUIRKY_EDGES: list[EdgeSpec] = [
    ("0", "1", {"LinkSpeed": "10", "LinkSpeedUnits": "G", "LinkSpeedRaw": 10e9}),
    ("0", "1", {"LinkSpeed": "100", "LinkSpeedUnits": "G"}),  # parallel: 10 + 100 Gbit/s
    ("0", "2", {"LinkLabel": "2.5 Gbps", "LinkSpeed": "2.5 Gbps"}),  # string with units
    ("0", "3", {"LinkSpeed": "155", "LinkSpeedUnits": "M"}),
    ("3", "4", {}),  # no speed: the scenario's default capacity
    ("4", "1", {"LinkSpeedRaw": 40e9}),
    ("2", "5", {"LinkSpeedRaw": 10e9}),
    ("5", "1", {"LinkSpeedRaw": 10e9}),
    ("0", "6", {"LinkSpeedRaw": 400e9}),  # co-located PoPs: zero length
    ("1", "7", {"LinkSpeedRaw": 10e9}),  # international link to a peer
    ("2", "8", {"LinkSpeedRaw": 10e9}),
    ("7", "8", {}),
]

_NODE_KEYS = (("label", "string"), ("Latitude", "double"), ("Longitude", "double"))
_EDGE_KEYS = (
    ("LinkLabel", "string"),
    ("LinkSpeed", "string"),
    ("LinkSpeedUnits", "string"),
    ("LinkSpeedRaw", "double"),
)


def write_graphml(path: Path, nodes: list[NodeSpec], edges: list[EdgeSpec]) -> Path:
    """Write a Zoo-style GraphML file (undirected) and return its path."""
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">',
    ]
    for i, (name, kind) in enumerate(_NODE_KEYS):
        lines.append(f'  <key attr.name="{name}" attr.type="{kind}" for="node" id="n{i}" />')
    lines.append('  <key attr.name="Internal" attr.type="int" for="node" id="ni" />')
    for i, (name, kind) in enumerate(_EDGE_KEYS):
        lines.append(f'  <key attr.name="{name}" attr.type="{kind}" for="edge" id="e{i}" />')
    lines.append('  <graph edgedefault="undirected">')
    for nid, label, lat, lon in nodes:
        data = [(f"n{i}", v) for i, v in enumerate((label, lat, lon)) if v is not None]
        data.append(("ni", 0 if lat is None else 1))
        body = "".join(f'<data key="{k}">{v}</data>' for k, v in data)
        lines.append(f"    <node id={quoteattr(nid)}>{body}</node>")
    keys = {name: f"e{i}" for i, (name, _) in enumerate(_EDGE_KEYS)}
    for source, target, attrs in edges:
        body = "".join(f'<data key="{keys[k]}">{v}</data>' for k, v in attrs.items())
        lines.append(
            f"    <edge source={quoteattr(source)} target={quoteattr(target)}>{body}</edge>"
        )
    lines += ["  </graph>", "</graphml>", ""]
    path.write_text("\n".join(lines))
    return path


def write_gml(path: Path, nodes: list[NodeSpec], edges: list[EdgeSpec]) -> Path:
    """Write the same network as Zoo-style GML (no ``multigraph`` flag, as some Zoo files)."""

    def value(v: object) -> str:
        return f'"{v}"' if isinstance(v, str) else repr(float(v))

    lines = ["graph [", '  DateObtained "1/01/11"']
    for nid, label, lat, lon in nodes:
        lines.append("  node [")
        lines.append(f"    id {nid}")
        if label is not None:
            lines.append(f'    label "{label}"')
        lines.append(f"    Internal {0 if lat is None else 1}")
        if lat is not None:
            lines += [f"    Latitude {lat}", f"    Longitude {lon}"]
        lines.append("  ]")
    for source, target, attrs in edges:
        lines.append("  edge [")
        lines += [f"    source {source}", f"    target {target}"]
        lines += [f"    {k} {value(v)}" for k, v in attrs.items()]
        lines.append("  ]")
    lines += ["]", ""]
    path.write_text("\n".join(lines))
    return path

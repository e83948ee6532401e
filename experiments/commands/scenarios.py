"""``millinet scenarios list|show|validate|new``."""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

import yaml

from millinet.envs.config import dump_config
from millinet.envs.errors import MillinetWarning
from millinet.envs.scaffold import scaffold_yaml
from millinet.envs.scenario import Scenario, build_scenario, list_scenarios, resolve_config
from millinet.experiments.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "scenarios",
        help="list, show, validate or scaffold scenarios",
        description="List shipped scenarios, show one resolved, validate a file, or scaffold "
        "a new scenario from a real network (Topology Zoo GraphML/GML).",
    )
    inner = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    inner.add_parser("list", help="names and descriptions of the shipped scenarios")
    show = inner.add_parser("show", help="print a scenario (name or file) as resolved YAML")
    show.add_argument("scenario", help="shipped name or path to a YAML file")
    val = inner.add_parser("validate", help="check a scenario file; exit 0 if valid")
    val.add_argument("file", help="path to a scenario YAML file (or a shipped name)")
    new = inner.add_parser(
        "new",
        help="scaffold a scenario from a GraphML/GML network",
        description="Write a commented scenario for a real network: a city compute centre and "
        "edge DCs on its most central PoPs, one factory of each profile next to an edge site. "
        "The file validates and simulates as written; its comments say what to edit.",
    )
    new.add_argument(
        "--graphml", required=True, metavar="FILE", help="network file (.graphml or .gml)"
    )
    new.add_argument("--out", required=True, metavar="FILE", help="scenario YAML to write")
    new.add_argument("--name", help="scenario name (default: the --out file name)")
    new.add_argument(
        "--missing-coordinates",
        choices=("drop", "place_from_neighbours"),
        default="drop",
        help="nodes without Latitude/Longitude (default: drop)",
    )
    new.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    p.set_defaults(func=run)


def _summary(source: str, scenario: Scenario) -> str:
    net = scenario.network
    return (
        f"{source}: valid scenario {scenario.name!r}: {len(scenario.topology.nodes)} nodes, "
        f"{len(scenario.topology.links)} links, {len(net.pool_site)} compute pools, "
        f"{len(scenario.factory_names)} factories, K = {net.K}"
    )


def _new(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix not in (".yaml", ".yml"):
        raise UserError(f"--out {args.out}: a scenario file ends in .yaml or .yml")
    if out.exists() and not args.force:
        raise UserError(f"--out {args.out}: exists; choose another name or pass --force")
    if not out.parent.is_dir():
        raise UserError(f"--out {args.out}: folder {str(out.parent)!r} does not exist")
    with warnings.catch_warnings():  # building the scenario below warns about the same file
        warnings.simplefilter("ignore", MillinetWarning)
        text = scaffold_yaml(
            Path(args.graphml), out, name=args.name, missing_coordinates=args.missing_coordinates
        )
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp.yaml")
    try:  # the file appears only once it validates and builds
        tmp.write_text(text)
        cfg, _, base = resolve_config(tmp)
        scenario = build_scenario(cfg, str(out), base)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"wrote {_summary(str(out), scenario)}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        for name in list_scenarios():
            cfg, _, _ = resolve_config(name)
            first = cfg.description.strip().split(". ")[0]
            print(f"{name:<18} {first}")
        return 0
    if args.action == "show":
        cfg, _, _ = resolve_config(args.scenario)
        print(yaml.safe_dump(dump_config(cfg), sort_keys=False).rstrip())
        return 0
    if args.action == "new":
        return _new(args)
    cfg, source, base = resolve_config(args.file)
    print(_summary(source, build_scenario(cfg, source, base)))
    return 0

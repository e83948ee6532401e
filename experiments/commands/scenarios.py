"""``millinet scenarios list|show|validate``."""

from __future__ import annotations

import argparse

import yaml

from millinet.envs.config import dump_config
from millinet.envs.scenario import build_scenario, list_scenarios, resolve_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "scenarios",
        help="list, show or validate scenarios",
        description="List shipped scenarios, show one resolved, or validate a file.",
    )
    inner = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    inner.add_parser("list", help="names and descriptions of the shipped scenarios")
    show = inner.add_parser("show", help="print a scenario (name or file) as resolved YAML")
    show.add_argument("scenario", help="shipped name or path to a YAML file")
    val = inner.add_parser("validate", help="check a scenario file; exit 0 if valid")
    val.add_argument("file", help="path to a scenario YAML file (or a shipped name)")
    p.set_defaults(func=run)


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
    cfg, source, base = resolve_config(args.file)
    scenario = build_scenario(cfg, source, base)
    net = scenario.network
    print(
        f"{source}: valid scenario {cfg.name!r}: {len(scenario.topology.nodes)} nodes, "
        f"{len(scenario.topology.links)} links, {len(net.pool_site)} compute pools, "
        f"{len(scenario.factory_names)} factories, K = {net.K}"
    )
    return 0

"""``millinet demo``: the main job on the default scenario (what ``make demo`` runs)."""

from __future__ import annotations

import argparse

from experiments.commands import simulate


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the main job on the default scenario",
        description="Simulate the default scenario under the nearest-site "
        "policy and print its metrics.",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return simulate.run(
        argparse.Namespace(
            scenario="sunflower-metro", policy="nearest", duration=1.0, seed=0, json=None
        )
    )

"""``millinet bench``: performance benchmarks that write JSON into results/bench/."""

from __future__ import annotations

import argparse

BENCHMARKS = ("sim", "serve")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="run benchmarks (JSON into results/bench/)",
        description="Run a benchmark and write results/bench/<name>.json.",
    )
    p.add_argument("name", choices=(*BENCHMARKS, "all"), help="which benchmark")
    p.add_argument("--out", default="results/bench", help="output folder (default results/bench)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from experiments import benchmarks

    names = BENCHMARKS if args.name == "all" else (args.name,)
    for name in names:
        getattr(benchmarks, f"bench_{name}")(args.out)
    return 0

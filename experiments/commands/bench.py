"""``millinet bench``: performance benchmarks that write JSON into results/bench/."""

from __future__ import annotations

import argparse
import importlib

# name -> "module:function"; each function takes the output folder and writes <name>.json.
BENCHMARKS = {
    "sim": "millinet.experiments.bench.benchmarks:bench_sim",
    "env": "millinet.experiments.bench.env:bench_env",
    "serve": "millinet.experiments.bench.serve:bench_serve",
}


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
    from millinet.envs.files import check_output_dir

    check_output_dir(args.out, "--out")  # before minutes of benchmarking
    names = tuple(BENCHMARKS) if args.name == "all" else (args.name,)
    for name in names:
        module, function = BENCHMARKS[name].split(":")
        getattr(importlib.import_module(module), function)(args.out)
    return 0

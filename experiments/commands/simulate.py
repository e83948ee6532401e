"""``millinet simulate``: run a scenario under a placement policy and print its metrics."""

from __future__ import annotations

import argparse
import re
import sys

from tqdm import tqdm

from millinet.agents.specs import POLICY_HELP, chooser_for
from millinet.envs.files import check_output_file, write_text_atomic
from millinet.envs.jsonio import dumps
from millinet.envs.metrics import format_table
from millinet.envs.scenario import DEFAULT_SCENARIO, Scenario, load_scenario
from millinet.envs.simulation import simulate

_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ms|s)?\s*$")


def parse_duration(text: str) -> float:
    """'2s', '500ms' or '0.5' (seconds) -> seconds."""
    m = _DURATION.match(text)
    if not m or float(m.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: use e.g. 2s, 500ms or 0.5")
    value = float(m.group(1))
    return value / 1000 if m.group(2) == "ms" else value


def parse_seed(text: str) -> int:
    """An engine seed: an integer >= 0 (numpy's generators take no negative seed)."""
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if seed < 0:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}: use an integer >= 0")
    return seed


def add_scenario_arguments(p: argparse.ArgumentParser) -> None:
    """``--scenario`` and ``--seed``, which fix an episode's arrivals (simulate, render,
    bound); :func:`seed_of` resolves the seed."""
    p.add_argument(
        "--scenario",
        default=DEFAULT_SCENARIO,
        help=f"shipped name or YAML path (default {DEFAULT_SCENARIO})",
    )
    p.add_argument(
        "--seed",
        type=parse_seed,
        default=None,
        help="workload seed (default: the scenario's `seed`, 0 unless the file sets it)",
    )


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """:func:`add_scenario_arguments` and ``--policy``: a command that runs one scenario under
    a policy (simulate, render)."""
    add_scenario_arguments(p)
    p.add_argument("--policy", default="nearest", help=POLICY_HELP)


def seed_of(args: argparse.Namespace, scenario: Scenario) -> int:
    """``--seed``, else the scenario file's ``seed``."""
    return scenario.config.seed if args.seed is None else args.seed


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="simulate a scenario under a policy",
        description="Simulate a scenario and print per-class metrics and the "
        "headline violation_rate_1ms.",
    )
    add_run_arguments(p)
    p.add_argument(
        "--duration",
        type=parse_duration,
        default=None,
        help="simulated time of arrivals, e.g. 2s or 500ms (default: scenario's)",
    )
    p.add_argument("--json", metavar="FILE", help="also write the metrics as JSON to FILE")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.json:
        check_output_file(args.json, "--json")
    scenario = load_scenario(args.scenario)
    args.seed = seed_of(args, scenario)
    choose = chooser_for(args.policy, scenario, seed=args.seed)
    duration = args.duration or scenario.config.duration_s
    scenario.check_tasks(duration, "--duration" if args.duration else "duration_s")
    bar = tqdm(
        total=round(duration * 1000),
        unit="ms",
        desc=f"simulate {scenario.name}",
        file=sys.stderr,
        disable=None,
        leave=False,
    )

    def progress(t: float) -> None:
        bar.update(round(t * 1000) - bar.n)

    result = simulate(scenario, choose, duration, args.seed, progress)
    bar.close()
    print(
        f"scenario {scenario.name}  policy {args.policy}  seed {args.seed}  "
        f"simulated {duration:g} s  ({result.records.size:,} tasks, "
        f"{result.tasks_per_s:,.0f} tasks/s wall)"
    )
    print(format_table(result.metrics))
    if args.json:
        data = {
            "scenario": scenario.name,
            "policy": args.policy,
            "seed": args.seed,
            "duration_s": duration,
            "metrics": result.metrics,
        }
        write_text_atomic(args.json, dumps(data, indent=2) + "\n")
    return 0

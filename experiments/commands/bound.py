"""``millinet bound``: a proven lower bound on the violations of any policy in one episode."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from millinet.envs.bound import OBJECTIVES, BoundResult, lower_bound
from millinet.envs.files import check_output_file, write_text_atomic
from millinet.envs.jsonio import dumps
from millinet.envs.scenario import load_scenario
from millinet.experiments.commands.simulate import add_scenario_arguments, parse_duration, seed_of


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"invalid time limit {text!r}: use seconds > 0")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bound",
        help="lower-bound the violations of any policy in an episode",
        description="Prove a lower bound on the 1 ms tasks that every placement-and-routing "
        "policy (even one that knows all future arrivals) must leave late or dropped in one "
        "episode, and on the class-weighted violations. The episode's arrivals are exactly "
        "those of `millinet simulate` with the same --scenario, --seed and --duration. "
        "docs/bound.md has the relaxation and its proof.",
    )
    add_scenario_arguments(p)
    p.add_argument(
        "--duration",
        type=parse_duration,
        default=None,
        help="simulated time of arrivals, e.g. 2s or 500ms (default: scenario's)",
    )
    p.add_argument(
        "--objective",
        choices=(*OBJECTIVES, "both"),
        default="both",
        help="violations_1ms (1 ms tasks, weight 1), weighted (every class at its reward "
        "weight) or both (default)",
    )
    p.add_argument(
        "--time-limit",
        type=_positive_seconds,
        default=540.0,
        metavar="SECONDS",
        help="wall-clock budget for the LPs (default 540); a bound cut short stays valid",
    )
    p.add_argument("--json", metavar="FILE", help="also write the result as JSON to FILE")
    p.set_defaults(func=run)


def format_result(result: BoundResult) -> str:
    """The human-readable summary ``millinet bound`` prints."""
    lines = [
        f"scenario {result.scenario}  seed {result.seed}  simulated {result.duration_s:g} s  "
        f"({result.arrivals:,} arrivals, {result.wall_s:.1f} s wall)",
        f"{'objective':<15} {'tasks':>9} {'weight':>10} {'lower bound':>12} {'share %':>9}  "
        f"{'status':<11} {'rounds':>6} {'cuts':>6} {'LP s':>6}",
    ]
    for b in result.bounds.values():
        lines.append(
            f"{b.objective:<15} {b.tasks:>9,} {b.total_weight:>10,.0f} {b.lower_bound:>12,.6g} "
            f"{100 * b.share:>9.4g}  {b.status:<11} {b.rounds:>6} {b.cuts:>6} {b.solve_s:>6.1f}"
        )
    for b in result.bounds.values():
        if b.structural > 0:
            lines.append(
                f"{b.objective}: {b.structural:,.6g} of it from tasks that no feasible "
                "candidate can serve on time even with every queue empty"
            )
        if b.binding:
            top = ", ".join(f"{name} ({n})" for name, n in list(b.binding.items())[:4])
            lines.append(f"{b.objective}: capacity rows that carry the bound: {top}")
    return "\n".join(lines)


class _Progress:
    """tqdm bars: simulated ms while the arrivals are read, then LP rounds per objective."""

    def __init__(self, duration_s: float) -> None:
        kw = {"file": sys.stderr, "disable": None, "leave": False}
        self.arrivals = tqdm(total=round(duration_s * 1000), unit="ms", desc="arrivals", **kw)
        self.rounds: dict[str, tqdm] = {}
        self.kw = kw

    def __call__(self, stage: str, value: float) -> None:
        if stage == "arrivals":
            self.arrivals.update(round(value * 1000) - self.arrivals.n)
            return
        self.arrivals.close()
        bar = self.rounds.get(stage)
        if bar is None:
            bar = self.rounds[stage] = tqdm(unit="LP", desc=stage, **self.kw)
        bar.set_postfix(bound=f"{value:.6g}")
        bar.update(1)

    def close(self) -> None:
        self.arrivals.close()
        for bar in self.rounds.values():
            bar.close()


def run(args: argparse.Namespace) -> int:
    if args.json:
        check_output_file(args.json, "--json")
    scenario = load_scenario(args.scenario)
    duration = args.duration or scenario.config.duration_s
    scenario.check_tasks(duration, "--duration" if args.duration else "duration_s")
    objectives = OBJECTIVES if args.objective == "both" else (args.objective,)
    progress = _Progress(duration)
    try:
        result = lower_bound(
            scenario,
            seed_of(args, scenario),
            duration,
            objectives=objectives,
            time_limit_s=args.time_limit,
            progress=progress,
        )
    finally:
        progress.close()
    print(format_result(result))
    if args.json:
        write_text_atomic(args.json, dumps(result.to_dict(), indent=2) + "\n")
    return 0

"""``millinet evaluate``: compare policies over many seeds, with 95% confidence intervals."""

from __future__ import annotations

import argparse
import importlib.util
import shlex
import sys
import time
from pathlib import Path

from millinet.envs.files import (
    check_output_dir,
    check_output_file,
    output_dir,
    safe_name,
    write_text_atomic,
)
from millinet.experiments.commands.simulate import parse_duration


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _warmup(text: str) -> float:
    if text.strip() in ("0", "0s", "0ms"):
        return 0.0
    return parse_duration(text)


def register(sub: argparse._SubParsersAction) -> None:
    from millinet.agents.heuristics import HEURISTICS
    from millinet.experiments.evaluation.harness import DEFAULT_SEEDS

    p = sub.add_parser(
        "evaluate",
        help="evaluate policies over many seeds with confidence intervals",
        description=(
            "Run each policy on the same evaluation seeds (2**31 + i, disjoint from training "
            "seeds) and report violation_rate_1ms, per-class violation rates, p50/p99/p99.9 "
            "latency and drops, each as the mean over seeds with a 95% bootstrap CI. Writes "
            "per_seed.csv, summary.csv, summary.md, run.json and PNG plots into --out (one "
            "sub-folder per scenario with --all-scenarios or several --scenario, plus a combined "
            "report)."
        ),
    )
    p.add_argument(
        "--scenario",
        action="append",
        metavar="S",
        help="shipped name or YAML path; repeat for several (default sunflower-metro)",
    )
    p.add_argument(
        "--all-scenarios", action="store_true", help="every shipped scenario (scenarios list)"
    )
    p.add_argument(
        "--policy",
        action="append",
        metavar="P",
        help=f"heuristic ({', '.join(HEURISTICS)}), trained run folder or exported policy "
        "folder; repeat for several (default: every heuristic)",
    )
    p.add_argument(
        "--seeds",
        type=positive_int,
        default=DEFAULT_SEEDS,
        help=f"number of evaluation seeds (episodes) per policy (default {DEFAULT_SEEDS})",
    )
    p.add_argument(
        "--seed-base",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="evaluate on test seeds 2**31 + N .. 2**31 + N + seeds - 1 (default 0): another "
        "test range, to check a claim on seeds nobody tuned to",
    )
    p.add_argument(
        "--duration",
        type=parse_duration,
        default=None,
        help="simulated time of arrivals per episode, e.g. 1s or 500ms (default: scenario's)",
    )
    p.add_argument(
        "--warmup",
        type=_warmup,
        default=0.0,
        help="leave tasks arriving in the first WARMUP of an episode out of the metrics "
        "(default 0)",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="episodes run in parallel in this many processes (default 1); results identical",
    )
    p.add_argument("--out", default="runs/eval", help="output folder (default runs/eval)")
    p.add_argument(
        "--report",
        metavar="FILE",
        help="write the combined markdown report here (default: OUT/README.md when there are "
        "per-scenario sub-folders)",
    )
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.set_defaults(func=run)


def command_line(args: argparse.Namespace) -> str:
    """The canonical command that reproduces this run (written at the top of reports)."""
    parts = ["millinet", "evaluate"]
    if args.all_scenarios:
        parts.append("--all-scenarios")
    for s in args.scenario or ():
        parts += ["--scenario", s]
    for p in args.policy or ():
        parts += ["--policy", p]
    parts += ["--seeds", str(args.seeds)]
    if args.seed_base:
        parts += ["--seed-base", str(args.seed_base)]
    if args.duration is not None:
        parts += ["--duration", f"{args.duration:g}s"]
    if args.warmup:
        parts += ["--warmup", f"{args.warmup:g}s"]
    parts += ["--workers", str(args.workers), "--out", args.out]
    if args.report:
        parts += ["--report", args.report]
    if args.no_plots:
        parts.append("--no-plots")
    return " ".join(shlex.quote(x) for x in parts)


class _Progress:
    """Progress on stderr: a tqdm bar on a terminal, one line per episode otherwise."""

    def __init__(self, total: int, desc: str) -> None:
        self.total, self.done, self.desc = total, 0, desc
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="episode", file=sys.stderr, leave=False)

    def __call__(self, res) -> None:
        from millinet.envs.seeds import EVAL_SEED_BASE

        self.done += 1
        row = res.row
        seed = row["seed"] - EVAL_SEED_BASE if row["seed"] >= EVAL_SEED_BASE else row["seed"]
        v1 = row["violation_rate_1ms"]
        text = f"{row['policy']} seed {seed}: violation_rate_1ms {v1:.4%} ({res.cpu_s:.1f} s CPU)"
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(1)
        else:
            print(f"{self.desc} [{self.done}/{self.total}] {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run(args: argparse.Namespace) -> int:
    if not args.no_plots and importlib.util.find_spec("matplotlib") is None:
        from millinet.envs.errors import MissingExtraError

        raise MissingExtraError(
            "millinet evaluate's plots need matplotlib (the 'train' extra): "
            "pip install 'millinet[train]', or pass --no-plots"
        )
    from millinet.agents.heuristics import HEURISTICS
    from millinet.envs.scenario import DEFAULT_SCENARIO, list_scenarios
    from millinet.experiments.errors import UserError

    if args.all_scenarios and args.scenario:
        raise UserError("give either --scenario or --all-scenarios, not both")
    check_output_dir(args.out, "--out")
    if args.report:
        check_output_file(args.report, "--report", create_parents=True)
    scenarios = list_scenarios() if args.all_scenarios else (args.scenario or [DEFAULT_SCENARIO])
    policies = args.policy or list(HEURISTICS)
    if len(set(policies)) != len(policies):
        raise UserError(f"a policy is listed twice: {' '.join(policies)}")
    if len(set(scenarios)) != len(scenarios):
        raise UserError(f"a scenario is listed twice: {' '.join(scenarios)}")
    out = Path(args.out)
    several = args.all_scenarios or len(scenarios) > 1  # one sub-folder per scenario
    with output_dir(out):  # a failure before the first outputs leaves no empty folder
        _evaluate_all(args, scenarios, policies, out, several)
    return 0


def _evaluate_all(
    args: argparse.Namespace, scenarios: list[str], policies: list[str], out: Path, several: bool
) -> None:
    """Evaluate every scenario, write its outputs (a sub-folder each when ``several``) and
    the combined report."""
    from millinet.experiments.errors import UserError
    from millinet.experiments.evaluation.harness import evaluate, write_outputs
    from millinet.experiments.evaluation.report import best_line, markdown_report, markdown_summary

    start = time.perf_counter()
    evaluations = []
    for name in scenarios:
        progress = _Progress(len(policies) * args.seeds, f"evaluate {Path(name).stem}")
        try:
            ev = evaluate(
                name,
                policies,
                seeds=args.seeds,
                duration_s=args.duration,
                warmup_s=args.warmup,
                workers=args.workers,
                on_done=progress,
                seed_base=args.seed_base,
            )
        except ValueError as exc:
            raise UserError(str(exc)) from None
        finally:
            progress.close()
        folder = out / safe_name(ev.scenario) if several else out
        write_outputs(ev, folder, plots=not args.no_plots, command=command_line(args))
        evaluations.append(ev)
        print(f"## {ev.scenario}\n")
        print(markdown_summary(ev, image_dir=None))
        print(f"\n{best_line(ev)}\nwrote {folder}/ ({ev.wall_s:.0f} s, {ev.cpu_s:.0f} s CPU)\n")
    report = Path(args.report) if args.report else (out / "README.md" if several else None)
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        image_dirs = {
            ev.scenario: _relpath(out / safe_name(ev.scenario) if several else out, report.parent)
            for ev in evaluations
        }
        text = markdown_report(
            evaluations, command_line(args), image_dirs, time.perf_counter() - start
        )
        write_text_atomic(report, text)
        print(f"wrote {report}")


def _relpath(target: Path, base: Path) -> str:
    import os

    return Path(os.path.relpath(target.resolve(), base.resolve())).as_posix()

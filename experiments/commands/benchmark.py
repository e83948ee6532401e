"""``millinet benchmark``: policies against tuned baselines and full-information references on
a suite's fixed test seeds and out-of-distribution test sets, as a leaderboard."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from millinet.experiments.commands.evaluate import non_negative_int, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    from millinet.agents.specs import POLICY_HELP

    p = sub.add_parser(
        "benchmark",
        help="a suite's leaderboard: policies vs tuned heuristics and oracle references",
        description=(
            "Evaluate policies on a benchmark suite (experiments/suites/<name>.yaml or a "
            "path): every (policy, test set) cell over the suite's test seeds, beside the "
            "suite's tuned and default heuristics on reports, every heuristic under the "
            "oracle view (the full-information reference) and the lower bound of millinet "
            "bound. Writes leaderboard.md, leaderboard.csv, leaderboard.png and run.json into "
            "--out, and keeps each finished cell in OUT/cells/: a rerun into the same folder "
            "computes only the cells it does not have (resume; add a policy). README: "
            "'Benchmark suites and the leaderboard'."
        ),
    )
    p.add_argument("--suite", default="main", help="shipped suite name or YAML path (main)")
    p.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="P",
        help=f"a policy under test, repeatable: {POLICY_HELP} (default: none; the "
        "leaderboard of the baselines and references alone)",
    )
    p.add_argument(
        "--out", default=None, help="output folder (default runs/benchmark/<suite name>)"
    )
    p.add_argument(
        "--seed-base",
        type=non_negative_int,
        default=None,
        metavar="N",
        help="test seeds 2**31 + N .. (default: the suite's seeds.test.first): another test "
        "range, to check a claim on seeds nobody tuned to",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=os.cpu_count() or 1,
        help="episodes run in this many local processes (default: every core); results do "
        "not depend on it",
    )
    p.add_argument(
        "--address",
        default=None,
        help="run the episodes as tasks on the Ray cluster at HOST:PORT (ray://HOST:PORT or "
        "auto) instead of local processes; the same results",
    )
    p.add_argument(
        "--connect-timeout",
        type=float,
        default=30.0,
        help="seconds to wait for the Ray cluster (default 30)",
    )
    p.add_argument("--no-bound", action="store_true", help="leave the lower-bound column out")
    p.set_defaults(func=run)


def command_line(args: argparse.Namespace) -> str:
    """The canonical command of this run (heads leaderboard.md, goes into run.json)."""
    parts = ["millinet", "benchmark", "--suite", args.suite]
    for spec in args.policy:
        parts += ["--policy", spec]
    if args.seed_base is not None:
        parts += ["--seed-base", str(args.seed_base)]
    parts += ["--out", str(args.out)]
    if args.address:
        parts += ["--address", args.address]
    if args.no_bound:
        parts.append("--no-bound")
    return " ".join(shlex.quote(x) for x in parts)


class _Progress:
    """Progress on stderr: a tqdm bar over episodes on a terminal, else a line per cell."""

    def __init__(self, episodes: int, cells: int) -> None:
        self.episodes, self.cells = episodes, cells
        self.cells_done = 0
        self.t0 = time.monotonic()
        self.bar = None
        if sys.stderr.isatty() and episodes:
            from tqdm import tqdm

            self.bar = tqdm(total=episodes, desc="benchmark", unit="episode", file=sys.stderr)

    def episode(self, cell, result) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def cell(self, result) -> None:
        self.cells_done += 1
        c = result.cell
        v1 = [v for v in result.values("violation_rate_1ms") if v == v]
        mean = f"{100 * sum(v1) / len(v1):.3g} %" if v1 else "n/a"
        text = (
            f"{c.test_set} {c.view} {c.label}: violation_rate_1ms {mean} ({result.cpu_s:.0f} s CPU)"
        )
        if self.bar is not None:
            self.bar.set_postfix_str(f"cells {self.cells_done}/{self.cells}", refresh=False)
            self.bar.write(text, file=sys.stderr)
        else:
            el = int(time.monotonic() - self.t0)
            print(
                f"[{el // 60}m{el % 60:02d}s cells {self.cells_done}/{self.cells}] {text}",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run(args: argparse.Namespace) -> int:
    from millinet.envs.errors import require_extra
    from millinet.experiments.errors import UserError

    require_extra("train", "millinet benchmark's leaderboard plot (matplotlib)")
    if args.address:
        require_extra("sweep", "millinet benchmark --address (Ray)")
    from millinet.agents.specs import load_policy
    from millinet.experiments.bench.benchmarks import load_average, machine_info
    from millinet.experiments.benchmark.cells import CellStore
    from millinet.experiments.benchmark.files import check_out_dir
    from millinet.experiments.benchmark.run import bound_status, entries, plan, run_cells
    from millinet.experiments.benchmark.suite import load_suite
    from millinet.experiments.evaluation.harness import cached_scenario

    suite = load_suite(args.suite)
    if args.out is None:
        args.out = str(Path("runs") / "benchmark" / suite.name)
    if len(set(args.policy)) != len(args.policy):
        raise UserError(f"a policy is listed twice: {' '.join(args.policy)}")
    for spec in args.policy:  # a bad spec fails now, before anything runs or is written
        for ts in suite.test_sets:
            load_policy(spec, cached_scenario(ts.scenario), seed=0)
    out = check_out_dir(args.out)
    try:
        seeds = suite.test_seeds(args.seed_base)
    except ValueError as exc:
        raise UserError(f"--seed-base {args.seed_base}: {exc}") from None
    note = bound_status(suite, not args.no_bound)
    try:
        board_entries = entries(suite, args.policy, bound=note is None)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    cells = plan(suite, board_entries, seeds)
    store = CellStore(out)
    unique: dict = {}  # one cell per key: test sets with equal oracle views share cells
    for cell in cells.values():
        unique.setdefault(cell.key, cell)
    missing = [c for c in unique.values() if store.load(c) is None]
    episodes = sum(len(c.seeds) for c in missing)
    where = f"Ray cluster {args.address}" if args.address else f"{args.workers} local process(es)"
    print(
        f"suite {suite.name}: {len(suite.test_sets)} test sets x {len(seeds)} test seeds "
        f"({seeds[0] - 2**31} .. {seeds[-1] - 2**31} above 2**31), {len(board_entries)} "
        f"entries: {len(unique)} cells, {len(unique) - len(missing)} already in {out}, "
        f"{len(missing)} to run ({episodes} episodes on {where})",
        flush=True,
    )
    machine = machine_info()
    t0 = time.monotonic()
    progress = _Progress(episodes, len(missing))
    try:
        results = run_cells(
            list(unique.values()),
            store,
            args.workers,
            args.address,
            machine.get("git_commit"),
            on_episode=progress.episode,
            on_cell=progress.cell,
            connect_timeout=args.connect_timeout,
        )
    finally:
        progress.close()
    wall = time.monotonic() - t0
    from millinet.experiments.benchmark.report import (
        build_leaderboard,
        summary_text,
        write_leaderboard,
    )

    board = build_leaderboard(
        suite,
        board_entries,
        cells,
        results,
        seeds,
        bound_note=note,
        meta={
            "machine": {**machine, "load_average_1min_at_end": load_average()},
            "wall_s": round(wall, 1),
            "cells_run": len(missing),
            "cells_reused": len(unique) - len(missing),
            "episodes_run": episodes,
            "executor": where,
        },
    )
    paths = write_leaderboard(board, cells, results, out, command_line(args))
    print(summary_text(board), flush=True)
    print(f"wrote {', '.join(str(p) for p in paths.values())} ({wall / 60:.1f} min)", flush=True)
    return 0

"""``millinet analyze``: learning curves and a comparison table from run folders."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze",
        help="compare training runs: learning curves (mean, 95%% CI) and a final table",
        description="Read the TensorBoard event files of run folders and write "
        "learning_curves.png, report.md and runs.csv: violation_rate_1ms as mean and 95% CI "
        "across the seeds of each experiment (run name without seed and time), and a final "
        "table with optional baselines.",
    )
    p.add_argument(
        "runs",
        nargs="+",
        metavar="RUN_DIR_OR_GLOB",
        help="run folders, glob patterns (quote them) or a parent folder such as runs/",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--baselines",
        metavar="FILE",
        default=None,
        help="CSV or markdown table with policy and violation_rate_1ms columns (optional)",
    )
    p.add_argument(
        "--checkpoint",
        choices=("last", "best"),
        default="last",
        help="which model's metrics.json numbers the final table uses (default last)",
    )
    p.add_argument(
        "--log-y", action="store_true", help="log-scale y axis (linear below 1e-4, so 0 shows)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from millinet.envs.errors import require_extra

    require_extra("train", "millinet analyze")
    from millinet.experiments.analysis import AnalysisError, analyze
    from millinet.experiments.errors import UserError

    try:
        paths = analyze(
            args.runs, args.out, args.baselines, checkpoint=args.checkpoint, log_y=args.log_y
        )
    except AnalysisError as exc:
        raise UserError(str(exc)) from None
    print(paths["report"].read_text())
    print(f"wrote {paths['report']}, {paths['plot']}, {paths['table']}")
    return 0

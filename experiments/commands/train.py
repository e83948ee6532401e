"""``millinet train``: train (Maskable)PPO from a YAML config into ``runs/<run-name>/``."""

from __future__ import annotations

import argparse
from pathlib import Path

from millinet.experiments import CONFIG_DIR

DEFAULT_CONFIG = CONFIG_DIR / "ppo_sunflower.yaml"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a PPO placement policy (TensorBoard, checkpoints, metrics)",
        description="Train MaskablePPO (or plain PPO) on a scenario from a YAML config. Writes "
        "runs/<scenario>_<algo>_s<seed>_<time>/ with config.yaml, tb/ (TensorBoard), "
        "checkpoints/, best/, final/ and metrics.json. Watch with: tensorboard --logdir runs/",
    )
    p.add_argument(
        "--config",
        default=str(DEFAULT_CONFIG),
        help="training config YAML (default experiments/configs/ppo_sunflower.yaml)",
    )
    p.add_argument("--seed", type=int, default=None, help="overrides the config's seed")
    p.add_argument(
        "--scenario",
        default=None,
        help="overrides the config's scenario (shipped name or YAML path)",
    )
    p.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value by its dotted key, e.g. --set ppo.ent_coef=0.01 "
        "(the value is read as YAML; repeatable; validated like the file)",
    )
    p.add_argument(
        "--total-timesteps",
        type=int,
        default=None,
        help="total env steps of the run (overrides the config; with --resume: the new total)",
    )
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        default=None,
        help="continue this run from its newest checkpoint (ignores --config, --seed, "
        "--scenario and --set)",
    )
    p.add_argument("--runs-dir", default="runs", help="parent folder of run folders (default runs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _interrupt_on_sigterm() -> None:
    """Treat SIGTERM like Ctrl-C: the trainer then saves a checkpoint before it stops."""
    import signal

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def run(args: argparse.Namespace) -> int:
    from millinet.envs.errors import require_extra
    from millinet.envs.files import check_output_dir

    require_extra("train", "millinet train")
    from millinet.agents.ppo import train
    from millinet.agents.train_config import load_train_config

    check_output_dir(args.runs_dir, "--runs-dir")
    _interrupt_on_sigterm()
    cfg = (
        None
        if args.resume is not None
        else load_train_config(args.config, args.settings, seed=args.seed, scenario=args.scenario)
    )
    root, metrics = train(
        cfg,
        runs_dir=args.runs_dir,
        resume=args.resume,
        total_timesteps=args.total_timesteps,
        progress=not args.no_progress,
    )
    print(format_summary(root, metrics))
    return 0


def format_summary(root: Path, metrics: dict) -> str:
    """A few lines: where the run is and its held-out metrics."""

    def pct(x):
        return "n/a" if x is None or x != x else f"{100 * x:.3f}%"

    lines = [
        f"run {root}  ({metrics['timesteps']:,} steps, {metrics['wall_s']:.0f} s, "
        f"env share of wall time {pct(metrics['env_time_share'])})",
        f"  last model  violation_rate_1ms {pct(metrics['violation_rate_1ms'])}"
        f" ± {pct(metrics['violation_rate_1ms_ci95'])} over {metrics['last']['episodes']} "
        "held-out episodes",
    ]
    if "best" in metrics:
        b = metrics["best"]
        lines.append(
            f"  best model  violation_rate_1ms {pct(b['violation_rate_1ms'])}"
            f" ± {pct(b['violation_rate_1ms_ci95'])} (from step {b.get('timesteps')})"
        )
    lines.append(f"  tensorboard --logdir {root.parent}")
    return "\n".join(lines)

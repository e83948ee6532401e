"""``millinet sweep``: Ray Tune hyperparameter sweeps against the held-out 1 ms violation rate."""

from __future__ import annotations

import argparse
import sys

from millinet.experiments import CONFIG_DIR

DEFAULT_CONFIG = CONFIG_DIR / "sweep_sunflower.yaml"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="Ray Tune sweep of PPO hyperparameters or of a heuristic's knobs (min held-out "
        "violation_rate_1ms)",
        description="Tune MaskablePPO hyperparameters with Ray Tune: each trial trains in chunks "
        "(the millinet train code path) and reports held-out violation_rate_1ms after each "
        "chunk. Writes runs/sweeps/<name>/: one folder per trial (a run folder with tb/ inside), "
        "summary.md/.csv, sweep.png, best_config.yaml (ready for millinet train). A config with "
        "`kind: heuristic` tunes a heuristic's knobs on a benchmark suite's validation seeds "
        "instead, under the same budget rules, and writes tuned.yaml (a tuned-heuristic file "
        "for --policy). See docs/sweeps.md.",
    )
    p.add_argument(
        "--config",
        default=str(DEFAULT_CONFIG),
        help="sweep config YAML (default experiments/configs/sweep_sunflower.yaml)",
    )
    p.add_argument(
        "--address",
        default=None,
        help="address of a running Ray cluster (host:port of the head node, ray://host:port or "
        "auto); default: start a local Ray instance",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted sweep in <storage_path>/<name>/ (Tuner.restore; "
        "unfinished and errored trials resume from their checkpoints)",
    )
    p.add_argument(
        "--num-cpus",
        type=int,
        default=None,
        help="CPUs of the local Ray instance (default: all cores; ignored with --address)",
    )
    p.add_argument(
        "--connect-timeout",
        type=float,
        default=30.0,
        help="seconds to wait for the Ray cluster before giving up (default 30)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="validate the config and its search space, print the plan, and exit",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from millinet.envs.errors import require_extra

    require_extra("sweep", "millinet sweep")
    from millinet.envs.validation import read_yaml
    from millinet.experiments.cli import UserError
    from millinet.experiments.sweep.config import load_sweep_config
    from millinet.experiments.sweep.driver import SweepError, SweepInterruptedError, run_sweep
    from millinet.experiments.sweep.heuristic import (
        is_heuristic_sweep,
        load_heuristic_sweep,
        sweep_kind,
    )

    kind = {}
    if is_heuristic_sweep(read_yaml(args.config)):
        spec = load_heuristic_sweep(args.config)
        kind = {"kind": sweep_kind()}
        if args.check:
            print(
                f"{spec.source}: valid heuristic sweep {spec.name!r} of {spec.cfg.heuristic}: "
                f"{spec.cfg.num_samples} samples, {len(spec.params)} searched knobs, up to "
                f"{spec.cfg.max_chunks} chunks ({spec.tuned_on}); scheduler "
                f"{spec.cfg.scheduler.type}, search {spec.cfg.search.algorithm}; folder "
                f"{spec.experiment_dir()}"
            )
            for p in spec.params:
                print(f"  {p.key}: {p.describe()}")
            return 0
    else:
        spec = load_sweep_config(args.config)
    if args.check:
        cfg = spec.cfg
        print(
            f"{spec.source}: valid sweep {spec.name!r}: {cfg.num_samples} samples, "
            f"{len(spec.params)} searched keys, up to {cfg.max_chunks} x "
            f"{cfg.chunk_timesteps:,} steps per trial, scheduler {cfg.scheduler.type}, "
            f"search {cfg.search.algorithm}; folder {spec.experiment_dir()}"
        )
        for p in spec.params:
            print(f"  {p.key}: {p.describe()}")
        return 0
    try:
        run_sweep(
            spec,
            address=args.address,
            resume=args.resume,
            num_cpus=args.num_cpus,
            connect_timeout=args.connect_timeout,
            **kind,
        )
    except SweepInterruptedError as exc:
        print(f"millinet sweep: {exc}", file=sys.stderr)
        return 130
    except SweepError as exc:
        raise UserError(str(exc)) from None
    return 0

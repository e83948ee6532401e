"""``millinet demo`` (what ``make demo`` runs): train briefly, compare with the heuristics.

1. Train MaskablePPO on ``sunflower-metro`` with ``experiments/configs/ppo_demo.yaml`` (about
   1.5 minutes on 2 cores) into ``runs/<run-name>/``.
2. Evaluate the trained policy and the heuristics on the same held-out seeds
   (:func:`evaluate_against_baselines`).
3. Write ``<run>/demo/report.md`` with the table and the learning-curve plot, and print them.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from millinet.experiments import CONFIG_DIR

DEMO_CONFIG = CONFIG_DIR / "ppo_demo.yaml"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="train PPO briefly on sunflower-metro and compare it with the heuristics",
        description="Train MaskablePPO briefly on the default scenario (a few minutes), "
        "evaluate it against the baseline heuristics on held-out seeds, and write and print "
        "a short report (table, plot paths).",
    )
    p.add_argument("--config", default=str(DEMO_CONFIG), help="training config (demo default)")
    p.add_argument("--total-timesteps", type=int, default=None, help="override training steps")
    p.add_argument("--seeds", type=int, default=4, help="evaluation seeds per policy (default 4)")
    p.add_argument(
        "--duration",
        type=float,
        default=0.25,
        help="simulated seconds per evaluation episode (default 0.25)",
    )
    p.add_argument("--runs-dir", default="runs", help="parent folder of runs (default runs)")
    p.set_defaults(func=run)


def evaluate_against_baselines(
    run_dir: Path, scenario: str, n_seeds: int, duration_s: float, out: Path
) -> tuple[list[dict], str]:
    """Rows ``{policy, violation_rate_1ms, ci_low, ci_high, violation_rate}`` for the trained
    run (best model) and every heuristic, on the same evaluation seeds.

    Uses the evaluation harness (``millinet.experiments.evaluation.harness``: simulator episodes
    on the test seeds, bootstrap CIs). Returns (rows, description of the method).
    """
    from millinet.agents.heuristics import HEURISTICS
    from millinet.experiments.evaluation import harness as evaluation

    policies = [*HEURISTICS, str(run_dir)]
    ev = evaluation.evaluate(scenario, policies, seeds=n_seeds, duration_s=duration_s)
    evaluation.write_outputs(ev, out / "evaluation")
    rows = []
    for p in policies:
        mean, low, high = ev.summary[p]["violation_rate_1ms"]
        rows.append(
            {
                "policy": "ppo (this run)" if p == str(run_dir) else p,
                "violation_rate_1ms": mean,
                "ci_low": low,
                "ci_high": high,
                "violation_rate": ev.summary[p]["violation_rate"][0],
            }
        )
    return rows, (
        f"millinet evaluate: {n_seeds} seeds x {duration_s:g} s simulated, 95% bootstrap CI "
        f"(details in {out / 'evaluation'})"
    )


def _table(rows: list[dict]) -> str:
    def pct(x: float) -> str:
        return "–" if x is None or math.isnan(x) else f"{100 * x:.3f}%"

    lines = [
        "| policy | violation_rate_1ms | 95% CI | violation_rate (all) |",
        "|---|---:|---|---:|",
    ]
    for r in sorted(rows, key=lambda r: r["violation_rate_1ms"]):
        lines.append(
            f"| {r['policy']} | {pct(r['violation_rate_1ms'])} | "
            f"[{pct(r['ci_low'])}, {pct(r['ci_high'])}] | {pct(r['violation_rate'])} |"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from millinet.envs.errors import require_extra

    require_extra("train", "millinet demo")
    from millinet.agents.ppo import Trainer
    from millinet.agents.train_config import load_train_config
    from millinet.envs.files import check_output_dir
    from millinet.experiments.analysis import load_run, plot_curves

    check_output_dir(args.runs_dir, "--runs-dir")
    start = time.perf_counter()
    cfg = load_train_config(args.config, total_timesteps=args.total_timesteps)
    print(
        f"millinet demo: training {cfg.algo} on {cfg.scenario} for {cfg.total_timesteps:,} "
        f"steps ({cfg.n_envs} envs) ..."
    )
    trainer = Trainer.create(cfg, runs_dir=args.runs_dir)
    try:
        metrics = trainer.train(cfg.total_timesteps, evaluate_best=False)
    finally:
        trainer.close()
    root = trainer.root
    train_s = time.perf_counter() - start
    print(f"trained in {train_s:.0f} s -> {root}; evaluating against the heuristics ...")
    out = root / "demo"
    out.mkdir(exist_ok=True)
    rows, method = evaluate_against_baselines(root, cfg.scenario, args.seeds, args.duration, out)
    baselines = [r for r in rows if r["policy"] != "ppo (this run)"]
    plot = plot_curves([load_run(root)], out / "learning_curves.png", baselines=baselines)
    total_s = time.perf_counter() - start
    share = metrics.get("env_time_share")
    report = "\n".join(
        [
            f"# millinet demo: {root.name}",
            "",
            f"MaskablePPO trained for {metrics['timesteps']:,} steps in {train_s:.0f} s "
            f"(env share of training wall time {100 * (share or 0):.0f}%); "
            f"demo total {total_s:.0f} s. A short run: the pipeline, not a converged policy "
            "(see results/ppo_vs_baselines.md for the full benchmark).",
            "",
            f"Evaluation: {method}. Lower is better.",
            "",
            _table(rows),
            "",
            f"Learning curves: {plot}",
            f"TensorBoard: tensorboard --logdir {root.parent}",
        ]
    )
    (out / "report.md").write_text(report + "\n")
    print()
    print(report)
    print(f"\nreport: {out / 'report.md'}\nplot:   {plot}")
    return 0

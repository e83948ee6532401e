"""``millinet export``: turn a training run into an exported policy folder (ONNX + manifest)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a trained run to an ONNX policy folder",
        description="Export a run's checkpoint to DIR/policy.onnx + DIR/manifest.json, the "
        "folder `millinet serve` loads. The VecNormalize statistics are folded into the graph; "
        "the graph is checked against the torch policy before the manifest is written.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="training run folder (runs/<name>)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--checkpoint",
        default="best",
        help="best (default, best validation reward), last, pretrained (the behaviour-cloned "
        "start) or a step count of checkpoints/",
    )
    p.add_argument("--opset", type=int, default=17, help="ONNX opset, >= 17 (default 17)")
    p.add_argument(
        "--benchmark",
        action="append",
        default=[],
        metavar="DIR",
        help="a `millinet benchmark --out` folder that evaluated this run (repeatable, e.g. one "
        "per --seed-base): its test results go into the manifest",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from millinet.envs.errors import require_extra

    require_extra("export", "millinet export")
    from millinet.agents.export import export_policy
    from millinet.experiments.benchmark.leaderboard import entry_record
    from millinet.experiments.benchmark.run import policy_label

    spec = args.run_dir if args.checkpoint == "best" else f"{args.run_dir}@{args.checkpoint}"
    records = [entry_record(folder, policy_label(spec)) for folder in args.benchmark]
    test_results = {"benchmarks": records} if records else None
    manifest = export_policy(args.run_dir, args.out, args.checkpoint, args.opset, test_results)
    check = manifest["model"]["export_check"]
    print(
        f"exported {manifest['model_version']} -> {args.out} (K = {manifest['K']}, "
        f"observation {manifest['observation']['size']}, opset {manifest['model']['opset']}, "
        f"normalisation {manifest['normalisation']['applied']}); check vs torch on "
        f"{check['samples']} inputs: max |logit diff| {check['max_abs_logit_diff']:.1e}"
    )
    print(f"serve it with: millinet serve {args.out}")
    return 0

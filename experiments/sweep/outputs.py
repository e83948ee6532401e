"""What a finished sweep leaves in its folder (``runs/sweeps/<name>/``).

=====================  ====================================================================
``summary.md``         the trials ranked by objective: hyperparameters, held-out
                       ``violation_rate_1ms`` (95% CI over the report episodes),
                       ``violation_rate``, chunks and steps trained, status
``summary.csv``        the same table as CSV
``chunks.csv``         every reported chunk of every trial (long form)
``sweep.png``          metric per trial, learning curves, metric against each hyperparameter
``best_config.yaml``   the best trial's training config, ready for ``millinet train --config``
``best.json``          the best trial: id, parameters, metrics, run folder, checkpoint
=====================  ====================================================================

The best trial is the one with the lowest last-reported objective among the trials that
trained the most chunks (with ASHA, the trials that survived every rung): a trial stopped
early is never preferred because of a noisy early evaluation.
"""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path
from typing import Any

import yaml

from millinet.envs import jsonio
from millinet.experiments.sweep.config import OBJECTIVE, PROTOCOL_KEYS, SweepSpec, decode_params

METRIC_COLUMNS = (OBJECTIVE, "violation_rate_1ms", "violation_rate_1ms_ci95", "violation_rate")


def _num(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def trial_rows(spec: SweepSpec, results) -> tuple[list[dict], list[dict]]:
    """(one row per trial, one row per reported chunk) from a Tune ``ResultGrid``."""
    keys = [p.key for p in spec.params]
    trials, chunks = [], []
    for res in results:
        metrics = res.metrics or {}
        short = Path(str(res.path)).name.split("_")[-1]  # trial_<id> (trial_dirname)
        if str(metrics.get("trial_id", short)).split("_")[-1] != short:
            # A trial that failed as it took over a reused actor, before reporting anything,
            # comes back with the previous trial's last result: it has no metrics of its own.
            metrics = {}
        # The config of the last *reported* result: after a PBT exploit on the last chunk the
        # trial's config changes, but no result of it was measured.
        config = decode_params(dict(metrics.get("config") or res.config or {}), spec.encoded)
        done = int(metrics.get("chunk") or 0)
        if res.error is not None:
            status = "error"
        elif done >= spec.cfg.max_chunks:
            status = "complete"
        elif done == 0:
            status = "not started"
        else:
            status = "stopped early"
        row = {
            "trial": short,
            "status": status,
            "chunks": done,
            "timesteps": int(metrics.get("timesteps") or 0),
        }
        row.update({k: _num(metrics.get(k)) for k in METRIC_COLUMNS})
        row.update({k: config.get(k) for k in keys})
        row["path"] = str(res.path)
        trials.append(row)
        df = res.metrics_dataframe
        if df is not None and len(df):
            for rec in df.to_dict("records"):
                chunks.append(
                    {
                        "trial": short,
                        "chunk": int(rec.get("chunk", 0)),
                        "timesteps": int(rec.get("timesteps", 0)),
                        **{k: _num(rec.get(k)) for k in METRIC_COLUMNS},
                    }
                )
    trials.sort(key=lambda r: (math.isnan(r[OBJECTIVE]), r[OBJECTIVE], r["trial"]))
    return trials, chunks


def pick_best(rows: list[dict]) -> dict | None:
    """Lowest objective among the trials that trained the most chunks (see module doc)."""
    ok = [r for r in rows if r["chunks"] > 0 and not math.isnan(r[OBJECTIVE])]
    if not ok:
        return None
    most = max(r["chunks"] for r in ok)
    return min((r for r in ok if r["chunks"] == most), key=lambda r: r[OBJECTIVE])


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return jsonio.dumps(value)
    return str(value)


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.3f}%"


def markdown_table(spec: SweepSpec, rows: list[dict]) -> str:
    keys = [p.key for p in spec.params]
    head = [
        "rank",
        "trial",
        *keys,
        "viol_1ms (95% CI)",
        "viol",
        "objective",
        "chunks",
        "steps",
        "status",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, r in enumerate(rows, 1):
        ci = r["violation_rate_1ms_ci95"]
        v1 = _pct(r["violation_rate_1ms"]) + ("" if math.isnan(ci) else f" ± {_pct(ci)}")
        cells = [
            str(i),
            r["trial"],
            *(_fmt(r[k]) for k in keys),
            v1,
            _pct(r["violation_rate"]),
            f"{r[OBJECTIVE]:.5f}",
            str(r["chunks"]),
            f"{r['timesteps']:,}",
            r["status"],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_csv(path: Path, rows: list[dict]) -> None:
    import csv

    if not rows:
        path.write_text("")
        return
    fields = list(rows[0])
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow(
                {k: (jsonio.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in r.items()}
            )


def best_config_yaml(spec: SweepSpec, best: dict) -> str:
    """The best trial's training config as YAML with a header saying where it comes from."""
    from millinet.agents.train_config import validate_train_config
    from millinet.experiments.sweep.config import with_params

    params = {p.key: best[p.key] for p in spec.params}
    merged = with_params(spec.base, params)
    for key in PROTOCOL_KEYS:  # the base config's evaluation/checkpoint settings, not the sweep's
        merged.pop(key, None)
        if key in spec.protocol:
            merged[key] = copy.deepcopy(spec.protocol[key])
    merged["total_timesteps"] = int(best["timesteps"]) or spec.cfg.total_timesteps
    # Its own run-name tag, so `millinet analyze` does not pool its runs with the base's.
    merged["tag"] = re.sub(r"[^A-Za-z0-9-]+", "-", f"sweep-{spec.name}")[:32].strip("-")
    data = validate_train_config(merged, f"{spec.source} (best config)").model_dump()
    pbt = (
        " (PBT: the hyperparameters at the end of training)"
        if (spec.cfg.scheduler.type == "pbt")
        else ""
    )
    header = [
        f"# Best trial of sweep {spec.name!r}: trial {best['trial']}{pbt}.",
        f"# Held-out violation_rate_1ms {_pct(best['violation_rate_1ms'])}, violation_rate "
        f"{_pct(best['violation_rate'])} after {best['timesteps']:,} steps.",
        "# Searched: " + ", ".join(f"{k}={_fmt(v)}" for k, v in params.items()),
        "# eval/checkpoint: as in the base training config (the sweep's overrides of them "
        "are dropped).",
        f"# Train it: millinet train --config {spec.experiment_dir() / 'best_config.yaml'}",
    ]
    return "\n".join(header) + "\n" + yaml.safe_dump(data, sort_keys=False)


def plot(spec: SweepSpec, rows: list[dict], chunks: list[dict], path: Path) -> None:
    """Metric per trial, learning curves, and metric against each hyperparameter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params = spec.params
    n = 2 + len(params)
    cols = min(n, 3)
    nrows = math.ceil(n / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5 * cols, 3.8 * nrows), squeeze=False)
    axes = axes.ravel()
    best = pick_best(rows)
    colors = {
        "complete": "tab:blue",
        "stopped early": "tab:orange",
        "error": "tab:red",
        "not started": "tab:gray",
    }
    ordered = sorted(rows, key=lambda r: r["trial"])
    ax = axes[0]
    for status, color in colors.items():
        sel = [(i, r) for i, r in enumerate(ordered) if r["status"] == status]
        if sel:
            ax.scatter(
                [i for i, _ in sel],
                [100 * r["violation_rate_1ms"] for _, r in sel],
                color=color,
                label=status,
                zorder=3,
            )
    if best is not None:
        i = next(i for i, r in enumerate(ordered) if r["trial"] == best["trial"])
        ax.scatter(
            [i],
            [100 * best["violation_rate_1ms"]],
            s=160,
            facecolors="none",
            edgecolors="k",
            label="best",
            zorder=4,
        )
    ax.set_xticks(range(len(ordered)), [r["trial"][-3:] for r in ordered], fontsize=7, rotation=90)
    ax.set_xlabel("trial")
    ax.set_ylabel("violation_rate_1ms (%), last chunk")
    ax.set_title("metric per trial")
    ax.legend(fontsize=7)
    ax = axes[1]
    for r in ordered:
        pts = sorted(
            (c["timesteps"], c["violation_rate_1ms"]) for c in chunks if c["trial"] == r["trial"]
        )
        if pts:
            is_best = best is not None and r["trial"] == best["trial"]
            ax.plot(
                [p[0] for p in pts],
                [100 * p[1] for p in pts],
                marker=".",
                lw=2.5 if is_best else 1,
                alpha=1 if is_best else 0.6,
                label=f"{r['trial'][-3:]} (best)" if is_best else None,
            )
    ax.set_xlabel("env steps")
    ax.set_ylabel("violation_rate_1ms (%)")
    ax.set_title("held-out metric after each chunk")
    if best is not None:
        ax.legend(fontsize=7)
    for ax, p in zip(axes[2:], params):
        values = [r[p.key] for r in ordered]
        ys = [100 * r["violation_rate_1ms"] for r in ordered]
        cs = [colors[r["status"]] for r in ordered]
        if p.kind in ("choice", "grid"):
            labels = [_fmt(v) for v in p.args]
            xs = [labels.index(_fmt(v)) if _fmt(v) in labels else -1 for v in values]
            ax.set_xticks(range(len(labels)), labels, fontsize=7)
            ax.set_xlim(-0.5, len(labels) - 0.5)
        else:
            xs = values
            if p.kind.startswith("log"):
                ax.set_xscale("log")
        ax.scatter(xs, ys, c=cs, zorder=3)
        ax.set_xlabel(p.key)
        ax.set_ylabel("violation_rate_1ms (%)")
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle(f"sweep {spec.name}: held-out violation_rate_1ms (lower is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(spec: SweepSpec, results) -> dict[str, Path]:
    """Write the sweep's outputs (module docstring) and print the summary; returns paths."""
    exp = spec.experiment_dir()
    exp.mkdir(parents=True, exist_ok=True)
    rows, chunks = trial_rows(spec, results)
    best = pick_best(rows)
    paths = {
        "summary": exp / "summary.md",
        "csv": exp / "summary.csv",
        "chunks": exp / "chunks.csv",
        "plot": exp / "sweep.png",
    }
    write_csv(paths["csv"], rows)
    write_csv(paths["chunks"], chunks)
    cfg = spec.cfg
    lines = [
        f"# Sweep `{spec.name}`",
        "",
        *([cfg.description.strip(), ""] if cfg.description else []),
        f"Objective (min): `violation_rate_1ms + {cfg.objective.secondary_weight:g} * "
        "violation_rate` on held-out report episodes after each chunk of "
        f"{cfg.chunk_timesteps:,} steps (up to {cfg.max_chunks} chunks)"
        + (
            f", mean of {cfg.seeds_per_trial} training seeds per trial"
            if cfg.seeds_per_trial > 1
            else ""
        )
        + (
            f", averaged over the last {cfg.objective.average_last} chunks"
            if cfg.objective.average_last > 1
            else ""
        )
        + f". Scheduler `{cfg.scheduler.type}`, search `{cfg.search.algorithm}`, "
        f"{len(rows)} trials.",
        "",
    ]
    if best is not None:
        lines += [
            f"**Best: trial {best['trial']}**, violation_rate_1ms "
            f"{_pct(best['violation_rate_1ms'])}, violation_rate "
            f"{_pct(best['violation_rate'])}; config: `best_config.yaml`.",
            "",
        ]
    lines += [markdown_table(spec, rows), ""]
    paths["summary"].write_text("\n".join(lines) + "\n")
    if chunks:
        plot(spec, rows, chunks, paths["plot"])
    else:
        paths.pop("plot")
    if best is not None:
        paths["best_config"] = exp / "best_config.yaml"
        paths["best_config"].write_text(best_config_yaml(spec, best))
        run_dirs = sorted(Path(best["path"]).glob(f"{spec.name}_{best['trial']}*"))
        info = {
            "trial": best["trial"],
            "params": {p.key: best[p.key] for p in spec.params},
            "metrics": {k: best[k] for k in METRIC_COLUMNS},
            "chunks": best["chunks"],
            "timesteps": best["timesteps"],
            "run_dirs": [str(d) for d in run_dirs],
            "trial_dir": best["path"],
        }
        paths["best"] = exp / "best.json"
        paths["best"].write_text(jsonio.dumps(info, indent=2, default=str))
    print(paths["summary"].read_text())
    print("wrote " + ", ".join(str(p) for p in paths.values()), flush=True)
    return paths

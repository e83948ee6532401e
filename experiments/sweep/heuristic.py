"""Heuristic sweeps: tune a heuristic's knobs on a benchmark suite's validation seeds with Ray
Tune, under the same budget rules as PPO sweeps, and save the best as a tuned-heuristic file.

A heuristic sweep config is a sweep YAML with ``kind: heuristic``::

    kind: heuristic
    name: main-deadline-aware          # results go to <storage_path>/<name>/
    heuristic: deadline-aware          # a name of millinet.agents.heuristics.HEURISTICS
    suite: main                        # its in-distribution scenarios and validation seeds
    space:                             # knob -> distribution (the PPO sweeps' distributions)
      margin: {uniform: [0.0, 0.9]}
      tight_deadline_us: {choice: [1000.0, 2000.0, 5000.0]}
      own_correction: {choice: [false, true]}
    num_samples: 16                    # the same budget fields as a PPO sweep
    seeds_per_chunk: 1                 # validation seeds per Tune iteration (an ASHA rung)
    scheduler: {type: asha, grace_period: 1, reduction_factor: 2}
    search: {algorithm: optuna, seed: 0, include_default: true}

**A trial** writes its parameters as a tuned-heuristic file (``heuristic.yaml`` in the trial
folder: the policy spec every command reads) and evaluates it with the harness's
:func:`~millinet.experiments.evaluation.harness.run_episode` on every in-distribution scenario
of the suite, on the suite's validation episodes (engine seeds derived from validation reset
seeds, as ``PlacementEnv.reset`` derives them; never a test seed), ``seeds_per_chunk`` seeds
per chunk. After each chunk it reports the mean over the episodes so far of the PPO sweeps'
objective, ``violation_rate_1ms + secondary_weight * violation_rate``, with a checkpoint (the
rows so far), so ASHA can stop a poor trial after one chunk and ``--resume`` continues.

**Budget rules** are the PPO sweeps' (``millinet.experiments.sweep.config``): ``num_samples``,
``time_budget_s``, ``max_concurrent_trials``, ``cpus_per_trial``, ASHA or FIFO, random or
Optuna search, ``include_default`` (the first trial runs the heuristic's defaults, so the
tuned result is never worse than the default on the validation objective). PBT does not apply
(a heuristic has no state to exploit).

**Outputs** (``<storage_path>/<name>/``): ``summary.md``/``.csv``, ``chunks.csv``,
``sweep.png`` (as PPO sweeps), ``best.json`` and ``tuned.yaml``: the best trial as a
tuned-heuristic file naming the suite, seeds and objective it was tuned on, ready for
``--policy`` and for a suite's ``tuned:`` list. A trial that ties the defaults' trial exactly
does not replace the defaults.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, PrivateAttr

from millinet.envs.errors import ConfigError
from millinet.envs.validation import StrictModel, read_yaml, validate
from millinet.experiments.sweep.config import (
    OBJECTIVE,
    ObjectiveSettings,
    Param,
    SchedulerSettings,
    SearchSettings,
    SweepFolder,
    decode_params,
    parse_param,
)

KIND = "heuristic"
STATE_FILE = "state.json"
TUNED_FILE = "tuned.yaml"
SAVED_SPEC = "sweep_config.yaml"

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]


class HeuristicSweepConfig(StrictModel):
    """A Ray Tune sweep over a heuristic's knobs (module docstring)."""

    kind: Literal["heuristic"]
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="sweep folder name")
    description: str = ""
    heuristic: str
    suite: str = Field("main", description="shipped suite name or YAML path (relative to here)")
    space: dict[str, Any] = Field(min_length=1, description="knob -> {distribution: args}")
    num_samples: PositiveInt = 16
    seeds_per_chunk: PositiveInt = Field(
        1, description="validation seeds (on every in-distribution scenario) per iteration"
    )
    max_concurrent_trials: PositiveInt | None = None
    time_budget_s: PositiveFloat | None = None
    cpus_per_trial: PositiveFloat = 1.0
    storage_path: str = "runs/sweeps"
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    objective: ObjectiveSettings = Field(default_factory=ObjectiveSettings)
    _max_chunks: int = PrivateAttr(1)

    @property
    def max_chunks(self) -> int:
        """Chunks of a full trial: the suite's validation seeds, ``seeds_per_chunk`` each."""
        return self._max_chunks


class HeuristicSweepSpec(SweepFolder):
    """A validated heuristic sweep: the config, the suite's validation episodes by chunk and
    the parsed search space (the interface :mod:`~millinet.experiments.sweep.driver` uses)."""

    def __init__(
        self,
        cfg: HeuristicSweepConfig,
        params: list[Param],
        source: str,
        suite_source: str,
        chunks: list[list[tuple[dict[str, Any], int]]],
        duration_s: float,
        warmup_s: float,
        tuned_on: str,
    ) -> None:
        self.cfg = cfg
        self.params = params
        self.source = source
        self.suite_source = suite_source
        self.chunks = chunks
        self.duration_s = duration_s
        self.warmup_s = warmup_s
        self.tuned_on = tuned_on

    def default_point(self) -> dict[str, Any] | None:
        """The heuristic's default knob values, encoded as Tune proposes them; None when one
        lies outside its entry's range or choices."""
        from millinet.agents.heuristics import knobs

        defaults = {k: default for k, (_, default) in knobs(self.cfg.heuristic).items()}
        point = {}
        for p in self.params:
            if not p.contains(defaults[p.key]):
                return None
            point[p.key] = p.encode(defaults[p.key])
        return point

    def tuned_data(self, params: dict[str, Any], metrics: dict[str, float], trial: str) -> dict:
        """The tuned-heuristic file of ``params`` (plain data, validated by the caller)."""
        from millinet.agents.heuristics import knobs

        full = {k: params.get(k, default) for k, (_, default) in knobs(self.cfg.heuristic).items()}
        return {
            "heuristic": self.cfg.heuristic,
            "params": _plain(full),
            "tuned_on": self.tuned_on,
            "objective": {k: float(v) for k, v in metrics.items() if not math.isnan(v)},
            "source": f"millinet sweep --config {self.source} (sweep {self.name}, trial {trial})",
        }


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    """Knob values as plain Python scalars (a searcher may hand out numpy ones)."""
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in params.items()}


# --------------------------------------------------------------------------- loading
def is_heuristic_sweep(data: Any) -> bool:
    """Whether plain sweep data is a heuristic sweep (``kind: heuristic``)."""
    return isinstance(data, dict) and data.get("kind") == KIND


def load_heuristic_sweep(path: str | Path) -> HeuristicSweepSpec:
    """Read and validate a heuristic sweep YAML; a problem is one ``ConfigError`` line."""
    path = Path(path)
    return validate_heuristic_sweep(read_yaml(path), str(path), path.resolve().parent)


def validate_heuristic_sweep(
    data: Any, source: str, base_dir: Path = Path(".")
) -> HeuristicSweepSpec:
    """Validate plain heuristic-sweep data: the config, the heuristic, every corner of the
    space (each knob's range ends and choices, through the heuristic's own checks) and the
    suite (read and resolved)."""
    from millinet.agents.heuristics import HEURISTICS, check_params, knobs
    from millinet.experiments.benchmark.files import shown_path
    from millinet.experiments.benchmark.suite import load_suite, suite_path

    cfg = validate(HeuristicSweepConfig, data, source, what="heuristic sweep config")
    if cfg.heuristic not in HEURISTICS:
        known_names = ", ".join(HEURISTICS)
        raise ConfigError(
            source, "heuristic", f"unknown heuristic {cfg.heuristic!r}; known: {known_names}"
        )
    known = knobs(cfg.heuristic)
    if not known:
        tunable = [h for h in HEURISTICS if knobs(h)]
        raise ConfigError(
            source,
            "heuristic",
            f"{cfg.heuristic} has no parameters to tune; heuristics with knobs: "
            f"{', '.join(tunable)}",
        )
    if cfg.scheduler.type == "pbt":
        raise ConfigError(
            source, "scheduler.type", "pbt does not apply to heuristics (no state to exploit); "
            "use asha or fifo"
        )  # fmt: skip
    if cfg.objective.average_last != 1:
        raise ConfigError(
            source,
            "objective.average_last",
            "a heuristic trial reports the mean over every episode so far; leave it at 1",
        )
    params = [parse_param(k, v, source) for k, v in cfg.space.items()]
    for p in params:
        if p.key not in known:
            raise ConfigError(
                source,
                f"space.{p.key}",
                f"not a parameter of {cfg.heuristic} (its parameters: {', '.join(known)})",
            )
        for value in p.corners():
            try:
                check_params(cfg.heuristic, {p.key: value})
            except ValueError as exc:
                raise ConfigError(
                    source, f"space.{p.key}", f"value {value!r} is invalid: {exc}"
                ) from None
    if cfg.search.algorithm == "optuna" and any(p.kind == "grid" for p in params):
        grid = next(p.key for p in params if p.kind == "grid")
        raise ConfigError(source, f"space.{grid}", "grid is not supported by optuna; use choice")
    suite_ref = cfg.suite
    if Path(suite_ref).suffix in (".yaml", ".yml") and not Path(suite_ref).is_absolute():
        suite_ref = str(base_dir / suite_ref)
    try:
        suite = load_suite(suite_ref, with_tuned=False)
    except ConfigError as exc:
        raise ConfigError(source, "suite", str(exc)) from None
    seeds = suite.validation_seeds()
    per = cfg.seeds_per_chunk
    chunks = [
        [(scenario, seed) for seed in seeds[i : i + per] for scenario in suite.training]
        for i in range(0, len(seeds), per)
    ]
    cfg._max_chunks = len(chunks)
    if cfg.scheduler.type == "asha" and cfg.scheduler.grace_period > len(chunks):
        raise ConfigError(
            source,
            "scheduler.grace_period",
            f"{cfg.scheduler.grace_period} exceeds the {len(chunks)} chunks of the suite's "
            f"{len(seeds)} validation seeds ({per} per chunk)",
        )
    reset = suite.validation_reset_seeds()
    tuned_on = (
        f"suite {suite.name} ({shown_path(suite_path(suite_ref))}): validation reset seeds "
        f"{reset[0]}..{reset[-1]} (engine seeds as PlacementEnv.reset derives them) on "
        f"{', '.join(s['name'] for s in suite.training)}, {suite.config.duration_s:g} s each"
    )
    return HeuristicSweepSpec(
        cfg,
        params,
        source,
        suite.source,
        chunks,
        suite.config.duration_s,
        suite.config.warmup_s,
        tuned_on,
    )


# --------------------------------------------------------------------------- trainable
def heuristic_trial(config: dict[str, Any], spec: dict[str, Any]) -> None:
    """Ray Tune function trainable: one trial = one knob setting, evaluated chunk by chunk on
    the validation episodes (module docstring). ``spec``: ``{"heuristic", "encoded",
    "chunks", "duration_s", "warmup_s", "secondary_weight"}`` (``tune.with_parameters``)."""
    from ray import tune

    from millinet.envs.stats import mean_ci95
    from millinet.experiments.evaluation.harness import Job, run_episode
    from millinet.experiments.sweep.trainable import objective

    params = decode_params(config, spec["encoded"])
    trial_dir = Path(tune.get_context().get_trial_dir())
    policy = trial_dir / "heuristic.yaml"
    policy.write_text(yaml.safe_dump({"heuristic": spec["heuristic"], "params": params}))
    rows: list[dict[str, Any]] = []
    chunk = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as ckpt_dir:
            state = json.loads((Path(ckpt_dir) / STATE_FILE).read_text())
            chunk, rows = int(state["chunk"]), state["rows"]
    while chunk < len(spec["chunks"]):
        for scenario, seed in spec["chunks"][chunk]:
            job = Job(scenario, str(policy), seed, spec["duration_s"], spec["warmup_s"])
            row = run_episode(job).row
            rows.append({k: row[k] for k in ("scenario", "seed", "tasks", *_METRICS)})
        chunk += 1
        v1 = [r["violation_rate_1ms"] for r in rows]
        metrics = {
            "violation_rate_1ms": _mean(v1),
            "violation_rate": _mean([r["violation_rate"] for r in rows]),
        }
        report = {
            OBJECTIVE: objective(metrics, spec["secondary_weight"]),
            **metrics,
            "violation_rate_1ms_ci95": mean_ci95([x for x in v1 if x is not None])[1],
            "chunk": chunk,
            "timesteps": sum(r["tasks"] for r in rows),  # decisions made (one per task)
            "eval_episodes": len(rows),
        }
        with tempfile.TemporaryDirectory(prefix="millinet-ckpt-") as tmp:
            (Path(tmp) / STATE_FILE).write_text(json.dumps({"chunk": chunk, "rows": rows}))
            tune.report(report, checkpoint=tune.Checkpoint.from_directory(tmp))


_METRICS = ("violation_rate_1ms", "violation_rate")


def _mean(values: list[float | None]) -> float:
    finite = [v for v in values if v is not None and not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


# --------------------------------------------------------------------------- the sweep kind
def trainable(spec: HeuristicSweepSpec):
    from ray import tune

    payload = {
        "heuristic": spec.cfg.heuristic,
        "encoded": spec.encoded,
        "chunks": spec.chunks,
        "duration_s": spec.duration_s,
        "warmup_s": spec.warmup_s,
        "secondary_weight": spec.cfg.objective.secondary_weight,
    }
    return tune.with_resources(
        tune.with_parameters(heuristic_trial, spec=payload), {"cpu": spec.cfg.cpus_per_trial}
    )


def save(spec: HeuristicSweepSpec) -> None:
    """The sweep config as it ran (``--resume`` continues that one)."""
    exp = spec.experiment_dir()
    exp.mkdir(parents=True, exist_ok=True)
    data = {"sweep": spec.cfg.model_dump(mode="json"), "base_dir": str(Path(spec.source).parent)}
    text = "# The heuristic sweep that ran (millinet sweep); --resume uses this file.\n"
    (exp / SAVED_SPEC).write_text(text + yaml.safe_dump(data, sort_keys=False))


def saved(spec: HeuristicSweepSpec) -> HeuristicSweepSpec:
    """The spec saved when the sweep started (module ``save``), or ``spec`` if none."""
    path = spec.experiment_dir() / SAVED_SPEC
    if not path.is_file():
        return spec
    data = yaml.safe_load(path.read_text())
    sweep = {**data["sweep"], "storage_path": str(spec.storage_root())}
    old = validate_heuristic_sweep(sweep, str(path), Path(data["base_dir"]))
    old.source = spec.source
    if old.cfg.model_dump() != {**spec.cfg.model_dump(), "storage_path": sweep["storage_path"]}:
        print(
            f"note: {spec.source} differs from the sweep being resumed; resuming with the "
            f"saved {path}",
            flush=True,
        )
    return old


def plan(spec: HeuristicSweepSpec) -> str:
    episodes = sum(len(c) for c in spec.chunks)
    return (
        f"{spec.cfg.num_samples} trials of {spec.cfg.heuristic} x up to {len(spec.chunks)} "
        f"chunks ({episodes} validation episodes of {spec.duration_s:g} s per full trial)"
    )


def write_outputs(spec: HeuristicSweepSpec, results) -> dict[str, Path]:
    """summary.md/.csv, chunks.csv, sweep.png (as PPO sweeps), best.json and tuned.yaml."""
    from millinet.agents.specs import load_tuned_heuristic
    from millinet.experiments.sweep import outputs

    exp = spec.experiment_dir()
    exp.mkdir(parents=True, exist_ok=True)
    rows, chunks = outputs.trial_rows(spec, results)
    best = prefer_defaults(spec, rows, outputs.pick_best(rows))
    paths = {
        "summary": exp / "summary.md",
        "csv": exp / "summary.csv",
        "chunks": exp / "chunks.csv",
        "plot": exp / "sweep.png",
    }
    outputs.write_csv(paths["csv"], rows)
    outputs.write_csv(paths["chunks"], chunks)
    cfg = spec.cfg
    lines = [
        f"# Heuristic sweep `{spec.name}`: {cfg.heuristic}",
        "",
        *([cfg.description.strip(), ""] if cfg.description else []),
        f"Objective (min): `violation_rate_1ms + {cfg.objective.secondary_weight:g} * "
        f"violation_rate`, the mean over the validation episodes so far ({spec.tuned_on}); "
        f"{cfg.seeds_per_chunk} validation seed(s) per chunk, {len(spec.chunks)} chunks. "
        f"Scheduler `{cfg.scheduler.type}`, search `{cfg.search.algorithm}`, {len(rows)} "
        "trials. The steps column counts decisions.",
        "",
    ]
    if best is not None:
        lines += [
            f"**Best: trial {best['trial']}**, violation_rate_1ms "
            f"{100 * best['violation_rate_1ms']:.4f} %; tuned-heuristic file: `{TUNED_FILE}`.",
            "",
        ]
    lines += [outputs.markdown_table(spec, rows), ""]
    paths["summary"].write_text("\n".join(lines) + "\n")
    if chunks:
        outputs.plot(spec, rows, chunks, paths["plot"])
    else:
        paths.pop("plot")
    if best is not None:
        params = {p.key: best[p.key] for p in spec.params}
        metrics = {k: best[k] for k in (OBJECTIVE, "violation_rate_1ms", "violation_rate")}
        data = spec.tuned_data(params, metrics, best["trial"])
        paths["tuned"] = exp / TUNED_FILE
        header = (
            f"# {cfg.heuristic} tuned by heuristic sweep {spec.name!r} (best of {len(rows)} "
            "trials; see summary.md next to it).\n"
        )
        paths["tuned"].write_text(header + yaml.safe_dump(data, sort_keys=False, width=100))
        load_tuned_heuristic(paths["tuned"])  # what it wrote is a valid policy spec
        paths["best"] = exp / "best.json"
        info = {"trial": best["trial"], "params": params, "metrics": metrics,
                "chunks": best["chunks"], "trial_dir": best["path"]}  # fmt: skip
        paths["best"].write_text(json.dumps(info, indent=2, default=str))
    print(paths["summary"].read_text())
    print("wrote " + ", ".join(str(p) for p in paths.values()), flush=True)
    return paths


def prefer_defaults(spec: HeuristicSweepSpec, rows: list[dict], best: dict | None) -> dict | None:
    """``best``, or the trial with the heuristic's default knobs when that one scored exactly
    as well over as many chunks: a tie with the defaults means tuning found nothing better,
    and the tuned file then says so (its parameters are the defaults)."""
    from millinet.agents.heuristics import knobs

    if best is None:
        return None
    defaults = {k: default for k, (_, default) in knobs(spec.cfg.heuristic).items()}
    for row in rows:
        same_score = row["chunks"] == best["chunks"] and row[OBJECTIVE] == best[OBJECTIVE]
        if same_score and all(row[p.key] == defaults[p.key] for p in spec.params):
            return row
    return best


def sweep_kind():
    """The :class:`~millinet.experiments.sweep.driver.SweepKind` of heuristic sweeps."""
    from millinet.experiments.sweep.driver import SweepKind

    return SweepKind(trainable, write_outputs, save, saved, plan)


__all__ = [
    "HeuristicSweepConfig",
    "HeuristicSweepSpec",
    "is_heuristic_sweep",
    "load_heuristic_sweep",
    "sweep_kind",
    "validate_heuristic_sweep",
]

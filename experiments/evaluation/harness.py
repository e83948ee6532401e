"""Evaluate policies on a scenario over many seeds, with confidence intervals.

**One evaluation episode** = one engine seed: the scenario starts empty at t = 0, arrivals in
``[0, duration_s)`` are admitted and the policy places *every* task (all classes; a trained run
that decided only some classes gets the nearest-site rule for the others, as in its training
env), then every task in flight is drained, so each admitted task ends on time, late or
dropped. Metrics are computed over the tasks that arrived at or after ``warmup_s`` (default 0:
the whole episode, the same numbers ``millinet simulate`` prints). The default duration is the
scenario's ``duration_s``.

**Seeds**: episode ``i`` runs on ``millinet.envs.seeds.eval_seeds`` (``2**31 + i``), which no
training episode can draw. Every policy sees the same seeds, so the same arrivals (common
random numbers), and policy comparisons are paired per seed. A stochastic policy (``random``)
is seeded with the episode's seed.

**Statistics**: each reported number is the mean over seeds of the per-seed metric, with a 95%
bootstrap interval over seeds (``millinet.envs.stats``). Latency CDFs pool the seeds with equal
weight (the mean of per-seed CDFs); dropped tasks never complete, so a CDF tops out at
``1 - drop rate``.

Results are deterministic: a (policy, seed) job gives the same row whichever worker runs it and
in whatever order, and rows are sorted by (policy, seed) before they are written.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from millinet.envs import jsonio
from millinet.envs.config import CLASS_NAMES
from millinet.envs.engine import DROPPED
from millinet.envs.errors import MillinetWarning
from millinet.envs.metrics import ONE_MS_US, PERCENTILES, class_metrics
from millinet.envs.scenario import Scenario, load_scenario
from millinet.envs.seeds import eval_seeds
from millinet.envs.simulation import simulate
from millinet.envs.stats import bootstrap_ci, paired_difference_ci

DEFAULT_SEEDS = 10

CDF_GRID_US = np.logspace(0.0, 7.0, 701)
"""Latency grid (us, 1 us .. 10 s, 1% steps) at which per-seed CDFs are evaluated."""

CLASS_FIELDS = ("tasks", "violations", "violation_rate", "dropped", "drop_rate",
                "mean_us", "p50_us", "p99_us", "p999_us")  # fmt: skip
"""Per-class columns of the per-seed CSV (prefixed ``<class>_``)."""

HEADLINE_FIELDS = ("tasks", "tasks_1ms", "violations_1ms", "violation_rate_1ms",
                   "violations", "violation_rate", "dropped", "drop_rate")  # fmt: skip

ID_FIELDS = ("scenario", "policy", "seed", "duration_s", "warmup_s")


def csv_fields() -> list[str]:
    """Columns of ``per_seed.csv``, in order."""
    per_class = [f"{c}_{f}" for c in CLASS_NAMES for f in CLASS_FIELDS]
    return [*ID_FIELDS, *HEADLINE_FIELDS, *per_class]


SUMMARY_METRICS = (
    "violation_rate_1ms", "violation_rate", "drop_rate",
    *(f"{c}_{f}" for c in CLASS_NAMES
      for f in ("violation_rate", "drop_rate", "p50_us", "p99_us", "p999_us")),
)  # fmt: skip
"""Metrics summarised with a confidence interval (mean over seeds)."""


# ----------------------------------------------------------------------------- one episode
@dataclass
class EpisodeResult:
    """Metrics of one (policy, seed) episode. ``cdf[c]`` is P(latency <= CDF_GRID_US) for
    class ``c`` (drops never complete), or None if the class had no task."""

    row: dict[str, Any]
    cdf: list[np.ndarray | None]
    wall_s: float
    cpu_s: float  # CPU time of the simulation (the process's, excludes waiting for a core)


def episode_metrics(records: np.ndarray, scenario: Scenario, warmup_s: float = 0.0) -> dict:
    """The per-seed metrics (``HEADLINE_FIELDS`` and ``<class>_<CLASS_FIELDS>``) of records."""
    if warmup_s > 0:
        records = records[records["arrival_s"] >= warmup_s]
    status = records["status"]
    row: dict[str, Any] = {}
    tight = [c for c, spec in enumerate(scenario.classes) if spec.deadline_us <= ONE_MS_US]
    tight_sel = np.isin(records["cls"], tight)
    n_tight = int(tight_sel.sum())
    v_tight = int((status[tight_sel] > 0).sum())
    n = int(records.size)
    v = int((status > 0).sum())
    d = int((status == DROPPED).sum())
    row.update(
        tasks=n,
        tasks_1ms=n_tight,
        violations_1ms=v_tight,
        violation_rate_1ms=v_tight / n_tight if n_tight else math.nan,
        violations=v,
        violation_rate=v / n if n else math.nan,
        dropped=d,
        drop_rate=d / n if n else math.nan,
    )
    for c, name in enumerate(CLASS_NAMES):
        m = class_metrics(records, records["cls"] == c)
        tasks = int(m["finished"])
        row[f"{name}_tasks"] = tasks
        row[f"{name}_violations"] = int(m["late"] + m["dropped"])
        row[f"{name}_violation_rate"] = m["violation_rate"]
        row[f"{name}_dropped"] = int(m["dropped"])
        row[f"{name}_drop_rate"] = m["dropped"] / tasks if tasks else math.nan
        row[f"{name}_mean_us"] = m["mean_us"]
        for key in PERCENTILES:
            row[f"{name}_{key}"] = m[key]
    return row


def latency_cdfs(records: np.ndarray, warmup_s: float = 0.0) -> list[np.ndarray | None]:
    """Per class, the empirical CDF of latency at ``CDF_GRID_US`` (drops count as never)."""
    if warmup_s > 0:
        records = records[records["arrival_s"] >= warmup_s]
    out: list[np.ndarray | None] = []
    for c in range(len(CLASS_NAMES)):
        sel = records[records["cls"] == c]
        if sel.size == 0:
            out.append(None)
            continue
        done = np.sort(sel["latency_s"][sel["status"] != DROPPED] * 1e6)
        out.append(np.searchsorted(done, CDF_GRID_US, side="right") / sel.size)
    return out


_SCENARIOS: dict[str, Scenario] = {}


def _quiet_worker() -> None:
    """A worker rebuilds the scenario that the parent has built: the parent showed its
    warnings (an imported network's repairs) already."""
    warnings.simplefilter("ignore", MillinetWarning)


def _scenario(spec: str | dict) -> Scenario:
    """Build (once per process) the scenario named or described by ``spec``."""
    key = spec if isinstance(spec, str) else json.dumps(spec, sort_keys=True)
    if key not in _SCENARIOS:
        _SCENARIOS[key] = load_scenario(spec)
    return _SCENARIOS[key]


@dataclass(frozen=True)
class Job:
    """One episode to run: picklable, so it can go to a worker process."""

    scenario: str | dict
    policy: str
    seed: int
    duration_s: float
    warmup_s: float


def run_episode(job: Job) -> EpisodeResult:
    """Run one evaluation episode (top-level, so process pools can call it)."""
    from millinet.agents.specs import chooser_for

    scenario = _scenario(job.scenario)
    choose = chooser_for(job.policy, scenario, seed=job.seed)
    start, cpu = time.perf_counter(), time.process_time()
    result = simulate(scenario, choose, job.duration_s, seed=job.seed)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    row = {
        "scenario": scenario.name,
        "policy": job.policy,
        "seed": job.seed,
        "duration_s": job.duration_s,
        "warmup_s": job.warmup_s,
        **episode_metrics(result.records, scenario, job.warmup_s),
    }
    return EpisodeResult(row, latency_cdfs(result.records, job.warmup_s), wall, cpu)


# ----------------------------------------------------------------------------- many episodes
@dataclass
class Evaluation:
    """All episodes of one scenario: rows sorted by (policy order, seed)."""

    scenario: str
    policies: list[str]
    seeds: list[int]
    duration_s: float
    warmup_s: float
    deadlines_us: list[float]
    episodes: list[EpisodeResult]
    wall_s: float
    summary: dict[str, dict[str, tuple[float, float, float]]] = field(default_factory=dict)

    @property
    def cpu_s(self) -> float:
        """Total CPU time of the episodes' simulations (s)."""
        return sum(e.cpu_s for e in self.episodes)

    def rows(self) -> list[dict[str, Any]]:
        return [e.row for e in self.episodes]

    def values(self, policy: str, metric: str) -> np.ndarray:
        """Per-seed values of ``metric`` for ``policy``, in seed order, shape (n_seeds,)."""
        return np.array([float(e.row[metric]) for e in self.episodes if e.row["policy"] == policy])

    def mean_cdf(self, policy: str, cls: int) -> np.ndarray | None:
        """Equal-weight mixture over seeds of the per-seed latency CDFs of class ``cls``."""
        cdfs = [e.cdf[cls] for e in self.episodes if e.row["policy"] == policy]
        cdfs = [c for c in cdfs if c is not None]
        return np.mean(cdfs, axis=0) if cdfs else None

    def best_policy(self) -> str:
        """Lowest mean violation_rate_1ms (then overall violation rate, then listed order)."""

        def key(p: str) -> tuple[float, float, int]:
            v1 = self.summary[p]["violation_rate_1ms"][0]
            v = self.summary[p]["violation_rate"][0]
            return (math.inf if math.isnan(v1) else v1, v, self.policies.index(p))

        return min(self.policies, key=key)

    def difference(self, policy: str, baseline: str, metric: str = "violation_rate_1ms"):
        """(mean, low, high) of ``policy - baseline`` on ``metric``, paired over seeds."""
        return paired_difference_ci(
            self.values(policy, metric), self.values(baseline, metric), seed=_stat_seed(metric)
        )


def _stat_seed(metric: str) -> int:
    """A fixed bootstrap seed per metric name (stable across runs and Python processes)."""
    return sum(ord(ch) * (i + 1) for i, ch in enumerate(metric)) % (2**31)


def summarize_episodes(ev: Evaluation) -> None:
    """Fill ``ev.summary[policy][metric] = (mean, low, high)`` for ``SUMMARY_METRICS``."""
    for policy in ev.policies:
        ev.summary[policy] = {
            m: bootstrap_ci(ev.values(policy, m), seed=_stat_seed(m)) for m in SUMMARY_METRICS
        }


def evaluate(
    scenario: str | dict,
    policies: Sequence[str],
    seeds: int | Sequence[int] = DEFAULT_SEEDS,
    duration_s: float | None = None,
    warmup_s: float = 0.0,
    workers: int = 1,
    on_done: Callable[[EpisodeResult], None] | None = None,
) -> Evaluation:
    """Run every (policy, seed) episode of ``scenario`` and summarise them.

    ``seeds``: a count n (episodes use ``eval_seeds(n)``) or explicit engine seeds.
    ``duration_s``: simulated time of arrivals per episode (default: the scenario's).
    ``workers``: > 1 runs episodes in that many processes (spawned, so safe with any
    library state; a script calling this must guard its entry point with
    ``if __name__ == "__main__":``); results do not depend on it. ``on_done`` is called
    after each episode.
    Policy specs are resolved up front (``millinet.agents.specs.load_policy``), so a bad name
    fails before any simulation runs.
    """
    from millinet.agents.specs import load_policy

    built = _scenario(scenario)
    seed_list = eval_seeds(seeds) if isinstance(seeds, int) else [int(s) for s in seeds]
    if len(set(policies)) != len(policies):
        raise ValueError(f"policies listed twice: {list(policies)}")
    for spec in policies:
        load_policy(spec, built, seed=seed_list[0])
    duration = float(duration_s if duration_s is not None else built.config.duration_s)
    if not 0.0 <= warmup_s < duration:
        raise ValueError(f"warmup ({warmup_s} s) must be in [0, duration = {duration} s)")
    built.check_tasks(duration, "duration_s" if duration_s is None else "--duration")
    jobs = [Job(scenario, p, s, duration, warmup_s) for p in policies for s in seed_list]
    start = time.perf_counter()
    results: dict[tuple[str, int], EpisodeResult] = {}
    if workers <= 1:
        for job in jobs:
            res = run_episode(job)
            results[(job.policy, job.seed)] = res
            if on_done:
                on_done(res)
    else:
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=get_context("spawn"), initializer=_quiet_worker
        ) as pool:
            futures = {pool.submit(run_episode, job): job for job in jobs}
            try:
                for fut in as_completed(futures):
                    job = futures[fut]
                    res = fut.result()
                    results[(job.policy, job.seed)] = res
                    if on_done:
                        on_done(res)
            except BaseException:  # a failed episode or Ctrl-C: do not run the rest
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    ev = Evaluation(
        scenario=built.name,
        policies=list(policies),
        seeds=seed_list,
        duration_s=duration,
        warmup_s=warmup_s,
        deadlines_us=[c.deadline_us for c in built.classes],
        episodes=[results[(p, s)] for p in policies for s in seed_list],
        wall_s=time.perf_counter() - start,
    )
    summarize_episodes(ev)
    return ev


# ----------------------------------------------------------------------------- outputs
def write_per_seed_csv(ev: Evaluation, path: Path) -> None:
    """One row per (policy, seed); floats written with ``repr`` (exact, deterministic)."""
    import csv

    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=csv_fields(), lineterminator="\n")
        writer.writeheader()
        for row in ev.rows():
            writer.writerow({k: _cell(row[k]) for k in csv_fields()})


def write_summary_csv(ev: Evaluation, path: Path) -> None:
    """One row per (policy, metric): mean over seeds and its 95% CI bounds."""
    import csv

    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["scenario", "policy", "metric", "mean", "ci95_low", "ci95_high", "seeds"])
        for policy in ev.policies:
            for metric, (mean, low, high) in ev.summary[policy].items():
                n = int(np.sum(~np.isnan(ev.values(policy, metric))))
                writer.writerow(
                    [ev.scenario, policy, metric, _cell(mean), _cell(low), _cell(high), n]
                )


def _cell(x: Any) -> Any:
    if isinstance(x, float):
        return "" if math.isnan(x) else repr(x)
    return x


def write_outputs(
    ev: Evaluation, out: Path, plots: bool = True, command: str | None = None
) -> list[Path]:
    """Write per_seed.csv, summary.csv, summary.md, run.json and the plots into ``out``, and
    groups.csv when trained runs of one experiment were evaluated (``evaluation.groups``).

    ``command`` (the command line that made them) heads summary.md and goes into run.json."""
    from millinet.experiments.evaluation.groups import group_runs, markdown_groups, write_groups_csv
    from millinet.experiments.evaluation.report import markdown_summary

    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "per_seed.csv", out / "summary.csv", out / "summary.md", out / "run.json"]
    write_per_seed_csv(ev, paths[0])
    write_summary_csv(ev, paths[1])
    head = f"# {ev.scenario}: policy evaluation\n\n"
    if command:
        head += f"```bash\n{command}\n```\n\n"
    body = markdown_summary(ev, image_dir="." if plots else None)
    groups = group_runs(ev)
    if groups:
        body += "\n\n## Experiments (runs grouped by training seed)\n\n" + markdown_groups(
            groups, len(ev.seeds)
        )
        paths.append(out / "groups.csv")
        write_groups_csv(groups, ev.scenario, paths[-1])
    paths[2].write_text(head + body + "\n")
    meta = {
        "command": command,
        "scenario": ev.scenario,
        "policies": ev.policies,
        "seeds": ev.seeds,
        "duration_s": ev.duration_s,
        "warmup_s": ev.warmup_s,
        "wall_s": round(ev.wall_s, 1),
        "cpu_s": round(ev.cpu_s, 1),
        "episode_cpu_s": {
            f"{e.row['policy']}@{e.row['seed']}": round(e.cpu_s, 2) for e in ev.episodes
        },
    }
    paths[3].write_text(jsonio.dumps(meta, indent=2) + "\n")
    if plots:
        from millinet.experiments.evaluation.plots import plot_latency_cdfs, plot_violation_rates

        paths.append(plot_violation_rates(ev, out / "violation_rates.png"))
        paths.append(plot_latency_cdfs(ev, out / "latency_cdf.png"))
    return paths

"""``millinet sweep``: Ray Tune over training configs, on this machine or a Ray cluster.

* Trials: :func:`millinet.experiments.sweep.trainable.train_trial` (MaskablePPO in chunks through
  ``millinet.agents.ppo.Trainer``), 1 CPU each (``cpus_per_trial``), torch with one thread.
* Objective: ``objective = violation_rate_1ms + secondary_weight * violation_rate`` (min) on
  held-out report episodes after every chunk; both rates are reported too.
* Scheduler: ASHA (default), PBT (restores the exploited trial's checkpoint and applies the
  mutated hyperparameters) or FIFO. Search: random (Tune's variant generator) or Optuna.
* Storage: ``<storage_path>/<name>/`` (default ``runs/sweeps/<name>/``); ``--resume`` continues
  it with ``Tuner.restore`` (unfinished and errored trials resume from their checkpoints;
  finished ones are kept as they are).
* ``--address``: connect to a running Ray cluster instead of starting a local Ray instance;
  an unreachable address fails within ``connect_timeout`` seconds.
* Clean-up: a local Ray instance is shut down when the sweep ends, however it ends
  (finished, Ctrl-C, an error). Its session folder is recorded in ``ray_session.json`` in
  the sweep folder; if the driver is killed (SIGKILL) some Ray processes outlive it, and the
  next run or ``--resume`` of the sweep stops them (found by their open files in that
  session) and says so.

When the sweep ends, :mod:`millinet.experiments.sweep.outputs` writes the summary table, the plot
and the best trial's config as a training YAML into the sweep folder.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from millinet.envs.validation import read_yaml
from millinet.experiments.sweep.config import OBJECTIVE, SweepSpec, dump_sweep_data, tune_space
from millinet.experiments.sweep.ray_cleanup import (
    clean_up_leftovers,
    finish_session,
    record_session,
)

SAVED_SPEC = "sweep_config.yaml"
"""The resolved sweep (sweep config + base training config) saved in the sweep folder."""


class SweepError(RuntimeError):
    """A sweep cannot start or resume; the message says why and what to do."""


class SweepInterruptedError(SweepError):
    """The sweep stopped (Ctrl-C, SIGUSR1) with trials unfinished; its outputs so far are
    written and ``--resume`` continues it."""


# --------------------------------------------------------------------------- Ray connection
def parse_address(address: str) -> tuple[str, int] | None:
    """(host, port) of ``host:port`` or ``ray://host:port``; None for ``auto``/``local``."""
    if address in ("auto", "local"):
        return None
    text = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise SweepError(
            f"--address {address!r}: expected host:port (e.g. 10.0.0.5:6379), "
            "ray://host:port or auto"
        )
    return host.strip("[]"), int(port)


def check_reachable(address: str, timeout: float) -> None:
    """Fail fast (within ``timeout`` s) when nothing listens at ``address``: ``ray.init``
    itself retries an unreachable GCS for minutes."""
    parsed = parse_address(address)
    if parsed is None:
        return
    host, port = parsed
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        raise SweepError(
            f"cannot reach a Ray cluster at {address} ({reason} after at most {timeout:g} s). "
            "Is the head node running (`ray start --head --port=PORT`), and is the address "
            "the one it printed?"
        ) from None


def prepare_environment(address: str | None) -> None:
    """Environment for Ray, set before ``ray`` is first imported (some of it is read then)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    if address is None:
        # A one-machine sweep needs no open ports: keep Ray on loopback (as Ray does on macOS).
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    # Progress is printed by ProgressPrinter; the old output engine at verbose=0 adds nothing.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


def connect_ray(
    address: str | None, num_cpus: int | None, timeout: float, temp_dir=None
) -> str | None:
    """Start a local Ray instance (``address`` None) or connect to a running cluster; returns
    the local instance's session folder (None on a cluster).

    With an address, a watchdog ends the process with a clear message when ``ray.init`` has
    not returned after ``timeout`` seconds (it would otherwise retry forever on an address
    that accepts TCP but is not a Ray head node)."""
    prepare_environment(address)
    if address is not None:
        check_reachable(address, timeout)
    import ray

    done = threading.Event()

    def watchdog() -> None:
        if not done.wait(timeout):
            where = f"the Ray cluster at {address}" if address else "a local Ray instance"
            print(
                f"millinet sweep: error: could not connect to {where} within {timeout:g} s "
                "(is it a Ray head node's GCS address?)",
                file=sys.stderr,
                flush=True,
            )
            os._exit(2)

    if address is not None:  # starting a local instance fails by itself, never hangs
        threading.Thread(target=watchdog, daemon=True).start()
    try:
        kwargs: dict[str, Any] = {"log_to_driver": False, "include_dashboard": False}
        if address is None:
            kwargs["num_cpus"] = num_cpus or os.cpu_count()
            if temp_dir:
                kwargs["_temp_dir"] = str(temp_dir)
        else:
            kwargs.pop("include_dashboard")
        try:
            context = ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError) as exc:
            hint = ""
            if address is not None and os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
                hint = (
                    " (a cluster started with token authentication also needs RAY_AUTH_MODE=token "
                    "and its token in RAY_AUTH_TOKEN or ~/.ray/auth_token here)"
                )
            raise SweepError(f"cannot connect to Ray at {address}: {exc}{hint}") from None
    finally:
        done.set()
    return None if address is not None else context.address_info.get("session_dir")


def check_cpus(spec: SweepSpec, cpus: float, where: str) -> None:
    """A trial that needs more CPUs than the Ray instance has would wait forever: refuse it."""
    need = spec.cfg.cpus_per_trial
    if need > cpus:
        raise SweepError(
            f"{spec.source}: cpus_per_trial: a trial needs {need:g} CPUs but {where} has "
            f"{cpus:g}; no trial could ever start (lower cpus_per_trial or give more CPUs)"
        )


# --------------------------------------------------------------------------- console
def _fmt_pct(x: Any) -> str:
    try:
        return f"{100 * float(x):.3f}%"
    except (TypeError, ValueError):
        return "n/a"


def trial_label(trial) -> str:
    return f"trial {trial.trial_id.split('_')[-1]}"


def trial_dirname(trial) -> str:
    """Short trial folder names: ``trial_00003``."""
    return f"trial_{trial.trial_id.split('_')[-1]}"


def best_result(trials) -> tuple[float, str] | None:
    """(objective, trial label) of the best result any of ``trials`` reported (a restored
    trial keeps the minimum of its results); None before any result."""
    best = None
    for t in trials:
        seen = (t.metric_analysis or {}).get(OBJECTIVE, {}).get("min")
        if seen is not None and seen == seen and (best is None or seen < best[0]):
            best = (float(seen), trial_label(t))
    return best


def _make_progress_callback(max_chunks: int):
    from ray import tune

    class ProgressPrinter(tune.Callback):
        """One console line per trial event and per reported chunk, with the best so far
        (after ``--resume``, the trials of the earlier runs count too)."""

        def setup(self, **info) -> None:
            self.t0 = time.monotonic()
            self.best: tuple[float, str] | None = None
            self._seeded = False

        def on_step_begin(self, iteration, trials, **info) -> None:
            """Before the first step of this run: the best of the restored results."""
            if self._seeded:
                return
            self._seeded = True
            self.best = best_result(trials)
            if self.best is not None:
                self._say(f"resumed: best so far {self.best[1]} {_fmt_pct(self.best[0])}")

        def _say(self, text: str, trials=None) -> None:
            el = int(time.monotonic() - getattr(self, "t0", time.monotonic()))
            counts = ""
            if trials is not None:
                by: dict[str, int] = {}
                for t in trials:
                    by[t.status] = by.get(t.status, 0) + 1
                counts = "  [" + " ".join(f"{k.lower()} {v}" for k, v in sorted(by.items())) + "]"
            print(f"[{el // 60:3d}m{el % 60:02d}s] {text}{counts}", flush=True)

        def on_trial_start(self, iteration, trials, trial, **info) -> None:
            params = ", ".join(f"{k}={_short(v)}" for k, v in trial.config.items())
            self._say(f"{trial_label(trial)} started: {params}", trials)

        def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
            obj = result.get(OBJECTIVE)
            if obj is not None and (self.best is None or obj < self.best[0]):
                self.best = (obj, trial_label(trial))
            best = f"  best {self.best[1]} {_fmt_pct(self.best[0])}" if self.best else ""
            self._say(
                f"{trial_label(trial)} chunk {result.get('chunk')}/{max_chunks} "
                f"({result.get('timesteps', 0):,} steps): "
                f"viol_1ms {_fmt_pct(result.get('violation_rate_1ms'))} "
                f"viol {_fmt_pct(result.get('violation_rate'))}{best}",
            )

        def on_trial_complete(self, iteration, trials, trial, **info) -> None:
            self._say(f"{trial_label(trial)} done", trials)

        def on_trial_error(self, iteration, trials, trial, **info) -> None:
            where = trial.path or ""
            self._say(f"{trial_label(trial)} ERRORED (see {where}/error.txt)", trials)

    return ProgressPrinter()


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


# --------------------------------------------------------------------------- tuner
def _trainable(spec: SweepSpec):
    from ray import tune

    from millinet.experiments.sweep.trainable import train_trial

    payload = {
        "sweep": spec.name,
        "base": spec.base,
        "encoded": spec.encoded,
        "chunk_timesteps": spec.cfg.chunk_timesteps,
        "max_chunks": spec.cfg.max_chunks,
        "secondary_weight": spec.cfg.objective.secondary_weight,
        "average_last": spec.cfg.objective.average_last,
        "seeds_per_trial": spec.cfg.seeds_per_trial,
    }
    return tune.with_resources(
        tune.with_parameters(train_trial, spec=payload), {"cpu": spec.cfg.cpus_per_trial}
    )


def _scheduler(spec: SweepSpec):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, PopulationBasedTraining

    s = spec.cfg.scheduler
    if s.type == "asha":
        return ASHAScheduler(
            time_attr="training_iteration",
            max_t=spec.cfg.max_chunks,
            grace_period=s.grace_period,
            reduction_factor=s.reduction_factor,
        )
    if s.type == "pbt":
        return PopulationBasedTraining(
            time_attr="training_iteration",
            perturbation_interval=s.perturbation_interval,
            hyperparam_mutations=spec.pbt_mutations(),
            quantile_fraction=s.quantile_fraction,
            resample_probability=s.resample_probability,
            custom_explore_fn=spec.clip_to_space,
        )
    return FIFOScheduler()


def _searcher(spec: SweepSpec):
    from ray.tune.search import BasicVariantGenerator

    search = spec.cfg.search
    points = None
    if search.include_default:
        point = spec.default_point()
        if point is None:
            print(
                "note: the base config's values lie outside the search space; "
                "no default trial (search.include_default ignored)",
                flush=True,
            )
        else:
            points = [point]
    if search.algorithm == "optuna":
        from ray.tune.search.optuna import OptunaSearch

        searcher = OptunaSearch(points_to_evaluate=points, seed=search.seed)
        if spec.cfg.max_concurrent_trials:
            from ray.tune.search import ConcurrencyLimiter

            return ConcurrencyLimiter(searcher, max_concurrent=spec.cfg.max_concurrent_trials)
        return searcher
    return BasicVariantGenerator(
        points_to_evaluate=points,
        max_concurrent=spec.cfg.max_concurrent_trials or 0,
        random_state=search.seed,
    )


def _new_tuner(spec: SweepSpec):
    from ray import tune

    cfg = spec.cfg
    return tune.Tuner(
        _trainable(spec),
        param_space=tune_space(spec),
        tune_config=tune.TuneConfig(
            metric=OBJECTIVE,
            mode="min",
            search_alg=_searcher(spec),
            scheduler=_scheduler(spec),
            num_samples=cfg.num_samples,
            time_budget_s=cfg.time_budget_s,
            trial_dirname_creator=trial_dirname,
            reuse_actors=True,  # a trial start then skips the worker's torch/SB3 imports
        ),
        run_config=tune.RunConfig(
            name=cfg.name,
            storage_path=str(spec.storage_root()),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            sync_config=tune.SyncConfig(sync_artifacts=True),
            callbacks=[_make_progress_callback(cfg.max_chunks)],
            verbose=0,
        ),
    )


def save_spec(spec: SweepSpec) -> None:
    exp = spec.experiment_dir()
    exp.mkdir(parents=True, exist_ok=True)
    text = "# The resolved sweep that ran (millinet sweep); --resume uses this file.\n"
    text += yaml.safe_dump(dump_sweep_data(spec), sort_keys=False)
    (exp / SAVED_SPEC).write_text(text)


def saved_spec(spec: SweepSpec) -> SweepSpec:
    """The spec saved when the sweep started (``--resume`` continues that sweep, even when
    the YAML file changed since)."""
    from millinet.experiments.sweep.config import validate_sweep_config

    path = spec.experiment_dir() / SAVED_SPEC
    if not path.is_file():
        return spec
    data = read_yaml(path)
    sweep = {
        **data["sweep"],
        "train": data["base_train_config"],
        "overrides": {},
        "storage_path": str(spec.storage_root()),
    }
    saved = validate_sweep_config(sweep, str(path))
    saved.protocol = data.get("train_protocol", spec.protocol)
    saved.source = spec.source  # messages name the file the user gave

    def comparable(s: SweepSpec) -> tuple[dict, dict]:
        d = s.cfg.model_dump(mode="json")
        for key in ("train", "overrides", "storage_path"):
            d.pop(key)
        return d, s.base

    if comparable(saved) != comparable(spec):
        print(
            f"note: {spec.source} differs from the sweep being resumed; resuming with the "
            f"saved {path}",
            flush=True,
        )
    return saved


def run_sweep(
    spec: SweepSpec,
    address: str | None = None,
    resume: bool = False,
    num_cpus: int | None = None,
    connect_timeout: float = 30.0,
    ray_temp_dir: str | None = None,
) -> dict[str, Path]:
    """Run (or resume) the sweep; write its outputs; return their paths."""
    prepare_environment(address)
    from ray import tune

    from millinet.experiments.sweep.outputs import write_outputs

    exp = spec.experiment_dir()
    if "://" in spec.cfg.storage_path:
        raise SweepError(
            f"storage_path {spec.cfg.storage_path!r}: only filesystem paths are supported "
            "(on a cluster, a shared mount such as NFS at the same path on every node)"
        )
    restorable = tune.Tuner.can_restore(str(exp))
    if resume and not restorable:
        raise SweepError(f"--resume: no sweep to resume in {exp} (run without --resume first)")
    if not resume and restorable:
        raise SweepError(
            f"{exp} already holds sweep {spec.name!r}: pass --resume to continue it, or "
            "remove the folder / change `name` to start a new one"
        )
    if resume:
        spec = saved_spec(spec)
    if address is None:
        local = num_cpus or os.cpu_count() or 1
        check_cpus(spec, local, f"the local Ray instance (--num-cpus {local})")
        clean_up_leftovers(exp)
    session = connect_ray(address, num_cpus, connect_timeout, ray_temp_dir)
    import ray

    try:
        record_session(exp, session)
        res = ray.cluster_resources()
        check_cpus(spec, res.get("CPU", 0), f"the Ray cluster at {address}")
        print(
            f"sweep {spec.name}: {spec.cfg.num_samples} trials x up to {spec.cfg.max_chunks} "
            f"chunks of {spec.cfg.chunk_timesteps:,} steps, scheduler "
            f"{spec.cfg.scheduler.type}, search {spec.cfg.search.algorithm}; Ray "
            f"{'cluster ' + address if address else 'local'} with {res.get('CPU', 0):g} CPUs; "
            f"folder {exp}\n  watch: tensorboard --logdir {exp}",
            flush=True,
        )
        if resume:
            tuner = tune.Tuner.restore(
                str(exp), trainable=_trainable(spec), resume_unfinished=True, resume_errored=True
            )
        else:
            save_spec(spec)
            tuner = _new_tuner(spec)
        t0 = time.monotonic()
        results = tuner.fit()
        elapsed = time.monotonic() - t0
        paths = write_outputs(spec, results)
        _check_finished(spec, results, elapsed, trial_statuses(spec))
        return paths
    finally:
        ray.shutdown()
        if session:
            finish_session(exp, session)


def trial_statuses(spec: SweepSpec) -> list[str]:
    """Status of each trial in the saved experiment (what ``--resume`` reads), through Tune's
    public ``ExperimentAnalysis``; empty before any state is saved."""
    from ray.tune import ExperimentAnalysis

    if not spec.experiment_dir().is_dir():
        return []
    try:
        return [t.status for t in ExperimentAnalysis(str(spec.experiment_dir())).trials]
    except (ValueError, FileNotFoundError):  # no experiment state saved yet
        return []


def unfinished_trials(spec: SweepSpec, statuses: list[str]) -> int:
    """Trials not finished: pending, running or paused, plus samples not yet created."""
    import math

    grid = math.prod(len(p.args) for p in spec.params if p.kind == "grid")
    missing = max(spec.cfg.num_samples * grid - len(statuses), 0)
    return sum(s not in ("TERMINATED", "ERROR") for s in statuses) + missing


def _check_finished(spec: SweepSpec, results, elapsed: float, statuses: list[str]) -> None:
    """Say what did not finish (``statuses``: :func:`trial_statuses`); raise
    :class:`SweepInterruptedError` if the run was stopped before its end (not by its
    ``time_budget_s``)."""
    resume = f"millinet sweep --config {spec.source} --resume"
    if results.num_errors:
        print(
            f"{results.num_errors} trial(s) errored (error.txt in their trial folders); "
            f"`{resume}` retries them from their last checkpoint",
            flush=True,
        )
    unfinished = unfinished_trials(spec, statuses)
    if unfinished <= 0:
        return
    budget = spec.cfg.time_budget_s
    if budget is not None and elapsed >= budget - 5:
        print(
            f"time budget of {budget:g} s reached: {unfinished} trial(s) unfinished; "
            f"`{resume}` continues them",
            flush=True,
        )
        return
    raise SweepInterruptedError(
        f"sweep interrupted with {unfinished} trial(s) unfinished; outputs so far are in "
        f"{spec.experiment_dir()}; continue with: {resume}"
    )

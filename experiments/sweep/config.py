"""The sweep config: one YAML file per sweep (``experiments/configs/sweep_<name>.yaml``).

A sweep config names a base training config (the same YAML ``millinet train`` reads), the
hyperparameters to search and how to search them::

    name: sunflower                     # results go to <storage_path>/<name>/
    train: ppo_sunflower.yaml           # base training config (path, or an inline mapping)
    overrides: {n_envs: 2}              # dotted keys set for every trial
    space:                              # dotted training-config keys -> distribution
      ppo.learning_rate: {loguniform: [1.0e-5, 1.0e-3]}
      ppo.policy.pi: {choice: [[64, 64], [128, 128]]}
    num_samples: 8
    chunk_timesteps: 16384              # one Tune iteration = one chunk of training
    max_chunks: 6
    scheduler: {type: asha, grace_period: 2, reduction_factor: 2}
    search: {algorithm: random, seed: 0}

Distributions: ``uniform`` / ``loguniform`` ``[low, high]``, ``quniform`` ``[low, high, q]``,
``randint`` / ``lograndint`` ``[low, high]`` (``high`` exclusive, as in Ray Tune), ``choice``
and ``grid`` (a list of values). Every corner of the space (each range's ends, each choice)
is validated against the training config before anything starts, so a bad entry fails at
once with a message naming the file, the field and the reason.

This module does not import Ray; :func:`tune_space` does, lazily.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from millinet.agents.train_config import (
    DottedKeyError,
    TrainConfig,
    check_not_empty,
    check_resources,
    set_dotted,
    validate_train_config,
)
from millinet.envs.errors import ConfigError
from millinet.envs.validation import StrictModel, read_yaml, validate

SWEEP_METRICS = ("violation_rate_1ms", "violation_rate")
OBJECTIVE = "objective"
"""The scalar Tune optimises (min): ``violation_rate_1ms + secondary_weight * violation_rate``."""

DISTRIBUTIONS = ("uniform", "loguniform", "quniform", "randint", "lograndint", "choice", "grid")
RESERVED_KEYS = ("total_timesteps", "time_limit_s", "torch_threads", "eval", "checkpoint")
"""Training-config keys a sweep sets itself (step budget, no wall-time limit, threads) or must
hold fixed across trials (the evaluation protocol), so they may not appear in ``space``."""
PBT_MUTABLE = (
    "ppo.learning_rate",
    "ppo.clip_range",
    "ppo.ent_coef",
    "ppo.vf_coef",
    "ppo.max_grad_norm",
    "ppo.n_epochs",
    "ppo.batch_size",
    "ppo.gamma",
    "ppo.gae_lambda",
    "ppo.target_kl",
)
"""PPO hyperparameters that can change in the middle of training (PBT's explore step); the
network shape, the rollout length and the env cannot."""
PROTOCOL_KEYS = ("eval", "checkpoint")
"""Training-config sections that describe how a run is evaluated and saved, not how it
learns: a sweep may override them for its trials, ``best_config.yaml`` restores the base's."""
MAX_CORNERS = 4096

Chunks = Annotated[int, Field(gt=0, le=10_000)]
"""A count of chunks (Tune iterations)."""


class SchedulerSettings(StrictModel):
    """Trial scheduler. Time is counted in chunks (Tune's ``training_iteration``)."""

    type: Literal["asha", "pbt", "fifo"] = Field(
        "asha", description="asha (default): stop poor trials early; pbt; fifo: run all to the end"
    )
    grace_period: Chunks = Field(1, description="asha: chunks before a trial may be stopped")
    reduction_factor: Annotated[float, Field(gt=1, le=100)] = Field(
        2.0, description="asha: 1/reduction_factor of the trials pass each rung"
    )
    perturbation_interval: Chunks = Field(
        2, description="pbt: chunks between exploit/explore steps"
    )
    quantile_fraction: Annotated[float, Field(gt=0, le=0.5)] = Field(
        0.25, description="pbt: bottom fraction that copies the top fraction"
    )
    resample_probability: Annotated[float, Field(ge=0, le=1)] = 0.25
    mutations: list[str] | None = Field(
        None, description="pbt: space keys explored in mid-training (default: all mutable ones)"
    )


class SearchSettings(StrictModel):
    """How new configurations are proposed."""

    algorithm: Literal["random", "optuna"] = Field(
        "random", description="random (Tune's variant generator) or optuna (TPE)"
    )
    seed: Annotated[int, Field(ge=0, lt=2**32)] | None = Field(
        0, description="sampler seed (null: not reproducible)"
    )
    include_default: bool = Field(
        True, description="the first trial runs the base config's own values of the space keys"
    )


class ObjectiveSettings(StrictModel):
    """``objective = violation_rate_1ms + secondary_weight * violation_rate`` (min), measured on
    held-out report episodes after each chunk. The default weight makes the overall violation
    rate a tie-break: 1 point of 1 ms violations outweighs 100 points of overall violations."""

    secondary_weight: Annotated[float, Field(ge=0, le=1e3)] = 0.01
    average_last: Chunks = Field(
        1,
        description="report the objective averaged over the last k chunks (smooths PPO's "
        "chunk-to-chunk jumps; ASHA and the best-trial choice then see the average)",
    )


class SweepConfig(StrictModel):
    """A Ray Tune sweep over a training config (see module docstring)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="sweep folder name")
    description: str = ""
    train: Annotated[str, Field(min_length=1)] | dict[str, Any] = Field(
        "ppo_sunflower.yaml",
        description="base training config: a YAML path (relative to this file, then to the "
        "working directory) or an inline mapping",
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="dotted training-config keys set for every trial"
    )
    space: dict[str, Any] = Field(min_length=1, description="dotted key -> {distribution: args}")
    num_samples: Annotated[int, Field(gt=0, le=100_000)] = 8
    chunk_timesteps: Annotated[int, Field(gt=0, le=1_000_000_000)] = Field(
        16_384, description="env steps per Tune iteration"
    )
    max_chunks: Chunks = Field(6, description="chunks per trial (its full budget)")
    max_concurrent_trials: Annotated[int, Field(gt=0, le=10_000)] | None = None
    time_budget_s: Annotated[float, Field(gt=0, le=1e8)] | None = Field(
        None, description="stop starting/continuing trials after this much wall time"
    )
    cpus_per_trial: Annotated[float, Field(gt=0, le=1024)] = Field(
        1.0, description="CPUs each trial reserves; at most the CPUs of the Ray instance"
    )
    seeds_per_trial: Annotated[int, Field(gt=0, le=100)] = Field(
        1,
        description="training runs per trial (seeds seed .. seed + n - 1), trained in turn; "
        "the trial reports their mean, so one lucky seed cannot win the sweep (n x the cost)",
    )
    storage_path: str = Field(
        "runs/sweeps", description="parent folder of the sweep folder; shared on a cluster"
    )
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    objective: ObjectiveSettings = Field(default_factory=ObjectiveSettings)

    @model_validator(mode="after")
    def _consistent(self) -> SweepConfig:
        s = self.scheduler
        if s.type == "pbt" and self.search.algorithm != "random":
            raise ValueError("scheduler.type pbt needs search.algorithm random (PBT explores)")
        if s.type == "asha" and s.grace_period > self.max_chunks:
            raise ValueError(
                f"scheduler.grace_period ({s.grace_period}) exceeds max_chunks ({self.max_chunks})"
            )
        return self

    @property
    def total_timesteps(self) -> int:
        """A full trial's budget in env steps."""
        return self.chunk_timesteps * self.max_chunks


class Param:
    """One search-space entry, parsed: ``key`` (dotted), ``kind`` and its ``args``.

    Choices whose values are not scalars (lists, mappings) are *encoded* as JSON strings, so
    every searcher (Optuna's categorical distributions take scalars only) handles them; the
    trainable decodes them with :func:`decode_params`.
    """

    def __init__(self, key: str, kind: str, args: list[Any]) -> None:
        self.key, self.kind, self.args = key, kind, args
        self.encoded = kind in ("choice", "grid") and any(isinstance(v, (list, dict)) for v in args)

    @property
    def low_high(self) -> tuple[float, float] | None:
        """Numeric range (inclusive) of range distributions, else None."""
        if self.kind in ("uniform", "loguniform", "quniform"):
            return float(self.args[0]), float(self.args[1])
        if self.kind in ("randint", "lograndint"):
            return int(self.args[0]), int(self.args[1]) - 1
        return None

    def corners(self) -> list[Any]:
        """The values validated before a sweep: a range's ends, every choice."""
        if self.kind in ("choice", "grid"):
            return list(self.args)
        lo, hi = self.low_high
        return [lo] if lo == hi else [lo, hi]

    def contains(self, value: Any) -> bool:
        if self.kind in ("choice", "grid"):
            return value in self.args
        lo, hi = self.low_high
        return isinstance(value, (int, float)) and lo <= value <= hi

    def encode(self, value: Any) -> Any:
        return json.dumps(value) if self.encoded else value

    def domain(self):
        """The Ray Tune search-space object of this entry."""
        from ray import tune

        a = self.args
        if self.kind in ("choice", "grid"):
            values = [self.encode(v) for v in a]
            return tune.choice(values) if self.kind == "choice" else tune.grid_search(values)
        if self.kind == "quniform":
            return tune.quniform(a[0], a[1], a[2])
        return getattr(tune, self.kind)(a[0], a[1])

    def describe(self) -> str:
        return f"{self.kind}{self.args}"


def parse_param(key: str, spec: Any, source: str) -> Param:
    """Parse one ``space`` entry; a malformed one raises :class:`ConfigError`."""
    field = f"space.{key}"
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ConfigError(
            source,
            field,
            f"expected a mapping with one distribution key ({', '.join(DISTRIBUTIONS)}), "
            f"e.g. {{loguniform: [1.0e-5, 1.0e-3]}}; got {spec!r}",
        )
    ((kind, args),) = spec.items()
    if kind not in DISTRIBUTIONS:
        raise ConfigError(
            source, field, f"unknown distribution {kind!r}; known: {', '.join(DISTRIBUTIONS)}"
        )
    if not isinstance(args, list) or not args:
        raise ConfigError(source, field, f"{kind} takes a non-empty list, got {args!r}")
    if kind in ("choice", "grid"):
        return Param(key, kind, args)
    want = 3 if kind == "quniform" else 2
    if len(args) != want:
        raise ConfigError(
            source, field, f"{kind} takes [low, high{', q' if want == 3 else ''}], got {args!r}"
        )
    integer = kind in ("randint", "lograndint")
    for v in args:
        ok = isinstance(v, int) if integer else isinstance(v, (int, float))
        if isinstance(v, bool) or not ok or (isinstance(v, float) and not math.isfinite(v)):
            kind_txt = "integers" if integer else "finite numbers"
            raise ConfigError(source, field, f"{kind} bounds must be {kind_txt}, got {args!r}")
    low, high = args[0], args[1]
    if integer and high <= low:
        raise ConfigError(source, field, f"{kind} needs low < high (high exclusive), got {args!r}")
    if not integer and high < low:
        raise ConfigError(source, field, f"{kind} needs low <= high, got {args!r}")
    if kind.startswith("log") and low <= 0:
        raise ConfigError(source, field, f"{kind} needs low > 0, got {args!r}")
    if kind == "quniform" and args[2] <= 0:
        raise ConfigError(source, field, f"quniform needs q > 0, got {args!r}")
    return Param(key, kind, list(args))


# --------------------------------------------------------------------------- dotted keys
def field_exists(key: str) -> bool:
    """Whether ``key`` (dotted) names a field of :class:`TrainConfig`."""
    model: Any = TrainConfig
    for part in key.split("."):
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return False
        info = model.model_fields.get(part)
        if info is None:
            return False
        model = info.annotation
    return True


def with_params(base: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of the training-config mapping ``base`` with dotted ``params`` set."""
    out = copy.deepcopy(base)
    for key, value in params.items():
        set_dotted(out, key, value)
    return out


def decode_params(config: dict[str, Any], encoded: list[str]) -> dict[str, Any]:
    """A Tune trial config with the JSON-encoded choices (``Param.encoded``) decoded."""
    return {
        k: (json.loads(v) if k in encoded and isinstance(v, str) else v) for k, v in config.items()
    }


def _short_reason(exc: ConfigError) -> str:
    return f"{exc.field}: {exc.reason}" if exc.field else exc.reason


# --------------------------------------------------------------------------- loading
class SweepSpec:
    """A validated sweep: the :class:`SweepConfig`, the resolved base training config (plain
    data, ready to receive trial parameters) and the parsed search space."""

    def __init__(
        self,
        cfg: SweepConfig,
        base: dict[str, Any],
        params: list[Param],
        source: str,
        protocol: dict[str, Any] | None = None,
    ):
        self.cfg = cfg
        self.base = base
        self.params = params
        self.source = source
        self.protocol = protocol or {}
        """The base training config's own ``eval``/``checkpoint`` sections (before the sweep's
        overrides), restored in ``best_config.yaml``."""

    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def encoded(self) -> list[str]:
        return [p.key for p in self.params if p.encoded]

    def storage_root(self) -> Path:
        """Absolute parent folder of the sweep folder."""
        return Path(self.cfg.storage_path).expanduser().resolve()

    def experiment_dir(self) -> Path:
        return self.storage_root() / self.cfg.name

    def train_config(self, params: dict[str, Any]) -> TrainConfig:
        """The trial's training config for (decoded) ``params``."""
        return validate_train_config(with_params(self.base, params), f"{self.source} (trial)")

    def default_point(self) -> dict[str, Any] | None:
        """The base config's own values of the space keys, encoded as Tune proposes them; None
        when a value lies outside its entry's range or choices."""
        base = TrainConfig.model_validate(self.base).model_dump()
        point = {}
        for p in self.params:
            value: Any = base
            for part in p.key.split("."):
                value = value[part]
            if not p.contains(value):
                return None
            point[p.key] = p.encode(value)
        return point

    def pbt_mutations(self) -> dict[str, Any]:
        """PBT's ``hyperparam_mutations``: Tune domains (or value lists) of the mutated keys."""
        keys = self.cfg.scheduler.mutations
        if keys is None:
            keys = [p.key for p in self.params if p.key in PBT_MUTABLE]
        by_key = {p.key: p for p in self.params}
        out: dict[str, Any] = {}
        for key in keys:
            p = by_key[key]
            out[key] = [p.encode(v) for v in p.args] if p.kind in ("choice", "grid") else p.domain()
        return out

    def clip_to_space(self, config: dict[str, Any]) -> dict[str, Any]:
        """PBT's ``custom_explore_fn``: perturbed values are clipped back into their ranges
        (Tune multiplies by 0.8/1.2 without bounds) and integers stay integers."""
        out = dict(config)
        for p in self.params:
            rng = p.low_high
            if rng is None or p.key not in out:
                continue
            value = min(max(out[p.key], rng[0]), rng[1])
            out[p.key] = int(round(value)) if p.kind in ("randint", "lograndint") else value
        return out


def tune_space(spec: SweepSpec) -> dict[str, Any]:
    """The Tune ``param_space``: one flat dotted key per search-space entry."""
    return {p.key: p.domain() for p in spec.params}


def load_sweep_config(path: str | Path) -> SweepSpec:
    """Read and validate a sweep YAML, its base training config and every corner of its
    search space. Any problem raises :class:`ConfigError` naming the file and field."""
    path = Path(path)
    return validate_sweep_config(read_yaml(path), str(path), path.parent)


def validate_sweep_config(data: Any, source: str, base_dir: Path | None = None) -> SweepSpec:
    """Validate plain sweep data (see :func:`load_sweep_config`)."""
    cfg = validate(SweepConfig, data, source, what="sweep config")
    base = _base_train_data(cfg, source, base_dir or Path("."))
    protocol = {k: copy.deepcopy(base[k]) for k in PROTOCOL_KEYS if k in base}
    params = [parse_param(k, v, source) for k, v in cfg.space.items()]
    for key in [*cfg.space, *cfg.overrides]:
        where = "space" if key in cfg.space else "overrides"
        if not field_exists(key):
            raise ConfigError(
                source, f"{where}.{key}", "not a training-config field (see agents/train_config.py)"
            )
        if where == "space" and (key in RESERVED_KEYS or key.split(".")[0] in RESERVED_KEYS):
            raise ConfigError(
                source,
                f"space.{key}",
                "set by the sweep itself (budget, threads) or fixed for a fair comparison "
                "(evaluation protocol); it cannot be searched",
            )
    for key, value in cfg.overrides.items():
        try:
            set_dotted(base, key, value)
        except DottedKeyError as exc:  # the base config holds a value where a mapping belongs
            raise ConfigError(source, f"overrides.{key}", str(exc)) from None
    base["total_timesteps"] = cfg.total_timesteps
    base["torch_threads"] = 1
    base["time_limit_s"] = None  # trials are compared at equal steps, not equal seconds
    try:
        base_cfg = validate_train_config(base, f"{source} (train + overrides)")
    except ConfigError as exc:
        raise ConfigError(source, "overrides", _short_reason(exc)) from None
    if base_cfg.vec_env == "subproc" and cfg.cpus_per_trial < base_cfg.n_envs:
        raise ConfigError(
            source,
            "cpus_per_trial",
            f"vec_env subproc runs {base_cfg.n_envs} env processes per trial; give "
            f"cpus_per_trial >= n_envs or use vec_env dummy",
        )
    if cfg.seeds_per_trial > 1:
        last = base_cfg.seed + cfg.seeds_per_trial - 1
        try:
            validate_train_config({**base, "seed": last}, source)
        except ConfigError as exc:
            raise ConfigError(
                source, "seeds_per_trial", f"seed {last} is invalid: {_short_reason(exc)}"
            ) from None
    base["scenario"] = _absolute_scenario(base_cfg.scenario, base_dir or Path("."))
    scenarios: dict = {}
    try:
        check_resources(validate_train_config(base, source), source, scenarios)
    except ConfigError as exc:
        raise ConfigError(source, "overrides", _short_reason(exc)) from None
    _check_corners(params, base, source, scenarios)
    spec = SweepSpec(cfg, base, params, source, protocol)
    _check_scheduler(spec, source)
    return spec


def _base_train_data(cfg: SweepConfig, source: str, base_dir: Path) -> dict[str, Any]:
    """The base training config as a mapping (the file's content, not yet validated)."""
    if isinstance(cfg.train, dict):
        return copy.deepcopy(cfg.train)
    given = Path(cfg.train)
    places = {given: "absolute path"}
    if not given.is_absolute():
        places = {base_dir / given: "next to the sweep config", given: "in the working directory"}
    for cand in places:
        if not cand.exists():
            continue
        try:  # a directory, a binary file, an empty one: one line naming it
            data = read_yaml(cand)
            check_not_empty(data, str(cand))
            if not isinstance(data, dict):
                raise ConfigError(str(cand), "", "not a YAML mapping")
            validate_train_config(copy.deepcopy(data), str(cand))  # errors name its own file
        except ConfigError as exc:
            raise ConfigError(source, "train", str(exc)) from None
        return data
    looked = {str(p.resolve()): where for p, where in places.items()}
    raise ConfigError(
        source,
        "train",
        f"training config {cfg.train!r} not found; looked for "
        + " and ".join(f"{p} ({where})" for p, where in looked.items()),
    )


def _absolute_scenario(scenario: str, base_dir: Path) -> str:
    """Trials run in their own working directories: a scenario given as a relative YAML path
    becomes absolute; shipped names stay names."""
    from millinet.envs.errors import ScenarioError
    from millinet.envs.scenario import resolve_config

    if scenario.endswith((".yaml", ".yml")):
        for cand in (Path(scenario), base_dir / scenario):
            if cand.is_file():
                return str(cand.resolve())
    try:
        resolve_config(scenario)
    except ScenarioError as exc:
        raise ConfigError(exc.source, exc.field, exc.reason) from None
    return scenario


def _check_corners(
    params: list[Param], base: dict[str, Any], source: str, scenarios: dict | None = None
) -> None:
    """Validate the training config at every corner of the space (each entry alone first, so
    the message names the entry, with its resource estimate; then combinations, for
    cross-field rules like batch_size <= n_steps * n_envs)."""
    for p in params:
        for value in p.corners():
            try:
                corner = validate_train_config(with_params(base, {p.key: value}), source)
                check_resources(corner, source, scenarios)
            except ConfigError as exc:
                raise ConfigError(
                    source, f"space.{p.key}", f"value {value!r} is invalid: {_short_reason(exc)}"
                ) from None
    corner_lists = [p.corners() for p in params]
    if math.prod(len(c) for c in corner_lists) > MAX_CORNERS:
        return
    for combo in itertools.product(*corner_lists):
        point = {p.key: v for p, v in zip(params, combo)}
        try:
            validate_train_config(with_params(base, point), source)
        except ConfigError as exc:
            shown = ", ".join(f"{k}={v!r}" for k, v in point.items())
            keys = ", ".join(f"space.{p.key}" for p in params)
            raise ConfigError(
                source,
                keys if len(params) <= 3 else "space",
                f"the combination {shown} is invalid: {_short_reason(exc)}",
            ) from None


def _check_scheduler(spec: SweepSpec, source: str) -> None:
    cfg = spec.cfg
    by_key = {p.key: p for p in spec.params}
    if cfg.search.algorithm == "optuna":
        grids = [p.key for p in spec.params if p.kind == "grid"]
        if grids:
            raise ConfigError(
                source, f"space.{grids[0]}", "grid is not supported by optuna; use choice"
            )
    if cfg.scheduler.type != "pbt":
        return
    keys = cfg.scheduler.mutations
    if keys is None:
        keys = [k for k in by_key if k in PBT_MUTABLE]
        if not keys:
            raise ConfigError(
                source,
                "scheduler.mutations",
                f"pbt needs at least one space key it can change mid-training: "
                f"{', '.join(PBT_MUTABLE)}",
            )
    for key in keys:
        if key not in by_key:
            raise ConfigError(source, "scheduler.mutations", f"{key!r} is not a space key")
        if key not in PBT_MUTABLE:
            raise ConfigError(
                source,
                "scheduler.mutations",
                f"{key!r} cannot change in the middle of training; mutable: "
                f"{', '.join(PBT_MUTABLE)}",
            )


def dump_sweep_data(spec: SweepSpec) -> dict[str, Any]:
    """The sweep as plain data (what ran), saved next to the results."""
    return {
        "sweep": spec.cfg.model_dump(mode="json"),
        "base_train_config": spec.base,
        "train_protocol": spec.protocol,
    }

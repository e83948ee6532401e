"""The training config: one YAML file per experiment, validated by pydantic.

In the spirit of RL Zoo's hyperparameter files, a config holds everything a run needs: the
scenario, the env keyword arguments, the vectorisation, VecNormalize and the PPO
hyperparameters, the evaluation and checkpoint schedule. ``millinet train`` writes the resolved
config (every default filled in) to ``runs/<run-name>/config.yaml``, so a run folder says
exactly what ran and ``--resume`` needs nothing else. See ``experiments/configs/*.yaml``.

Seeds: ``seed`` seeds the network and the stream of training episodes; the seed ranges of
training, validation and report episodes are the table in ``millinet.envs.seeds``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from millinet.envs.errors import ConfigError, ScenarioError
from millinet.envs.placement_env import EnvConfig
from millinet.envs.scenario import DEFAULT_SCENARIO
from millinet.envs.seeds import TRAINING
from millinet.envs.validation import StrictModel, parse_yaml_text, read_yaml, validate

UnitFloat = Annotated[float, Field(ge=0, le=1)]
Steps = Annotated[int, Field(gt=0, le=10_000_000_000)]
"""A count of env steps (at most 1e10: years of training at the env's speed)."""
Layer = Annotated[int, Field(gt=0, le=4096)]
MAX_BUFFER_BYTES = 4 << 30
"""Largest rollout (or behaviour-cloning) buffer a config may ask for (4 GiB)."""


class NormalizeConfig(StrictModel):
    """``VecNormalize`` options; statistics are saved next to every model."""

    enabled: bool = True
    norm_obs: bool = True
    norm_reward: bool = True
    clip_obs: Annotated[float, Field(gt=0, le=1e6)] = 10.0
    clip_reward: Annotated[float, Field(gt=0, le=1e6)] = 10.0


class PolicyConfig(StrictModel):
    """The actor-critic network (``agents/networks.py``): ``mlp`` = SB3's MLP over the flat
    observation; ``candidate`` = one shared MLP scores every candidate slot (``pi`` are its
    layers), the critic is an MLP (``vf``) over the observation."""

    arch: Literal["mlp", "candidate"] = "mlp"
    pi: list[Layer] = Field(
        default_factory=lambda: [128, 128], max_length=16, description="actor layers"
    )
    vf: list[Layer] = Field(
        default_factory=lambda: [128, 128], max_length=16, description="critic layers"
    )
    activation_fn: Literal["tanh", "relu"] = "tanh"
    ortho_init: bool = True


class PPOConfig(StrictModel):
    """PPO hyperparameters (names as in SB3). ``n_steps`` is per env."""

    learning_rate: Annotated[float, Field(gt=0, le=1)] = 3e-4
    n_steps: Annotated[int, Field(gt=0, le=1_000_000)] = 512
    batch_size: Annotated[int, Field(gt=1, le=1_000_000)] = 256
    n_epochs: Annotated[int, Field(gt=0, le=1_000)] = 10
    gamma: UnitFloat = 0.99
    gae_lambda: UnitFloat = 0.95
    clip_range: Annotated[float, Field(gt=0, le=10)] = 0.2
    normalize_advantage: bool = True
    ent_coef: Annotated[float, Field(ge=0, le=10)] = 0.0
    vf_coef: Annotated[float, Field(ge=0, le=100)] = 0.5
    max_grad_norm: Annotated[float, Field(gt=0, le=1e4)] = 0.5
    target_kl: Annotated[float, Field(gt=0, le=100)] | None = None
    policy: PolicyConfig = Field(default_factory=PolicyConfig)


class EvalConfig(StrictModel):
    """Evaluation on held-out validation seeds (``millinet.envs.seeds.VALIDATION``)."""

    freq: Steps = Field(50_000, description="env steps (all envs together) between evals")
    episodes: Annotated[int, Field(gt=0, le=10_000)] = Field(
        5, description="validation episodes per evaluation"
    )
    final_episodes: Annotated[int, Field(gt=0, le=10_000)] = Field(
        10, description="held-out episodes (report seeds) for metrics.json"
    )


class CheckpointConfig(StrictModel):
    """Periodic checkpoints ``checkpoints/model_<steps>_steps.zip`` (+ VecNormalize)."""

    freq: Steps = Field(100_000, description="env steps (all envs together)")


class PretrainConfig(StrictModel):
    """Optional behaviour-cloning warm start (``agents/pretrain.py``)."""

    teacher: str | None = Field(
        None, description="heuristic to imitate before PPO (e.g. earliest-finish); null = none"
    )
    steps: Annotated[int, Field(gt=0, le=10_000_000)] = Field(
        100_000, description="teacher decisions collected"
    )
    privileged: bool = Field(
        False,
        description="the teacher reads the oracle view (exact measurements now) while the "
        "student reads the scenario's reports: imitate what full information would do",
    )
    dagger_rounds: Annotated[int, Field(ge=0, le=20)] = Field(
        0, description="then this many DAgger rounds: the student acts, the teacher labels"
    )
    dagger_steps: Annotated[int, Field(gt=0, le=10_000_000)] = Field(
        50_000, description="decisions per DAgger round"
    )
    epochs: Annotated[int, Field(gt=0, le=1_000)] = 5
    batch_size: Annotated[int, Field(gt=0, le=1_000_000)] = 1024
    learning_rate: Annotated[float, Field(gt=0, le=1)] = 1e-3
    value_coef: Annotated[float, Field(ge=0, le=100)] = 0.5


class TrainConfig(StrictModel):
    """A training run. Every field has a default; a config file sets only what it changes."""

    algo: Literal["maskppo", "ppo"] = Field(
        "maskppo", description="maskppo = sb3-contrib MaskablePPO; ppo = SB3 PPO, no masks"
    )
    tag: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]*$", max_length=32)] = Field(
        "", description="short label for run names (letters, digits, '-'), e.g. warm"
    )
    scenario: str = Field(DEFAULT_SCENARIO, description="shipped scenario name or YAML path")
    seed: Annotated[int, Field(ge=0, lt=TRAINING.stop)] = 0
    total_timesteps: Steps = 1_000_000
    time_limit_s: Annotated[float, Field(gt=0, le=1e8)] | None = Field(
        None,
        description="stop when the run's wall time (pretraining included) reaches this; "
        "the run is saved and evaluated as usual",
    )
    n_envs: Annotated[int, Field(gt=0, le=256)] = 4
    vec_env: Literal["dummy", "subproc"] = "dummy"
    torch_threads: Annotated[int, Field(gt=0, le=256)] = 1
    env: EnvConfig = Field(default_factory=EnvConfig)
    normalize: NormalizeConfig = Field(default_factory=NormalizeConfig)
    ppo: PPOConfig = Field(default_factory=PPOConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        rollout = self.ppo.n_steps * self.n_envs
        if self.ppo.batch_size > rollout:
            raise ValueError(
                f"ppo.batch_size ({self.ppo.batch_size}) exceeds the rollout size "
                f"n_steps * n_envs = {rollout}"
            )
        return self

    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``PlacementEnv``."""
        return {"scenario": self.scenario, **self.env.model_dump()}

    def flat(self) -> dict[str, bool | int | float | str]:
        """Flattened scalar view (``ppo.gamma`` ...), for TensorBoard's HParams tab."""
        out: dict[str, bool | int | float | str] = {}

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(f"{prefix}.{k}" if prefix else k, v)
            elif isinstance(value, (bool, int, float, str)):
                out[prefix] = value
            else:  # lists, None
                out[prefix] = str(value)

        walk("", self.model_dump())
        return out


def validate_train_config(data: Any, source: str) -> TrainConfig:
    """Validate plain data; the first problem becomes a :class:`ConfigError`."""
    return validate(TrainConfig, data, source, what="training config")


def check_not_empty(data: Any, source: str) -> None:
    """A training config *file* must set something: an empty one (or ``{}``) would silently
    train every default (1,000,000 steps on the default scenario)."""
    if data is None or data == {}:
        raise ConfigError(
            source,
            "",
            "the training config is empty; it would silently train every default "
            "(1,000,000 steps): set at least the keys you mean, e.g. total_timesteps",
        )


def check_resources(cfg: TrainConfig, source: str, scenarios: dict | None = None) -> None:
    """Refuse, before anything is allocated, a config that cannot run: its scenario does not
    build, its env cannot run (``check_episode``), or its rollout buffer (or behaviour-cloning
    data) would exceed :data:`MAX_BUFFER_BYTES`. ``scenarios`` caches built scenarios by name
    across calls (a sweep checks many configs)."""
    from millinet.envs.features import observation_size
    from millinet.envs.placement_env import check_episode
    from millinet.envs.scenario import load_scenario

    cache = {} if scenarios is None else scenarios
    if cfg.scenario not in cache:
        try:
            cache[cfg.scenario] = load_scenario(cfg.scenario)
        except ScenarioError as exc:
            raise ConfigError(source, "scenario", str(exc)) from None
    scenario = cache[cfg.scenario]
    check_episode(scenario, cfg.env, source, prefix="env.")
    k = scenario.network.K
    # float32 per step: observation, mask, and action/reward/value/log-prob/return/advantage/
    # episode start (SB3's rollout buffer; MaskablePPO adds the mask)
    row = 4 * (observation_size(k) + k + 7)
    budgets = [("ppo.n_steps", cfg.ppo.n_steps * cfg.n_envs, "a rollout of n_steps x n_envs")]
    if cfg.pretrain.teacher:
        budgets.append(("pretrain.steps", cfg.pretrain.steps, "behaviour cloning of"))
    for field, steps, what in budgets:
        need = steps * row
        if need > MAX_BUFFER_BYTES:
            raise ConfigError(
                source,
                field,
                f"{what} {steps:,} steps needs ~{need / 2**30:.1f} GiB of buffer (K = {k}); "
                f"the limit is {MAX_BUFFER_BYTES / 2**30:.0f} GiB",
            )


def load_train_config(
    path: str | Path, settings: list[str] | tuple[str, ...] = (), **overrides: Any
) -> TrainConfig:
    """Read and validate a YAML training config.

    ``overrides`` (top-level keys, None ignored) replace values from the file, then each of
    ``settings`` (``"ppo.ent_coef=0.01"``: a dotted key and a YAML value, as ``millinet train
    --set`` takes them) is applied, all before validation, so an override is checked like the
    file itself."""
    path = Path(path)
    data = read_yaml(path)
    check_not_empty(data, str(path))
    if isinstance(data, dict):
        data.update({k: v for k, v in overrides.items() if v is not None})
        for setting in settings:
            _apply_setting(data, setting, str(path))
    cfg = validate_train_config(data, str(path))
    _check_teacher(cfg, str(path))
    check_resources(cfg, str(path))
    return cfg


class DottedKeyError(ValueError):
    """A dotted key runs through a value that is not a mapping; ``prefix`` is that value's key."""

    def __init__(self, prefix: str) -> None:
        super().__init__(f"{prefix} is not a mapping")
        self.prefix = prefix


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """``data[a][b][c] = value`` for ``key = "a.b.c"``. Missing (or null) levels are created;
    an existing level that is not a mapping raises :class:`DottedKeyError` naming it."""
    *parents, leaf = key.split(".")
    node = data
    for i, part in enumerate(parents):
        if node.get(part) is None:
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            raise DottedKeyError(".".join(parents[: i + 1]))
    node[leaf] = value


def _apply_setting(data: dict, setting: str, source: str) -> None:
    """Set ``data[a][b]... = value`` from ``"a.b=value"`` (the value parsed as YAML)."""
    key, sep, text = setting.partition("=")
    if not sep or not key.strip():
        raise ConfigError(source, "--set", f"expected KEY=VALUE, got {setting!r}")
    value = parse_yaml_text(text, f"{source}: --set {key.strip()}")
    try:
        set_dotted(data, key.strip(), value)
    except DottedKeyError as exc:
        raise ConfigError(source, exc.prefix, f"--set {key}: {exc}") from None


def _check_teacher(cfg: TrainConfig, source: str) -> None:
    """``pretrain.teacher`` must name a heuristic that this install has."""
    name = cfg.pretrain.teacher
    if name is None:
        return
    from millinet.agents.heuristics import HEURISTICS

    known = list(HEURISTICS)
    if name not in known:
        raise ConfigError(
            source, "pretrain.teacher", f"unknown heuristic {name!r}; known: {', '.join(known)}"
        )

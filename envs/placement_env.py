"""``millinet/Placement-v0``: place and route one arriving task per step.

* **Step** = one arriving task of an agent-decided class. Between two decisions the engine
  advances; arrivals of other classes (``agent_classes``) are placed by ``background_policy``.
* **Action** ``Discrete(K)``: a candidate (compute site, path) slot, ordered as in
  ``envs/network.py`` (nearest site first, then its paths by latency).
* **Mask** ``action_masks()``: bool (K,), False for empty slots and candidates through a failed
  element. A masked action is not an error: the task is rejected, counted as dropped (a
  violation) and ``info["rejected"]`` is True.
* **Observation**: ``millinet.envs.features.featurize`` of the task and per-candidate telemetry,
  float32 of size 7 + 19 K, independent of the city's size.
* **Reward** of a step = ``violation`` + ``latency`` terms over the tasks that *finished* since
  the previous step (a task's outcome is known only after its latency has elapsed):
  ``violation = -sum(class weight * [late or dropped])`` over all classes, background included,
  and ``latency = -latency_coef * sum(min(latency / deadline, 2))`` over completed tasks. At the
  horizon the episode is truncated and every task still in flight is drained into the last
  reward, so an episode's rewards add up exactly to its weighted violations (plus the latency
  term). See the README for how this credit reaches the decision that caused it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

import gymnasium as gym
import numpy as np
from pydantic import AfterValidator, Field, field_validator

from millinet.envs.config import CLASS_NAMES, ScenarioConfig
from millinet.envs.engine import DROPPED, Arrival, Engine
from millinet.envs.errors import ActionError, ConfigError
from millinet.envs.features import (
    FEATURE_CLIP,
    TELEMETRY_FIELDS,
    featurize_rows,
    observation_size,
)
from millinet.envs.metrics import summarize
from millinet.envs.scenario import DEFAULT_SCENARIO, MAX_TASKS, Scenario, load_scenario
from millinet.envs.seeds import ENV_ENGINE_SEEDS
from millinet.envs.simulation import nearest_slot
from millinet.envs.validation import Integer, StrictModel, validate
from millinet.envs.workload import WorkloadEndedError

_ClassName = Literal["robot_sync", "agv_dispatch", "vision_qa"]  # = CLASS_NAMES


def _known_class(name: str) -> str:
    if name not in CLASS_NAMES:
        raise ValueError(f"unknown agent_classes entry {name!r}; known: {list(CLASS_NAMES)}")
    return name


class EnvConfig(StrictModel):
    """The environment's parameters, declared once: ``PlacementEnv(**kwargs)`` validates its
    keyword arguments with this model, and the training config's ``env:`` section *is* this
    model. (The scenario and ``background_policy`` are objects, not config values.)"""

    horizon: Annotated[Integer, Field(gt=0, le=10_000_000)] = Field(
        2048, description="decisions per episode (then truncated)"
    )
    agent_classes: list[Annotated[str, AfterValidator(_known_class)]] = Field(
        default_factory=lambda: list(CLASS_NAMES),
        min_length=1,
        description="classes the agent decides; the others are placed by background_policy",
    )
    reward_weights: dict[_ClassName, Annotated[float, Field(gt=0, le=1e6)]] | None = Field(
        None, description="violation weight per class; null = the scenario's class weights"
    )
    latency_coef: Annotated[float, Field(ge=0, le=1e3)] = Field(
        0.01, description="weight of the latency/deadline term per completed task"
    )

    @field_validator("agent_classes", mode="before")
    @classmethod
    def _all_when_none(cls, value: Any) -> Any:
        return list(CLASS_NAMES) if value is None else value

    @field_validator("agent_classes")
    @classmethod
    def _once(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"a class is listed twice: {value}")
        return value


def check_episode(scenario: Scenario, config: EnvConfig, source: str, prefix: str = "") -> None:
    """Refuse an env that cannot run: no arrival of an agent class ever comes (an episode
    would wait forever), or an episode of ``horizon`` decisions would hold more than
    ``MAX_TASKS`` task records. ``prefix`` is the env section's key in a file (``env.``)."""
    rates = scenario.arrival_rates
    decided = sum(r for name, r in zip(CLASS_NAMES, rates) if name in config.agent_classes)
    if decided <= 0:
        raise ConfigError(
            source,
            f"{prefix}agent_classes",
            f"scenario {scenario.name!r} has no {'/'.join(config.agent_classes)} arrivals: "
            "an episode would never reach a decision",
        )
    tasks = config.horizon * sum(rates) / decided
    if tasks > MAX_TASKS:
        raise ConfigError(
            source,
            f"{prefix}horizon",
            f"{config.horizon:,} decisions on {scenario.name!r} mean up to {tasks:,.3g} tasks "
            f"per episode (background classes included); an episode keeps at most "
            f"{MAX_TASKS:,}",
        )


def default_config() -> dict[str, Any]:
    """Keyword defaults of :class:`PlacementEnv` (units in :class:`EnvConfig`'s descriptions)."""
    return {
        "scenario": DEFAULT_SCENARIO,  # shipped name, YAML path, dict or ScenarioConfig
        "background_policy": "nearest",  # "nearest" or a callable (engine, arrival) -> slot
        **EnvConfig().model_dump(),
    }


class PlacementEnv(gym.Env):
    """Per-task placement and routing on a millinet scenario (see module docstring).

    Keyword arguments: ``scenario``, ``background_policy``, ``render_mode`` and the fields of
    :class:`EnvConfig` (``horizon``, ``agent_classes``, ``reward_weights``, ``latency_coef``);
    a bad value raises :class:`~millinet.envs.errors.ConfigError` (a ``ValueError``) naming it.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 10}

    def __init__(
        self,
        scenario: str | dict | ScenarioConfig | Scenario = DEFAULT_SCENARIO,
        background_policy: str | Callable[[Engine, Arrival], int] = "nearest",
        render_mode: str | None = None,
        **config: Any,
    ) -> None:
        self.scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        self.config = validate(EnvConfig, config, "PlacementEnv", what="keyword mapping")
        check_episode(self.scenario, self.config, "PlacementEnv")
        if render_mode not in (None, *self.metadata["render_modes"]):
            # TypeError, not ValueError, as Gymnasium envs do for an unknown keyword. SB3's
            # make_vec_env asks for "rgb_array" by default, so "rgb_array" must not need
            # matplotlib here: the renderer (the 'render' extra) is made at the first render().
            raise TypeError(f"render_mode must be None, 'ansi' or 'rgb_array', got {render_mode!r}")
        if background_policy == "nearest":
            background_policy = nearest_slot
        elif not callable(background_policy):
            raise ValueError("background_policy must be 'nearest' or a callable")
        self.horizon = self.config.horizon
        self.render_mode = render_mode
        self.latency_coef = self.config.latency_coef
        self._agent_cls = [name in self.config.agent_classes for name in CLASS_NAMES]
        self._background = background_policy
        weights = {n: c.weight for n, c in zip(CLASS_NAMES, self.scenario.classes)}
        weights.update(self.config.reward_weights or {})
        self._weight = [weights[n] for n in CLASS_NAMES]
        self.K = self.scenario.network.K
        self.action_space = gym.spaces.Discrete(self.K)
        self.observation_space = gym.spaces.Box(
            0.0, FEATURE_CLIP, shape=(observation_size(self.K),), dtype=np.float32
        )
        self.engine = Engine(self.scenario, seed=0)
        self._arrival: Arrival | None = None
        self._obs: np.ndarray | None = None
        self._last_decision: tuple[Arrival, int] | None = None  # drawn by render()
        self._renderer = None  # millinet.envs.render.CityRenderer, made at the first frame

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.engine.reset(int(self.np_random.integers(ENV_ENGINE_SEEDS)))
        self._decisions = 0
        self._harvested = 0
        self._last_decision = None
        self._arrival = self._next_decision()
        return self._obs, {"sim_time_s": self.engine.now}

    def step(self, action):
        if self._arrival is None:
            raise RuntimeError("call reset() before step()")
        arrival = self._arrival
        slot = self._slot(action)
        accepted = self.engine.dispatch(arrival, slot)
        self._last_decision = (arrival, slot)
        self._decisions += 1
        truncated = self._decisions >= self.horizon
        if not truncated:
            try:
                self._arrival = self._next_decision()
            except WorkloadEndedError:  # a trace without loop has no more tasks
                truncated = True
        if truncated:
            self.engine.drain()
            self._arrival = None  # stepping again needs reset(): never dispatch a task twice
        violation, latency = self._harvest()
        reward = violation + latency
        # Kept small on purpose: SB3's DummyVecEnv deep-copies every info dict on every step.
        info: dict[str, Any] = {
            "reward_terms": {"violation": violation, "latency": latency},
            "rejected": not accepted,
        }
        if truncated:
            metrics = summarize(self.engine.record_array(), self.scenario.classes)
            info["episode_metrics"] = metrics
            info["violation_rate_1ms"] = metrics["violation_rate_1ms"]
        return self._obs, float(reward), False, truncated, info

    def oracle_observation(self) -> np.ndarray:
        """The pending task's observation under the oracle view (exact measurements now),
        whatever the scenario's telemetry: what a privileged teacher reads. Zeros when no task
        is pending."""
        if self._arrival is None:
            return np.zeros(self.observation_space.shape, dtype=np.float32)
        engine = self.engine
        rows = engine.telemetry_rows(self._arrival, oracle=True)
        return featurize_rows(engine.task_row(self._arrival), rows)

    def action_masks(self) -> np.ndarray:
        """Feasible actions for the pending task: bool array of shape (K,)."""
        if self._arrival is None:
            return np.ones(self.K, dtype=bool)
        return self.engine.mask(self._arrival).copy()

    def render(self) -> str | np.ndarray | None:
        """``"ansi"``: a text view. ``"rgb_array"``: the city map (``envs/render.py``) as uint8
        (720, 960, 3): link utilisation, site queues, the pending task's candidates, the last
        decision, the clock and the violations so far."""
        if self.render_mode == "ansi":
            return render_text(self)
        if self.render_mode == "rgb_array":
            if self._renderer is None:
                from millinet.envs.render import CityRenderer

                self._renderer = CityRenderer(self.scenario)
            return self._renderer.frame(
                self.engine, self._arrival, self._last_decision, self._decisions
            )
        return None

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        super().close()

    # ------------------------------------------------------------------ internals
    def _slot(self, action: Any) -> int:
        """``action`` as a slot index: an integer (Python, numpy, or a 0-d integer array) in
        ``0..K-1``; anything else is an :class:`ActionError`. (A masked slot is not an error:
        the engine rejects the task.)"""
        if (
            isinstance(action, (int, np.integer))
            and not isinstance(action, (bool, np.bool_))
            or isinstance(action, np.ndarray)
            and action.shape == ()
            and action.dtype.kind in "iu"
        ):
            slot = int(action)
        else:
            raise ActionError(f"action {action!r} is not an integer slot of Discrete({self.K})")
        if not 0 <= slot < self.K:
            raise ActionError(f"action {slot} is outside the slots 0..{self.K - 1}")
        return slot

    def _next_decision(self) -> Arrival:
        """Place background arrivals until one of an agent class arrives; featurise it."""
        engine = self.engine
        while True:
            arrival = engine.next_arrival()
            if self._agent_cls[arrival.cls]:
                break
            engine.dispatch(arrival, self._background(engine, arrival))
        self._obs = featurize_rows(engine.task_row(arrival), engine.telemetry_rows(arrival))
        return arrival

    def _harvest(self) -> tuple[float, float]:
        """Reward terms of the tasks finished since the last harvest."""
        records = self.engine.records
        new = records[self._harvested :]
        self._harvested = len(records)
        violation = 0.0
        latency = 0.0
        deadline = self.engine.deadline_s
        for rec in new:
            cls, lat, status = rec[1], rec[6], rec[12]
            if status:  # late or dropped
                violation -= self._weight[cls]
            if status != DROPPED:
                latency -= min(lat / deadline[cls], 2.0)
        return violation, self.latency_coef * latency


def render_text(env: PlacementEnv) -> str:
    """Short text view: the pending task, its candidates' queues, violations so far."""
    engine, arrival = env.engine, env._arrival
    lines = [f"t = {engine.now * 1e3:9.3f} ms   decisions {env._decisions}/{env.horizon}"]
    rec = engine.record_array()
    for c, name in enumerate(CLASS_NAMES):
        sel = rec["status"][rec["cls"] == c]
        lines.append(f"  {name:<13} finished {sel.size:>7}  violations {(sel > 0).sum():>6}")
    if arrival is not None:
        nodes = engine.net.topology.nodes
        lines.append(
            f"pending: {CLASS_NAMES[arrival.cls]} from "
            f"{env.scenario.factory_names[arrival.factory]}"
        )
        tel = engine.telemetry(arrival)
        for k, cand in enumerate(engine.candidates(arrival).slots):
            if cand is None:
                continue
            row = dict(zip(TELEMETRY_FIELDS, tel[k].tolist()))
            ok = "ok " if row["valid"] else "-- "
            lines.append(
                f"  [{k}] {ok}{nodes[cand.site].name:<22} rtt {row['base_rtt_us']:7.1f}us  "
                f"link backlog {row['up_backlog_us'] + row['down_backlog_us']:8.1f}us  "
                f"busy {row['busy_servers']:.0f}/{row['servers']:.0f} "
                f"queued {row['queued_tasks']:.0f}  report age {row['report_age_us']:7.1f}us  "
                f"own {row['own_dispatches']:.0f}"
            )
    return "\n".join(lines)

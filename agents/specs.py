"""Policy specs: the one place that turns a ``--policy`` string into a policy.

A policy *spec* is one of

* a heuristic name (``millinet.agents.heuristics.HEURISTICS``: random, nearest, least-loaded,
  shortest-queue, earliest-finish, deadline-aware, earliest-finish-own, power-of-d);
* a *tuned-heuristic file* (``.yaml``/``.yml``): a heuristic with parameters, as
  ``millinet sweep`` writes it after tuning on validation seeds (:class:`TunedHeuristic`)::

      heuristic: deadline-aware
      params: {margin: 0.3, tight_deadline_us: 2000.0, own_correction: false}
      tuned_on: suite main, validation seeds ...      # optional provenance
      objective: {violation_rate_1ms: 0.0012}          # optional: what it scored there
      source: millinet sweep --config ...              # optional: what made it

* an exported policy folder (holds ``manifest.json``), loaded by
  ``millinet.scheduler.runtime.load_policy_folder`` (needs the ``serve`` or ``export`` extra);
* a trained run folder (``config.yaml`` and ``checkpoints/`` or ``best/``), loaded by
  ``millinet.agents.inference.load_run_policy`` (needs the ``train`` extra): its ``best`` model,
  or ``RUN_DIR@CHECKPOINT`` for another one (``@last``, ``@pretrained`` or ``@<steps>``).

Every command (``simulate``, ``evaluate``, ``benchmark``, heuristic sweeps) goes through
:func:`load_policy`;
:class:`PolicyChooser` adapts a policy to the simulator's ``choose(engine, arrival)``. This
module imports neither torch nor onnxruntime: a loader is imported only for its kind of spec.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, StrictBool, StrictFloat, StrictInt, field_validator

from millinet.agents.heuristics import HEURISTICS, check_params, knobs, make_heuristic
from millinet.agents.policy import Policy
from millinet.envs.config import CLASS_NAMES
from millinet.envs.engine import Arrival, Engine
from millinet.envs.errors import ConfigError, MillinetError, require_extra
from millinet.envs.features import featurize_rows
from millinet.envs.scenario import Scenario
from millinet.envs.simulation import Chooser, nearest_slot
from millinet.envs.validation import StrictModel, read_yaml, validate

POLICY_HELP = (
    f"a heuristic ({', '.join(HEURISTICS)}), a tuned-heuristic file (heuristic.yaml: a "
    "heuristic with parameters, as millinet sweep writes it), a trained run folder "
    "(runs/<name>: its best model; runs/<name>@last, @pretrained or @<steps> for another "
    "checkpoint) or an exported policy folder (holds manifest.json)"
)
TUNED_SUFFIXES = (".yaml", ".yml")


class PolicySpecError(MillinetError):
    """A policy spec names nothing usable; the message says what and lists the options."""


class TunedHeuristicError(ConfigError):
    """A tuned-heuristic file is invalid: ``file: field: reason``."""


def _known() -> str:
    return (
        f"known heuristics: {', '.join(HEURISTICS)}; or a tuned-heuristic .yaml file, a "
        "trained run or an exported policy folder"
    )


# --------------------------------------------------------------------------- tuned heuristics
class TunedHeuristic(StrictModel):
    """A heuristic with its parameters (a tuned-heuristic file; module docstring)."""

    heuristic: str = Field(description="a name of millinet.agents.heuristics.HEURISTICS")
    params: dict[str, StrictBool | StrictInt | StrictFloat] = Field(
        default_factory=dict, description="knob -> value; knobs left out keep their defaults"
    )
    tuned_on: str | None = Field(None, description="where it was tuned (suite, seeds)")
    objective: dict[str, float] | None = Field(
        None, description="metric -> value it scored where it was tuned"
    )
    source: str | None = Field(None, description="the command or sweep that made it")

    @field_validator("heuristic")
    @classmethod
    def _known_heuristic(cls, name: str) -> str:
        if name not in HEURISTICS:
            close = difflib.get_close_matches(name, list(HEURISTICS), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"unknown heuristic {name!r}; {hint}known: {', '.join(HEURISTICS)}")
        return name

    def all_params(self) -> dict[str, Any]:
        """Every knob of the heuristic: the file's values, defaults for the rest."""
        return {k: self.params.get(k, default) for k, (_, default) in knobs(self.heuristic).items()}

    def describe(self) -> str:
        """``name k=v ...`` with every knob (``name`` alone for a rule without knobs)."""
        values = self.all_params().items()
        return " ".join([self.heuristic, *(f"{k}={_short(v)}" for k, v in values)])


def _short(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def is_tuned_heuristic_spec(spec: str) -> bool:
    """Whether ``spec`` names a tuned-heuristic file (by its suffix)."""
    return Path(spec).suffix.lower() in TUNED_SUFFIXES


def load_tuned_heuristic(path: str | Path) -> TunedHeuristic:
    """Read and validate a tuned-heuristic file; :class:`TunedHeuristicError` (one line naming
    the file, the field and the reason) for a missing or bad file."""
    source = str(path)
    data = read_yaml(path, TunedHeuristicError)
    tuned = validate(TunedHeuristic, data, source, TunedHeuristicError, "tuned-heuristic file")
    for key in tuned.params:  # each knob alone first, so the message names it
        try:
            check_params(tuned.heuristic, {key: tuned.params[key]})
        except ValueError as exc:
            raise TunedHeuristicError(source, f"params.{key}", str(exc)) from None
    try:
        check_params(tuned.heuristic, tuned.params)
    except ValueError as exc:
        raise TunedHeuristicError(source, "params", str(exc)) from None
    return tuned


def describe_policy(spec: str) -> str:
    """The parameters a policy spec runs with, for tables: ``deadline-aware margin=0.5 ...``
    for a heuristic name or a tuned file (every knob, defaults filled in), else the spec."""
    if spec in HEURISTICS:
        return TunedHeuristic(heuristic=spec).describe()
    if is_tuned_heuristic_spec(spec):
        return load_tuned_heuristic(spec).describe()
    return spec


def split_checkpoint(spec: str) -> tuple[str, str | None]:
    """``"runs/x@last"`` -> ``("runs/x", "last")``. A spec without an ``@`` suffix, or that
    names an existing path as a whole (a folder with '@' in its name), is kept whole."""
    head, sep, tail = spec.rpartition("@")
    if not sep or not head or any(c in tail for c in "/\\") or Path(spec).expanduser().exists():
        return spec, None
    return head, tail


def policy_fingerprint(spec: str) -> str:
    """What ``spec`` loads, as a string that changes when the policy does (cached results of
    a spec are reused only while it stays the same): for a heuristic name or a tuned file, the
    heuristic and every parameter (defaults filled in; not the file's provenance), so a tuned
    file that holds the defaults is the heuristic itself; for a folder (trained run, exported
    policy), a digest of its files' names, sizes and modification times (TensorBoard
    events left out) with the checkpoint suffix. A bad tuned file raises
    :class:`TunedHeuristicError`; a missing folder gives a placeholder (:func:`load_policy`
    says what is wrong with it)."""
    import hashlib
    import json

    if spec in HEURISTICS or is_tuned_heuristic_spec(spec):
        tuned = TunedHeuristic(heuristic=spec) if spec in HEURISTICS else load_tuned_heuristic(spec)
        return "heuristic:" + json.dumps([tuned.heuristic, tuned.all_params()], sort_keys=True)
    folder, checkpoint = split_checkpoint(spec)
    path = Path(folder).expanduser()
    if not path.is_dir():
        return f"missing:{spec}"  # load_policy says what is wrong with it
    digest = hashlib.sha256()
    for f in sorted(path.rglob("*")):
        rel = f.relative_to(path)
        if f.is_file() and rel.parts[0] != "tb":
            st = f.stat()
            digest.update(f"{rel.as_posix()}:{st.st_size}:{st.st_mtime_ns};".encode())
    return f"folder:{digest.hexdigest()[:16]}@{checkpoint or ''}"


def load_policy(spec: str, scenario: Scenario, seed: int = 0) -> Policy:
    """The policy named by ``spec`` for ``scenario`` (see the module docstring).

    ``seed`` seeds stochastic heuristics (``random``, ``power-of-d``); trained and exported
    policies act deterministically and ignore it. Raises a one-line
    :class:`~millinet.envs.errors.MillinetError`: :class:`TunedHeuristicError` for a bad
    tuned-heuristic file, :class:`PolicySpecError` for an unknown name,
    a missing folder, a folder of neither kind or a policy built for another K;
    ``MissingExtraError`` when the loader's extra is not installed; the loader's own error
    (``CheckpointError``, ``PolicyFolderError``) naming a missing or broken file.
    """
    if spec in HEURISTICS:
        return make_heuristic(spec, seed=seed)
    if is_tuned_heuristic_spec(spec):
        tuned = load_tuned_heuristic(spec)
        return make_heuristic(tuned.heuristic, seed=seed, **tuned.params)
    policy = _load_folder_policy(spec)
    k = getattr(policy, "K", None)
    if k is not None and int(k) != scenario.network.K:
        raise PolicySpecError(
            f"policy {spec!r} was built for K = {k} candidates; scenario {scenario.name!r} "
            f"has K = {scenario.network.K}"
        )
    return policy


_FOLDER_POLICIES: dict[tuple[str, str], Policy] = {}


def _load_folder_policy(spec: str) -> Policy:
    """The trained or exported policy of a folder spec, loaded once per process while the
    folder stays the same (:func:`policy_fingerprint`): they act deterministically and keep no
    state between decisions, so the episodes of an evaluation share one (loading a model
    costs far more than a short episode)."""
    key = (spec, policy_fingerprint(spec))
    if key not in _FOLDER_POLICIES:
        if len(_FOLDER_POLICIES) >= 8:
            _FOLDER_POLICIES.clear()
        _FOLDER_POLICIES[key] = _read_folder_policy(spec)
    return _FOLDER_POLICIES[key]


def _read_folder_policy(spec: str) -> Policy:
    spec, checkpoint = split_checkpoint(spec)
    path = Path(spec).expanduser()
    looks_like_path = any(sep in spec for sep in ("/", "\\")) or spec.startswith(".")
    if not path.exists():
        what = "policy folder not found" if looks_like_path else "unknown policy"
        raise PolicySpecError(f"{what} {spec!r}; {_known()}")
    if not path.is_dir():
        raise PolicySpecError(f"policy {spec!r} is a file, not a folder; {_known()}")
    if (path / "manifest.json").is_file():
        if checkpoint is not None:
            raise PolicySpecError(
                f"{spec!r} is an exported policy (one model): '@{checkpoint}' selects a "
                "checkpoint of a trained run only"
            )
        require_extra("serve", f"the exported policy {spec!r}")
        from millinet.scheduler.runtime import load_policy_folder

        policy = load_policy_folder(path)
    elif (path / "config.yaml").is_file() and (
        (path / "checkpoints").is_dir() or (path / "best").is_dir()
    ):
        require_extra("train", f"the trained run {spec!r}")
        from millinet.agents.inference import load_run_policy

        policy = load_run_policy(path, checkpoint or "best")
    else:
        raise PolicySpecError(
            f"{spec!r} is neither an exported policy (no manifest.json) nor a trained run "
            f"(needs config.yaml and checkpoints/ or best/); {_known()}"
        )
    return policy


class PolicyChooser:
    """Adapts a :class:`Policy` to the simulator's ``choose(engine, arrival) -> slot``.

    Per arrival it builds exactly the observation the environment would
    (``featurize_rows(engine.task_row(a), engine.telemetry_rows(a))``) and passes a copy of
    ``engine.mask(a)``. If the policy has an ``agent_classes`` attribute (a trained run that
    decided only some classes), tasks of the other classes go to ``background`` instead, as in
    the environment it was trained in.
    """

    def __init__(self, policy: Policy, background: Chooser = nearest_slot) -> None:
        self.policy = policy
        self.background = background
        classes = getattr(policy, "agent_classes", None) or CLASS_NAMES
        self._decides = [name in classes for name in CLASS_NAMES]

    def __call__(self, engine: Engine, arrival: Arrival) -> int:
        if not self._decides[arrival.cls]:
            return self.background(engine, arrival)
        obs = featurize_rows(engine.task_row(arrival), engine.telemetry_rows(arrival))
        mask = np.array(engine.mask(arrival), dtype=bool)  # a copy: the engine caches its mask
        return int(self.policy.act(obs, mask))


def chooser_for(spec: str, scenario: Scenario, seed: int = 0) -> Chooser:
    """A ``choose(engine, arrival) -> slot`` callable for the policy ``spec``.

    ``nearest`` uses the engine-native ``nearest_slot`` (same choices, no featurisation);
    everything else goes through :func:`load_policy` and :class:`PolicyChooser`."""
    if spec == "nearest":
        return nearest_slot
    return PolicyChooser(load_policy(spec, scenario, seed=seed))

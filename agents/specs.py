"""Resolve a ``--policy`` argument into a :class:`millinet.agents.policy.Policy` or a simulator
chooser.

A policy *spec* is one of

* a heuristic name (``millinet.agents.heuristics.HEURISTICS``: random, nearest, least-loaded,
  shortest-queue, earliest-finish, deadline-aware);
* an exported policy folder (holds ``manifest.json``), loaded by
  ``millinet.scheduler.runtime.load_policy_folder``;
* a trained run folder (holds ``config.yaml`` and ``checkpoints/`` or ``best/``), loaded by
  ``millinet.agents.ppo.load_run_policy``: its ``best`` model, or ``RUN_DIR@CHECKPOINT`` for another
  one (``@last``, ``@pretrained`` or ``@<steps>``, e.g. ``runs/x@last``).

``load_policy`` is the one place that decides; every command (``simulate``, ``evaluate``) goes
through it. ``chooser_for`` adapts a policy to the simulator's ``choose(engine, arrival)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from millinet.agents.heuristics import HEURISTICS, make_heuristic
from millinet.agents.policy import Policy
from millinet.envs.config import CLASS_NAMES
from millinet.envs.engine import Arrival, Engine
from millinet.envs.features import featurize_rows
from millinet.envs.scenario import Scenario
from millinet.envs.simulation import Chooser, nearest_slot
from millinet.experiments.errors import UserError

POLICY_HELP = (
    f"a heuristic ({', '.join(HEURISTICS)}), a trained run folder (runs/<name>: its best "
    "model; runs/<name>@last, @pretrained or @<steps> for another checkpoint) or an exported "
    "policy folder (holds manifest.json)"
)


def _known() -> str:
    return f"known heuristics: {', '.join(HEURISTICS)}; or a trained run / exported policy folder"


def load_policy(spec: str, scenario: Scenario, seed: int = 0) -> Policy:
    """The policy named by ``spec`` for ``scenario`` (see the module docstring).

    ``seed`` seeds stochastic heuristics (``random``); trained and exported policies act
    deterministically and ignore it. Raises ``millinet.experiments.errors.UserError`` (one line) for
    an unknown name, a missing folder, a folder of neither kind, a loader that is not installed,
    or a policy built for a different number of candidates K.
    """
    if spec in HEURISTICS:
        return make_heuristic(spec, seed=seed)
    spec, checkpoint = _split_checkpoint(spec)
    path = Path(spec).expanduser()
    looks_like_path = any(sep in spec for sep in ("/", "\\")) or spec.startswith(".")
    if not path.exists():
        what = "policy folder not found" if looks_like_path else "unknown policy"
        raise UserError(f"{what} {spec!r}; {_known()}")
    if not path.is_dir():
        raise UserError(f"policy {spec!r} is a file, not a folder; {_known()}")
    if (path / "manifest.json").is_file():
        if checkpoint is not None:
            raise UserError(
                f"{spec!r} is an exported policy (one model): '@{checkpoint}' selects a "
                "checkpoint of a trained run only"
            )
        policy = _load_exported(path)
    elif (path / "config.yaml").is_file() and (
        (path / "checkpoints").is_dir() or (path / "best").is_dir()
    ):
        policy = _load_run(path, checkpoint or "best")
    else:
        raise UserError(
            f"{spec!r} is neither an exported policy (no manifest.json) nor a trained run "
            f"(needs config.yaml and checkpoints/ or best/); {_known()}"
        )
    k = getattr(policy, "K", None)
    if k is not None and int(k) != scenario.network.K:
        raise UserError(
            f"policy {spec!r} was built for K = {k} candidates; scenario {scenario.name!r} "
            f"has K = {scenario.network.K}"
        )
    return policy


def _load_exported(path: Path) -> Policy:
    try:
        from millinet.scheduler.manifest import PolicyFolderError
        from millinet.scheduler.runtime import load_policy_folder
    except ImportError as exc:
        raise UserError(
            f"exported policies are not available in this install "
            f"(millinet.scheduler.runtime.load_policy_folder: {exc})"
        ) from None
    try:
        return load_policy_folder(path)
    except PolicyFolderError as exc:  # names the file and the reason
        raise UserError(str(exc)) from None


def _split_checkpoint(spec: str) -> tuple[str, str | None]:
    """``"runs/x@last"`` -> ``("runs/x", "last")``. A spec without an ``@`` suffix, or that
    names an existing path as a whole (a folder with '@' in its name), is kept whole."""
    head, sep, tail = spec.rpartition("@")
    if not sep or not head or any(c in tail for c in "/\\") or Path(spec).expanduser().exists():
        return spec, None
    return head, tail


def _load_run(path: Path, checkpoint: str) -> Policy:
    try:
        from millinet.agents.ppo import CHECKPOINTS, is_checkpoint_name, load_run_policy
    except ImportError as exc:
        raise UserError(
            "trained runs are not available in this install "
            f"(millinet.agents.ppo.load_run_policy: {exc})"
        ) from None
    if not is_checkpoint_name(checkpoint):
        raise UserError(
            f"{path}@{checkpoint}: unknown checkpoint {checkpoint!r}; use "
            f"{', '.join('@' + c for c in CHECKPOINTS)} or @<steps>"
        )
    return load_run_policy(path, checkpoint)  # CheckpointError names a missing/broken file


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

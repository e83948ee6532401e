"""Policy specs: the one place that turns a ``--policy`` string into a policy.

A policy *spec* is one of

* a heuristic name (``millinet.agents.heuristics.HEURISTICS``: random, nearest, least-loaded,
  shortest-queue, earliest-finish, deadline-aware);
* an exported policy folder (holds ``manifest.json``), loaded by
  ``millinet.scheduler.runtime.load_policy_folder`` (needs the ``serve`` or ``export`` extra);
* a trained run folder (``config.yaml`` and ``checkpoints/`` or ``best/``), loaded by
  ``millinet.agents.inference.load_run_policy`` (needs the ``train`` extra): its ``best`` model,
  or ``RUN_DIR@CHECKPOINT`` for another one (``@last``, ``@pretrained`` or ``@<steps>``).

Every command (``simulate``, ``evaluate``, ``benchmark``) goes through :func:`load_policy`;
:class:`PolicyChooser` adapts a policy to the simulator's ``choose(engine, arrival)``. This
module imports neither torch nor onnxruntime: a loader is imported only for its kind of spec.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from millinet.agents.heuristics import HEURISTICS, make_heuristic
from millinet.agents.policy import Policy
from millinet.envs.config import CLASS_NAMES
from millinet.envs.engine import Arrival, Engine
from millinet.envs.errors import MillinetError, require_extra
from millinet.envs.features import featurize_rows
from millinet.envs.scenario import Scenario
from millinet.envs.simulation import Chooser, nearest_slot

POLICY_HELP = (
    f"a heuristic ({', '.join(HEURISTICS)}), a trained run folder (runs/<name>: its best "
    "model; runs/<name>@last, @pretrained or @<steps> for another checkpoint) or an exported "
    "policy folder (holds manifest.json)"
)


class PolicySpecError(MillinetError):
    """A policy spec names nothing usable; the message says what and lists the options."""


def _known() -> str:
    return f"known heuristics: {', '.join(HEURISTICS)}; or a trained run / exported policy folder"


def split_checkpoint(spec: str) -> tuple[str, str | None]:
    """``"runs/x@last"`` -> ``("runs/x", "last")``. A spec without an ``@`` suffix, or that
    names an existing path as a whole (a folder with '@' in its name), is kept whole."""
    head, sep, tail = spec.rpartition("@")
    if not sep or not head or any(c in tail for c in "/\\") or Path(spec).expanduser().exists():
        return spec, None
    return head, tail


def load_policy(spec: str, scenario: Scenario, seed: int = 0) -> Policy:
    """The policy named by ``spec`` for ``scenario`` (see the module docstring).

    ``seed`` seeds stochastic heuristics (``random``); trained and exported policies act
    deterministically and ignore it. Raises a one-line
    :class:`~millinet.envs.errors.MillinetError`: :class:`PolicySpecError` for an unknown name,
    a missing folder, a folder of neither kind or a policy built for another K;
    ``MissingExtraError`` when the loader's extra is not installed; the loader's own error
    (``CheckpointError``, ``PolicyFolderError``) naming a missing or broken file.
    """
    if spec in HEURISTICS:
        return make_heuristic(spec, seed=seed)
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
    k = getattr(policy, "K", None)
    if k is not None and int(k) != scenario.network.K:
        raise PolicySpecError(
            f"policy {spec!r} was built for K = {k} candidates; scenario {scenario.name!r} "
            f"has K = {scenario.network.K}"
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

"""Load an exported policy folder and decide placements with numpy and onnxruntime only.

Nothing here imports torch, gymnasium or the simulator engine: observations come from the
shared featuriser ``millinet.envs.features.featurize``, the graph from ``policy.onnx`` (format in
``scheduler/manifest.py``).

>>> policy = load_policy_folder("exported/my-run")          # refuses bad folders, see below
>>> d = policy.decide(task, telemetry)                       # task (5,), telemetry (K, 16)
>>> d.slot, d.score
>>> policy.act(observation, mask)                             # the millinet.agents.policy.Policy
protocol

``load_policy_folder`` raises :class:`PolicyFolderError` (one line naming the file and the
reason) when a file is missing, a manifest field has the wrong type, the manifest's format or
featuriser version is unknown, the model's checksum does not match the manifest, or the
graph's signature is not the declared one.

**The model is never trusted.** Every answer of the graph is checked before it is used: an
action outside ``0..K-1``, an action on a masked (infeasible) candidate, a NaN or infinite
score, outputs of the wrong shape or a graph that fails at inference make the decision fall
back to the nearest feasible candidate (the ``nearest`` rule), with ``decided_by="fallback"``
and the reason in ``Decision.fallback`` (one of :data:`FALLBACK_REASONS`); each fallback is
counted in :attr:`ExportedPolicy.fallbacks` (the service reports the counts at ``/healthz``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from millinet.envs.features import (
    EMPTY_TELEMETRY_ROW,
    RTT,
    TASK_FIELDS,
    TELEMETRY_FIELDS,
    candidate_matrix,
    featurize,
    observation_size,
)
from millinet.scheduler import manifest as fmt
from millinet.scheduler.manifest import PolicyFolderError

__all__ = [
    "FALLBACK_REASONS",
    "Decision",
    "ExportedPolicy",
    "PolicyFolderError",
    "load_policy_folder",
]

_VALID = TELEMETRY_FIELDS.index("valid")
FALLBACK_REASONS = (
    "action_out_of_range",  # the graph chose no slot 0..K-1
    "action_masked",  # the graph chose an infeasible slot
    "non_finite_output",  # the chosen slot's score or logit is NaN or infinite
    "malformed_output",  # the outputs have the wrong shapes
    "inference_error",  # onnxruntime failed to run the graph
)
"""Why a decision fell back to the nearest feasible candidate instead of the model's choice."""


@dataclass(frozen=True)
class Decision:
    """A placement decision for one task.

    ``slot`` is the chosen candidate slot, or None when no candidate is feasible (the task should
    be rejected). ``score`` is the policy's probability of that slot under the masked
    distribution (0..1) and ``logit`` its raw logit. ``decided_by`` is ``"policy"``, or
    ``"nearest"`` for a class the policy was not trained to decide (see
    :attr:`ExportedPolicy.agent_classes`): the first feasible slot, as in its training env.
    ``score`` and ``logit`` are None unless the policy decided a feasible slot. When the model's
    answer was unusable, ``decided_by`` is ``"fallback"``, the slot is the nearest feasible one
    and ``fallback`` says why (:data:`FALLBACK_REASONS`).
    """

    slot: int | None
    score: float | None
    logit: float | None
    decided_by: str = "policy"
    fallback: str | None = None


class ExportedPolicy:
    """An exported policy ready to act. Create it with :func:`load_policy_folder`."""

    def __init__(self, folder: Path, manifest: dict, session: ort.InferenceSession) -> None:
        self.folder = folder
        self.manifest = manifest
        self.K: int = manifest["K"]
        self.observation_size: int = observation_size(self.K)
        self.model_version: str = manifest["model_version"]
        self.name = f"onnx:{self.model_version}"
        self.classes: tuple[str, ...] = tuple(manifest["classes"])
        self.agent_classes: tuple[str, ...] = tuple(manifest.get("agent_classes", self.classes))
        """Classes the policy was trained to decide; the others were placed by the nearest
        rule in its training env (the evaluation harness and :meth:`decide` do the same)."""
        self._decides = [name in self.agent_classes for name in self.classes]
        self._session = session
        self._all = [fmt.OUTPUT_ACTION, fmt.OUTPUT_LOGITS, fmt.OUTPUT_PROBS]
        self.fallbacks: dict[str, int] = dict.fromkeys(FALLBACK_REASONS, 0)
        """How many decisions fell back to the nearest rule, by reason, since loading."""

    # ------------------------------------------------------------------ observation level
    def act(self, observation: np.ndarray, mask: np.ndarray) -> int:
        """Slot for one observation (D,) float32 and mask (K,) bool: the masked argmax
        (slot 0 when nothing is feasible, which the engine counts as a rejection); the nearest
        feasible slot when the model's answer is unusable (counted in :attr:`fallbacks`)."""
        obs = np.asarray(observation, dtype=np.float32).reshape(1, self.observation_size)
        m = np.asarray(mask, dtype=bool).reshape(1, self.K)
        (decision,) = self.decide_observations(obs, m)
        return 0 if decision.slot is None else decision.slot

    def infer(
        self, observations: np.ndarray, masks: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Batch inference: observations (n, D), masks (n, K) -> actions (n,) int64,
        raw logits (n, K) float32, masked probabilities (n, K) float32."""
        obs = np.ascontiguousarray(observations, dtype=np.float32)
        m = np.ascontiguousarray(masks, dtype=bool)
        if obs.ndim != 2 or obs.shape[1] != self.observation_size:
            raise ValueError(f"observations must have shape (n, {self.observation_size})")
        if m.shape != (obs.shape[0], self.K):
            raise ValueError(f"masks must have shape ({obs.shape[0]}, {self.K})")
        actions, logits, probs = self._session.run(
            self._all, {fmt.INPUT_OBSERVATION: obs, fmt.INPUT_MASK: m}
        )
        return actions, logits, probs

    # ------------------------------------------------------------------ task level
    def decide(self, task: np.ndarray, telemetry: np.ndarray, mask: np.ndarray | None = None):
        """Decide one task: ``task`` (5,) in ``TASK_FIELDS``, ``telemetry`` (k <= K, 16) in
        ``TELEMETRY_FIELDS`` (rows beyond k are empty slots), ``mask`` (k,) bool (default: the
        telemetry's ``valid`` column). Returns a :class:`Decision`; raises ``ValueError`` on
        malformed input."""
        tel = self._pad(telemetry)
        obs = featurize(task, tel)
        m = self._mask(tel, mask)
        return self.decide_observations(obs[None], m[None], [task[0]])[0]

    def decides(self, cls: float) -> bool:
        """Whether the policy decides tasks of class index ``cls`` (else: nearest rule)."""
        return not (0 <= cls < len(self.classes)) or self._decides[int(cls)]

    def decide_batch(self, tasks, telemetries, masks=None) -> list[Decision]:
        """:meth:`decide` for many tasks in one inference call."""
        n = len(tasks)
        if len(telemetries) != n or (masks is not None and len(masks) != n):
            raise ValueError("tasks, telemetries and masks must have the same length")
        obs = np.empty((n, self.observation_size), dtype=np.float32)
        mask_arr = np.zeros((n, self.K), dtype=bool)
        for i in range(n):
            tel = self._pad(telemetries[i])
            obs[i] = featurize(tasks[i], tel)
            mask_arr[i] = self._mask(tel, None if masks is None else masks[i])
        return self.decide_observations(obs, mask_arr, [t[0] for t in tasks])

    def decide_observations(
        self, observations: np.ndarray, masks: np.ndarray, classes=None
    ) -> list[Decision]:
        """Decisions for ready observations (n, D) and masks (n, K) in one inference call;
        ``classes`` (n class indices), if given, sends classes outside ``agent_classes`` to the
        nearest rule."""
        if len(observations) == 0:
            return []
        masks = np.asarray(masks, dtype=bool)
        n = len(observations)
        try:
            actions, logits, probs = self.infer(observations, masks)
            outputs_ok = (
                np.shape(actions) == (n,)
                and np.shape(logits) == (n, self.K)
                and np.shape(probs) == (n, self.K)
                and np.issubdtype(np.asarray(actions).dtype, np.integer)
            )
            problem = None if outputs_ok else "malformed_output"
        except ValueError:  # the caller's input (shapes): the caller's error
            raise
        except Exception:  # onnxruntime's own errors: the graph failed, not the request
            problem = "inference_error"
        out = []
        for i in range(n):
            if classes is not None and not self.decides(classes[i]):
                out.append(_nearest(observations[i], masks[i], self.K))
            elif not masks[i].any():
                out.append(Decision(None, None, None))
            else:
                why = problem or _unusable(actions[i], logits[i], probs[i], masks[i], self.K)
                if why is None:
                    a = int(actions[i])
                    out.append(Decision(a, float(probs[i, a]), float(logits[i, a])))
                else:
                    self.fallbacks[why] += 1
                    slot = _nearest(observations[i], masks[i], self.K).slot
                    out.append(Decision(slot, None, None, "fallback", why))
        return out

    def _mask(self, tel: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        if mask is None:
            return tel[:, _VALID] > 0.5
        m = np.asarray(mask, dtype=bool).ravel()
        if m.size == self.K:
            return m
        if m.size > self.K:
            raise ValueError(f"mask has {m.size} entries, more than K = {self.K}")
        return np.concatenate((m, np.zeros(self.K - m.size, dtype=bool)))

    def _pad(self, telemetry: np.ndarray) -> np.ndarray:
        tel = np.asarray(telemetry, dtype=np.float64)
        if tel.ndim != 2 or tel.shape[1] != len(TELEMETRY_FIELDS):
            raise ValueError(f"telemetry must have shape (k, {len(TELEMETRY_FIELDS)})")
        k = tel.shape[0]
        if k > self.K:
            raise ValueError(f"{k} candidates given, the policy has K = {self.K} slots")
        if k < self.K:
            tel = np.vstack((tel, np.array([EMPTY_TELEMETRY_ROW] * (self.K - k))))
        return tel

    def summary(self) -> dict[str, Any]:
        """What a client may want to know about the loaded model (no statistics)."""
        m = self.manifest
        return {
            "model_version": self.model_version,
            "K": self.K,
            "classes": list(self.classes),
            "agent_classes": list(self.agent_classes),
            "features_version": m["observation"]["features_version"],
            "task_fields": list(TASK_FIELDS),
            "telemetry_fields": list(TELEMETRY_FIELDS),
            "sha256": m["model"]["sha256"],
            "source": m.get("source"),
            "training_config": m.get("training_config"),
            "metrics": m.get("metrics"),
        }


def _unusable(
    action, logits: np.ndarray, probs: np.ndarray, mask: np.ndarray, k: int
) -> str | None:
    """Why the model's answer for one task cannot be used (a :data:`FALLBACK_REASONS` entry),
    or None when it can: a slot ``0..K-1``, feasible, with a finite score and logit."""
    a = int(action)
    if not 0 <= a < k:
        return "action_out_of_range"
    if not mask[a]:
        return "action_masked"
    if not (np.isfinite(probs[a]) and np.isfinite(logits[a])):
        return "non_finite_output"
    return None


def _nearest(observation: np.ndarray, mask: np.ndarray, k: int) -> Decision:
    """The nearest rule, as the env and the simulator apply it
    (``millinet.envs.simulation.nearest_slot``): the feasible slot of minimum propagation as the
    observation carries it, ties to the lowest slot. (Not simply the first feasible slot: under
    faults a near site's second path can be slower than the next site's first path.)"""
    feasible = np.flatnonzero(mask)
    if not feasible.size:
        return Decision(None, None, None, "nearest")
    rtt = candidate_matrix(np.asarray(observation), k)[feasible, RTT]
    return Decision(int(feasible[int(np.argmin(rtt))]), None, None, "nearest")


def load_policy_folder(path: str | Path, *, threads: int = 1) -> ExportedPolicy:
    """Load and verify an exported policy folder (see the module docstring).

    ``threads``: onnxruntime intra-op threads; 1 gives the lowest latency at batch 1.
    """
    folder = Path(path)
    where = str(folder)
    if folder.exists() and not folder.is_dir():
        raise PolicyFolderError(f"{where}: is a file, not a policy folder")
    if not folder.is_dir():
        raise PolicyFolderError(f"{where}: no such policy folder")
    manifest_path = folder / fmt.MANIFEST_FILE
    model_path = folder / fmt.MODEL_FILE
    for p in (manifest_path, model_path):
        if not p.is_file():
            raise PolicyFolderError(f"{p}: missing; an exported policy folder holds "
                                    f"{fmt.MODEL_FILE} and {fmt.MANIFEST_FILE}")  # fmt: skip
    try:
        manifest = json.loads(manifest_path.read_text(), parse_constant=_no_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise PolicyFolderError(f"{manifest_path}: not valid JSON ({exc})") from exc
    fmt.validate_manifest(manifest, str(manifest_path))
    actual = fmt.sha256_file(model_path)
    if actual != manifest["model"]["sha256"]:
        raise PolicyFolderError(
            f"{model_path}: checksum mismatch (sha256 {actual[:16]}..., manifest says "
            f"{manifest['model']['sha256'][:16]}...): the model was modified or belongs to "
            "another export"
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        session = ort.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own exception types
        raise PolicyFolderError(f"{model_path}: onnxruntime cannot load it ({exc})") from exc
    _check_signature(session, manifest, str(model_path))
    return ExportedPolicy(folder, manifest, session)


def _no_constant(name: str):
    """``json.loads`` hook: NaN and Infinity are not JSON (strict clients refuse them)."""
    raise ValueError(f"{name} is not a JSON value")


def _check_signature(session: ort.InferenceSession, manifest: dict, where: str) -> None:
    k, d = manifest["K"], observation_size(manifest["K"])
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name: o for o in session.get_outputs()}
    expected_in = {
        fmt.INPUT_OBSERVATION: ("tensor(float)", d),
        fmt.INPUT_MASK: ("tensor(bool)", k),
    }
    if set(inputs) != set(expected_in) or not set(fmt.OUTPUTS) <= set(outputs):
        raise PolicyFolderError(
            f"{where}: graph has inputs {sorted(inputs)} and outputs {sorted(outputs)}; "
            f"expected inputs {list(fmt.INPUTS)} and outputs {list(fmt.OUTPUTS)}"
        )
    for name, (dtype, width) in expected_in.items():
        node = inputs[name]
        if node.type != dtype or len(node.shape) != 2 or node.shape[1] != width:
            raise PolicyFolderError(
                f"{where}: input {name!r} is {node.type} {node.shape}, expected {dtype} "
                f"[batch, {width}] for K = {k}"
            )

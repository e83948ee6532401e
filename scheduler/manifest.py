"""The exported-policy folder format: file names, graph signature and manifest checks.

An exported policy is a folder with two files:

* ``policy.onnx``: the policy graph (ONNX opset >= 17).

  ========== ======================= =======================================================
  inputs     ``observation``         float32 (batch, D): ``millinet.envs.features.featurize``
  output,
                                     *raw* (the VecNormalize statistics are folded into the
                                     graph: ``clip((obs - mean) / sqrt(var + eps), +-clip)``,
                                     computed in float64 exactly as SB3 does)
  \\          ``mask``                bool (batch, K): True for feasible candidate slots
  outputs    ``action``              int64 (batch,): masked argmax of the logits (first index
                                     on ties; slot 0 when nothing is feasible)
  \\          ``logits``              float32 (batch, K): the *raw* (unmasked) action logits
  \\          ``probs``               float32 (batch, K): the masked policy distribution,
                                     softmax over logits with infeasible slots at -1e8 (as
                                     sb3-contrib's ``MaskableCategorical``)
  ========== ======================= =======================================================

* ``manifest.json``: see :func:`validate_manifest` for the keys a loader relies on.

This module is the single definition of the format: the exporter (``agents/export.py``)
writes what it declares and the runtime (``scheduler/runtime.py``) accepts only that. It
imports nothing beyond the standard library, ``millinet.envs.features`` and
``millinet.envs.errors``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from millinet.envs.errors import MillinetError
from millinet.envs.features import (
    CANDIDATE_FEATURES,
    CLASS_NAMES,
    FEATURES_VERSION,
    SITE_TIERS,
    TASK_FEATURES,
    TASK_FIELDS,
    TELEMETRY_FIELDS,
    observation_size,
)

MANIFEST_FILE = "manifest.json"
MODEL_FILE = "policy.onnx"
FORMAT = "millinet-policy"
FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = (1,)
MIN_OPSET = 17

INPUT_OBSERVATION = "observation"
INPUT_MASK = "mask"
OUTPUT_ACTION = "action"
OUTPUT_LOGITS = "logits"
OUTPUT_PROBS = "probs"
INPUTS = (INPUT_OBSERVATION, INPUT_MASK)
OUTPUTS = (OUTPUT_ACTION, OUTPUT_LOGITS, OUTPUT_PROBS)
MASKED_LOGIT = -1e8
"""Logit given to infeasible slots before the argmax and softmax (as sb3-contrib)."""


class PolicyFolderError(MillinetError):
    """An exported-policy folder cannot be used; the message says which file and why."""


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def observation_spec(k: int) -> dict[str, Any]:
    """The observation section of a manifest for K candidate slots (current featuriser)."""
    return {
        "featuriser": "millinet.envs.features.featurize",
        "features_version": FEATURES_VERSION,
        "task_fields": list(TASK_FIELDS),
        "telemetry_fields": list(TELEMETRY_FIELDS),
        "task_features": list(TASK_FEATURES),
        "candidate_features": list(CANDIDATE_FEATURES),
        "size": observation_size(k),
        "dtype": "float32",
    }


_STR_LIST = "list of strings"
FIELD_TYPES: dict[str, tuple[str, bool]] = {
    "format": ("string", True),
    "format_version": ("integer", True),
    "model_version": ("string", True),
    "created_utc": ("string", False),
    "model": ("object", True),
    "observation": ("object", True),
    "K": ("integer", True),
    "classes": (_STR_LIST, True),
    "agent_classes": (_STR_LIST, False),
    "site_tiers": (_STR_LIST, False),
    "normalisation": ("object", False),
    "source": ("object or null", False),
    "training_config": ("object or null", False),
    "metrics": ("object or null", False),
    "test_results": ("object or null", False),
    "model.file": ("string", True),
    "model.sha256": ("string", True),
    "model.opset": ("integer", True),
    "model.inputs": ("object", False),
    "model.outputs": ("object", False),
    "model.export_check": ("object", False),
    "observation.featuriser": ("string", False),
    "observation.features_version": ("integer", True),
    "observation.task_fields": (_STR_LIST, True),
    "observation.telemetry_fields": (_STR_LIST, True),
    "observation.task_features": (_STR_LIST, True),
    "observation.candidate_features": (_STR_LIST, True),
    "observation.size": ("integer", True),
    "observation.dtype": ("string", False),
}
"""Every manifest field a loader reads: dotted key -> (JSON type, required)."""
MAX_MODEL_VERSION = 200
"""Longest ``model_version`` (characters): it is echoed in every answer."""
_MISSING = object()


def _has_type(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "object or null":
        return value is None or isinstance(value, dict)
    return isinstance(value, list) and all(isinstance(v, str) for v in value)  # _STR_LIST


def check_field_types(manifest: dict, fail) -> None:
    """Call ``fail(reason)`` for the first field of :data:`FIELD_TYPES` that is missing (when
    required) or of the wrong JSON type, and for an unusable ``model_version``."""
    for key, (kind, required) in FIELD_TYPES.items():
        node: Any = manifest
        for part in key.split("."):
            node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
        if node is _MISSING:
            if required:
                fail(f"missing key {key!r}")
            continue
        if not _has_type(node, kind):
            article = "an" if kind[0] in "aeiou" else "a"
            fail(f"{key} must be {article} {kind}, got {type(node).__name__} {_short(node)}")
    version = manifest["model_version"]
    if not version.strip() or len(version) > MAX_MODEL_VERSION or not version.isprintable():
        fail(
            f"model_version must be 1..{MAX_MODEL_VERSION} printable characters, got "
            f"{_short(version)}"
        )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validate_manifest(manifest: Any, where: str) -> None:
    """Raise :class:`PolicyFolderError` unless ``manifest`` is one this code can serve.

    Checks the type of every field a loader reads (:data:`FIELD_TYPES`), the format and its
    version, the featuriser version, that the observation layout, class list and site tiers
    are the current featuriser's, and that K and D agree. ``where`` names the file in
    messages.
    """

    def fail(reason: str) -> None:
        raise PolicyFolderError(f"{where}: {reason}")

    if not isinstance(manifest, dict):
        fail("not a JSON object")
    check_field_types(manifest, fail)
    if manifest.get("format") != FORMAT:
        fail(f"format is {manifest.get('format')!r}, expected {FORMAT!r}")
    version = manifest.get("format_version")
    if version not in SUPPORTED_FORMAT_VERSIONS:
        fail(
            f"unknown format_version {version!r}; this runtime reads "
            f"{', '.join(map(str, SUPPORTED_FORMAT_VERSIONS))} (re-export the run with this "
            "version of millinet, or upgrade the scheduler)"
        )
    for key in ("model", "observation", "K", "classes", "model_version"):
        if key not in manifest:
            fail(f"missing key {key!r}")
    k = manifest["K"]
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        fail(f"K must be a positive integer, got {k!r}")
    obs = manifest["observation"]
    if not isinstance(obs, dict):
        fail("'observation' must be an object")
    fv = obs.get("features_version")
    if fv != FEATURES_VERSION:
        fail(
            f"unknown featuriser version {fv!r}: this runtime's millinet.envs.features is version "
            f"{FEATURES_VERSION}; observations would not match what the policy was trained on"
        )
    expected = observation_spec(k)
    for key in ("task_fields", "telemetry_fields", "task_features", "candidate_features"):
        if obs.get(key) != expected[key]:
            fail(f"observation.{key} {obs.get(key)!r} differs from the featuriser's")
    if obs.get("size") != expected["size"]:
        fail(f"observation.size {obs.get('size')!r} != observation_size(K) = {expected['size']}")
    if manifest["classes"] != list(CLASS_NAMES):
        fail(f"classes {manifest['classes']!r} differ from the featuriser's {list(CLASS_NAMES)}")
    agent = manifest.get("agent_classes", manifest["classes"])
    if not isinstance(agent, list) or not agent or not set(agent) <= set(CLASS_NAMES):
        fail(f"agent_classes {agent!r} must be a non-empty list of {list(CLASS_NAMES)}")
    if manifest.get("site_tiers", list(SITE_TIERS)) != list(SITE_TIERS):
        fail(f"site_tiers {manifest['site_tiers']!r} differ from {list(SITE_TIERS)}")
    model = manifest["model"]
    if not isinstance(model, dict):
        fail("'model' must be an object")
    if model.get("file") != MODEL_FILE:
        fail(f"model.file is {model.get('file')!r}, expected {MODEL_FILE!r}")
    sha = model.get("sha256")
    if not isinstance(sha, str) or len(sha) != 64:
        fail("model.sha256 must be a 64-character hex digest")
    if not isinstance(model.get("opset"), int) or model["opset"] < MIN_OPSET:
        fail(f"model.opset must be >= {MIN_OPSET}, got {model.get('opset')!r}")

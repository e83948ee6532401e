"""JSON that strict parsers accept: NaN and infinities become ``null``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from millinet.envs.files import write_text_atomic


def json_safe(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, +-inf) replaced by None, recursively through
    dicts, lists and tuples (tuples become lists)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`json_safe` ``(obj)``; refuses anything still non-finite."""
    return json.dumps(json_safe(obj), allow_nan=False, **kwargs)


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented, strict JSON to ``path``, atomically (complete or not at all)."""
    write_text_atomic(path, dumps(obj, indent=2) + "\n")

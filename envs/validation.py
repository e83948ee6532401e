"""Config validation shared by every file millinet reads: scenarios, training configs, sweeps,
benchmark suites.

* :class:`StrictModel`: the one pydantic base model. Unknown keys are errors, values are
  validated on assignment too, ``inf`` and ``nan`` are refused.
* :func:`read_yaml`: a YAML file as plain data. A missing file, a directory, a binary or
  non-UTF-8 file, a syntax error or a key given twice in one mapping is a one-line
  :class:`~millinet.envs.errors.ConfigError`.
* :func:`validate`: plain data into a model. The first pydantic error becomes
  ``file: field.path: reason``, worded for someone editing the YAML file (a misspelt key gets
  its close matches; a discriminated union says which tags it expects).
"""

from __future__ import annotations

import difflib
import numbers
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from millinet.envs.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base model: unknown keys are errors, values are validated on assignment too.

    ``inf`` and ``nan`` (YAML ``.inf``/``.nan``) are rejected: no rate, size or time is infinite.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


def _integer(value: Any) -> Any:
    """An integer as written, or a whole float; never a bool or a string that looks like one."""
    if isinstance(value, (bool, str, bytes)):
        raise ValueError(f"must be an integer, got {value!r}")
    if isinstance(value, numbers.Integral):  # numpy integers too
        return int(value)
    return value


Integer = Annotated[int, BeforeValidator(_integer)]
"""An ``int`` field that refuses ``True`` and ``"12"`` (pydantic's lax mode takes both)."""


def format_location(loc: tuple | list) -> str:
    """A pydantic error location as written in a YAML file: ``factories[0].workload.x``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


# --------------------------------------------------------------------------- YAML files
class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects a key given twice in one mapping (PyYAML keeps the
    last one silently, which would hide a setting)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_yaml_text(text: str, source: str, error: type[ConfigError] = ConfigError) -> Any:
    """YAML text as plain data; a syntax error or a duplicate key is one ``error`` line."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = " ".join(str(exc.problem or exc.context or "syntax error").split())
        raise error(source, where, f"not valid YAML: {what}") from None
    except yaml.YAMLError as exc:
        raise error(source, "", f"not valid YAML: {' '.join(str(exc).split())}") from None


def read_text(path: str | Path, error: type[ConfigError] = ConfigError) -> str:
    """A UTF-8 text file's content; a missing file, a directory, an unreadable, binary or
    non-UTF-8 file is one ``error`` line naming it."""
    path = Path(path)
    if path.is_dir():
        raise error(str(path), "", "is a directory, not a file")
    if not path.is_file():
        raise error(str(path), "", "file not found")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(str(path), "", f"cannot read the file: {exc.strerror}") from None
    if b"\0" in data:
        raise error(str(path), "", "a binary file, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise error(str(path), "", "not a UTF-8 text file") from None


def read_yaml(path: str | Path, error: type[ConfigError] = ConfigError) -> Any:
    """A YAML file's content as plain data (see the module docstring for the errors)."""
    return parse_yaml_text(read_text(path, error), str(path), error)


# --------------------------------------------------------------------------- pydantic errors
def _flatten(tp: Any) -> list[Any]:
    """The alternatives of a field type: Annotated, Optional and Union unwrapped."""
    if get_origin(tp) is Annotated:
        return _flatten(get_args(tp)[0])
    if get_origin(tp) in (Union, UnionType):
        return [t for arg in get_args(tp) for t in _flatten(arg)]
    return [] if tp is type(None) else [tp]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _tags(model: type[BaseModel]) -> list[str]:
    """Values of the Literal fields of a model (a discriminated union's tag is one of them)."""
    out = []
    for f in model.model_fields.values():
        if get_origin(f.annotation) is Literal and len(get_args(f.annotation)) == 1:
            out.append(get_args(f.annotation)[0])
    return out


def _walk(root: type[BaseModel], loc: tuple[Any, ...]) -> tuple[list[Any], list[Any]]:
    """Follow a pydantic error location through the schema of ``root``.

    Returns the location as written in the file (discriminated-union tags, which pydantic puts
    into the location, are dropped) and the alternatives of the type the location ends at.
    """
    clean: list[Any] = []
    types: list[Any] = [root]
    for part in loc:
        models = [t for t in types if _is_model(t)]
        tagged = [m for m in models if isinstance(part, str) and part in _tags(m)]
        if len(models) > 1 and tagged:  # a union tag, not a key of the file
            types = tagged
            continue
        clean.append(part)
        nxt: list[Any] = []
        for t in types:
            if _is_model(t) and isinstance(part, str) and part in t.model_fields:
                nxt += _flatten(t.model_fields[part].annotation)
            elif get_origin(t) is list and isinstance(part, int):
                nxt += _flatten(get_args(t)[0])
            elif get_origin(t) is dict and isinstance(part, str):
                nxt += _flatten(get_args(t)[1])
        types = nxt
    return clean, types


def error_text(root: type[BaseModel], err: dict[str, Any]) -> tuple[str, str]:
    """(field, reason) of one pydantic error of ``root``, worded for the YAML file's editor."""
    loc, types = _walk(root, tuple(err["loc"]))
    kind, msg, value = err["type"], err["msg"], err.get("input")
    if kind == "extra_forbidden":
        _, parent = _walk(root, tuple(err["loc"])[:-1])
        known = sorted({k for t in parent if _is_model(t) for k in t.model_fields})
        close = difflib.get_close_matches(str(loc[-1]), known, n=2, cutoff=0.75)
        hint = (
            f"did you mean {' or '.join(map(repr, close))}?"
            if close
            else f"known keys: {', '.join(known)}"
        )
        return format_location(loc), f"unknown key; {hint}"
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        key = err["ctx"]["discriminator"].strip("'")
        tags = ", ".join(repr(tag) for t in types if _is_model(t) for tag in _tags(t))
        what = "missing" if kind == "union_tag_not_found" else f"unknown value {value[key]!r}"
        return format_location([*loc, key]), f"{what}; expected one of {tags}"
    if kind == "missing":
        return format_location(loc), "required key is missing"
    if kind == "too_short":
        n = err["ctx"]["min_length"]
        got = err["ctx"]["actual_length"]
        return format_location(loc), f"needs at least {n} item(s), got {got}"
    if kind in ("model_attributes_type", "model_type", "dict_type"):
        return format_location(loc), f"must be a mapping of keys to values (got {value!r})"
    if kind == "value_error":
        return format_location(loc), msg.removeprefix("Value error, ")
    reason = msg.replace("Input should be", "must be")
    if value is None or isinstance(value, (str, int, float, bool)):
        reason += f" (got {value!r})"
    return format_location(loc), reason


def validate(
    model: type[M],
    data: Any,
    source: str,
    error: type[ConfigError] = ConfigError,
    what: str = "config",
) -> M:
    """``data`` validated as ``model``; the first problem becomes one ``error`` line.

    ``what`` names the kind of file in the message for data that is not a mapping.
    """
    if not isinstance(data, dict):
        raise error(source, "", f"a {what} must be a YAML mapping at the top level")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # A misspelt key also makes the real key "missing": report the unknown key first.
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        field, reason = error_text(model, errors[0])
        more = f" (and {len(errors) - 1} more error(s))" if len(errors) > 1 else ""
        raise error(source, field, reason + more) from None

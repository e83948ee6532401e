"""Errors raised for bad user input (scenario files, topology files, arguments)."""

from __future__ import annotations


class ScenarioError(ValueError):
    """A scenario, topology or config input is invalid.

    The message always names the source (file or scenario name), the field and the reason,
    so the CLI can print it as one line without a traceback.
    """

    def __init__(self, source: str, field: str, reason: str) -> None:
        self.source = source
        self.field = field
        self.reason = reason
        where = f"{source}: {field}" if field else source
        super().__init__(f"{where}: {reason}")


class FieldError(ValueError):
    """A bad value of one config field, raised where the file is not known (generators).

    ``field`` is the location as written in the scenario file (e.g. ``topology.links[3]``);
    the scenario loader turns it into a :class:`ScenarioError` naming the file.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


def format_location(loc: tuple | list) -> str:
    """A pydantic error location as written in a YAML file: ``factories[0].workload.x``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out

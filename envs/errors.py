"""The errors millinet raises for bad user input, and the check for a missing install extra.

Every user-facing error is a :class:`MillinetError` whose message is one line that names the
source (a file, a scenario, an argument), the field and the reason, so the CLI prints it
without a traceback and exits with status 2. This module imports only the standard library:
the scheduler service and every other package share it.
"""

from __future__ import annotations

import importlib.util
import warnings


class MillinetError(Exception):
    """Base of every user-facing error: the message is one line, printed as is."""


class ConfigError(MillinetError, ValueError):
    """A config input (scenario, training config, sweep, suite, argument) is invalid.

    The message is ``source: field: reason`` (``source: reason`` without a field).
    """

    def __init__(self, source: str, field: str, reason: str) -> None:
        self.source = source
        self.field = field
        self.reason = reason
        where = f"{source}: {field}" if field else source
        super().__init__(f"{where}: {reason}")


class ScenarioError(ConfigError):
    """A scenario or topology file is invalid."""


class FieldError(ValueError):
    """A bad value of one config field, raised where the file is not known (generators).

    ``field`` is the location as written in the scenario file (e.g. ``topology.links[3]``);
    the scenario loader turns it into a :class:`ScenarioError` naming the file.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class MillinetWarning(UserWarning):
    """Something in user input was repaired or looks wrong, and the run goes on.

    The message is one line, ``source: what happened and what it means``; the CLI prints it as
    ``millinet <command>: warning: ...`` (``millinet.experiments.cli``).
    """


def warn(source: str, message: str) -> None:
    """Issue a :class:`MillinetWarning` ``"source: message"`` (one line) through ``warnings``."""
    one_line = " ".join(f"{source}: {message}".split())
    warnings.warn(one_line, MillinetWarning, stacklevel=3)


class OutputError(MillinetError, OSError):
    """An output path cannot be written (a directory given as a file, a file as a folder, a
    missing parent, an unwritable place); the message names the option and the path."""


class ActionError(MillinetError, ValueError):
    """An action that is not one of the action space's integers ``0..K-1``."""


class MissingExtraError(MillinetError, ImportError):
    """A command needs an optional dependency group (extra) that is not installed."""


EXTRAS = {
    "train": ("torch", "stable_baselines3", "sb3_contrib", "tensorboard", "matplotlib"),
    "sweep": ("ray", "optuna"),
    "export": ("onnx", "onnxscript", "onnxruntime"),
    "serve": ("onnxruntime", "fastapi", "uvicorn", "httpx"),
    "render": ("matplotlib",),
    "video": ("matplotlib", "imageio", "imageio_ffmpeg", "moviepy"),
}
"""Extra name -> the top-level modules it provides (``pyproject.toml`` lists the packages)."""


def require_extra(extra: str, what: str) -> None:
    """Raise :class:`MissingExtraError` unless every module of ``extra`` is importable.

    ``what`` names the feature for the message, e.g. ``"millinet train"``.
    """
    missing = [m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtraError(
            f"{what} needs the '{extra}' extra ({', '.join(missing)} not installed): "
            f"pip install 'millinet[{extra}]'"
        )

"""User-facing errors of the command line (kept apart from ``cli.py`` so that
``python -m millinet.experiments.cli`` and the ``millinet`` script catch the same class)."""

from __future__ import annotations

from millinet.envs.errors import MillinetError


class UserError(MillinetError):
    """A user-facing error of a command's arguments: printed as one line, exit status 2."""

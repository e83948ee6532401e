"""User-facing errors of the command line (kept apart from ``cli.py`` so that
``python -m millinet.experiments.cli`` and the ``millinet`` script catch the same class)."""

from __future__ import annotations


class UserError(Exception):
    """A user-facing error: printed as one line, exit status 2, no traceback."""

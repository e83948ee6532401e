"""Errors of trained-run files, importable without torch (the CLI catches them)."""

from __future__ import annotations

from millinet.envs.errors import MillinetError


class CheckpointError(MillinetError, ValueError):
    """A run folder's model or normalisation file is missing, truncated or corrupted.

    The message starts with the file's path and says what is wrong, so the CLI prints it as
    one line."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """A run folder lacks a file it should have."""

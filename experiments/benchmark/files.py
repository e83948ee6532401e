"""Where the benchmark writes, and how: one small module, so the lead can point it at the
shared output helpers of issue 18 (``millinet.envs.files``: ``check_output_dir``,
``write_text_atomic``, ``safe_name``) when they land, by replacing these three functions.

* :func:`check_out_dir`: ``--out`` checked before any long work (a file where a folder is
  wanted, a parent that is a file, a place that cannot be written), one-line
  :class:`~millinet.experiments.errors.UserError`; creates nothing.
* :func:`write_text_atomic`: a file that appears complete or not at all.
* :func:`safe_name`: a file-name component made from a user string;
* :func:`shown_path`: a path as a report shows it (relative to the working directory when
  inside it, so a committed report names files of any checkout).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from millinet.experiments.errors import UserError

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def check_out_dir(path: str | Path, flag: str = "--out") -> Path:
    """``path`` as an output folder: a folder or nothing yet (missing parents are created
    later), not a file, somewhere writable. Raises :class:`UserError`; creates nothing."""
    target = Path(path)
    if str(path).strip() == "":
        raise UserError(f"{flag}: empty path; give a folder")
    existing = next((p for p in (target, *target.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        what = "is a file" if existing == target else f"{str(existing)!r} is a file"
        raise UserError(f"{flag} {path}: {what}, not a folder")
    try:  # tried, not guessed: os.access says yes to a read-only file system as root
        with tempfile.TemporaryFile(dir=existing, prefix=".millinet-write-check-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(f"{flag} {path}: cannot write in {str(existing)!r} ({reason})") from None
    return target


def write_text_atomic(path: Path, text: str) -> Path:
    """Create or replace ``path`` with ``text``: written to a temporary sibling, flushed, then
    renamed over ``path`` (a reader, or a run killed mid-write, sees the old file or the new
    one, never a part)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def safe_name(text: str, fallback: str = "unnamed") -> str:
    """``text`` as one path component: only letters, digits, ``_``, ``.`` and ``-``; no
    leading dot or dash; at most 80 characters."""
    name = _UNSAFE.sub("_", str(text)).lstrip("._-")[:80].rstrip("._-")
    return name or fallback


def shown_path(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies below it, else as it is."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)

"""Where millinet writes, and how: the one place for

* :func:`safe_name`: a file or folder name made from a user string (a scenario path, a
  scenario's ``name:``), so that no user string can lead a write outside the folder the user
  gave (``..``, ``/``, an absolute path, control characters);
* :func:`check_output_file` / :func:`check_output_dir`: an output path checked *before* the
  long work starts (a directory given as a file, a file given as a folder, a missing parent,
  an unwritable place), each a one-line :class:`~millinet.envs.errors.OutputError`;
* :func:`output_dir`: a command's output folder that does not outlive a failed command empty;
* :func:`atomic_write` / :func:`write_text_atomic` / :func:`replace_dir`: files and folders
  that appear complete or not at all (temporary file or folder, then ``os.replace``).

Standard library only: every package may import it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from millinet.envs.errors import OutputError

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
MAX_NAME = 80
"""Longest name :func:`safe_name` returns (characters)."""


def safe_name(text: str, fallback: str = "unnamed") -> str:
    """``text`` as one safe path component: characters other than letters, digits, ``_``,
    ``.`` and ``-`` become ``_``, leading dots, dashes and underscores go (no ``..``, no hidden
    file, no option-like name), at most :data:`MAX_NAME` characters; ``fallback`` when nothing
    is left."""
    name = _UNSAFE.sub("_", str(text)).lstrip("._-")[:MAX_NAME].rstrip("._-")
    return name or fallback


def label_of(spec: str) -> str:
    """A short safe label for a shipped name or a file path given by a user: the last path
    component without a ``.yaml``/``.yml`` suffix, through :func:`safe_name`
    (``../cities/Big City.yaml`` -> ``Big_City``)."""
    last = re.split(r"[\\/]", str(spec).rstrip("/\\"))[-1]
    for suffix in (".yaml", ".yml"):
        if last.lower().endswith(suffix):
            last = last[: -len(suffix)]
    return safe_name(last)


# --------------------------------------------------------------------------- output checks
def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path(".")


def _check_writable_folder(folder: Path, flag: str, path: str | Path) -> None:
    """Raise unless a file can be created in ``folder`` (tried, not guessed: as root,
    ``os.access`` says yes to a read-only file system)."""
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".millinet-write-check-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OutputError(f"{flag} {path}: cannot write in {str(folder)!r} ({reason})") from None


def check_output_file(path: str | Path, flag: str, create_parents: bool = False) -> Path:
    """``path`` as an output file of a command option ``flag`` (e.g. ``--json``): not a
    directory, its folder exists (or, with ``create_parents``, can be created) and is
    writable; an existing file is replaced. Raises :class:`OutputError` (one line) otherwise.
    Creates nothing."""
    target = Path(path)
    if str(path).strip() == "":
        raise OutputError(f"{flag}: empty path; give a file name")
    if target.is_dir():
        raise OutputError(f"{flag} {path}: is a directory; give a file name")
    folder = target.parent
    if create_parents:
        check_output_dir(folder, flag, shown=path)
        return target
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{flag} {path}: {str(folder)!r} is a file, not a folder")
    if not folder.is_dir():
        raise OutputError(f"{flag} {path}: folder {str(folder)!r} does not exist")
    _check_writable_folder(folder, flag, path)
    return target


def check_output_dir(
    path: str | Path, flag: str, only: tuple[str, ...] | None = None, shown: str | Path = ""
) -> Path:
    """``path`` as an output folder of a command option ``flag`` (e.g. ``--out``): a folder or
    nothing yet (missing parents are created when the outputs are written), not a file, and
    somewhere writable. ``only``: the file names the command writes; an existing folder
    holding anything else is refused (the command replaces the folder). ``shown``: the path
    as the user gave it, for the message (default ``path``). Raises :class:`OutputError`
    (one line) otherwise. Creates nothing."""
    target = Path(path)
    shown = shown or path
    if str(path).strip() == "":
        raise OutputError(f"{flag}: empty path; give a folder")
    existing = _nearest_existing(target)
    if not existing.is_dir():
        what = "is a file" if existing == target else f"{str(existing)!r} is a file"
        raise OutputError(f"{flag} {shown}: {what}, not a folder")
    if only is not None and existing == target:
        others = sorted(p.name for p in target.iterdir() if p.name not in only)
        if others:
            raise OutputError(
                f"{flag} {shown}: the folder holds other files ({', '.join(others[:3])}"
                f"{', ...' if len(others) > 3 else ''}); give a new or empty folder, or one "
                f"that holds only {' and '.join(only)}"
            )
    _check_writable_folder(existing, flag, shown)
    return target


@contextlib.contextmanager
def output_dir(path: str | Path) -> Iterator[Path]:
    """Create the folder ``path`` (and missing parents) for a command's outputs. If the block
    raises, the folders this created are removed again when they are still empty, so a failed
    command leaves no empty folder behind."""
    target = Path(path)
    created = [p for p in (target, *target.parents) if not (p.exists() or p.is_symlink())]
    target.mkdir(parents=True, exist_ok=True)
    try:
        yield target
    except BaseException:
        for folder in created:  # innermost first
            try:
                folder.rmdir()
            except OSError:  # not empty (or gone): keep it and everything above it
                break
        raise


# --------------------------------------------------------------------------- atomic writes
def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform/file system can open a folder
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def temporary_sibling(path: Path) -> Path:
    """A temporary name next to ``path`` (same folder, so ``os.replace`` is atomic):
    ``.<name>.<pid>.tmp``; :func:`is_temporary` recognises it."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def is_temporary(path: Path) -> bool:
    """Whether ``path`` is a leftover of :func:`temporary_sibling` (a write that was killed)."""
    return path.name.startswith(".") and path.name.endswith(".tmp")


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Create or replace the file ``path`` with what ``write(tmp)`` writes to the file ``tmp``
    (a temporary sibling; e.g. ``lambda tmp: model.save(tmp)``): the file is flushed to disk,
    then renamed over ``path``. A reader sees the old file or the complete new one; a failure
    (or a kill) leaves ``path`` as it was, and a failure removes the temporary file."""
    target = Path(path)
    tmp = temporary_sibling(target)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    return target


def write_text_atomic(path: str | Path, text: str) -> Path:
    """:func:`atomic_write` of UTF-8 text."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def previous_dir(path: Path) -> Path:
    """Where :func:`replace_dir` keeps the old folder while it swaps in the new one."""
    return path.with_name(f"{path.name}.old")


def replace_dir(new: Path, target: Path) -> None:
    """Put the complete folder ``new`` in place of ``target`` (which may not exist).

    ``target`` is renamed to :func:`previous_dir` first, ``new`` renamed to ``target``, then the
    old folder removed. A kill in between leaves the previous complete folder under
    ``<target>.old``, which :func:`existing_dir` finds; a reader never sees a mixed folder."""
    old = previous_dir(target)
    if target.exists() and old.exists():
        shutil.rmtree(old)  # a leftover of an earlier swap that completed
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    _fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)


def existing_dir(target: Path) -> Path:
    """``target``, or the previous complete folder when a :func:`replace_dir` was killed
    between its two renames."""
    old = previous_dir(target)
    return old if not target.exists() and old.is_dir() else target


def new_sibling_dir(target: Path) -> Path:
    """An empty temporary folder next to ``target`` to build a replacement in (see
    :func:`replace_dir`); named like :func:`temporary_sibling`."""
    tmp = temporary_sibling(target)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp

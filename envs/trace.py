"""Trace replay: recorded tasks from a CSV file as an arrival source (``process: trace``).

A trace is a CSV file with a header row and one task per line, sorted by time:

==============  ==========================================================================
column          meaning
==============  ==========================================================================
``time_s``      arrival time at the factory, seconds from the start of the trace (>= 0)
``class``       task class: ``robot_sync``, ``agv_dispatch`` or ``vision_qa``
``factory``     the factory that sent it (a name; see below how it maps onto the scenario)
``up_bytes``    payload to the compute site (bytes, >= 0)
``down_bytes``  payload back to the factory (bytes, >= 0)
``compute_us``  service time on a speed-1.0 server (us, >= 0)
==============  ==========================================================================

Other columns (a task id, a note) are ignored. A scenario factory replays the rows of one trace
factory (its own name by default, ``trace_factory`` to pick another) for each class whose
workload entry is ``{process: trace, path: ...}``; several entries and factories may read the
same file. Each row is checked when the scenario is built: a bad value names the file, the
line and the column, and so does a row that no workload entry replays; nothing runs until the
whole file is valid. The file is read in chunks of :data:`CHUNK_ROWS` rows, both when it is
checked and when it is replayed, so a long trace never has to fit in memory.

Replay is deterministic: a trace's tasks do not depend on the seed (the seed still drives the
scenario's parametric sources and random faults). ``time_scale`` stretches trace time (2 =
half the rate); a factory's ``scale`` and the scenario's ``load_scale`` compress it, so
``load_scale: 2`` replays the trace twice as fast. ``loop: true`` repeats the trace every
``period_s`` of trace time (default: the last row's time plus the mean gap between rows).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

from millinet.envs.config import CLASS_NAMES, TraceArrivals
from millinet.envs.errors import ScenarioError

if TYPE_CHECKING:  # workload imports this module
    from millinet.envs.workload import WorkloadGenerator

TRACE_COLUMNS = ("time_s", "class", "factory", "up_bytes", "down_bytes", "compute_us")
"""The columns a trace must have (in any order)."""
CHUNK_ROWS = 4096
"""Rows parsed per chunk when a trace is checked or replayed."""
_NUMERIC = ("time_s", "up_bytes", "down_bytes", "compute_us")


@dataclass(frozen=True)
class TraceChunk:
    """Consecutive rows of a trace, arrays of shape (n,); ``line`` is each row's line number."""

    time_s: np.ndarray
    cls: np.ndarray  # int, index into CLASS_NAMES
    factory: list[str]
    up_bytes: np.ndarray
    down_bytes: np.ndarray
    compute_us: np.ndarray
    line: np.ndarray


def _columns(reader: Iterator[list[str]], path: Path) -> dict[str, int]:
    header = next(reader, None)
    if header is None:
        raise ScenarioError(
            str(path), "line 1", f"the trace is empty; it needs a header {','.join(TRACE_COLUMNS)}"
        )
    names = [h.strip() for h in header]
    missing = [c for c in TRACE_COLUMNS if c not in names]
    if missing:
        raise ScenarioError(
            str(path),
            "line 1",
            f"the header lacks column(s) {', '.join(missing)}; a trace needs "
            f"{','.join(TRACE_COLUMNS)} (other columns are ignored)",
        )
    return {c: names.index(c) for c in TRACE_COLUMNS}


def _open(path: Path) -> TextIO:
    try:
        return open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(str(path), "", f"cannot read the trace: {exc.strerror}") from None


def read_chunks(path: Path, chunk_rows: int | None = None) -> Iterator[TraceChunk]:
    """Parse and check a trace chunk by chunk (``chunk_rows``, default :data:`CHUNK_ROWS`); a
    bad value raises a ``ScenarioError`` whose field is ``line N, column C``."""
    path = Path(path)
    chunk_rows = chunk_rows or CHUNK_ROWS
    with _open(path) as fh:
        reader = csv.reader(fh)
        try:
            col = _columns(reader, path)
            rows: list[list[str]] = []
            lines: list[int] = []
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # a blank line
                rows.append(row)
                lines.append(reader.line_num)
                if len(rows) == chunk_rows:
                    yield _parse(rows, lines, col, path)
                    rows, lines = [], []
            if rows:
                yield _parse(rows, lines, col, path)
        except UnicodeDecodeError:
            raise ScenarioError(
                str(path), f"line {reader.line_num + 1}", "not UTF-8 text; save the trace as UTF-8"
            ) from None
        except csv.Error as exc:
            raise ScenarioError(str(path), f"line {reader.line_num}", f"bad CSV: {exc}") from None


def _parse(rows: list[list[str]], lines: list[int], col: dict[str, int], path: Path) -> TraceChunk:
    width = max(col.values()) + 1
    values = {c: np.empty(len(rows)) for c in _NUMERIC}
    cls = np.empty(len(rows), dtype=np.int64)
    factory = []
    for i, (row, line) in enumerate(zip(rows, lines)):
        if len(row) < width:
            raise ScenarioError(
                str(path),
                f"line {line}",
                f"{len(row)} fields, the header has at least {width}; fill in every column",
            )
        for c in _NUMERIC:
            text = row[col[c]].strip()
            try:
                v = float(text)
            except ValueError:
                v = math.nan
            if not (math.isfinite(v) and v >= 0):
                raise ScenarioError(
                    str(path),
                    f"line {line}, column {c}",
                    f"must be a finite number >= 0 (got {text!r})",
                )
            values[c][i] = v
        name = row[col["class"]].strip()
        if name not in CLASS_NAMES:
            raise ScenarioError(
                str(path),
                f"line {line}, column class",
                f"unknown task class {name!r}; known: {', '.join(CLASS_NAMES)}",
            )
        cls[i] = CLASS_NAMES.index(name)
        fac = row[col["factory"]].strip()
        if not fac:
            raise ScenarioError(str(path), f"line {line}, column factory", "is empty")
        factory.append(fac)
    return TraceChunk(
        values["time_s"],
        cls,
        factory,
        values["up_bytes"],
        values["down_bytes"],
        values["compute_us"],
        np.asarray(lines),
    )


@dataclass(frozen=True)
class TraceSummary:
    """What a full check of a trace found: row count and first/last time (s)."""

    rows: int
    first_s: float
    last_s: float

    def period_s(self) -> float:
        """Default loop period: the last row's time plus the mean gap between rows (s)."""
        gap = (self.last_s - self.first_s) / (self.rows - 1) if self.rows > 1 else 0.0
        return self.last_s + gap


_CHECKED: dict[tuple, TraceSummary] = {}
_CHECKED_FILES: dict[str, TraceSummary] = {}  # resolved path -> summary of its last check


def check_trace(path: Path, replayed: set[tuple[str, str]]) -> TraceSummary:
    """Read the whole trace once, in chunks: every value valid, times sorted, and every row's
    (factory, class) in ``replayed``. Results are cached per file version and ``replayed``."""
    path = Path(path)
    stat = os.stat(path)
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, frozenset(replayed))
    if key in _CHECKED:
        return _CHECKED[key]
    rows, first, last = 0, math.nan, -math.inf
    for chunk in read_chunks(path):
        times = chunk.time_s
        previous = np.concatenate([[last], times[:-1]])
        back = np.flatnonzero(times < previous)
        if back.size:
            i = back[0]
            raise ScenarioError(
                str(path),
                f"line {chunk.line[i]}, column time_s",
                f"{times[i]:g} is before the previous row's {previous[i]:g}; sort the trace by "
                "time",
            )
        for i, (fac, c) in enumerate(zip(chunk.factory, chunk.cls)):
            if (fac, CLASS_NAMES[c]) not in replayed:
                readers = ", ".join(sorted(f"{f}/{k}" for f, k in replayed)) or "none"
                raise ScenarioError(
                    str(path),
                    f"line {chunk.line[i]}, column factory",
                    f"no workload entry replays {CLASS_NAMES[c]} tasks of factory {fac!r} "
                    f"(entries reading this file: {readers}); add "
                    f"`{CLASS_NAMES[c]}: {{process: trace, path: ...}}` to that factory's "
                    "workload (or set its trace_factory), or remove these rows",
                )
        if rows == 0:
            first = float(times[0])
        rows += times.size
        last = float(times[-1])
    if rows == 0:
        raise ScenarioError(str(path), "line 2", "the trace has a header but no rows")
    summary = TraceSummary(rows, first, last)
    if len(_CHECKED) > 64:
        _CHECKED.clear()
        _CHECKED_FILES.clear()
    _CHECKED[key] = summary
    _CHECKED_FILES[key[0]] = summary
    return summary


def checked_summary(path: Path) -> TraceSummary:
    """The summary of ``path`` found by the last :func:`check_trace` of it (which must have
    run in this process: a scenario checks its traces when it loads)."""
    try:
        return _CHECKED_FILES[str(Path(path).resolve())]
    except KeyError:
        raise RuntimeError(f"trace {str(path)!r} has not been checked yet") from None


# --------------------------------------------------------------------------- replay
@dataclass
class TraceReplay:
    """Replays one trace file onto scenario factories, window by window.

    ``routes`` maps (trace factory name, class index) to the scenario factory indices that
    replay those rows. Simulated time = trace time x ``time_factor`` (+ loop offsets).
    """

    path: Path
    routes: dict[tuple[str, int], list[int]]
    time_factor: float
    period_s: float | None  # trace time between loops; None = play once
    _chunks: Iterator[TraceChunk] | None = None
    _buffer: dict[str, np.ndarray] = field(default_factory=dict)
    _offset_s: float = 0.0
    done: bool = False

    def _next_chunk(self) -> bool:
        """Load the next routed chunk into the buffer; False when the trace has ended."""
        while True:
            if self._chunks is None:
                self._chunks = read_chunks(self.path)
            chunk = next(self._chunks, None)
            if chunk is None:
                self._chunks = None
                if self.period_s is None:
                    return False
                self._offset_s += self.period_s
                continue
            keep, fac = [], []
            for i, (name, c) in enumerate(zip(chunk.factory, chunk.cls.tolist())):
                for f in self.routes.get((name, c), ()):
                    keep.append(i)
                    fac.append(f)
            if not keep:
                continue
            idx = np.asarray(keep)
            self._buffer = {
                "time_s": (chunk.time_s[idx] + self._offset_s) * self.time_factor,
                "cls": chunk.cls[idx],
                "factory": np.asarray(fac, dtype=np.int64),
                "up_bytes": chunk.up_bytes[idx],
                "down_bytes": chunk.down_bytes[idx],
                "work_s": chunk.compute_us[idx] * 1e-6,
            }
            return True

    def emit(self, t1: float) -> dict[str, np.ndarray]:
        """Every not yet emitted task with a time before ``t1`` (columns of ``ArrivalBatch``)."""
        parts = []
        while not self.done:
            empty = not self._buffer or self._buffer["time_s"].size == 0
            if empty and not self._next_chunk():
                self.done = True
                break
            times = self._buffer["time_s"]
            n = int(np.searchsorted(times, t1, side="left"))
            parts.append({k: v[:n] for k, v in self._buffer.items()})
            self._buffer = {k: v[n:] for k, v in self._buffer.items()}
            if n < times.size:
                break
        if not parts:
            return {}
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def replays_for(
    sources: list[tuple[int, int, TraceArrivals, float]],
) -> list[TraceReplay]:
    """One :class:`TraceReplay` per (file, loop period, time factor) among trace sources of
    (factory index, class index, spec, scale); the specs carry the resolved ``path``,
    ``trace_factory`` and, when they loop, ``period_s`` (``envs/scenario.py`` fills them in)."""
    groups: dict[tuple, TraceReplay] = {}
    for f, c, spec, scale in sources:
        period = spec.period_s if spec.loop else None
        key = (spec.path, period, spec.time_scale / scale)
        replay = groups.get(key)
        if replay is None:
            replay = groups[key] = TraceReplay(Path(spec.path), {}, spec.time_scale / scale, period)
        replay.routes.setdefault((spec.trace_factory, c), []).append(f)
    return list(groups.values())


TraceRow = tuple[float, str, str, float, float, float]
"""(time_s, class, factory, up_bytes, down_bytes, compute_us): one line of a trace."""


def record_workload(
    workload: WorkloadGenerator,
    factory_names: list[str],
    duration_s: float,
    factories: set[str] | None = None,
) -> Iterator[TraceRow]:
    """The tasks a workload generates in [0, duration_s) as trace rows, in time order;
    ``factories`` keeps only those factories' tasks (default: all)."""
    while workload.t < duration_s:
        b = workload.next_batch()
        for t, c, f, up, down, work in zip(
            b.time_s, b.cls, b.factory, b.up_bytes, b.down_bytes, b.work_s
        ):
            name = factory_names[f]
            if t < duration_s and (factories is None or name in factories):
                yield (float(t), CLASS_NAMES[c], name, float(up), float(down), float(work) * 1e6)


def write_trace(path: Path, rows: Iterable[TraceRow]) -> int:
    """Write (time_s, class, factory, up_bytes, down_bytes, compute_us) rows as a trace CSV
    (times to 1 ns, sizes to the byte, compute to 1 ns); returns the number of rows."""
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(TRACE_COLUMNS)
        for t, cls, fac, up, down, work_us in rows:
            out.writerow([f"{t:.9f}", cls, fac, f"{up:.0f}", f"{down:.0f}", f"{work_us:.3f}"])
            n += 1
    return n


__all__ = [
    "CHUNK_ROWS",
    "TRACE_COLUMNS",
    "TraceReplay",
    "TraceSummary",
    "check_trace",
    "read_chunks",
    "record_workload",
    "replays_for",
    "write_trace",
]

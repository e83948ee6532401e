"""Read training runs' TensorBoard event files and compare runs: curves, tables, plots.

Runs are grouped into *experiments* by their name without seed and time
(``sunflower-metro_maskppo_s3_20261126-113000`` -> ``sunflower-metro_maskppo``); curves and
final numbers are given as the mean and 95% Student-t confidence interval across the runs
(seeds) of a group. Event files are read with TensorBoard's ``EventAccumulator`` keeping every
point (size guidance 0), so the numbers are those TensorBoard shows.

Baselines (optional) come from a CSV or markdown table with a ``policy`` (or ``name``) column and
a ``violation_rate_1ms`` column; a CI is taken from ``ci_low``/``ci_high`` style columns or a
``ci95`` half-width column when present (see :func:`read_baselines`).
"""

from __future__ import annotations

import glob
import json
import math
import re
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from millinet.envs.stats import mean_ci95, t_half_width

CURVE_TAGS = ("eval/violation_rate_1ms", "millinet/violation_rate_1ms")
"""Learning curves drawn by default: held-out validation, then training episodes."""
_RUN_SUFFIX = re.compile(r"_s\d+_\d{8}-\d{4,6}(-\d+)?$")


class AnalysisError(ValueError):
    """Nothing to analyse, or an input file cannot be read; the message names it."""


@dataclass
class RunData:
    """One run: its scalars (tag -> (steps, values)), metrics.json and group."""

    root: Path
    scalars: dict[str, tuple[np.ndarray, np.ndarray]]
    metrics: dict[str, Any] | None = None
    group: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.root.name


def group_key(name: str) -> str:
    """Experiment name of a run: the run name without ``_s<seed>_<time>``."""
    return _RUN_SUFFIX.sub("", name)


def _is_run(path: Path) -> bool:
    return path.is_dir() and ((path / "tb").is_dir() or (path / "config.yaml").is_file())


def find_runs(specs: list[str]) -> list[Path]:
    """Run folders named by ``specs``: run folders, glob patterns, or parent folders whose
    children are runs (``runs/``). Sorted, without duplicates."""
    found: list[Path] = []
    for spec in specs:
        matches = [Path(p) for p in sorted(glob.glob(spec))] or [Path(spec)]
        for path in matches:
            if _is_run(path):
                found.append(path)
            elif path.is_dir():
                found.extend(p for p in sorted(path.iterdir()) if _is_run(p))
            elif not path.exists():
                raise AnalysisError(f"{spec}: no such run folder or pattern")
            elif path == Path(spec):  # a file named as such (files a pattern matches are skipped)
                raise AnalysisError(f"{path}: is a file, not a run folder")
    unique = sorted({p.resolve(): p for p in found}.values(), key=lambda p: p.name)
    if not unique:
        raise AnalysisError(f"no run folders (with a tb/ folder) in {' '.join(specs)}")
    return unique


def scan_event_file(path: Path) -> tuple[int, str | None]:
    """(complete records, problem) of a TensorBoard event file, checking its TFRecord framing
    record by record: a little-endian uint64 length, the masked CRC-32C of those 8 bytes, the
    data, the masked CRC-32C of the data. ``problem`` is None for an intact file, ``"empty"``,
    ``"truncated"`` (the last record is unfinished: the writer was stopped mid-write) or
    ``"corrupted at byte N"`` (a checksum does not match: not an event file, or damaged)."""
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    data = path.read_bytes()
    if not data:
        return 0, "empty"
    pos = records = 0
    while pos < len(data):
        if len(data) - pos < 12:
            return records, "truncated"
        (length,) = struct.unpack_from("<Q", data, pos)
        (length_crc,) = struct.unpack_from("<I", data, pos + 8)
        if masked_crc32c(data[pos : pos + 8]) != length_crc:
            return records, f"corrupted at byte {pos}"
        end = pos + 12 + length + 4
        if end > len(data):
            return records, "truncated"
        (data_crc,) = struct.unpack_from("<I", data, end - 4)
        if masked_crc32c(data[pos + 12 : end - 4]) != data_crc:
            return records, f"corrupted at byte {pos}"
        pos, records = end, records + 1
    return records, None


def check_event_files(tb_dir: Path) -> None:
    """Name every damaged event file in ``tb_dir`` instead of reading it silently short: an
    empty or truncated file is a warning line on stderr (the complete records are used); a
    corrupted one (a bad checksum: garbage, or damage inside) is an :class:`AnalysisError`."""
    for path in sorted(tb_dir.glob("events.out.tfevents.*")):
        records, problem = scan_event_file(path)
        if problem is None:
            continue
        if problem.startswith("corrupted"):
            what = "not a TensorBoard event file" if records == 0 else "damaged"
            raise AnalysisError(
                f"{path}: {what} ({problem}, after {records} good records); remove or restore it"
            )
        use = "skipped" if records == 0 else f"using its {records} complete records"
        print(f"warning: {path}: {problem}; {use}", file=sys.stderr)


def read_scalars(tb_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every scalar of the event files in ``tb_dir``: tag -> (steps, values), sorted by step.
    A step logged twice (a resumed run re-logging a step) keeps the newest value. Damaged
    event files are named (:func:`check_event_files`)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not tb_dir.is_dir():
        raise AnalysisError(f"{tb_dir}: no TensorBoard folder")
    check_event_files(tb_dir)
    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    try:
        acc.Reload()
    except Exception as exc:  # damaged event files raise various errors
        raise AnalysisError(f"{tb_dir}: cannot read the event files ({exc})") from None
    out = {}
    for tag in acc.Tags().get("scalars", []):
        latest: dict[int, tuple[float, float]] = {}
        for ev in acc.Scalars(tag):
            if ev.step not in latest or ev.wall_time >= latest[ev.step][0]:
                latest[ev.step] = (ev.wall_time, ev.value)
        steps = np.array(sorted(latest), dtype=np.int64)
        out[tag] = (steps, np.array([latest[s][1] for s in steps], dtype=float))
    return out


def load_run(root: Path) -> RunData:
    """Scalars and (if present) ``metrics.json`` of a run folder."""
    metrics = None
    mpath = root / "metrics.json"
    if mpath.is_file():
        try:
            metrics = json.loads(mpath.read_text())
        except ValueError as exc:
            raise AnalysisError(f"{mpath}: not valid JSON ({exc})") from None
    return RunData(root, read_scalars(root / "tb"), metrics, group_key(root.name))


def curve_band(
    runs: list[RunData], tag: str, points: int = 100
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int] | None:
    """Mean and 95% CI half-width of ``tag`` across ``runs`` on a common step grid.

    Each run is linearly interpolated onto ``points`` steps between the largest first step and
    the smallest last step of the runs (the range every run covers). Returns
    (steps, mean, half-width, number of runs), or None when no run has the tag. With a single
    run the half-width is NaN.
    """
    series = [r.scalars[tag] for r in runs if tag in r.scalars and r.scalars[tag][0].size]
    if not series:
        return None
    lo = max(int(s[0][0]) for s in series)
    hi = min(int(s[0][-1]) for s in series)
    if hi <= lo:
        grid = np.array([hi], dtype=float)
    else:
        grid = np.linspace(lo, hi, points)
    ys = np.vstack([np.interp(grid, s[0], s[1]) for s in series])
    mean = ys.mean(axis=0)
    half = t_half_width(ys, axis=0)
    return grid, mean, half, len(series)


def final_value(run: RunData, checkpoint: str = "last", tag: str = CURVE_TAGS[0]) -> float:
    """The run's final ``violation_rate_1ms``: from ``metrics.json`` (``last`` or ``best``)
    when present, else the last value of ``tag``."""
    m = run.metrics or {}
    section = m.get(checkpoint)
    if isinstance(section, dict) and section.get("violation_rate_1ms") is not None:
        return float(section["violation_rate_1ms"])
    if tag in run.scalars and run.scalars[tag][1].size:
        return float(run.scalars[tag][1][-1])
    return math.nan


# --------------------------------------------------------------------------- baselines
def _parse_markdown_table(text: str) -> list[dict[str, str]]:
    rows = [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.strip().startswith("|")
    ]
    rows = [r for r in rows if not all(set(c) <= set("-: ") for c in r)]
    if len(rows) < 2:
        return []
    head = rows[0]
    return [dict(zip(head, r)) for r in rows[1:]]


def _number(text: Any) -> float:
    if text is None:
        return math.nan
    s = str(text).strip().replace(",", "").replace("**", "")
    pct = s.endswith("%")
    m = re.match(r"^[-+]?[0-9]*\.?[0-9]+(e[-+]?\d+)?", s.rstrip("%"), re.IGNORECASE)
    if not m:
        return math.nan
    return float(m.group(0)) / (100 if pct else 1)


def read_baselines(path: str | Path) -> list[dict[str, Any]]:
    """Baseline rows ``{policy, violation_rate_1ms, ci_low, ci_high}`` from a CSV or markdown
    table. Recognised columns: ``policy``/``name``; ``violation_rate_1ms`` (or
    ``violation_rate_1ms_mean``/``mean``); CI as ``*_low``/``*_high`` (or ``*_lo``/``*_hi``)
    or a half-width ``*ci95``. The long format of ``millinet evaluate``'s ``summary.csv``
    (``policy,metric,mean,ci95_low,ci95_high``) works too. Values may be fractions or
    percentages (``0.5%``). Rows whose policy is a path (a trained run or an exported policy
    evaluated alongside the heuristics) are skipped: the runs themselves are the curves."""
    import csv

    from millinet.envs.errors import ConfigError
    from millinet.envs.validation import read_text

    path = Path(path)
    try:  # a missing, binary or non-UTF-8 file, or a directory: one line naming it
        text = read_text(path)
    except ConfigError as exc:
        raise AnalysisError(f"baselines {exc}") from None
    if path.suffix.lower() in (".md", ".markdown"):
        rows = _parse_markdown_table(text)
    else:
        rows = list(csv.DictReader(text.splitlines()))
    out = []
    for row in rows:
        low = {k.strip().lower(): v for k, v in row.items() if k}
        if "metric" in low:  # long format (millinet evaluate's summary.csv): one metric per row
            if low["metric"].strip() != "violation_rate_1ms":
                continue
            low["violation_rate_1ms"] = low.get("mean")
        name = low.get("policy") or low.get("name")
        v = next(
            (low[k] for k in ("violation_rate_1ms", "violation_rate_1ms_mean", "mean") if k in low),
            None,
        )
        if not name or v is None or "/" in name or "\\" in name:
            continue  # no value, or a trained run / exported policy (a path): not a baseline
        ci_lo = next((low[k] for k in low if k.endswith(("_low", "_lo"))), None)
        ci_hi = next((low[k] for k in low if k.endswith(("_high", "_hi"))), None)
        half = next((low[k] for k in low if k.endswith("ci95")), None)
        mean = _number(v)
        lo, hi = _number(ci_lo), _number(ci_hi)
        if math.isnan(lo) and half is not None:
            lo, hi = mean - _number(half), mean + _number(half)
        out.append({"policy": name.strip("*` "), "violation_rate_1ms": mean, "ci_low": lo,
                    "ci_high": hi})  # fmt: skip
    if not out:
        raise AnalysisError(f"{path}: no rows with a policy/name and a violation_rate_1ms column")
    return out


# --------------------------------------------------------------------------- report
def _pct(x: float) -> str:
    return "–" if x is None or math.isnan(x) else f"{100 * x:.3f}%"


def summarize_groups(runs: list[RunData], checkpoint: str = "last") -> list[dict[str, Any]]:
    """Per group: runs, mean final violation_rate_1ms and its 95% CI across runs (Student t;
    the lower bound clipped at 0, a rate's floor)."""
    groups: dict[str, list[RunData]] = {}
    for r in runs:
        groups.setdefault(r.group, []).append(r)
    out = []
    for name, members in groups.items():
        vals = [final_value(r, checkpoint) for r in members]
        mean, half = mean_ci95(vals)
        out.append(
            {
                "policy": name,
                "runs": len(members),
                "violation_rate_1ms": mean,
                "ci_low": max(mean - half, 0.0) if not math.isnan(half) else math.nan,
                "ci_high": mean + half if not math.isnan(half) else math.nan,
                "values": vals,
            }
        )
    return out


def plot_curves(
    runs: list[RunData], out_png: Path, tags=CURVE_TAGS, baselines=None, log_y: bool = False
) -> Path:
    """Learning curves (mean and 95% CI across each group's runs), one panel per tag."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[str, list[RunData]] = {}
    for r in runs:
        groups.setdefault(r.group, []).append(r)
    tags = [t for t in tags if any(t in r.scalars for r in runs)] or list(tags[:1])
    fig, axes = plt.subplots(1, len(tags), figsize=(6.5 * len(tags), 4.2), squeeze=False)
    for ax, tag in zip(axes[0], tags):
        for gname, members in groups.items():
            band = curve_band(members, tag)
            if band is None:
                continue
            x, mean, half, n = band
            (line,) = ax.plot(x, mean, label=f"{gname} (n={n})")
            if n > 1:  # rates: the band stops at 0
                low = np.maximum(mean - half, 0.0)
                ax.fill_between(x, low, mean + half, alpha=0.25, color=line.get_color())
        for b in baselines or []:
            ax.axhline(b["violation_rate_1ms"], ls="--", lw=1, color="grey")
            ax.annotate(
                b["policy"],
                (1.0, b["violation_rate_1ms"]),
                xycoords=("axes fraction", "data"),
                fontsize=7,
                color="grey",
                ha="right",
                va="bottom",
            )
        ax.set_title(tag)
        ax.set_xlabel("env steps (decisions)")
        ax.set_ylabel("violation_rate_1ms")
        if log_y:  # log above 1e-4, linear below: 0 stays on the plot
            ax.set_yscale("symlog", linthresh=1e-4)
            ax.set_ylim(bottom=-2e-5)  # a zero curve stays visible above the axis
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
    return out_png


def markdown_report(
    runs: list[RunData],
    groups: list[dict[str, Any]],
    baselines: list[dict[str, Any]] | None,
    plot: Path,
    checkpoint: str,
) -> str:
    """The markdown report: comparison table (groups and baselines), then one row per run."""
    lines = [
        "# Run analysis",
        "",
        f"Final `violation_rate_1ms` ({checkpoint} model; mean and 95% CI across runs/seeds; "
        "lower is better). Learning curves: "
        f"![learning curves]({plot.name})",
        "",
        "| policy | runs | violation_rate_1ms | 95% CI |",
        "|---|---:|---:|---|",
    ]
    rows = [dict(g, kind="trained") for g in groups] + [
        dict(b, kind="baseline", runs="–") for b in baselines or []
    ]
    rows.sort(key=lambda r: (math.inf if math.isnan(r["violation_rate_1ms"]) else
                             r["violation_rate_1ms"]))  # fmt: skip
    for r in rows:
        ci = "–" if math.isnan(r["ci_low"]) else f"[{_pct(r['ci_low'])}, {_pct(r['ci_high'])}]"
        label = r["policy"] if r["kind"] == "trained" else f"{r['policy']} (baseline)"
        lines.append(f"| {label} | {r['runs']} | {_pct(r['violation_rate_1ms'])} | {ci} |")
    lines += [
        "",
        "## Runs",
        "",
        "| run | steps | wall s | env share | last | best | best at step |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        m = r.metrics or {}
        best = m.get("best") or {}
        share = m.get("env_time_share")
        lines.append(
            f"| {r.name} | {m.get('timesteps', '–')} | "
            f"{'–' if m.get('wall_s') is None else format(m['wall_s'], '.0f')} | "
            f"{'–' if share is None else f'{100 * share:.0f}%'} | "
            f"{_pct(final_value(r, 'last'))} | {_pct(final_value(r, 'best'))} | "
            f"{best.get('timesteps', '–')} |"
        )
    return "\n".join(lines) + "\n"


def analyze(
    specs: list[str],
    out_dir: str | Path,
    baselines: str | Path | None = None,
    checkpoint: str = "last",
    tags=CURVE_TAGS,
    log_y: bool = False,
) -> dict[str, Path]:
    """Write ``learning_curves.png``, ``runs.csv`` and ``report.md`` into ``out_dir``; returns
    their paths. Every input is read (and the output folder checked) before anything is
    written, so a bad input leaves no output folder behind."""
    import csv
    import io

    from millinet.envs.files import check_output_dir, output_dir, write_text_atomic

    out = check_output_dir(out_dir, "--out")
    base = read_baselines(baselines) if baselines else None
    runs = [load_run(p) for p in find_runs(list(specs))]
    empty = [r.name for r in runs if not any(t in r.scalars for t in tags)]
    if len(empty) == len(runs):
        raise AnalysisError(
            f"no learning curves: none of the runs has {' or '.join(tags)} in its event files "
            f"({', '.join(empty[:3])}{', ...' if len(empty) > 3 else ''})"
        )
    for name in empty:
        print(
            f"warning: {name}: no {' or '.join(tags)} in its event files; no curve", file=sys.stderr
        )
    groups = summarize_groups(runs, checkpoint)
    with output_dir(out):
        png = plot_curves(runs, out / "learning_curves.png", tags, base, log_y)
        report = write_text_atomic(
            out / "report.md", markdown_report(runs, groups, base, png, checkpoint)
        )
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["run", "group", "timesteps", "wall_s", "env_time_share",
                    "violation_rate_1ms_last", "violation_rate_1ms_best"])  # fmt: skip
        for r in runs:
            m = r.metrics or {}
            w.writerow([r.name, r.group, m.get("timesteps"), m.get("wall_s"),
                        m.get("env_time_share"), final_value(r, "last"),
                        final_value(r, "best")])  # fmt: skip
        table = write_text_atomic(out / "runs.csv", buf.getvalue())
    return {"report": report, "plot": png, "table": table}

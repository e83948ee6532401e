"""Pictures of a running city: the map behind ``render_mode="rgb_array"`` and ``millinet render``.

A frame shows

* every node at its coordinates (km): network PoPs as grey dots, factories as blue squares,
  compute sites by tier (on-prem: small orange squares, edge: purple triangles, city: large red
  hexagons), factories and city sites labelled, and the PoPs too in a small network;
* every link coloured by its utilisation since the previous frame (the busier direction; since
  the start for the first frame), drawn wider for more capacity, with a red halo where a
  transmit queue holds more than :data:`BACKLOG_HALO_US`;
* beside each site a bar of its compute queue: the wait until its earliest server frees, full
  height at 1 ms, red past 1 ms;
* the pending task's candidate paths (dashed orange; grey when masked) and the chosen path
  (magenta; black when the choice was masked, i.e. rejected), the pending factory ringed;
* the clock, the decisions and the violations so far per class.

Drawing needs matplotlib (the ``render`` extra; ``video`` adds the MP4 writers): the base install
stays numpy-only and a missing extra is a one-line error when the first frame is drawn.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from millinet.envs.config import CLASS_NAMES
from millinet.envs.errors import require_extra

if TYPE_CHECKING:
    from millinet.envs.engine import Arrival, Engine
    from millinet.envs.scenario import Scenario

BACKLOG_HALO_US = 10.0
"""A link direction whose transmit queue holds more than this (us) gets a red halo."""
UTIL_FLOOR = 1e-3
"""Lowest utilisation on the (logarithmic) colour scale; links below it are drawn idle grey."""
IDLE_COLOUR = "#c4c4c4"
QUEUE_FULL_US = 1000.0
"""Compute wait (us) drawn as a full bar."""
TIER_STYLE = {  # role: (marker, size pt^2, face colour, legend label)
    "on_prem": ("s", 30, "#f28e2b", "on-prem site"),
    "edge": ("^", 110, "#7b4ea3", "edge site"),
    "city": ("H", 260, "#c0392b", "city site"),
}
FACTORY_STYLE = ("s", 90, "#1f5fa8")
CHOSEN_COLOUR = "#e6007e"
LABEL_POPS_UP_TO = 20
"""PoPs are labelled with their names when the network has at most this many."""
_NETWORK_ROLES = ("access", "aggregation", "core")


class CityRenderer:
    """Draws frames of one scenario's map; keeps its matplotlib figure between frames.

    ``size`` is the frame's (width, height) in pixels; :meth:`frame` returns uint8 RGB arrays
    of shape (height, width, 3).
    """

    def __init__(self, scenario: Scenario, size: tuple[int, int] = (960, 720)) -> None:
        require_extra("render", 'render_mode="rgb_array" and millinet render')
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.scenario = scenario
        self.size = size
        topo = scenario.network.topology
        self._xy = np.array([(n.x_km, n.y_km) for n in topo.nodes])
        dpi = 100
        self.figure = Figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
        self._canvas = FigureCanvasAgg(self.figure)
        self._ax = self.figure.add_axes((0.0, 0.0, 0.7, 1.0))  # the map; a panel on the right
        self._cax = self.figure.add_axes((0.725, 0.06, 0.02, 0.3))
        self._static()
        self._prev: tuple[float, np.ndarray] | None = None
        self._counted = 0
        self._late = np.zeros(len(CLASS_NAMES), dtype=np.int64)
        self._finished = np.zeros(len(CLASS_NAMES), dtype=np.int64)

    # ------------------------------------------------------------------ static layer
    def _static(self) -> None:
        from matplotlib import colormaps
        from matplotlib.collections import LineCollection, PolyCollection
        from matplotlib.colors import LogNorm

        ax, topo, xy = self._ax, self.scenario.network.topology, self._xy
        ax.set_aspect("equal")
        ax.set_axis_off()
        span = np.ptp(xy, axis=0).max() if len(xy) > 1 else 1.0
        self._span = max(span, 1.0)
        pad = 0.08 * self._span
        lo, hi = xy.min(axis=0) - pad, xy.max(axis=0) + pad
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        segs = np.array([[xy[lk.a], xy[lk.b]] for lk in topo.links])
        widths = [0.8 + 0.7 * math.log10(max(lk.capacity_gbps, 1.0)) for lk in topo.links]
        self._halo = LineCollection([], colors="#e0301e", linewidths=7, alpha=0.35, zorder=1)
        ax.add_collection(self._halo)
        cmap = colormaps["viridis"].with_extremes(under=IDLE_COLOUR, bad=IDLE_COLOUR)
        self._links = LineCollection(
            segs, cmap=cmap, norm=LogNorm(UTIL_FLOOR, 1.0), linewidths=widths, zorder=2
        )
        self._links.set_array(np.zeros(len(segs)))
        ax.add_collection(self._links)
        cbar = self.figure.colorbar(self._links, cax=self._cax, extend="min")
        cbar.set_label(
            "link utilisation since the last frame\n(the first frame: since the start)",
            fontsize=7.5,
        )
        cbar.ax.tick_params(labelsize=7)
        self._candidates = LineCollection([], linewidths=1.6, linestyles="--", zorder=3)
        self._chosen = LineCollection([], linewidths=4.0, zorder=4, alpha=0.85)
        ax.add_collection(self._candidates)
        ax.add_collection(self._chosen)

        roles = [n.role for n in topo.nodes]
        net = [i for i, r in enumerate(roles) if r in _NETWORK_ROLES]
        ax.scatter(*xy[net].T, s=12, c="#8c8c8c", zorder=5, label="PoP")
        fac = [i for i, r in enumerate(roles) if r == "factory"]
        marker, size, colour = FACTORY_STYLE
        ax.scatter(*xy[fac].T, s=size, marker=marker, c=colour, zorder=6, label="factory")
        for role, (marker, size, colour, label) in TIER_STYLE.items():
            idx = [i for i, r in enumerate(roles) if r == role]
            if idx:
                ax.scatter(
                    *xy[idx].T, s=size, marker=marker, c=colour, edgecolors="white",
                    linewidths=0.8, zorder=6, label=label,
                )  # fmt: skip
        if len(net) <= LABEL_POPS_UP_TO:  # a small (imported) network: name its PoPs
            for i in net:
                ax.annotate(
                    topo.nodes[i].name, xy[i], xytext=(-4, 5), textcoords="offset points",
                    fontsize=6.5, ha="right", color="#555", zorder=7,
                )  # fmt: skip
        for i, node in enumerate(topo.nodes):
            if node.role in ("factory", "city"):
                ax.annotate(
                    node.name, xy[i], xytext=(0, -17) if node.role == "factory" else (-8, 8),
                    textcoords="offset points", fontsize=7, zorder=7, ha="center"
                    if node.role == "factory" else "right",
                    color="#1f5fa8" if node.role == "factory" else "#7f1d1d",
                )  # fmt: skip
        self._pending = ax.scatter(
            [], [], s=420, facecolors="none", edgecolors=CHOSEN_COLOUR, linewidths=2.2, zorder=7
        )
        handles, labels = ax.get_legend_handles_labels()
        self.figure.legend(
            handles, labels, loc="upper left", bbox_to_anchor=(0.712, 0.68), fontsize=8,
            frameon=False, markerscale=0.8,
        )  # fmt: skip
        key = (
            f"bar beside a site: compute wait\n(full at {QUEUE_FULL_US:g} us, red past it)\n"
            f"red halo: link queue > {BACKLOG_HALO_US:g} us\n"
            "grey: idle link (< 0.1 %)\ndashed orange: candidate paths\n"
            "magenta: the chosen path\n(black: a masked choice)"
        )
        self.figure.text(0.725, 0.41, key, fontsize=7.5, va="bottom", color="#333")
        self._sites = [i for i, r in enumerate(roles) if r in TIER_STYLE]
        self._gauge = self._site_boxes(1.0)
        ax.add_collection(
            PolyCollection(self._gauge, facecolors="#eeeeee", edgecolors="#777", linewidths=0.4,
                           zorder=6)
        )  # fmt: skip
        self._bars = PolyCollection([], zorder=6, linewidths=0)
        ax.add_collection(self._bars)
        self._text = self.figure.text(
            0.712, 0.985, "", va="top", ha="left", family="monospace", fontsize=7.5
        )

    def _site_boxes(self, fill: np.ndarray | float) -> list[list[tuple[float, float]]]:
        """Bar outlines beside each site, filled to ``fill`` (0..1 per site) of full height."""
        w, h_full = 0.014 * self._span, 0.06 * self._span
        fill = np.broadcast_to(fill, (len(self._sites),))
        out = []
        for s, f in zip(self._sites, fill):
            x, y = self._xy[s] + (0.016 * self._span, -0.01 * self._span)
            h = f * h_full
            out.append([(x, y), (x + w, y), (x + w, y + h), (x, y + h)])
        return out

    # ------------------------------------------------------------------ dynamic layer
    def _count(self, engine: Engine) -> None:
        """Add the records finished since the last frame (start over after a reset)."""
        records = engine.records
        if len(records) < self._counted:
            self._counted = 0
            self._late[:] = 0
            self._finished[:] = 0
        for rec in records[self._counted :]:
            self._finished[rec[1]] += 1
            self._late[rec[1]] += rec[12] != 0
        self._counted = len(records)

    def _utilisation(self, engine: Engine, busy: np.ndarray) -> np.ndarray:
        """Busy share per link over the interval since the previous frame (max of both ways)."""
        now = engine.now
        if self._prev is not None and self._prev[0] < now and self._prev[1].shape == busy.shape:
            util = (busy - self._prev[1]) / (now - self._prev[0])
        else:
            util = busy / now if now > 0 else np.zeros_like(busy)
        self._prev = (now, busy)
        return util.reshape(-1, 2).max(axis=1)

    def _path_segments(self, path: tuple[int, ...]) -> list[np.ndarray]:
        return [np.array([self._xy[a], self._xy[b]]) for a, b in zip(path[:-1], path[1:])]

    def frame(
        self,
        engine: Engine,
        pending: Arrival | None = None,
        chosen: tuple[Arrival, int] | None = None,
        decisions: int | None = None,
    ) -> np.ndarray:
        """The map now: RGB uint8 array (height, width, 3). ``pending`` is the task awaiting a
        decision (its candidates are drawn), ``chosen`` a task and the slot it was given."""
        net = engine.net
        state = engine.queue_state()
        if len(engine.records) < self._counted or (self._prev and engine.now < self._prev[0]):
            self._prev = None  # the engine was reset
        util = self._utilisation(engine, state["link_busy_s"])
        self._links.set_array(np.minimum(util, 1.0))  # below UTIL_FLOOR: the idle grey
        backlog = state["link_backlog_s"].reshape(-1, 2).max(axis=1) * 1e6
        links = net.topology.links
        self._halo.set_segments(
            [self._xy[[links[i].a, links[i].b]] for i in np.flatnonzero(backlog > BACKLOG_HALO_US)]
        )

        wait_us = np.zeros(len(net.topology.nodes))
        for p, site in enumerate(net.pool_site):
            wait_us[site] = max(wait_us[site], state["pool_wait_s"][p] * 1e6)
        level = wait_us[self._sites] / QUEUE_FULL_US
        self._bars.set_verts(self._site_boxes(np.minimum(level, 1.0)))
        self._bars.set_facecolors(
            ["#2ca02c" if v < 0.1 else "#ff9f1c" if v < 1 else "#d62728" for v in level]
        )

        segs, colours = [], []
        if pending is not None:
            mask = engine.mask(pending)
            for k, cand in enumerate(engine.candidates(pending).slots):
                if cand is not None:
                    new = self._path_segments(cand.path)
                    segs += new
                    colours += ["#ff7f0e" if mask[k] else "#9a9a9a"] * len(new)
            self._pending.set_offsets(self._xy[[net.factories[pending.factory]]])
        else:
            self._pending.set_offsets(np.empty((0, 2)))
        self._candidates.set_segments(segs)
        self._candidates.set_color(colours)
        segs = []
        verdict = ""
        if chosen is not None:
            task, slot = chosen
            cands = engine.candidates(task).slots
            ok = 0 <= slot < len(cands) and cands[slot] is not None and engine.mask(task)[slot]
            if ok:
                segs = self._path_segments(cands[slot].path)
                site = net.topology.nodes[cands[slot].site].name
                verdict = f"chosen: slot {slot}\n  -> {site}"
            else:
                verdict = f"chosen: slot {slot}\n  masked: rejected"
            self._chosen.set_color(CHOSEN_COLOUR if ok else "black")
        self._chosen.set_segments(segs)

        self._count(engine)
        lines = [f"t = {engine.now * 1e3:.3f} ms"]
        if decisions:
            lines.append(f"decisions {decisions:,}")
        if pending is not None:
            lines += [
                f"pending: {CLASS_NAMES[pending.cls]}",
                f"  from {self.scenario.factory_names[pending.factory]}, "
                f"{pending.up_bytes:,.0f} B up",
            ]
        if verdict:
            lines.append(verdict)
        lines.append("late or dropped / finished:")
        for c, name in enumerate(CLASS_NAMES):
            n, bad = self._finished[c], self._late[c]
            rate = f"{100 * bad / n:5.1f}%" if n else "     -"
            lines.append(f" {name:<12} {bad:>6,}/{n:<7,}{rate}")
        self._text.set_text("\n".join(lines))

        self._canvas.draw()
        rgba = np.asarray(self._canvas.buffer_rgba())
        return rgba[..., :3].copy()

    def close(self) -> None:
        """Release the figure."""
        self.figure.clear()


def save_png(path: str, frame: np.ndarray) -> None:
    """Write an RGB frame as a PNG file."""
    require_extra("render", "writing a PNG")
    from matplotlib.image import imsave

    imsave(path, frame)


__all__ = ["CityRenderer", "save_png"]

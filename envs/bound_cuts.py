"""Demand-bound intervals of the lower bound: which ones a fractional assignment violates.

For one resource of capacity ``cap`` and any interval [a, b], the work of the (task, candidate)
pairs whose window lies inside [a, b], weighted by their assignment x, is at most
``cap * (b - a)`` (``docs/bound.md``). There are far too many intervals to write them all into
the LP, so the bound adds them lazily: :func:`violated_intervals` finds intervals that the
current solution x violates (separation), and :func:`interval_row` turns one into an LP row.

The search is exact for intervals whose end points are window end points of pairs with x > 0,
up to a span; longer intervals are searched on a subsample of the end points (every 4^s-th
point for spans 4^s times longer), which keeps the cost of a pass near-linear in the number of
windows. Missing an interval only weakens the bound; it never makes it invalid.
"""

from __future__ import annotations

import numpy as np

from millinet.envs.bound_windows import ResourceWindows

POINTS_PER_BLOCK = 256
"""Interval starts examined together in one dense (starts x ends) matrix."""

SCALE_FACTOR = 4
"""Each coarser scale keeps every 4th end point and searches 4 times longer intervals."""

REL_TOL = 1e-6
"""An interval counts as violated when its load exceeds capacity by more than this share (plus
an absolute 1e-6 µs): far below anything that moves the bound, far above LP round-off."""


def may_overload(res: ResourceWindows, load: np.ndarray | None = None) -> bool:
    """False when no interval of this resource can be violated by any assignment whose per-window
    load is at most ``load`` (default: the full work of every window, i.e. any assignment).

    Every window has length at least ``l_min``, so the windows inside [a, b] all start in
    [a, b - l_min]; if for every a <= y the load starting in [a, y] is at most
    ``cap * (y + l_min - a)``, no interval can be overloaded. One O(m) pass over the windows
    sorted by start.
    """
    load = res.work_us if load is None else load
    if res.size == 0 or load.sum() <= 0:
        return False
    cap = res.capacity
    l_min = float((res.end_us - res.start_us).min())
    prefix = np.concatenate(([0.0], np.cumsum(load)))
    s = prefix[:-1] - cap * res.start_us  # "before window i"
    u = prefix[1:] - cap * res.start_us  # "through window j"
    worst = float(np.max(u - np.minimum.accumulate(s)))
    return worst > cap * l_min * (1 + REL_TOL)


def _block_cuts(
    a_pts: np.ndarray,
    b_pts: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    load: np.ndarray,
    cap: float,
    max_cuts: int,
) -> list[tuple[float, float]]:
    """The most violated intervals [a_i, b_j] of one block (pairwise disjoint, at most
    ``max_cuts``), with a_i from ``a_pts`` and b_j from ``b_pts`` (both sorted).

    ``start``/``end``/``load`` are the windows with start >= a_pts[0] and end <= b_pts[-1].
    The load inside [a_i, b_j] is a 2-D suffix/prefix sum of the windows binned by (last
    a <= start, first b >= end).
    """
    na, nb = a_pts.size, b_pts.size
    i = np.searchsorted(a_pts, start, side="right") - 1
    j = np.searchsorted(b_pts, end, side="left")
    binned = np.bincount(i * nb + j, weights=load, minlength=na * nb).reshape(na, nb)
    inside = np.cumsum(binned, axis=1)[::-1].cumsum(axis=0)[::-1]
    length = b_pts[None, :] - a_pts[:, None]
    excess = inside - cap * length
    excess[length <= 0] = -np.inf
    best_j = np.argmax(excess, axis=1)
    best = excess[np.arange(na), best_j]
    threshold = REL_TOL * cap * np.maximum(length[np.arange(na), best_j], 0) + 1e-6
    cuts: list[tuple[float, float]] = []
    for k in np.argsort(-best):
        if best[k] <= threshold[k] or len(cuts) >= max_cuts:
            break
        a, b = float(a_pts[k]), float(b_pts[best_j[k]])
        gap = (b - a) / 8  # keep cuts apart: two nearly equal intervals price the same work
        if all(abs(a - a2) > gap or abs(b - b2) > gap for a2, b2 in cuts):
            cuts.append((a, b))
    return cuts


def violated_intervals(
    res: ResourceWindows, load: np.ndarray, max_per_block: int = 8
) -> list[tuple[float, float]]:
    """Intervals [a, b] (µs) of ``res`` whose windows carry more than ``capacity * (b - a)``.

    ``load`` (shape (m,)) is each window's work times its assignment x. Scale 0 examines every
    pair of window end points of loaded windows with b - a up to twice the median window
    length; scale s keeps every 4^s-th point and spans 4^s times longer, until one span covers
    the resource's whole horizon.
    """
    active = load > 1e-12
    if not active.any() or not may_overload(res, load):
        return []
    start, end, load = res.start_us[active], res.end_us[active], load[active]
    cap = res.capacity
    starts, ends = np.unique(start), np.unique(end)
    horizon = float(end.max() - start.min())
    span = 2.0 * float(np.median(end - start))
    stride = 1
    cuts: list[tuple[float, float]] = []
    while True:
        a_all, b_all = starts[::stride], ends[::stride]
        for lo in range(0, a_all.size, POINTS_PER_BLOCK):
            a_pts = a_all[lo : lo + POINTS_PER_BLOCK]
            b_lo = np.searchsorted(b_all, a_pts[0], side="right")
            b_hi = np.searchsorted(b_all, a_pts[-1] + span, side="right")
            b_pts = b_all[b_lo:b_hi]
            if b_pts.size == 0:
                continue
            first = np.searchsorted(start, a_pts[0], side="left")  # start is sorted
            last = np.searchsorted(start, b_pts[-1], side="right")
            sel = first + np.flatnonzero(end[first:last] <= b_pts[-1])
            if sel.size:
                cuts += _block_cuts(
                    a_pts, b_pts, start[sel], end[sel], load[sel], cap, max_per_block
                )
        if span >= horizon:
            return cuts
        span *= SCALE_FACTOR
        stride *= SCALE_FACTOR


def interval_row(res: ResourceWindows, a: float, b: float) -> tuple[np.ndarray, float, float]:
    """Indices into ``res`` of every window inside [a, b], and the hull [a', b'] of those
    windows (the same row with the smallest right-hand side ``capacity * (b' - a')``)."""
    lo = np.searchsorted(res.start_us, a, side="left")
    hi = np.searchsorted(res.start_us, b, side="right")
    inside = lo + np.flatnonzero(res.end_us[lo:hi] <= b)
    if inside.size == 0:
        return inside, a, b
    return inside, float(res.start_us[inside].min()), float(res.end_us[inside].max())

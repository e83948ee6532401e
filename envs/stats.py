"""Statistics over seeds and runs, in one module: Student-t intervals, the bootstrap, paired
differences (numpy + scipy, seeded, vectorised).

The **t-interval** (:func:`mean_ci95`, :func:`t_half_width`, :func:`t_interval`) summarises a few
training runs or episodes (a run's ``metrics.json``, learning curves across seeds).

Every number the evaluation reports is the mean over seeds of a per-seed metric; its 95%
interval is a **percentile bootstrap over seeds** (resample the seeds with replacement, take
the mean, read the 2.5% and 97.5% percentiles of those means). With one scenario there is one
stratum, so this is also what rliable's stratified bootstrap reduces to.

Small samples: a plain percentile bootstrap is too narrow for few seeds (for normal data and
n = 10 it covers the mean about 91% of the time, not 95%), because the bootstrap distribution
has the spread of the plug-in standard deviation and normal rather than t tails. We use
Hesterberg's *expanded* percentile interval (Hesterberg 2015, "What teachers should know about
the bootstrap", section 5.2): read the percentiles at ``Phi(-sqrt(n / (n - 1)) * t_{n-1,
alpha/2})`` instead of ``alpha/2``. For large n this is the plain percentile interval; for
small n it matches the t-interval's width while keeping the bootstrap's asymmetry. Set
``expand=False`` for the plain one.

Why not ``scipy.stats.bootstrap``: it has no expanded percentile interval, and the evaluation
resamples one set of seed indices for every policy at once (rows stay paired), for thousands
of cells per evaluation; both are a few lines of numpy here.

Paired comparisons (two policies evaluated on the same seeds, hence the same arrivals) take the
bootstrap of the per-seed *differences*: common random numbers make that interval much tighter
than comparing two independent intervals.
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_RESAMPLES = 10_000
LEVEL = 0.95


def expanded_alpha(n: int, level: float = LEVEL) -> float:
    """Two-sided tail mass at which to read the bootstrap percentiles (Hesterberg)."""
    from scipy import stats as _st  # late: worker processes never need scipy

    alpha = 1.0 - level
    if n < 2:
        return alpha
    t = _st.t.ppf(1.0 - alpha / 2.0, df=n - 1)
    return float(2.0 * _st.norm.cdf(-math.sqrt(n / (n - 1)) * t))


def bootstrap_ci(
    samples: np.ndarray,
    level: float = LEVEL,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    expand: bool = True,
) -> tuple[float, float, float]:
    """(mean, low, high): the mean of ``samples`` and its bootstrap confidence interval.

    ``samples``: shape (n,), one value per seed; NaNs are left out (a seed where the metric is
    undefined, e.g. no task of a class completed). With fewer than two values the interval is
    (nan, nan). Deterministic for a given ``seed``.
    """
    x = np.asarray(samples, dtype=np.float64)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    if np.all(x == x[0]):
        return mean, mean, mean
    means = bootstrap_means(x[None, :], resamples, seed)[0]
    alpha = expanded_alpha(x.size, level) if expand else 1.0 - level
    low, high = np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])
    return mean, float(low), float(high)


def bootstrap_means(x: np.ndarray, resamples: int, seed: int = 0) -> np.ndarray:
    """Bootstrap means of each row of ``x`` (shape (m, n)): shape (m, resamples).

    One generator, seeded, draws ``resamples`` index vectors shared by all rows (so rows that
    are per-seed values of different policies stay paired)."""
    rng = np.random.default_rng(seed)
    n = x.shape[1]
    out = np.empty((x.shape[0], resamples))
    chunk = max(1, 2_000_000 // max(n, 1))  # bound memory: chunk x n indices at a time
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[:, start:stop] = x[:, idx].mean(axis=2)
    return out


def paired_difference_ci(
    a: np.ndarray,
    b: np.ndarray,
    level: float = LEVEL,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(mean, low, high) of ``a - b`` over seeds where both are defined (paired bootstrap)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired samples need equal shapes, got {a.shape} and {b.shape}")
    return bootstrap_ci(a - b, level=level, resamples=resamples, seed=seed)


def t_half_width(x: np.ndarray, axis: int = 0, level: float = LEVEL) -> np.ndarray:
    """Half-width of the Student-t interval of the mean of ``x`` along ``axis`` (no NaNs)."""
    from scipy import stats as _st

    x = np.asarray(x, dtype=np.float64)
    n = x.shape[axis]
    if n < 2:
        return np.full(np.delete(x.shape, axis), math.nan)
    return _st.t.ppf(0.5 + level / 2.0, df=n - 1) * x.std(axis=axis, ddof=1) / math.sqrt(n)


def mean_ci95(values) -> tuple[float, float]:
    """Mean and half-width of its 95% Student-t interval (NaNs skipped; half-width NaN for
    fewer than two values, both NaN for none)."""
    x = np.asarray([v for v in values if not math.isnan(v)], dtype=np.float64)
    if x.size == 0:
        return math.nan, math.nan
    return float(x.mean()), float(t_half_width(x))


def t_interval(samples: np.ndarray, level: float = LEVEL) -> tuple[float, float, float]:
    """(mean, low, high): the classical Student-t interval of the mean (NaNs skipped)."""
    x = np.asarray(samples, dtype=np.float64)
    x = x[~np.isnan(x)]
    mean = float(x.mean())
    half = float(t_half_width(x, level=level))
    return mean, mean - half, mean + half

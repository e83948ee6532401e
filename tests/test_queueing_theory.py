"""Anchors (DESIGN.md section 5): the engine against closed-form queueing theory.

Each test builds a one-queue scenario: one factory attached to a PoP that hosts one compute
site over a zero-length link of 10^9 Gbit/s (serialisation ~1e-14 s, so it adds nothing
measurable), so the trip is uplink hop -> pool -> downlink hop, with Poisson arrivals
(robot_sync class overridden). Either the pool or the uplink is the queue under test; the
other elements add only a constant (propagation + forwarding), which the records report
separately.

Tolerance rule: a statistic is compared with theory within ``Z = 4.5`` standard errors, the
standard error coming from *batch means* (the post-warm-up tasks in arrival order are cut into
``BATCHES`` = 40 consecutive batches; the batch averages are nearly independent because a
batch of ~4,000 tasks is far longer than the queue's relaxation time of tens of tasks).
For a t-distribution with 39 degrees of freedom, |t| > 4.5 has probability ~6e-5. Each test
also asserts that the tolerance band is narrow: 10-18 % of the theoretical value for means,
25 % for tail probabilities down to 0.08, so that a wrong model could not hide inside it.
The first ``WARMUP`` tasks (empty-system start) are dropped.
"""

import math

import numpy as np
import pytest

from millinet.envs.engine import Engine
from millinet.envs.scenario import load_scenario

Z = 4.5
BATCHES = 40
WARMUP = 10_000


def one_queue(
    rate_per_s: float,
    compute: dict,
    up_bytes: dict,
    servers: int = 1,
    uplink_gbps: float = 10.0,
) -> dict:
    """Factory -> PoP (1 km, 2 us forwarding) -> site with ``servers`` CPU servers, Poisson."""
    return {
        "name": "one-queue",
        "topology": {
            "generator": "explicit",
            "nodes": [
                {"name": "pop", "role": "access"},
                {"name": "site", "role": "edge", "pools": {"cpu": {"servers": servers}}},
            ],
            "links": [
                {
                    "a": "pop",
                    "b": "site",
                    "length_km": 0.0,
                    "capacity_gbps": 1e9,
                    "forwarding_us": 0.0,
                },
            ],  # fmt: skip
        },
        "candidates": {"sites": 1, "paths": 1},
        "classes": {
            "robot_sync": {
                "up_bytes": up_bytes,
                "down_bytes": {"dist": "constant", "value": 0},
                "compute_us": compute,
            }
        },
        "factories": [
            {
                "name": "plant",
                "profile": "custom",
                "attach": "pop",
                "uplink_km": 1.0,
                "uplink_gbps": uplink_gbps,
                "uplink_forwarding_us": 2.0,
                "on_prem": {},
                "workload": {"robot_sync": {"process": "poisson", "rate_per_s": rate_per_s}},
            }
        ],
    }


def run(spec: dict, n_tasks: int, seed: int) -> np.ndarray:
    """Dispatch the first ``n_tasks`` arrivals to slot 0, drain, return records by task id
    with the warm-up removed."""
    engine = Engine(load_scenario(spec), seed)
    for _ in range(n_tasks):
        engine.dispatch(engine.next_arrival(), 0)
    engine.drain()
    rec = np.sort(engine.record_array(), order="task_id")
    assert rec.size == n_tasks and (rec["status"] != 2).all()
    return rec[WARMUP:]


def batch_mean(x: np.ndarray) -> tuple[float, float]:
    """Mean of ``x`` and its batch-means standard error (``BATCHES`` consecutive batches)."""
    m = x.size // BATCHES
    means = x[: m * BATCHES].reshape(BATCHES, m).mean(axis=1)
    return float(means.mean()), float(means.std(ddof=1) / math.sqrt(BATCHES))


def assert_close(name: str, x: np.ndarray, theory: float, max_rel_band: float) -> None:
    """``mean(x)`` within Z batch-means SEs of ``theory``; the band itself is tight."""
    mean, se = batch_mean(x)
    assert Z * se < max_rel_band * theory, f"{name}: too noisy (SE {se:.3g}) to test anything"
    assert abs(mean - theory) < Z * se, (
        f"{name}: measured {mean:.6g}, theory {theory:.6g}, "
        f"{abs(mean - theory) / se:.1f} SE apart (tolerance {Z} SE)"
    )


def erlang_c(c: int, offered: float) -> float:
    """Probability that an arrival waits in M/M/c with offered load ``offered`` = lambda/mu."""
    top = offered**c / math.factorial(c) * c / (c - offered)
    return top / (sum(offered**k / math.factorial(k) for k in range(c)) + top)


# --------------------------------------------------------------------------- M/M/1
MU = 20_000.0  # 1/s: 50 us mean service
LAM = 14_000.0  # 1/s: rho = 0.7


@pytest.fixture(scope="module")
def mm1_compute():
    spec = one_queue(
        LAM,
        compute={"dist": "exponential", "mean": 1e6 / MU},
        up_bytes={"dist": "constant", "value": 0},
    )
    rec = run(spec, 150_000, seed=1)
    # the network adds only the constant propagation + forwarding of the two hops
    assert (rec["link_wait_s"] == 0).all() and (rec["serialisation_s"] == 0).all()
    np.testing.assert_allclose(rec["propagation_s"], rec["propagation_s"][0], rtol=1e-12)
    sojourn = rec["compute_wait_s"] + rec["compute_s"]
    np.testing.assert_allclose(rec["latency_s"] - rec["propagation_s"], sojourn, atol=1e-12)
    return sojourn


def test_mm1_compute_mean_sojourn(mm1_compute):
    assert_close("M/M/1 pool mean sojourn", mm1_compute, 1 / (MU - LAM), max_rel_band=0.10)


@pytest.mark.parametrize("multiple", [0.5, 1.0, 2.0, 2.5])
def test_mm1_compute_sojourn_tail(mm1_compute, multiple):
    # P(T > t) = exp(-(mu - lambda) t), at t = multiple x the mean sojourn
    t = multiple / (MU - LAM)
    tail = (mm1_compute > t).astype(float)
    assert_close(f"M/M/1 P(T > {multiple} W)", tail, math.exp(-multiple), max_rel_band=0.25)


def test_mm1_link_mean_sojourn_and_tail():
    # exponential payloads of mean 6,250 B on the 1 Gbit/s uplink: 50 us mean serialisation
    spec = one_queue(
        LAM,
        compute={"dist": "constant", "value": 0},
        up_bytes={"dist": "exponential", "mean": 1e9 / MU / 8},
        uplink_gbps=1.0,
    )
    rec = run(spec, 150_000, seed=2)
    assert (rec["compute_wait_s"] == 0).all() and (rec["compute_s"] == 0).all()
    sojourn = rec["link_wait_s"] + rec["serialisation_s"]  # only the uplink hop carries bytes
    assert_close("M/M/1 link mean sojourn", sojourn, 1 / (MU - LAM), max_rel_band=0.10)
    for multiple in (1.0, 2.0):
        tail = (sojourn > multiple / (MU - LAM)).astype(float)
        assert_close(f"M/M/1 link P(T > {multiple} W)", tail, math.exp(-multiple), 0.25)


# --------------------------------------------------------------------------- M/G/1 (P-K)
@pytest.mark.parametrize(
    "compute, mean_s, second_moment_s2",
    [
        ({"dist": "constant", "value": 50}, 50e-6, (50e-6) ** 2),  # M/D/1
        # uniform on [a, b]: E[S^2] = (a^2 + ab + b^2) / 3
        ({"dist": "uniform", "low": 20, "high": 100}, 60e-6, (20**2 + 20 * 100 + 100**2) / 3e12),
    ],
    ids=["M/D/1", "M/G/1-uniform"],
)
def test_pollaczek_khinchine_mean_wait(compute, mean_s, second_moment_s2):
    rho = 0.7
    lam = rho / mean_s
    spec = one_queue(lam, compute=compute, up_bytes={"dist": "constant", "value": 0})
    rec = run(spec, 120_000, seed=3)
    theory = lam * second_moment_s2 / (2 * (1 - rho))
    assert_close("P-K mean wait", rec["compute_wait_s"], theory, max_rel_band=0.12)


# --------------------------------------------------------------------------- M/M/c
C = 4
RHO_C = 0.8
LAM_C = RHO_C * C * MU


@pytest.fixture(scope="module")
def mmc():
    spec = one_queue(
        LAM_C,
        compute={"dist": "exponential", "mean": 1e6 / MU},
        up_bytes={"dist": "constant", "value": 0},
        servers=C,
    )
    return run(spec, 200_000, seed=4)


def test_erlang_c_formula_reduces_to_mm1():
    assert erlang_c(1, 0.7) == pytest.approx(0.7)
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)  # textbook: c = 2, a = 1


def test_mmc_mean_wait_and_wait_probability(mmc):
    p_wait = erlang_c(C, LAM_C / MU)
    assert_close("M/M/c P(wait > 0)", (mmc["compute_wait_s"] > 0).astype(float), p_wait, 0.05)
    assert_close("M/M/c mean wait", mmc["compute_wait_s"], p_wait / (C * MU - LAM_C), 0.18)


# --------------------------------------------------------------------------- Little's law
def test_littles_law(mmc):
    """L = lambda W for the whole trip (uplink, pool, downlink) of the M/M/c system.

    L is the time average of N(t), the number of tasks between arrival and departure, built by
    sweeping the records' (arrival, departure) instants, over a window after the warm-up.
    lambda and W are measured separately (arrivals in the window per second; mean latency of
    those tasks). The two sides differ only by edge effects at the window ends (a few tasks
    times a few hundred us over a ~2 s window), hence the 0.5 % tolerance; L is also checked
    against theory, lambda (W_q + 1/mu + fixed delay), with batch means over time windows.
    """
    arrive = mmc["arrival_s"]
    depart = arrive + mmc["latency_s"]
    t0, t1 = float(arrive[0]), float(arrive[-1])
    # N(t) as a step function: +1 at each arrival, -1 at each departure
    times = np.concatenate([arrive, depart])
    steps = np.concatenate([np.ones(arrive.size), -np.ones(depart.size)])
    order = np.argsort(times, kind="stable")
    times, n_after = times[order], np.cumsum(steps[order])
    assert n_after.min() >= 0 and n_after[-1] == 0

    def time_average(a: float, b: float) -> float:
        edges = np.clip(np.concatenate([times, [b]]), a, b)
        return float(np.sum(n_after * np.diff(edges)) / (b - a))

    L = time_average(t0, t1)
    inside = (arrive >= t0) & (arrive < t1)
    lam_hat = inside.sum() / (t1 - t0)
    W_hat = float(mmc["latency_s"][inside].mean())
    assert abs(L - lam_hat * W_hat) < 0.005 * L, (L, lam_hat * W_hat)

    fixed = float(mmc["propagation_s"][0])  # two hops of propagation + forwarding
    p_wait = erlang_c(C, LAM_C / MU)
    L_theory = LAM_C * (p_wait / (C * MU - LAM_C) + 1 / MU + fixed)
    cuts = np.linspace(t0, t1, BATCHES + 1)
    batch_L = np.array([time_average(a, b) for a, b in zip(cuts[:-1], cuts[1:])])
    se = batch_L.std(ddof=1) / math.sqrt(BATCHES)
    assert Z * se < 0.08 * L_theory
    assert abs(batch_L.mean() - L_theory) < Z * se, (batch_L.mean(), L_theory, se)

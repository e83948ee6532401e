"""The lower bound's LP, solved by row generation, and its dual certificate.

Variables x_j in [0, 1], one per (task, candidate) pair that could be on time
(:class:`~millinet.envs.bound_windows.WindowTable`). Rows:

* per task i: ``sum_{j of i} x_j <= 1``;
* per interval [a, b] of a resource: ``sum_{j: window inside [a, b]} work_j x_j <= cap (b - a)``.

The LP maximises ``sum_j w_{task(j)} x_j`` (the weight of on-time tasks); the bound on the
weighted violations is ``sum_i w_i`` minus that maximum. Interval rows are added lazily
(:mod:`millinet.envs.bound_cuts`): solve, find intervals the solution violates, add them,
repeat. Each LP has fewer rows than the full relaxation, so its value is already a valid bound.

**Validity does not rest on the solver.** The reported bound is a *dual certificate*: for any
multipliers y >= 0 of the rows, weak duality over the box 0 <= x <= 1 gives

    max_x w.x  <=  sum_r y_r rhs_r + sum_j max(0, w_{task(j)} - (A^T y)_j),

whatever y is. HiGHS's row duals, clipped at 0, are such a y; the right-hand side is then
evaluated in float64 (``math.fsum``) over every variable of the full problem, including the
tasks left out of the LP below. A solver tolerance can make the certificate weaker than the
LP optimum, never invalid.

**Tasks outside the LP.** A task with a candidate that appears in no interval row yet can be
put wholly on it at no cost to any row, so the LP only needs the tasks whose every candidate is
in some row; the others are fixed on-time (their multiplier in the certificate is their weight).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.optimize import OptimizeResult, linprog

from millinet.envs.bound_cuts import interval_row, may_overload, violated_intervals
from millinet.envs.bound_windows import WindowTable


@dataclass
class LPOutcome:
    """The result of row generation for one objective (weights as in the table)."""

    bound: float  # a valid lower bound on the weighted violations (dual certificate)
    lp_value: float  # the last LP's optimum as HiGHS reports it (nan if none solved)
    status: str  # "optimal", "time limit", "round limit" or the solver's failure message
    rounds: int  # LPs solved
    cuts: int  # interval rows in the last LP's pool
    lp_vars: int  # columns of the last LP
    lp_rows: int  # rows of the last LP
    structural: float  # weight of tasks with no candidate that can be on time
    solve_s: float  # time inside HiGHS
    separate_s: float  # time finding violated intervals
    binding: dict[str, int] = field(default_factory=dict)  # resource -> rows with y > 0


@dataclass
class _Cuts:
    """Interval rows over the full variable set, with the resource each came from."""

    cols: list[np.ndarray] = field(default_factory=list)
    vals: list[np.ndarray] = field(default_factory=list)
    rhs: list[float] = field(default_factory=list)
    resource: list[int] = field(default_factory=list)
    keys: set = field(default_factory=set)

    def add(self, table: WindowTable, r: int, a: float, b: float) -> bool:
        res = table.resources[r]
        inside, a, b = interval_row(res, a, b)
        key = (r, round(a, 6), round(b, 6))
        if inside.size == 0 or key in self.keys:
            return False
        self.keys.add(key)
        self.cols.append(res.var[inside])
        self.vals.append(res.work_us[inside])
        self.rhs.append(res.capacity * (b - a))
        self.resource.append(r)
        return True

    def matrix(self, n_vars: int) -> sp.csr_matrix:
        if not self.rhs:
            return sp.csr_matrix((0, n_vars))
        lengths = [c.size for c in self.cols]
        rows = np.repeat(np.arange(len(lengths)), lengths)
        return sp.csr_matrix(
            (np.concatenate(self.vals), (rows, np.concatenate(self.cols))),
            shape=(len(lengths), n_vars),
        )


def _certificate(
    table: WindowTable, cuts: sp.csr_matrix, rhs: np.ndarray, y_task: np.ndarray, y_cut: np.ndarray
) -> float:
    """The weak-duality bound on the weighted violations for multipliers y >= 0 (any y)."""
    w = table.weight
    reduced = w[table.var_task] - y_task[table.var_task] - cuts.T @ y_cut
    best_on_time = math.fsum(
        [math.fsum(y_task), math.fsum(y_cut * rhs), math.fsum(np.maximum(reduced, 0.0))]
    )
    return math.fsum(w) - best_on_time


def _solve(
    table: WindowTable, cuts: sp.csr_matrix, rhs: np.ndarray, in_lp: np.ndarray, deadline: float
) -> tuple[OptimizeResult, np.ndarray]:
    """Solve the LP over the tasks ``in_lp`` (bool, (n_tasks,)) with HiGHS.

    Returns scipy's result and the LP's columns (variable indices); the LP's rows are the
    task rows of ``flatnonzero(in_lp)`` in order, then the interval rows."""
    lp_tasks = np.flatnonzero(in_lp)
    cols = np.flatnonzero(in_lp[table.var_task])
    task_pos = np.full(table.task.size, -1)
    task_pos[lp_tasks] = np.arange(lp_tasks.size)
    A_task = sp.csr_matrix(
        (np.ones(cols.size), (task_pos[table.var_task[cols]], np.arange(cols.size))),
        shape=(lp_tasks.size, cols.size),
    )
    res = linprog(
        -table.weight[table.var_task[cols]],
        A_ub=sp.vstack([A_task, cuts[:, cols]], format="csr"),
        b_ub=np.concatenate([np.ones(lp_tasks.size), rhs]),
        bounds=(0.0, 1.0),
        method="highs",
        options={"time_limit": max(1.0, deadline - time.perf_counter())},
    )
    return res, cols


def row_generation(
    table: WindowTable,
    deadline: float,
    max_rounds: int = 200,
    on_round: Callable[[int, float, int], None] | None = None,
) -> LPOutcome:
    """Lower-bound the weighted violations of ``table``'s tasks by row generation.

    ``deadline`` is a ``time.perf_counter()`` value: no LP starts after it and HiGHS gets the
    time left. ``on_round(round, bound, cuts)`` is called after every LP. The bound of every
    round is a valid certificate; the best one is returned.
    """
    n_tasks, n_vars = table.task.size, table.n_vars
    w = table.weight
    has_var = np.zeros(n_tasks, dtype=bool)
    has_var[table.var_task] = True
    structural = math.fsum(w[~has_var])
    resources = [r for r, res in enumerate(table.resources) if may_overload(res)]
    cuts = _Cuts()
    touched = np.zeros(n_vars, dtype=bool)  # variables that appear in some interval row
    x = np.zeros(n_vars)
    best, lp_value, status = structural, math.nan, "round limit"
    rounds = lp_vars = lp_rows = 0
    solve_s = separate_s = 0.0
    y_cut = np.zeros(0)
    while True:
        in_lp = _lp_tasks(table, has_var, touched)
        x = np.where(in_lp[table.var_task], x, _fixed_assignment(table, touched))
        t = time.perf_counter()
        added = 0
        for r in resources:
            res = table.resources[r]
            for a, b in violated_intervals(res, res.work_us * x[res.var]):
                added += cuts.add(table, r, a, b)
        separate_s += time.perf_counter() - t
        if added == 0:
            status = "optimal"
            break
        if rounds >= max_rounds or time.perf_counter() >= deadline:
            status = "round limit" if rounds >= max_rounds else "time limit"
            break
        for c in cuts.cols[-added:]:
            touched[c] = True
        in_lp = _lp_tasks(table, has_var, touched)
        if not in_lp.any():  # every task still has a candidate outside all rows
            continue
        A_cut, rhs = cuts.matrix(n_vars), np.array(cuts.rhs)
        t = time.perf_counter()
        res, cols = _solve(table, A_cut, rhs, in_lp, deadline)
        solve_s += time.perf_counter() - t
        rounds += 1
        lp_vars, lp_rows = cols.size, int(in_lp.sum()) + rhs.size
        if res.x is None or res.ineqlin is None:
            status = "time limit" if res.status == 1 else f"solver: {res.message}"
            break
        duals = np.maximum(-res.ineqlin.marginals, 0.0)
        y_task = np.where(has_var & ~in_lp, w, 0.0)  # tasks fixed on time: their weight
        y_task[in_lp] = duals[: in_lp.sum()]
        y_cut = duals[in_lp.sum() :]
        best = max(best, _certificate(table, A_cut, rhs, y_task, y_cut))
        lp_value = structural + math.fsum(w[in_lp]) + res.fun
        x = np.zeros(n_vars)
        x[cols] = res.x
        if on_round is not None:
            on_round(rounds, best, rhs.size)
        if res.status != 0:
            status = "time limit" if res.status == 1 else f"solver: {res.message}"
            break
    return LPOutcome(
        bound=best,
        lp_value=lp_value,
        status=status,
        rounds=rounds,
        cuts=len(cuts.rhs),
        lp_vars=lp_vars,
        lp_rows=lp_rows,
        structural=structural,
        solve_s=solve_s,
        separate_s=separate_s,
        binding=_binding(table, cuts, y_cut),
    )


def _lp_tasks(table: WindowTable, has_var: np.ndarray, touched: np.ndarray) -> np.ndarray:
    """Tasks whose every candidate appears in some interval row: bool, shape (n_tasks,)."""
    untouched = np.bincount(table.var_task[~touched], minlength=table.task.size)
    return has_var & (untouched == 0)


def _fixed_assignment(table: WindowTable, touched: np.ndarray) -> np.ndarray:
    """x with every task that has an untouched candidate wholly on one of them, zero
    elsewhere: shape (n_vars,). The choice is free (it costs no row); the untouched candidate
    with the largest compute pool (then the lowest slot) overloads the fewest resources, so
    fewer rounds follow."""
    free = np.flatnonzero(~touched)
    free = free[np.lexsort((free, -table.var_compute[free], table.var_task[free]))]
    _, first = np.unique(table.var_task[free], return_index=True)
    x = np.zeros(table.n_vars)
    x[free[first]] = 1.0
    return x


def _binding(table: WindowTable, cuts: _Cuts, y_cut: np.ndarray) -> dict[str, int]:
    """Resource name -> number of its interval rows with a positive multiplier in the last
    certificate (the resources whose capacity the bound rests on), most first."""
    count: dict[str, int] = {}
    priced = np.array(cuts.resource[: y_cut.size], dtype=np.int64)[y_cut > 1e-9]
    for r in priced.tolist():
        name = table.resources[r].name
        count[name] = count.get(name, 0) + 1
    return dict(sorted(count.items(), key=lambda kv: -kv[1]))

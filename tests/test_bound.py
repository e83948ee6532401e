"""The lower bound (``millinet.envs.bound``, DESIGN.md section 5): no policy beats it.

* Exhaustive search: on tiny random cities (FIFO or strict-priority links, drop-tail limits,
  faults, one or two factories, all three classes) with 4-5 fixed arrivals and K = 4, the real
  engine judges every assignment of a slot or a rejection to every task; the fewest violations
  any assignment gets is never below the bound. The instances are picked so that several have
  violations no policy can avoid, and the bound must match the optimum on most of those.
* The certificate is weak duality for *any* multipliers y >= 0: random y never beat the optimum.
* Heuristics on shipped scenarios (and a stressed variant with a positive bound) never score
  below the bound; the bound reads exactly the arrivals that ``simulate`` admits.
* Hand counts: a site too distant for 1 ms (every 1 ms task is late) and an overloaded
  one-server pool (the count of tasks that fit follows from the slack and the work).
* Bad input: the same one-line errors and exit status 2 as ``millinet simulate``.
"""

import json
import math

import numpy as np
import pytest
from bound_instances import REJECT, exhaustive_optimum, tiny_instance, with_arrivals

from millinet.agents.heuristics import HEURISTICS
from millinet.agents.specs import chooser_for
from millinet.envs import bound_lp
from millinet.envs.bound import ONE_MS, WEIGHTED, lower_bound
from millinet.envs.bound_cuts import interval_row
from millinet.envs.bound_windows import build_windows, collect_episode
from millinet.envs.engine import ON_TIME, Engine
from millinet.envs.metrics import ONE_MS_US
from millinet.envs.scenario import load_scenario
from millinet.envs.simulation import simulate
from millinet.envs.workload import ArrivalBatch
from millinet.experiments.cli import main

# (seed, tasks) of tiny_instance: a mix of instances whose optimum is 0, where the bound is
# tight and where it is not, from the 200-instance sweep of experiments/scripts/bound_results.py
TINY = [(0, 4), (1, 4), (12, 4), (23, 4), (27, 4), (41, 4), (72, 4), (98, 4), (108, 4),
        (137, 4), (144, 4), (145, 4), (156, 4), (192, 4)]  # fmt: skip


def _bounds(scenario, duration_s=1.0, seed=0):
    result = lower_bound(scenario, seed, duration_s, time_limit_s=60)
    return result.bounds[ONE_MS], result.bounds[WEIGHTED]


def test_no_assignment_beats_the_bound():
    rows = []
    for seed, n in TINY:
        scenario = tiny_instance(seed, n)
        opt_1ms, opt_weighted = exhaustive_optimum(scenario)
        b_1ms, b_weighted = _bounds(scenario)
        assert b_1ms.status == b_weighted.status == "optimal"
        assert b_1ms.lower_bound <= opt_1ms, f"instance {seed}: bound above the optimum"
        assert b_weighted.lower_bound <= opt_weighted + 1e-9, f"instance {seed}"
        assert b_1ms.lower_bound == math.ceil(b_1ms.certificate - 1e-6)
        rows.append((seed, opt_1ms, b_1ms.lower_bound, opt_weighted, b_weighted.lower_bound))
    print("\nseed  opt_1ms  bound_1ms  opt_weighted  bound_weighted")
    for row in rows:
        print("{:>4} {:>8} {:>10g} {:>13g} {:>15g}".format(*row))
    forced = [r for r in rows if r[1] > 0]
    tight = [r for r in forced if r[2] == r[1]]
    # not vacuous: most instances force violations, and the bound finds them on most
    assert len(forced) >= 10 and len(tight) >= 7 and any(r[2] < r[1] for r in forced)
    assert sum(r[4] for r in rows) >= 0.6 * sum(r[3] for r in rows)


def test_certificate_holds_for_any_multipliers():
    """Weak duality: the certificate of random y >= 0 (over every interval of window end
    points of every resource) never exceeds the exhaustive optimum."""
    scenario = tiny_instance(12, 4)
    opt_1ms, _ = exhaustive_optimum(scenario)
    episode = collect_episode(scenario, 0, 1.0)
    table = build_windows(scenario, episode, np.array([1.0, 0.0, 0.0]))
    cuts = bound_lp._Cuts()
    for r, res in enumerate(table.resources):
        for a in res.start_us:
            for b in res.end_us[res.end_us > a]:
                cuts.add(table, r, float(a), float(b))
    A, rhs = cuts.matrix(table.n_vars), np.array(cuts.rhs)
    rng = np.random.default_rng(0)
    values = [
        bound_lp._certificate(
            table, A, rhs, rng.exponential(1.0, table.task.size), rng.exponential(0.01, rhs.size)
        )
        for _ in range(200)
    ]
    assert max(values) <= opt_1ms
    solved = bound_lp.row_generation(table, deadline=float("inf"))
    assert solved.bound <= opt_1ms and solved.bound > max(values)


def _stressed_metro() -> dict:
    """The default city with a 200 µs robot deadline: only nearby sites qualify, and the
    bound is positive (an LP bound, not a structural count)."""
    return {"extends": "sunflower-metro", "classes": {"robot_sync": {"deadline_us": 200}}}


@pytest.mark.parametrize(
    "spec, seeds, duration",
    [
        ("sunflower-metro", [0], 0.02),
        ("display-factory", [0], 0.02),
        ("link-failure", [0], 0.02),
        (_stressed_metro(), [2**31, 2**31 + 1], 0.03),
    ],
)
def test_no_heuristic_beats_the_bound(spec, seeds, duration):
    scenario = load_scenario(spec)
    weight = np.array([c.weight for c in scenario.classes])
    tight = np.array([c.deadline_us <= ONE_MS_US for c in scenario.classes])
    positive = False
    for seed in seeds:
        result = lower_bound(scenario, seed, duration, time_limit_s=60)
        b_1ms, b_weighted = result.bounds[ONE_MS], result.bounds[WEIGHTED]
        positive |= b_1ms.lower_bound > 0 and b_1ms.structural == 0
        for name in HEURISTICS:
            records = simulate(scenario, chooser_for(name, scenario, seed=seed), duration, seed)
            records = records.records
            assert result.arrivals == records.size  # the same episode as simulate's
            assert b_1ms.tasks == int(tight[records["cls"]].sum())
            violated = records["status"] != ON_TIME
            assert int((violated & tight[records["cls"]]).sum()) >= b_1ms.lower_bound, name
            assert float(weight[records["cls"]][violated].sum()) >= b_weighted.lower_bound, name
    if not isinstance(spec, str):
        assert positive  # the stressed city really tests something


def _one_site_city(site_km: float, servers: int) -> dict:
    """A factory on an access node and one edge site ``site_km`` away (100 Gbit/s links)."""
    nodes = [
        {"name": "acc", "role": "access", "x_km": 0, "y_km": 0},
        {"name": "dc", "role": "edge", "x_km": site_km, "y_km": 0,
         "pools": {"cpu": {"servers": servers}, "gpu": {"servers": 1}}},
    ]  # fmt: skip
    return {
        "name": f"one-site-{site_km:g}km",
        "topology": {
            "generator": "explicit",
            "nodes": nodes,
            "links": [{"a": "acc", "b": "dc", "capacity_gbps": 100, "forwarding_us": 2}],
        },
        "candidates": {"sites": 1, "paths": 1},
        "factories": [
            {
                "name": "plant",
                "profile": "custom",
                "attach": "acc",
                "uplink_km": 1.0,
                "uplink_gbps": 100,
                "on_prem": {"cpu": {"servers": 0}, "gpu": {"servers": 0}},
                "workload": {
                    "robot_sync": {
                        "process": "periodic",
                        "streams": 3,
                        "period_min_us": 1000,
                        "period_max_us": 1000,
                    },
                    "agv_dispatch": {"process": "poisson", "rate_per_s": 200},
                },  # fmt: skip
            }
        ],
    }


def test_too_distant_site_forces_every_1ms_task(tmp_path):
    """110 km of SMF one way is 539 µs, so the round trip alone is over 1 ms: by hand, every
    robot_sync task is a violation and nothing else has to be (the AGV deadline is 10 ms)."""
    city = {**_one_site_city(110.0, servers=8), "seed": 5}  # the default of --seed
    path = tmp_path / "far.yaml"
    path.write_text(json.dumps(city))  # JSON is YAML
    out = tmp_path / "bound.json"
    assert main(["bound", "--scenario", str(path), "--duration", "20ms", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["seed"] == 5
    robot = 3 * 20  # three 1 ms streams over 20 ms
    assert data["bounds"][ONE_MS]["tasks"] == robot
    assert data["bounds"][ONE_MS]["lower_bound"] == robot == data["bounds"][ONE_MS]["structural"]
    assert data["bounds"][ONE_MS]["share"] == 1.0
    assert data["bounds"][WEIGHTED]["lower_bound"] == 10 * robot  # robot_sync weighs 10
    assert data["arrivals"] == data["bounds"][WEIGHTED]["tasks"] > robot
    args = ["bound", "--scenario", str(path), "--duration", "20ms", "--json", str(out)]
    assert main([*args, "--objective", WEIGHTED]) == 0
    assert list(json.loads(out.read_text())["bounds"]) == [WEIGHTED]


def test_failed_site_forces_the_tasks_that_arrive_while_it_is_down():
    """The only site is down for the first 10 ms: by hand, the 3 x 10 robot tasks released
    then are rejected whatever the policy does (the mask at their arrival), the rest can make
    it (5 km away, 8 servers)."""
    city = _one_site_city(5.0, servers=8)
    del city["factories"][0]["workload"]["agv_dispatch"]
    city["faults"] = {"scheduled": [{"element": "dc", "down_at_s": 0.0, "up_at_s": 0.01}]}
    b_1ms, b_weighted = _bounds(load_scenario(city), duration_s=0.02)
    assert b_1ms.tasks == 60 and b_1ms.lower_bound == 30 == b_1ms.structural
    assert b_weighted.lower_bound == 300


def test_overloaded_pool_matches_hand_count():
    """12 robot tasks at t = 0, 100 µs of work each, one server 20 km away.

    By hand: the round trip is 2 x (1 km + 20 km) x 4.897 µs/km + 2 x (5 + 2) µs = 219.7 µs
    (serialisation of 200 B at 100 Gbit/s is 16 ns a hop), so a task's slack is
    1000 - 219.7 - 100 = 680 µs and the server can finish 1 + floor(680 / 100) = 7 tasks in
    time: at least 5 violations, and the engine shows 5 are enough.
    """
    n, work_us = 12, 100.0
    rtt_us = 2 * (21 * 4.897 + 7)
    on_time = 1 + math.floor((1000 - rtt_us - work_us) / work_us)
    hand_count = n - on_time
    assert hand_count == 5
    scenario = with_arrivals(
        load_scenario(_one_site_city(20.0, servers=1)),
        ArrivalBatch(
            time_s=np.zeros(n),
            cls=np.zeros(n, dtype=np.int64),
            factory=np.zeros(n, dtype=np.int64),
            up_bytes=np.full(n, 200.0),
            down_bytes=np.full(n, 200.0),
            work_s=np.full(n, work_us * 1e-6),
        ),
    )
    b_1ms, b_weighted = _bounds(scenario)
    assert b_1ms.lower_bound == hand_count and b_1ms.structural == 0
    assert b_weighted.lower_bound == 10 * hand_count
    assert b_1ms.binding == {"dc/cpu": 1}  # the pool's capacity carries the bound
    engine = Engine(scenario, 0)  # achievable: place the first 7, reject the rest
    for i in range(n):
        engine.dispatch(engine.next_arrival(), 0 if i < on_time else REJECT)
    engine.drain()
    assert int((engine.record_array()["status"] != ON_TIME).sum()) == hand_count


def test_interval_row_takes_the_hull():
    scenario = tiny_instance(12, 4)
    table = build_windows(scenario, collect_episode(scenario, 0, 1.0), np.ones(3))
    res = max(table.resources, key=lambda r: r.size)
    a, b = res.start_us.min() - 50.0, res.end_us.max() + 50.0
    inside, a2, b2 = interval_row(res, a, b)
    assert inside.size == res.size and a2 == res.start_us.min() and b2 == res.end_us.max()


def _cli_error(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1]


@pytest.mark.parametrize(
    "args",
    [
        ["--scenario", "no-such-city"],
        ["--duration", "0"],
        ["--duration", "soon"],
        ["--seed", "-1"],
        ["--seed", "x"],
        ["--json", "/no/such/folder/out.json"],
    ],
)
def test_bad_input_same_errors_as_simulate(args, capsys, tmp_path):
    def run(cmd):
        try:
            line = _cli_error([cmd, *args], capsys)
        except SystemExit as exc:  # argparse: usage line, then the error, status 2
            assert exc.code == 2
            line = capsys.readouterr().err.strip().splitlines()[-1]
        return line.replace(f"millinet {cmd}", "millinet CMD")

    assert run("bound") == run("simulate")


@pytest.mark.parametrize("flag", [["--time-limit", "0"], ["--objective", "fastest"]])
def test_bad_bound_options(flag, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bound", *flag])
    assert exc.value.code == 2
    assert f"argument {flag[0]}: invalid" in capsys.readouterr().err


def test_bad_scenario_file_one_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps({**_one_site_city(5.0, 1), "candidates": {"sites": 0}}))
    out = tmp_path / "out.json"
    line = _cli_error(["bound", "--scenario", str(path), "--json", str(out)], capsys)
    assert line.startswith(f"millinet bound: error: {path}: candidates.sites:")
    assert not out.exists()


def test_api_refuses_bad_arguments():
    with pytest.raises(ValueError, match="objectives"):
        lower_bound("sunflower-metro", 0, 0.001, objectives=("fastest",))
    with pytest.raises(ValueError, match="seed"):
        lower_bound("sunflower-metro", -3, 0.001)
    with pytest.raises(ValueError, match="duration"):
        lower_bound("sunflower-metro", 0, 0.0)


def test_episode_without_1ms_tasks(tmp_path, capsys):
    """An AGV-only city: the 1 ms objective has no task (share null in strict JSON) and the
    weighted one still runs."""
    city = _one_site_city(5.0, servers=4)
    city["factories"][0]["workload"] = {"agv_dispatch": {"process": "poisson", "rate_per_s": 500}}
    path = tmp_path / "agv.yaml"
    path.write_text(json.dumps(city))
    out = tmp_path / "b.json"
    assert main(["bound", "--scenario", str(path), "--duration", "10ms", "--json", str(out)]) == 0
    data = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    one_ms, weighted = data["bounds"][ONE_MS], data["bounds"][WEIGHTED]
    assert one_ms["tasks"] == 0 and one_ms["share"] is None and one_ms["status"] == "no tasks"
    assert weighted["tasks"] == data["arrivals"] > 0 and weighted["lower_bound"] == 0
    assert "violations_1ms" in capsys.readouterr().out

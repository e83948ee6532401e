"""``bench_sim`` machinery on a tiny workload (timings are recorded, never asserted)."""

import json

from millinet.experiments.bench.benchmarks import TARGETS, bench_sim


def test_bench_sim_writes_its_json(tmp_path):
    result = bench_sim(
        str(tmp_path),
        duration_s=0.01,
        repeats=1,
        scale_duration_s=0.01,
        scale_shape=((3, 5), (9, 10)),
    )
    saved = json.loads((tmp_path / "sim.json").read_text())
    assert saved["targets"] == TARGETS and saved["command"] == "millinet bench sim"
    assert {"platform", "cpu_count", "python"} <= set(saved["machine"])
    assert saved["engine"]["median_tasks_per_s"] > 0 and saved["simpy"]["tasks"] > 0
    # the SimPy model, run on the engine's own trace, agrees task by task
    assert saved["simpy"]["max_latency_diff_ns"] < 1.0
    small, large = saved["scale"]["cities"].values()
    assert small["nodes"] < large["nodes"] and small["runs"][0]["tasks"] > 0
    assert result["scale"]["cost_ratio_large_vs_small"] > 0

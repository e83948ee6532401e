"""Write the example trace shipped as ``envs/data/example-trace.csv``.

The trace is what the default city's display fab and brewery generate in their first 100 ms
(sunflower-metro, workload seed 17): 0.8 k tasks of all three classes, with sizes and compute
demand, recorded by ``millinet.envs.trace.record_workload``. ``envs/scenarios/trace-replay.yaml``
replays it; ``tests/test_trace.py`` checks that this script reproduces the shipped file.

    .venv/bin/python experiments/scripts/make_example_trace.py [OUT]
"""

from __future__ import annotations

import sys
from pathlib import Path

from millinet.envs.scenario import DATA_DIR, load_scenario
from millinet.envs.trace import record_workload, write_trace

SCENARIO, SEED, DURATION_S = "sunflower-metro", 17, 0.1
FACTORIES = {"display-fab", "brewery"}
OUT = DATA_DIR / "example-trace.csv"


def main(out: Path = OUT) -> int:
    scenario = load_scenario(SCENARIO)
    rows = record_workload(scenario.workload(SEED), scenario.factory_names, DURATION_S, FACTORIES)
    n = write_trace(out, rows)
    print(f"wrote {n} tasks to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT))

#!/usr/bin/env bash
# The slim installs work (issue 12): after `make test`, in fresh virtual environments,
#   1. `pip wheel --no-deps .` builds a wheel whose files all lie under millinet/;
#   2. the base install (no extras) steps millinet/Placement-v0 and runs `millinet simulate`,
#      without torch; a command that needs an extra says which, in one line;
#   3. an install with only the `serve` extra loads an exported policy folder (made here by the
#      test fixtures with the full .venv) and the committed results/policies one, and answers
#      one POST /v1/decide over loopback HTTP,
#      without torch, gymnasium's training stack or ray.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=$(mktemp -d /tmp/millinet-slim.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
PIP_QUIET=(--quiet --disable-pip-version-check)
quiet() { "$@" 2> >(grep -v "^WARNING: Location" >&2); }  # this machine's pip config is noisy

echo "slim install: wheel"
quiet .venv/bin/python -m pip wheel "${PIP_QUIET[@]}" --no-deps --wheel-dir "$WORK/wheel" . >/dev/null 2>&1
.venv/bin/python - "$WORK"/wheel/millinet-*.whl <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
outside = [n for n in names if not n.startswith(("millinet/", "millinet-"))]
assert not outside, f"wheel files outside millinet/: {outside}"
assert "millinet/envs/scenarios/sunflower-metro.yaml" in names
assert "millinet/envs/data/example-trace.csv" in names  # the trace-replay scenario's log
assert not any(n.startswith("millinet/experiments/scripts/") for n in names)
print(f"  {len(names)} files, all under millinet/")
PY
WHEEL=$(ls "$WORK"/wheel/millinet-*.whl)

echo "slim install: base (the simulator and the env)"
python3 -m venv "$WORK/base"
quiet "$WORK/base/bin/pip" install "${PIP_QUIET[@]}" "$WHEEL"
"$WORK/base/bin/python" - <<'PY'
import importlib.util
import gymnasium as gym
import millinet.envs  # noqa: F401  (registers the env)
env = gym.make("millinet/Placement-v0", horizon=64)
obs, _ = env.reset(seed=0)
steps = 0
while True:
    mask = env.unwrapped.action_masks()
    obs, reward, terminated, truncated, info = env.step(int(mask.argmax()))
    steps += 1
    if terminated or truncated:
        break
assert steps == 64 and "episode_metrics" in info
for heavy in ("torch", "ray", "onnxruntime", "fastapi"):
    assert importlib.util.find_spec(heavy) is None, f"{heavy} is installed in the base venv"
print(f"  stepped {steps} decisions; violation_rate_1ms {info['violation_rate_1ms']:.4f}")
PY

"$WORK/base/bin/millinet" simulate --policy deadline-aware --duration 0.02 >/dev/null
if "$WORK/base/bin/millinet" train 2>"$WORK/train.err"; then
  echo "millinet train ran without the train extra" >&2; exit 1
fi
grep -q "needs the 'train' extra" "$WORK/train.err" && [ "$(wc -l <"$WORK/train.err")" -eq 1 ] || {
  echo "millinet train without its extra did not give one clear line:" >&2
  cat "$WORK/train.err" >&2; exit 1
}
echo "  millinet simulate runs; millinet train says: $(cat "$WORK/train.err")"
"$WORK/base/bin/millinet" simulate --scenario trace-replay --duration 0.01 >/dev/null
if "$WORK/base/bin/millinet" render --out "$WORK/city.png" 2>"$WORK/render.err"; then
  echo "millinet render ran without the render extra" >&2; exit 1
fi
grep -q "needs the 'render' extra" "$WORK/render.err" && [ "$(wc -l <"$WORK/render.err")" -eq 1 ] || {
  echo "millinet render without its extra did not give one clear line:" >&2
  cat "$WORK/render.err" >&2; exit 1
}
echo "  the trace-replay scenario runs; millinet render says: $(cat "$WORK/render.err")"

echo "slim install: serve (an exported policy over HTTP)"
.venv/bin/python - "$WORK/exported" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, "tests")
from _export_fixtures import make_run  # the tests' own tiny training run
from millinet.agents.export import export_policy
out = Path(sys.argv[1])
export_policy(make_run(out.parent / "run", timesteps=512), out)
PY
python3 -m venv "$WORK/serve"
quiet "$WORK/serve/bin/pip" install "${PIP_QUIET[@]}" "$WHEEL[serve]"
"$WORK/serve/bin/python" - "$WORK/exported" results/policies/ppo-privileged-load2x <<'PY'
import importlib.util, sys
import numpy as np
from millinet.experiments.bench.service_process import running_service
from millinet.envs.features import telemetry_row
from millinet.scheduler.client import SchedulerClient, build_request
tel = np.array([telemetry_row()] * 8)
tel[0] = telemetry_row(valid=1, base_rtt_us=200, serialisation_us=2, compute_us=50, servers=16,
                       tier=1, report_age_us=300)
for folder in sys.argv[1:]:  # a fresh export, and the committed policy
    with running_service(folder) as svc, SchedulerClient(svc.url) as client:
        answer = client.decide(build_request(np.array([0, 200, 200, 50, 1000.0]), tel))
    assert answer["slot"] == 0, answer
    print(f"  /v1/decide answered slot {answer['slot']} ({answer['model_version']})")
for heavy in ("torch", "ray", "stable_baselines3"):
    assert importlib.util.find_spec(heavy) is None, f"{heavy} is installed in the serve venv"
PY
echo "slim install: ok"

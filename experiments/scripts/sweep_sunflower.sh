#!/usr/bin/env bash
# Reproduce results/sweep_sunflower.md on 2 cores:
#   1. the sweep (experiments/configs/sweep_sunflower.yaml; stops itself after 30 minutes);
#   2. the comparison: the scratch default, the tuned config and the warm-start default, each
#      trained with seeds 2 3 4 5 (the sweep trained seeds 0 and 1) for 98,304 PPO steps (as a
#      full sweep trial), evaluated on 10 held-out test episodes (reset seeds 1000000 + i)
#      (~25 min, 2 runs at a time).
# Usage: bash experiments/scripts/sweep_sunflower.sh [--resume]
set -euo pipefail
PY=${PY:-.venv/bin/python}
SWEEP=runs/sweeps/sunflower
"$PY" -m millinet.experiments.cli sweep --config experiments/configs/sweep_sunflower.yaml --num-cpus 2 "$@"
"$PY" -m millinet.experiments.sweep.compare \
  --config default=experiments/configs/ppo_sunflower_scratch.yaml \
  --config tuned="$SWEEP/best_config.yaml" \
  --config warm-default=experiments/configs/ppo_sunflower.yaml \
  --seeds 2 3 4 5 --timesteps 98304 --test-episodes 10 --jobs 2 \
  --runs-dir runs/sweep_compare --json results/sweep_sunflower.json
cp "$SWEEP/sweep.png" results/sweep_sunflower.png
cp "$SWEEP/summary.md" results/sweep_sunflower_trials.md

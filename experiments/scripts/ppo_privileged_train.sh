#!/usr/bin/env bash
# Issue 16, step 1: train the privileged-teacher recipe (experiments/configs/ppo_privileged.yaml)
# on sunflower-metro-load2x with training seeds 0..4, two runs at a time on the 2 cores
# (each run stops at its 30-minute time_limit_s, pretraining included).
# Usage: bash experiments/scripts/ppo_privileged_train.sh [RUNS_DIR] [SEEDS...]
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-runs/ppo_privileged}
shift || true
SEEDS=("${@:-0 1 2 3 4}")
read -r -a SEEDS <<< "${SEEDS[*]}"
mkdir -p "$RUNS"
train() {
  .venv/bin/millinet train --config experiments/configs/ppo_privileged.yaml --seed "$1" \
    --runs-dir "$RUNS" > "$RUNS/train_s$1.log" 2>&1
}
running=0
for seed in "${SEEDS[@]}"; do
  train "$seed" &
  running=$((running + 1))
  if [ "$running" -ge 2 ]; then wait -n; running=$((running - 1)); fi
done
wait
grep -h "last model" "$RUNS"/train_s*.log

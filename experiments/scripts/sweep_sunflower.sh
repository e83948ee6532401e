#!/usr/bin/env bash
# Reproduce results/sweep_sunflower.md on 2 cores:
#   1. the sweep (experiments/configs/sweep_sunflower.yaml; stops itself after 30 minutes);
#   2. the transfer check: the scratch default, the tuned config and the warm-start default,
#      each trained with fresh seeds 2 3 4 5 (the sweep trained seeds 0 and 1) for 98,304 PPO
#      steps (a full sweep trial) by `millinet train`, two runs at a time, then evaluated by
#      `millinet evaluate` on 10 test seeds (engine seeds 2**31 + i, which neither training nor
#      the sweep's objective ever saw); summary.md's "Experiments" table groups the runs of each
#      config across training seeds.
# Usage: bash experiments/scripts/sweep_sunflower.sh [--resume]
set -euo pipefail
MILLINET=${MILLINET:-.venv/bin/millinet}
SWEEP=runs/sweeps/sunflower
RUNS=runs/sweep_transfer
"$MILLINET" sweep --config experiments/configs/sweep_sunflower.yaml --num-cpus 2 "$@"
for seed in 2 3 4 5; do
  for cfg in default=experiments/configs/ppo_sunflower_scratch.yaml \
             tuned="$SWEEP/best_config.yaml" \
             warm-default=experiments/configs/ppo_sunflower.yaml; do
    "$MILLINET" train --config "${cfg#*=}" --seed "$seed" --total-timesteps 98304 \
      --set time_limit_s=null --set tag="${cfg%%=*}" --runs-dir "$RUNS" &
    while (( $(jobs -rp | wc -l) >= 2 )); do wait -n; done
  done
done
wait
policies=()
for run in "$RUNS"/*/; do policies+=(--policy "${run%/}"); done
"$MILLINET" evaluate --scenario sunflower-metro "${policies[@]}" --seeds 10 --workers 2 \
  --out results/sweep_sunflower_transfer
cp "$SWEEP/sweep.png" results/sweep_sunflower.png
cp "$SWEEP/summary.md" results/sweep_sunflower_trials.md

#!/usr/bin/env bash
# Reproduce the numbers of results/ppo_vs_baselines.md (a benchmark, about 1.5 h on 2 cores:
# 10 runs of at most 20 min, two at a time, then the evaluation).
# Usage: bash experiments/scripts/ppo_vs_baselines.sh
set -euo pipefail
MILLINET=${MILLINET:-.venv/bin/millinet}
RUNS=${RUNS:-runs/ppo_vs_baselines}
OUT=${OUT:-results}
SEEDS=${SEEDS:-"0 1 2 3 4"}
mkdir -p "$RUNS"

# 1. Train: warm-started MaskablePPO (default config) and MaskablePPO from scratch, 5 seeds
#    each, at most 20 minutes of wall time per run (time_limit_s in the configs), 2 in parallel.
train_one() {  # config seed
  local name; name=$(basename "$1" .yaml)
  "$MILLINET" train --config "$1" --seed "$2" --runs-dir "$RUNS" --no-progress \
    > "$RUNS/train_${name}_s$2.log" 2>&1
}
# The main experiment (warm start) first, so that its seeds are complete before the ablation.
for cfg in experiments/configs/ppo_sunflower.yaml experiments/configs/ppo_sunflower_scratch.yaml; do
  for s in $SEEDS; do
    while [ "$(jobs -rp | wc -l)" -ge 2 ]; do wait -n; done
    train_one "$cfg" "$s" &
  done
done
wait
[ "${TRAIN_ONLY:-0}" = 1 ] && exit 0

# 2. Evaluate every heuristic and, of every run, the best (validation) model, the last model and,
#    for warm-started runs, the behaviour-cloned start, on the harness's held-out seeds.
policies=(--policy random --policy nearest --policy least-loaded --policy shortest-queue
          --policy earliest-finish --policy deadline-aware)
for r in "$RUNS"/sunflower-metro_*/; do
  r=${r%/}
  policies+=(--policy "$r" --policy "$r@last")
  if [ -d "$r/pretrained" ]; then policies+=(--policy "$r@pretrained"); fi
done
"$MILLINET" evaluate --scenario sunflower-metro "${policies[@]}" --seeds 10 --workers 2 \
  --out "$OUT/ppo_vs_baselines_eval"

# 3. Learning curves and the table.
"$MILLINET" analyze "$RUNS" --out "$OUT/ppo_vs_baselines_analysis" \
  --baselines "$OUT/ppo_vs_baselines_eval/summary.csv" --checkpoint best --log-y

# 4. The table of results/ppo_vs_baselines.md (per experiment: mean and 95% CI across runs).
PYTHONPATH=${PYTHONPATH:-.} "${PYTHON:-.venv/bin/python}" experiments/scripts/summarize_ppo_vs_baselines.py \
  "$OUT/ppo_vs_baselines_eval"

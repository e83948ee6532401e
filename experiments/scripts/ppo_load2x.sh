#!/usr/bin/env bash
# Follow-up of results/ppo_vs_baselines.md: does PPO fine-tuning improve on its warm start where
# the best heuristic is not at zero? Warm-started MaskablePPO trained and evaluated on
# sunflower-metro at twice its load (envs/scenarios/sunflower-metro-load2x.yaml),
# as configured (ent_coef 0) and with an entropy bonus (ent_coef 0.01), 3 seeds each, then the
# harness against deadline-aware and earliest-finish. About 45 min on 2 cores.
# Usage: bash experiments/scripts/ppo_load2x.sh
set -euo pipefail
MILLINET=${MILLINET:-.venv/bin/millinet}
RUNS=${RUNS:-runs/ppo_load2x}
OUT=${OUT:-results/ppo_load2x_eval}
SEEDS=${SEEDS:-"0 1 2"}
SCENARIO=envs/scenarios/sunflower-metro-load2x.yaml
mkdir -p "$RUNS"

train_one() {  # tag seed [--set ...]
  local tag=$1 seed=$2
  shift 2
  "$MILLINET" train --config experiments/configs/ppo_sunflower.yaml --scenario "$SCENARIO" \
    --seed "$seed" --set "tag=$tag" "$@" --runs-dir "$RUNS" --no-progress \
    > "$RUNS/train_${tag}_s${seed}.log" 2>&1
}
slot() { while [ "$(jobs -rp | wc -l)" -ge 2 ]; do wait -n; done; }  # 2 runs at a time
for s in $SEEDS; do
  slot; train_one warm "$s" &
  slot; train_one warm-ent "$s" --set ppo.ent_coef=0.01 &
done
wait
[ "${TRAIN_ONLY:-0}" = 1 ] && exit 0

policies=(--policy earliest-finish --policy deadline-aware)
for r in "$RUNS"/sunflower-metro-load2x_*/; do
  r=${r%/}
  policies+=(--policy "$r" --policy "$r@last")
  if [ -d "$r/pretrained" ]; then policies+=(--policy "$r@pretrained"); fi
done
"$MILLINET" evaluate --scenario "$SCENARIO" "${policies[@]}" --seeds 10 --workers 2 --out "$OUT"
PYTHONPATH=${PYTHONPATH:-.} "${PYTHON:-.venv/bin/python}" experiments/scripts/summarize_ppo_vs_baselines.py \
  "$OUT"

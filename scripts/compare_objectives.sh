#!/usr/bin/env bash
# The objectives side by side at fixed numbers of training steps (README, "Objectives"):
# the same recipe (configs/mnist.yaml's network, optimiser, batch and seeds) trained as
# ddpm, ddpm with min-SNR-γ, edm and flow_matching, then `difflab-cli eval` scores N
# samples of each with its objective's own ~50-call sampler (ddim 50, heun 25 = 49 calls,
# euler 50) at guidance w = 3 at every step (not the preset's guidance interval: the table
# predates it), same seed, one CSV row each.
#
#   STEPS="250 820 1640" N=1000 DATASET=fashion_mnist scripts/compare_objectives.sh
#   ONLY="edm flow" ... scripts/compare_objectives.sh   # some of the runs (names below)
#
# STEPS is a list: each run trains to the first count, is scored, resumes to the next
# (resuming is exact: the same weights as one run to the last count, since the learning
# rate is held constant after warm-up here: train.lr_schedule=constant, as when the table
# was measured; the preset's cosine decay is laid over the run's steps, so a run stopped
# early would not be the start of a longer one), and so on. Fixed steps rather than minutes, so the table
# does not depend on the machine's load. DATASET mnist (default) or fashion_mnist: the
# same recipe either way (Fashion's own preset trains 6,000 steps at lr 2e-4).
# Does not build: needs $BUILD_DIR/difflab-cli (default build/).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CLI="${BUILD_DIR:-$ROOT/build}/difflab-cli"
STEPS="${STEPS:-300}"
N="${N:-500}"
DATASET="${DATASET:-mnist}"
OUT_DIR="${OUT_DIR:-runs/objectives/$DATASET}"
CSV="${CSV:-$OUT_DIR/compare.csv}"
SEED="${SEED:-1}"
PRECISION="${PRECISION:-fp32}"  # fixed by default, so every run does the same arithmetic
THREADS="${THREADS:-0}"
case "$DATASET" in
  mnist|fashion_mnist) ;;
  *) echo "compare_objectives.sh: DATASET must be mnist or fashion_mnist, not '$DATASET'" >&2; exit 2 ;;
esac
mkdir -p "$OUT_DIR"
EVALUATOR="$OUT_DIR/evaluator.pt"  # one classifier for every run of the dataset

# name | extra --set overrides | sampler and steps for eval
runs=(
  "ddpm|--set diffusion.objective=ddpm|--sampler ddim --steps 50 --eta 0"
  "ddpm_minsnr|--set diffusion.objective=ddpm --set diffusion.loss_weighting=min_snr|--sampler ddim --steps 50 --eta 0"
  "edm|--set diffusion.objective=edm|--sampler heun --steps 25"
  "flow|--set diffusion.objective=flow_matching --set diffusion.flow_t_sampling=logit_normal|--sampler euler --steps 50"
)
for row in "${runs[@]}"; do
  IFS='|' read -r name sets sampler <<<"$row"
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then continue; fi
  run="$OUT_DIR/$name"
  resume=()
  for steps in $STEPS; do
    ckpt="$run/checkpoints/$(printf "step_%08d.pt" "$steps")"
    if [ -f "$CSV" ] && grep -q "^$ckpt,$steps,$N," "$CSV"; then  # scored before: rerun-safe
      resume=(--resume latest); continue  # (its checkpoint may be gone: a run keeps three)
    fi
    if [ ! -f "$ckpt" ]; then
      # shellcheck disable=SC2086  # $sets is a word list
      "$CLI" train --config configs/mnist.yaml --out "$run" --steps "$steps" --quiet \
        --threads "$THREADS" --set data.kind="$DATASET" \
        --set train.sample_every=0 --set train.checkpoint_every=100000 \
        --set train.precision="$PRECISION" --set train.lr_schedule=constant \
        $sets "${resume[@]}"
    fi
    # shellcheck disable=SC2086  # $sampler is a word list
    "$CLI" eval --checkpoint "$ckpt" --evaluator "$EVALUATOR" --n "$N" --seed "$SEED" \
      --guidance 3 --guidance-sigma-min 0 --guidance-sigma-max 0 --threads "$THREADS" \
      --csv "$CSV" $sampler
    resume=(--resume latest)
  done
done
# The floor: N real training images against the test split, once (with any checkpoint of
# the dataset for the config).
first=""
for row in "${runs[@]}"; do
  IFS='|' read -r name _ <<<"$row"
  for f in "$OUT_DIR/$name"/checkpoints/*.pt; do
    if [ -f "$f" ] && [ -z "$first" ]; then first="$f"; fi
  done
done
if [ -n "$first" ] && ! grep -q "(real images),[0-9]*,$N," "$CSV" 2>/dev/null; then
  "$CLI" eval --checkpoint "$first" --evaluator "$EVALUATOR" --n "$N" --real --csv "$CSV"
fi

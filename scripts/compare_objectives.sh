#!/usr/bin/env bash
# The objectives side by side on MNIST at a fixed number of training steps (README,
# "Objectives"): the same preset (configs/mnist.yaml's network, optimiser, batch and seeds)
# trained as ddpm, ddpm with min-SNR-γ, edm and flow_matching, then `difflab-cli eval`
# scores N samples of each with its objective's own ~50-call sampler (ddim 50, heun 25 =
# 49 calls, euler 50) at guidance w = 3, same seed, one CSV row each.
#
#   STEPS=300 N=500 OUT_DIR=runs/objectives scripts/compare_objectives.sh
#   ONLY="edm flow" ... scripts/compare_objectives.sh   # some of the runs (names below)
# Fixed steps rather than minutes, so the table does not depend on the machine's load.
# Does not build: needs $BUILD_DIR/difflab-cli (default build/).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CLI="${BUILD_DIR:-$ROOT/build}/difflab-cli"
STEPS="${STEPS:-300}"
N="${N:-500}"
OUT_DIR="${OUT_DIR:-runs/objectives}"
CSV="${CSV:-$OUT_DIR/compare.csv}"
SEED="${SEED:-1}"
PRECISION="${PRECISION:-fp32}"  # fixed, so every run does the same arithmetic
mkdir -p "$OUT_DIR"

# name | extra --set overrides | sampler and steps for eval
runs=(
  "ddpm||--sampler ddim --steps 50 --eta 0"
  "ddpm_minsnr|--set diffusion.loss_weighting=min_snr|--sampler ddim --steps 50 --eta 0"
  "edm|--set diffusion.objective=edm|--sampler heun --steps 25"
  "flow|--set diffusion.objective=flow_matching --set diffusion.flow_t_sampling=logit_normal|--sampler euler --steps 50"
)
for row in "${runs[@]}"; do
  IFS='|' read -r name sets sampler <<<"$row"
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then continue; fi
  run="$OUT_DIR/$name"
  # shellcheck disable=SC2086  # $sets and $sampler are word lists
  "$CLI" train --config configs/mnist.yaml --out "$run" --steps "$STEPS" \
    --set train.sample_every=0 --set train.precision="$PRECISION" $sets
  # shellcheck disable=SC2086
  "$CLI" eval --run "$run" --n "$N" --seed "$SEED" --guidance 3 --csv "$CSV" $sampler
done
if [ -d "$OUT_DIR/ddpm" ]; then "$CLI" eval --run "$OUT_DIR/ddpm" --n "$N" --real --csv "$CSV"; fi

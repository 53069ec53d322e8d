#!/usr/bin/env bash
# The sampler / guidance comparison of README "Samplers and guidance, measured": for one
# trained run, `difflab-cli eval` scores N samples of each setting with the evaluator
# classifier (accuracy against the requested classes, Frechet distance to the test split,
# and the floor: N real training images against the same split) and appends one CSV row
# each. DDPM over all 1000 steps costs 20x a 50-step sampler, so it gets its own N.
#
#   RUN=runs/mnist_ddpm N=200 N_DDPM=40 OUT=eval_samplers.csv scripts/eval_samplers.sh
# RUN must be a DDPM run (configs/mnist_ddpm.yaml): DDIM, DDPM and DPM++ apply to DDPM only.
# With CLASSIFIER=runs/mnist_classifier/classifier.pt (difflab-cli train-classifier) it also
# scores classifier guidance on the unconditional model (w = 0): DDIM 50 at scales 1, 3, 10
# (the DDIM form) and DDPM 50 at scale 3 (the ancestral form).
# Does not build: needs $BUILD_DIR/difflab-cli (default build/).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CLI="${BUILD_DIR:-$ROOT/build}/difflab-cli"
RUN="${RUN:-runs/mnist_ddpm}"
N="${N:-200}"
N_DDPM="${N_DDPM:-40}"
OUT="${OUT:-$RUN/eval_samplers.csv}"
SEED="${SEED:-1}"

ev() { "$CLI" eval --run "$RUN" --seed "$SEED" --csv "$OUT" "$@"; }
# Samplers at the preset's guidance (w = 3).
ev --n "$N" --sampler ddim --steps 50 --eta 0 --guidance 3
ev --n "$N" --sampler ddim --steps 20 --eta 0 --guidance 3
ev --n "$N" --sampler euler --steps 50 --guidance 3
ev --n "$N" --sampler heun --steps 25 --guidance 3
ev --n "$N" --sampler dpmpp_2m --sigmas karras --steps 20 --guidance 3
# Classifier-free guidance scales, DDIM 50.
for w in 0 1 5; do ev --n "$N" --sampler ddim --steps 50 --eta 0 --guidance "$w"; done
if [ -n "${CLASSIFIER:-}" ]; then
  for s in 1 3 10; do
    ev --n "$N" --sampler ddim --steps 50 --eta 0 --guidance 0 --classifier "$CLASSIFIER" --classifier-scale "$s"
  done
  ev --n "$N" --sampler ddpm --steps 50 --guidance 0 --classifier "$CLASSIFIER" --classifier-scale 3
fi
ev --n "$N" --real
# DDPM over every step (fixed small variance).
ev --n "$N_DDPM" --sampler ddpm --steps 1000 --variance fixed_small --guidance 3
echo "eval_samplers: rows appended to $OUT"

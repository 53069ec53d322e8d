#!/usr/bin/env bash
# Rebuilds the starter models in assets/starters/ with the project's own CLI, so a new
# user can sample, scrub and scribble seconds after the first launch (the GUI loads
# assets/starters/mnist/model.pt when it starts plainly; File > Starter model has all).
#
#   scripts/make_starters.sh [--force] [--work DIR]
#
# What it does (about an hour on 2 busy cores; figures in assets/starters/README.md):
#   1. trains configs/mnist_quick.yaml (flow matching, a 0.23 M-parameter UNet) for 2400
#      steps on MNIST and on Fashion-MNIST, EMA 0.995;
#   2. exports each (difflab-cli export: EMA weights only, fp16) to
#      assets/starters/<dataset>/model.pt;
#   3. trains a mixed canny/scribble ControlNet on each *exported* base (so its weight
#      fingerprint is the one shipped) and exports it beside it, in controlnets/mixed/;
#   4. scores them: evaluator accuracy and FD (N 1000, Euler 50, guidance 3) and the
#      ControlNet's edge F1 with and without it (64 test images).
# Needs the build (build/difflab-cli) and the data (scripts/setup.sh installs both).
# Existing starters are kept unless --force.
set -euo pipefail
cd "$(dirname "$0")/.."
FORCE=0
WORK=${TMPDIR:-/tmp}/difflab-starters
while [ $# -gt 0 ]; do
  case "$1" in
    --force) FORCE=1 ;;
    --work) WORK=$2; shift ;;
    *) echo "usage: scripts/make_starters.sh [--force] [--work DIR]" >&2; exit 2 ;;
  esac
  shift
done
CLI=${DIFFLAB_CLI:-build/difflab-cli}
[ -x "$CLI" ] || { echo "make_starters: $CLI not found: build first (scripts/setup.sh)" >&2; exit 1; }
OUT=assets/starters
if [ -e "$OUT/mnist/model.pt" ] || [ -e "$OUT/fashion_mnist/model.pt" ]; then
  [ "$FORCE" = 1 ] || { echo "make_starters: $OUT already holds starter models; pass --force to rebuild them" >&2; exit 1; }
fi
STEPS=${STEPS:-2400}
CN_STEPS=${CN_STEPS:-800}
EVAL_N=${EVAL_N:-1000}
mkdir -p "$WORK"
rm -rf "$WORK/mnist" "$WORK/fashion_mnist" "$WORK/mnist_controlnet" "$WORK/fashion_mnist_controlnet" "$WORK/staging"
STAGE=$WORK/staging
COMMON=(--config configs/mnist_quick.yaml --steps "$STEPS" --quiet
        --set train.ema_decay=0.995 --set train.sample_every=0 --set train.checkpoint_every=1200)

for set in mnist fashion_mnist; do
  echo "== training $set ($STEPS steps)"
  "$CLI" train "${COMMON[@]}" --set data.kind=$set --out "$WORK/$set" 2>&1 | tail -n 3
  "$CLI" export "$WORK/$set" "$STAGE/$set/model.pt"
done

for set in mnist fashion_mnist; do
  echo "== training the $set ControlNet ($CN_STEPS steps) on the exported base"
  "$CLI" train-controlnet --config configs/mnist_quick.yaml --set data.kind=$set \
    --base "$STAGE/$set/model.pt" --hint mixed --steps "$CN_STEPS" --eval-every 0 \
    --out "$WORK/${set}_controlnet" 2>&1 | tail -n 3
  "$CLI" export "$WORK/${set}_controlnet/controlnet.pt" "$STAGE/$set/controlnets/mixed/controlnet.pt" \
    --base "$STAGE/$set/model.pt"
done

echo "== scoring"
for set in mnist fashion_mnist; do
  "$CLI" eval --checkpoint "$STAGE/$set/model.pt" --n "$EVAL_N" --evaluator "$WORK/$set/evaluator.pt" \
    --csv "$WORK/starters_eval.csv" 2>&1 | grep -a "^eval "
done
for set in mnist fashion_mnist; do
  "$CLI" eval-controlnet --controlnet "$STAGE/$set/controlnets/mixed/controlnet.pt" --n 64 \
    --out "$WORK/${set}_controlnet/eval" --overwrite 2>&1 | grep -a -v "^sampling step" | tail -n 6
done

# Everything made and scored: replace the shipped copies in one move per dataset.
for set in mnist fashion_mnist; do
  rm -rf "$OUT/$set.old"
  [ -e "$OUT/$set" ] && mv "$OUT/$set" "$OUT/$set.old"
  mkdir -p "$OUT"
  mv "$STAGE/$set" "$OUT/$set"
  rm -rf "$OUT/$set.old"
done
du -ab "$OUT" | grep '\.pt$'
echo "total: $(du -cb "$OUT"/*/model.pt "$OUT"/*/controlnets/*/controlnet.pt | tail -n 1 | cut -f1) bytes"

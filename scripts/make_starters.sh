#!/usr/bin/env bash
# Rebuilds the starter models in assets/starters/ with the project's own CLI, so a new
# user can sample, scrub and scribble seconds after the first launch (the GUI loads
# assets/starters/mnist/model.pt when it starts plainly; File > Starter model has all).
#
#   scripts/make_starters.sh [--force] [--work DIR]
#
# What it does (about two hours on 2 busy cores; figures in assets/starters/README.md):
#   1. trains configs/mnist_quick.yaml (flow matching, a 0.23 M-parameter UNet) for 2400
#      steps on MNIST and on Fashion-MNIST, EMA 0.995;
#   2. exports each (difflab-cli export: EMA weights only, fp16) to
#      assets/starters/<dataset>/model.pt;
#   3. trains ControlNets on each *exported* base (so their weight fingerprint is the one
#      shipped), one per hint kind in $KINDS (default: mixed canny/scribble, hough, mask,
#      distance), and exports each beside it, in controlnets/<kind>/;
#   4. scores them: evaluator accuracy and FD (N 1000, Euler 50, guidance 3) and each
#      ControlNet's hint following with and without it (64 test images: edge F1 for canny,
#      scribble and hough hints, IoU for mask, mean absolute difference for distance).
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
KINDS=${KINDS:-mixed hough mask distance}
EVAL_N=${EVAL_N:-1000}
mkdir -p "$WORK"
rm -rf "$WORK/mnist" "$WORK/fashion_mnist" "$WORK"/*_controlnet_* "$WORK/staging"
STAGE=$WORK/staging
COMMON=(--config configs/mnist_quick.yaml --steps "$STEPS" --quiet
        --set train.ema_decay=0.995 --set train.sample_every=0 --set train.checkpoint_every=1200)

for set in mnist fashion_mnist; do
  echo "== training $set ($STEPS steps)"
  "$CLI" train "${COMMON[@]}" --set data.kind=$set --out "$WORK/$set" 2>&1 | tail -n 3
  "$CLI" export "$WORK/$set" "$STAGE/$set/model.pt"
done

for set in mnist fashion_mnist; do
  for kind in $KINDS; do
    echo "== training the $set $kind ControlNet ($CN_STEPS steps) on the exported base"
    "$CLI" train-controlnet --config configs/mnist_quick.yaml --set data.kind=$set \
      --base "$STAGE/$set/model.pt" --hint "$kind" --steps "$CN_STEPS" --eval-every 0 \
      --out "$WORK/${set}_controlnet_$kind" 2>&1 | tail -n 3
    "$CLI" export "$WORK/${set}_controlnet_$kind/controlnet.pt" \
      "$STAGE/$set/controlnets/$kind/controlnet.pt" --base "$STAGE/$set/model.pt"
  done
done

echo "== scoring"
for set in mnist fashion_mnist; do
  "$CLI" eval --checkpoint "$STAGE/$set/model.pt" --n "$EVAL_N" --evaluator "$WORK/$set/evaluator.pt" \
    --csv "$WORK/starters_eval.csv" 2>&1 | grep -a "^eval "
done
for set in mnist fashion_mnist; do
  for kind in $KINDS; do
    # A mixed ControlNet is scored on each of its two kinds.
    for hints in $( [ "$kind" = mixed ] && echo "canny scribble" || echo "$kind" ); do
      "$CLI" eval-controlnet --controlnet "$STAGE/$set/controlnets/$kind/controlnet.pt" --n 64 \
        --kind "$hints" --out "$WORK/${set}_controlnet_$kind/eval_$hints" --overwrite 2>&1 |
        grep -a -v "^sampling step" | tail -n 6
    done
  done
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

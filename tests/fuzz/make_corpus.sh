#!/usr/bin/env bash
# Rewrites tests/fuzz/corpus/, the seeds scripts/fuzz.sh starts each target from:
#   idx/ cifar10/ image/   make_seeds (tests/fuzz/make_seeds.cpp, built in build-fuzz/)
#   config/                configs/*.yaml, and a config as a run saves it (every key)
#   checkpoint/            two-step runs of difflab-cli (an MLP on toy2d, a tiny UNet with
#                          attention on an image folder), without their CRC-32 seal so that
#                          mutations reach LibTorch's reader, plus one sealed copy
#
#   tests/fuzz/make_corpus.sh [DIFFLAB_CLI]   # default build/difflab-cli (scripts/setup.sh)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CLI="${1:-$ROOT/build/difflab-cli}"
BUILD="${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
CORPUS="$ROOT/tests/fuzz/corpus"
SEEDS="$BUILD/tests/fuzz/make_seeds"

[ -x "$CLI" ] || { echo "make_corpus: no difflab-cli at $CLI (run scripts/setup.sh)" >&2; exit 1; }
if [ ! -x "$SEEDS" ]; then
  echo "make_corpus: $SEEDS is not built (run scripts/fuzz.sh once, or" \
       "cmake --build $BUILD --target make_seeds)" >&2
  exit 1
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

rm -rf "$CORPUS"
mkdir -p "$CORPUS/config" "$CORPUS/checkpoint"
"$SEEDS" "$CORPUS"

quiet_run=(--threads 1 --quiet --steps 2 --set train.sample_every=0 --set train.eval_every=0)

# An MLP on 2-D points, as small as the config allows.
"$CLI" train --config "$ROOT/configs/toy2d.yaml" --out "$work/mlp" "${quiet_run[@]}" \
  --set model.mlp_hidden=16 --set model.mlp_layers=1 --set train.batch_size=16 \
  --set data.toy_points=64 >/dev/null
# A UNet of one level (4 channels, attention at 8x8) on two classes of 8x8 grey images.
mkdir -p "$work/images/a" "$work/images/b"
cp "$CORPUS/image/grey_8x8.png" "$CORPUS/image/rgb_20x12.png" "$work/images/a/"
cp "$CORPUS/image/rgb_24x16.jpg" "$CORPUS/image/rgb_7x5.bmp" "$work/images/b/"
"$CLI" train --config "$ROOT/configs/mnist.yaml" --out "$work/unet" "${quiet_run[@]}" \
  --set data.kind=image_folder --set data.path="$work/images" --set data.image_size=8 \
  --set data.channels=1 --set data.test_fraction=0.25 --set model.base_channels=4 \
  --set 'model.channel_mult=[1]' --set model.num_res_blocks=1 \
  --set 'model.attention_resolutions=[8]' --set model.num_heads=1 --set model.norm_groups=2 \
  --set model.num_classes=2 --set train.batch_size=2 >/dev/null

cp "$ROOT"/configs/*.yaml "$CORPUS/config/"
cp "$work/mlp/config.yaml" "$CORPUS/config/saved_toy2d.yaml"
"$SEEDS" unseal "$work/mlp/checkpoints/step_00000002.pt" "$CORPUS/checkpoint/mlp_toy2d.pt"
"$SEEDS" unseal "$work/unet/checkpoints/step_00000002.pt" "$CORPUS/checkpoint/unet_8x8.pt"
cp "$work/mlp/checkpoints/step_00000002.pt" "$CORPUS/checkpoint/mlp_toy2d_sealed.pt"

du -sh "$CORPUS"/* "$CORPUS"

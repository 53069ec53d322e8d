#!/usr/bin/env bash
# Data-parallel training against one process on this machine, the same global batch:
# `--nproc 2`, 1 thread each, against 1 process with 2 threads, alternating ROUNDS times.
# Prints images/s of each (the steady rate of the last log line) and rank 0's all-reduce
# time per step.
#   scripts/bench_distributed.sh [BUILD_DIR]
#     (STEPS=40 ROUNDS=2 BATCH=64 CONFIG=configs/mnist.yaml PRECISION=fp32: the same math in
#     both, so the ratio measures the data parallelism)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
CLI=$BUILD/difflab-cli
STEPS=${STEPS:-40}
ROUNDS=${ROUNDS:-2}
BATCH=${BATCH:-64}
CONFIG=${CONFIG:-configs/mnist.yaml}
PRECISION=${PRECISION:-fp32}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
COMMON=(--config "$CONFIG" --steps "$STEPS" --quiet --set train.sample_every=0
        --set train.eval_every=0 --set train.log_every=10 --set train.checkpoint_every=0
        --set train.autosave_minutes=0 --set train.precision="$PRECISION")
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
echo "config: $CONFIG, global batch $BATCH, $STEPS steps a run, precision $PRECISION"
rate() { grep "^step $STEPS/" "$1" | sed -E 's/.* ([0-9.]+) img\/s.*/\1/'; }
for round in $(seq "$ROUNDS"); do
  "$CLI" train "${COMMON[@]}" --threads 2 --set train.batch_size="$BATCH" \
    --out "$WORK/one_$round" > "$WORK/one_$round.txt" 2>&1
  "$CLI" train "${COMMON[@]}" --nproc 2 --threads 1 --set train.batch_size=$((BATCH / 2)) \
    --out "$WORK/two_$round" > "$WORK/two_$round.txt" 2>&1
  one=$(rate "$WORK/one_$round.txt")
  two=$(rate "$WORK/two_$round.txt")
  reduce=$(grep "^step $STEPS/" "$WORK/two_$round.txt" | sed -E 's/.*all-reduce ([0-9.]+) ms\/step.*/\1/')
  echo "round $round: 1 process x 2 threads $one img/s | 2 ranks x 1 thread $two img/s" \
       "(ratio $(awk -v a="$two" -v b="$one" 'BEGIN { printf "%.2f", a / b }'))," \
       "all-reduce $reduce ms/step"
done

#!/usr/bin/env bash
# A killed GUI loses at most one autosave interval: train a tiny MNIST model with
# train.autosave_minutes=0.05 (every 3 s of training), wait for an autosave, kill -9 the
# app while it trains, reopen it with the same --runs: it offers "Resume the last run
# <dir> from step N?" (N = the autosave's step); a real click on Resume continues training
# that run from step N (the app exits by itself a few steps later: --exit-when-step).
#
# usage: gui_resume.sh APP SOURCE_DIR WORK_DIR
# Prints "SKIPPED: ..." and exits 0 when Xvfb or xdotool is missing.
set -u
APP=$1
SRC=$2
WORK=$3
source "$(dirname "${BASH_SOURCE[0]}")/gui_common.sh"
gui_workdir "$WORK" 1
require_gui_tools
start_xvfb 301 370 "$WORK"

cd "$SRC" || fail "no source dir $SRC"
RUNS=$WORK/runs
TINY=(--set train.batch_size=16 --set data.max_train=2000 --set model.base_channels=16
      --set "model.channel_mult=[1,2]" --set "model.attention_resolutions=[]"
      --set train.checkpoint_every=100000 --set train.autosave_minutes=0.05 --threads 1)
"$APP" --print-layout --ini none --worker-nice 0 --runs "$RUNS" --set train.steps=100000 "${TINY[@]}" \
  > "$OUT" 2> "$ERR" &
APP_PID=$!

M=$(lines)
click Train 120
# The first autosave ("run DIR saved_step N" with N ≥ 1), then a few more steps.
LINE=$(wait_line "^run .* saved_step [1-9][0-9]*" 120) || fail "no autosave within 120 s"
echo "autosave: $LINE"
RUN=$(echo "$LINE" | awk '{print $2}')
AUTOSAVED=$(echo "$LINE" | awk '{print $4}')
wait_step $((AUTOSAVED + 2)) 120 "$M" > /dev/null || fail "training stopped after the autosave"
kill -9 "$APP_PID"
wait "$APP_PID" 2> /dev/null
APP_PID=
LATEST=$(cat "$RUN/checkpoints/latest" 2> /dev/null) || fail "no $RUN/checkpoints/latest after the autosave"
STEP=${LATEST#step_}
STEP=$((10#${STEP%.pt}))
echo "killed at step $(grep -E '^status training step' "$OUT" | tail -n 1 | awk '{print $4}'); newest checkpoint $LATEST"
grep -q "$RUN" "$RUNS/last-gui-run" || fail "$RUNS/last-gui-run does not name $RUN"

# Reopen with the same runs folder: the offer, then Resume.
OUT=$WORK/stdout2.txt
ERR=$WORK/stderr2.txt
: > "$OUT"
: > "$ERR"
"$APP" --print-layout --ini none --worker-nice 0 --runs "$RUNS" --exit-when-step $((STEP + 3)) --timeout 300 \
  --set train.steps=100000 "${TINY[@]}" > "$OUT" 2> "$ERR" &
APP_PID=$!
LINE=$(wait_line "^dialog resume: " 60) || fail "reopening did not offer the last run"
echo "$LINE"
[ "$LINE" = "dialog resume: $RUN step $STEP" ] || fail "the offer names another run or step (expected $RUN step $STEP)"
grep -q "^status training" "$OUT" && fail "training started before Resume was clicked"
click ResumeRun
wait_exit 180 || fail "the resumed run did not reach step $((STEP + 3))"
[ "$RC" -eq 0 ] || fail "difflab exited with $RC"
FIRST=$(grep -E "^status training step" "$OUT" | head -n 1 | awk '{print $4}')
[ -n "$FIRST" ] || fail "no training after Resume"
[ "$FIRST" -ge "$STEP" ] || fail "training resumed at step $FIRST, before the autosave's step $STEP"
[ "$FIRST" -le $((STEP + 2)) ] || fail "training resumed at step $FIRST, not from the autosave's step $STEP"
grep -q "^run $RUN " "$OUT" || fail "the resumed model's run folder is not $RUN"
echo "PASS: killed after an autosave at step $STEP; reopening offered $RUN; Resume continued from step $FIRST"
exit 0

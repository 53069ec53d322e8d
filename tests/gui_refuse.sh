#!/usr/bin/env bash
# The GUI keeps what the user has when a request cannot be carried out (real xdotool
# clicks in a private Xvfb display):
#   - a ControlNet trained (with difflab-cli) for another base model is refused, with the
#     CLI's message in the ControlNet panel, and the GUI's own model stays;
#   - a dataset path that does not load fails in the Dataset panel and keeps the model
#     and its data (model_ready stays 1), even after "Discard" in the unsaved dialog.
#
# usage: gui_refuse.sh APP CLI SOURCE_DIR WORK_DIR
# Prints "SKIPPED: ..." and exits 0 when Xvfb or xdotool is missing.
set -u
APP=$1
CLI=$2
SRC=$3
WORK=$4
source "$(dirname "${BASH_SOURCE[0]}")/gui_common.sh"
gui_workdir "$WORK"
require_gui_tools

cd "$SRC" || fail "no source dir $SRC"
TINY=(--set model.base_channels=16 --set "model.channel_mult=[1,2]" --set "model.attention_resolutions=[]"
      --set data.max_train=512 --set sample.n=4 --set sample.steps=2 --threads 1)
# A base and a ControlNet for it (a few steps: the plumbing, not the quality).
"$CLI" train "${TINY[@]}" --steps 3 --set train.batch_size=8 --set train.sample_every=0 \
  --out "$WORK/base" --quiet > "$WORK/train.txt" 2>&1 || { cat "$WORK/train.txt"; fail "base training failed"; }
"$CLI" train-controlnet "${TINY[@]}" --base "$WORK/base" --steps 3 --set controlnet.batch_size=8 \
  --eval-every 0 --out "$WORK/controlnet" > "$WORK/train_controlnet.txt" 2>&1 \
  || { cat "$WORK/train_controlnet.txt"; fail "ControlNet training failed"; }
CONTROLNET=$WORK/controlnet/controlnet.pt
[ -f "$CONTROLNET" ] || fail "no controlnet.pt written"

start_xvfb 371 440 "$WORK"
"$APP" --print-layout --ini none --worker-nice 0 --runs "$WORK/runs" --set train.steps=100000 \
  --set train.batch_size=8 "${TINY[@]}" > "$OUT" 2> "$ERR" &
APP_PID=$!

# The GUI's own model (same architecture, other weights).
M=$(lines)
click Train 120
wait_step 3 180 "$M" > /dev/null || fail "training did not reach step 3"
M=$(lines)
click Stop
wait_new "$M" "^status idle" 180 > /dev/null || fail "training did not stop"

# The ControlNet panel (Ctrl+9), the path, Load: refused.
press ctrl+9
type_into ControlNetPath "$CONTROLNET"
click ControlNetLoad
LINE=$(wait_line "^job ControlNet (failed|done)" 60) || fail "loading the ControlNet reported nothing"
echo "$LINE"
case "$LINE" in "job ControlNet failed"*) ;; *) fail "a ControlNet for another base was accepted" ;; esac
echo "$LINE" | grep -q "other base weights" || fail "the refusal does not give the CLI's reason: $LINE"
wait_line "^layout Job\.failed\.ControlNet@ControlNet " 10 > /dev/null || fail "the ControlNet panel does not show the refusal"
tail -n 1 <(grep "^status" "$OUT") | grep -q "model_ready=1" || fail "the GUI's model was dropped"

# A dataset path that does not load: the unsaved dialog asks (Discard), the load fails
# in the Dataset panel, and the model and data stay.
type_into DatasetPath "$WORK/no-such-mnist"
M=$(lines)
click Load
wait_new "$M" "^dialog unsaved: switch the dataset" 30 > /dev/null || fail "changing the dataset path with unsaved training did not ask"
click UnsavedDiscard
LINE=$(wait_new "$M" "^job (dataset|config) failed" 60) || fail "the bad dataset path did not fail"
echo "$LINE"
echo "$LINE" | grep -q "no-such-mnist" || fail "the failure does not name the path: $LINE"
wait_line "^layout Job\.failed\.(dataset|config)@Dataset " 10 > /dev/null || fail "the Dataset panel does not show the failure"
sleep 1
awk '/^status .*model_ready=1/ { ready = 1 } ready && /^status .*model_ready=0/ { lost = 1 } END { exit !lost }' "$OUT" \
  && fail "the model was discarded by a dataset path that does not load"
tail -n 1 <(grep "^status" "$OUT") | grep -q "data_ready=1 model_ready=1" || fail "model or data lost: $(grep '^status' "$OUT" | tail -n 1)"

# Quit: still unsaved, so it asks; Discard quits.
M=$(lines)
press ctrl+q
wait_new "$M" "^dialog unsaved: quit" 30 > /dev/null || fail "Ctrl+Q did not ask"
click UnsavedDiscard
wait_exit 60 || fail "Discard did not quit"
[ "$RC" -eq 0 ] || fail "difflab exited with $RC"
echo "PASS: the mismatched ControlNet was refused in its panel; a bad dataset path kept model and data"
exit 0

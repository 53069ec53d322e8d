#!/usr/bin/env bash
# Training a ControlNet in the GUI, with real xdotool clicks in a private Xvfb display:
#   1. train a tiny MNIST model a few steps (Train, Stop: its steps are not saved yet);
#   2. open the ControlNet panel (Ctrl+9), its Train tab, press Train: the model is saved into
#      its run folder first, and the ControlNet trains into <run>/controlnets/scribble-1/;
#   3. wait for two points of the hint-following curve (at the start and at step 100), the
#      one without the ControlNet too; Pause holds the step; Resume; Stop writes controlnet.pt,
#      loads it and lists it as one of the model's ControlNets;
#   4. draw a stroke on the canvas, Generate: a ControlNet sampling run, and a screenshot.
#
# usage: gui_controlnet_train.sh APP SOURCE_DIR WORK_DIR CHECK
# Prints "SKIPPED: ..." and exits 0 when Xvfb or xdotool is missing.
set -u
APP=$1
SRC=$2
WORK=$3
CHECK=$4
source "$(dirname "${BASH_SOURCE[0]}")/gui_common.sh"
gui_workdir "$WORK"
require_gui_tools
start_xvfb 301 370 "$WORK"

cd "$SRC" || fail "no source dir $SRC"
RUNS=$WORK/runs
SHOT=$WORK/controlnet_train.png
TINY=(--set train.batch_size=8 --set data.max_train=512 --set model.base_channels=16
      --set "model.channel_mult=[1,2]" --set "model.attention_resolutions=[]"
      --set train.sample_every=0 --set train.eval_every=0 --set train.checkpoint_every=100000
      --set controlnet.batch_size=8 --set sample.n=4 --set sample.steps=5 --threads 1)
"$APP" --print-layout --ini none --worker-nice 0 --runs "$RUNS" --set train.steps=100000 "${TINY[@]}" \
  --exit-when-sampled --screenshot "$SHOT" --timeout 500 > "$OUT" 2> "$ERR" &
APP_PID=$!

# 1. A tiny base model: a few steps, unsaved.
M=$(lines)
click Train 120
wait_step 3 180 "$M" > /dev/null || fail "training did not reach step 3"
M=$(lines)
click Stop
wait_new "$M" "^status idle" 120 > /dev/null || fail "training did not stop"
RUN=$(grep -E "^run " "$OUT" | tail -n 1 | awk '{print $2}')
echo "base run folder: $RUN"
case "$RUN" in "$RUNS"/mnist-*) ;; *) fail "no run folder under $RUNS" ;; esac

# 2. The ControlNet panel, Train tab, Train.
press ctrl+9
click ControlNetTabTrain 60
M=$(lines)
click ControlNetTrain 60
wait_new "$M" "^job ControlNet running" 120 > /dev/null || fail "ControlNet training did not start"
grep -qE "^run $RUN saved_step [0-9]+ " "$OUT" \
  || fail "the model's unsaved steps were not saved before the ControlNet trained"
[ -n "$(ls "$RUN"/checkpoints/step_*.pt 2> /dev/null)" ] || fail "no base checkpoint in $RUN/checkpoints"

# 3. Two curve points (step 0 and step 100), Pause, Resume, Stop.
LINE=$(wait_new "$M" "^controlnet training .* f1_points 2 " 300) || fail "no second hint-following curve point"
echo "$LINE"
read -r _ _ _ _ _ _ _ F1 _ F1_WITHOUT _ <<< "$LINE"
awk -v a="$F1" -v b="$F1_WITHOUT" 'BEGIN { exit !(a >= 0 && a <= 1 && b >= 0 && b <= 1) }' \
  || fail "curve values out of [0, 1]: $LINE"
M=$(lines)
click ControlNetPause
wait_new "$M" "^status ControlNet paused" 60 > /dev/null || fail "Pause did not pause the ControlNet"
M=$(lines)
click ControlNetPause  # now Resume
wait_new "$M" "^status training ControlNet" 60 > /dev/null || fail "Resume did not resume"
sleep 1
M=$(lines)
click ControlNetStop
LINE=$(wait_new "$M" "^job ControlNet (done|failed)" 120) || fail "Stop did not end the ControlNet training"
echo "$LINE"
case "$LINE" in "job ControlNet done path=$RUN/controlnets/scribble-1/controlnet.pt "*) ;;
  *) fail "expected $RUN/controlnets/scribble-1/controlnet.pt: $LINE" ;; esac
[ -f "$RUN/controlnets/scribble-1/controlnet.pt" ] || fail "no controlnet.pt"
grep -q "hint_f1" "$RUN/controlnets/scribble-1/metrics.csv" || fail "no hint_f1 column in metrics.csv"
wait_line "^controlnet found $RUN/controlnets/scribble-1/controlnet.pt fits=1" 60 > /dev/null \
  || fail "the trained ControlNet is not listed as one of the model's"

# 4. Draw on the canvas (the Generate tab is in front now) and Generate.
sleep 1
LINE=$(wait_line "^layout ControlNetCanvas .* enabled=1" 60) || fail "no canvas"
read -r _ _ X Y W H _ <<< "$LINE"
app_window
echo "drawing on the canvas at ($X, $Y) ${W}x$H"
xdotool mousemove --window "$WID" $((X + W / 2)) $((Y + H / 5))
sleep 0.2
xdotool mousedown 1
for i in $(seq 1 12); do
  xdotool mousemove --window "$WID" $((X + W / 2)) $((Y + H / 5 + i * H / 20))
  sleep 0.05
done
xdotool mouseup 1
sleep 0.3
click ControlNetGenerate 60
wait_exit 300 || fail "difflab did not exit after generating"
[ "$RC" -eq 0 ] || fail "difflab exited with $RC"
grep -q "^\[exit-when-sampled\] sampled .* with the ControlNet" "$OUT" || fail "no ControlNet sampling run after the click"
[ -f "$SHOT" ] || fail "no screenshot $SHOT"
"$CHECK" "$SHOT" || fail "the screenshot is not a plausible picture"
echo "PASS: trained a ControlNet in the GUI into $RUN/controlnets/scribble-1 (curve: $F1 with, $F1_WITHOUT without), generated with it"
exit 0

#!/usr/bin/env bash
# ControlNet GUI test: train a tiny base model and ControlNet with difflab-cli (a few
# steps: this checks the plumbing, not the quality), start difflab in a private Xvfb
# display with --controlnet, draw a stroke on the ControlNet canvas with xdotool (button
# held, pointer dragged), click the real Generate button once it is enabled (a ControlNet
# is loaded and the hint has pixels), and expect a ControlNet sampling run and a
# screenshot (--exit-when-sampled --screenshot).
#
# usage: gui_controlnet.sh APP CLI SOURCE_DIR WORK_DIR CHECK
# Prints "SKIPPED: ..." and exits 0 when Xvfb or xdotool is missing.
set -u
APP=$1
CLI=$2
SRC=$3
WORK=$4
CHECK=$5
source "$(dirname "${BASH_SOURCE[0]}")/gui_common.sh"
gui_workdir "$WORK"
require_gui_tools

cd "$SRC" || fail "no source dir $SRC"
TINY=(--set model.base_channels=16 --set "model.channel_mult=[1,2]" --set "model.attention_resolutions=[]"
      --set data.max_train=512 --set sample.n=4 --set sample.steps=2 --threads 1)
"$CLI" train "${TINY[@]}" --steps 3 --set train.batch_size=8 --set train.sample_every=0 \
  --out "$WORK/base" --quiet > "$WORK/train.txt" 2>&1 || { cat "$WORK/train.txt"; fail "base training failed"; }
"$CLI" train-controlnet "${TINY[@]}" --base "$WORK/base" --steps 3 --set controlnet.batch_size=8 \
  --eval-every 0 --out "$WORK/controlnet" > "$WORK/train_controlnet.txt" 2>&1 \
  || { cat "$WORK/train_controlnet.txt"; fail "ControlNet training failed"; }
[ -f "$WORK/controlnet/controlnet.pt" ] || fail "no controlnet.pt written"

start_xvfb 161 230 "$WORK"

SHOT=$WORK/controlnet.png
rm -f "$SHOT"
"$APP" --controlnet "$WORK/controlnet/controlnet.pt" --print-layout --exit-when-sampled \
  --screenshot "$SHOT" --timeout 300 --threads 1 --no-autoload --set sample.steps=5 --runs "$WORK/runs" \
  > "$OUT" 2> "$ERR" &
APP_PID=$!

wait_for() {  # wait_for REGEX: the last stdout line matching it, or fail
  local line=
  for _ in $(seq 1 240); do
    line=$(grep "$1" "$OUT" | tail -n 1)
    [ -n "$line" ] && { echo "$line"; return 0; }
    kill -0 "$APP_PID" 2> /dev/null || return 1
    sleep 0.5
  done
  return 1
}

LINE=$(wait_for "^layout ControlNetCanvas ") || fail "the ControlNet canvas never appeared"
read -r _ _ X Y W H _ <<< "$LINE"
WID=$(xdotool search --name "Diffusion Lab" | head -n 1)
[ -n "$WID" ] || fail "no window named Diffusion Lab"
grep -q "^layout ControlNetGenerate .* enabled=1" "$OUT" && fail "Generate was enabled before anything was drawn"
# A diagonal stroke across the middle of the canvas, in small moves with the button held.
echo "drawing on the canvas at ($X, $Y) ${W}x$H"
xdotool mousemove --window "$WID" $((X + W / 4)) $((Y + H / 4))
sleep 0.2
xdotool mousedown 1
for i in $(seq 1 12); do
  xdotool mousemove --window "$WID" $((X + W / 4 + i * W / 24)) $((Y + H / 4 + i * H / 24))
  sleep 0.05
done
xdotool mouseup 1
sleep 0.3

LINE=$(wait_for "^layout ControlNetGenerate .* enabled=1") \
  || fail "Generate never became enabled (ControlNet not loaded, or the stroke left no hint)"
read -r _ _ X Y W H _ <<< "$LINE"
echo "clicking Generate at ($((X + W / 2)), $((Y + H / 2)))"
xdotool mousemove --window "$WID" $((X + W / 2)) $((Y + H / 2))
sleep 0.3
xdotool click 1

for _ in $(seq 1 600); do
  kill -0 "$APP_PID" 2> /dev/null || break
  sleep 0.5
done
wait "$APP_PID"
RC=$?
APP_PID=
[ "$RC" -eq 0 ] || fail "difflab exited with $RC"
grep -q "^\[exit-when-sampled\] sampled .* with the ControlNet" "$OUT" || fail "no ControlNet sampling run after the click"
[ -f "$SHOT" ] || fail "no screenshot $SHOT"
"$CHECK" "$SHOT" || fail "the screenshot is not a plausible picture"
echo "PASS: drew a stroke, generated with the ControlNet, screenshot $SHOT"
exit 0

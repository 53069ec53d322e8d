#!/usr/bin/env bash
# GUI click test: start difflab in a private Xvfb display, wait until it reports the
# Train button enabled (--print-layout prints "layout Train X Y W H enabled=1" once the
# dataset is loaded), click the button's centre with xdotool, and expect training to
# start: the app prints "status training" and exits 0 at step 2 (--exit-when-step 2).
#
# usage: gui_click.sh APP SOURCE_DIR WORK_DIR
# Prints "SKIPPED: ..." and exits 0 when Xvfb or xdotool is missing.
set -u
APP=$1
SRC=$2
WORK=$3
source "$(dirname "${BASH_SOURCE[0]}")/gui_common.sh"
gui_workdir "$WORK"
require_gui_tools
start_xvfb 91 160 "$WORK"

cd "$SRC" || fail "no source dir $SRC"
"$APP" --print-layout --exit-when-step 2 --timeout 300 --threads 1 \
  --set train.steps=50 --set train.batch_size=16 --set data.max_train=2000 \
  --set model.base_channels=16 --set "model.channel_mult=[1,2]" \
  --set "model.attention_resolutions=[]" --set "train.out_dir=$WORK/run" \
  > "$OUT" 2> "$ERR" &
APP_PID=$!

# Wait (up to 120 s) for the Train button to be enabled, i.e. the dataset is loaded.
LINE=
for _ in $(seq 1 240); do
  LINE=$(grep "^layout Train .* enabled=1" "$OUT" | tail -n 1)
  [ -n "$LINE" ] && break
  kill -0 "$APP_PID" 2> /dev/null || fail "difflab exited before the Train button was enabled"
  sleep 0.5
done
[ -n "$LINE" ] || fail "the Train button never became enabled"
grep -q "^status training" "$OUT" && fail "training started before the click"

read -r _ _ X Y W H _ <<< "$LINE"
CX=$((X + W / 2))
CY=$((Y + H / 2))
WID=$(xdotool search --name "Diffusion Lab" | head -n 1)
[ -n "$WID" ] || fail "no window named Diffusion Lab"
echo "clicking Train at ($CX, $CY) in window $WID"
xdotool mousemove --window "$WID" "$CX" "$CY"
sleep 0.3
xdotool click 1

# The app exits by itself at step 2 (or gives up after --timeout).
for _ in $(seq 1 600); do
  kill -0 "$APP_PID" 2> /dev/null || break
  sleep 0.5
done
wait "$APP_PID"
RC=$?
APP_PID=
[ "$RC" -eq 0 ] || fail "difflab exited with $RC"
grep -q "^status training" "$OUT" || fail "no 'status training' line after the click"
grep -q "^\[exit-when-step\] reached step" "$OUT" || fail "training did not reach step 2"
echo "PASS: the click started training"
grep "^status\|^\[exit" "$OUT"
exit 0

#!/usr/bin/env bash
# A new user's first minute: the app started plainly (no --config, no earlier run) loads
# the MNIST starter model and its mixed ControlNet from assets/starters/; Generate samples
# from it, a click on the timeline scrubs into the reverse process, a click loads the mask
# ControlNet and a drawn outline steers samples as a silhouette, and Train starts a model
# of one's own in a new run folder while the starter file stays as it was.
#
# usage: gui_starter.sh APP SOURCE_DIR WORK_DIR PNG_CHECK
# Prints "SKIPPED: ..." and exits 0 when Xvfb or xdotool is missing.
set -u
APP=$1
SRC=$2
WORK=$3
CHECK=$4
source "$(dirname "${BASH_SOURCE[0]}")/gui_common.sh"
gui_workdir "$WORK"
require_gui_tools

STARTER=$SRC/assets/starters/mnist/model.pt
[ -f "$STARTER" ] || fail "no starter model $STARTER (scripts/make_starters.sh makes it)"
BEFORE=$(sha256sum "$STARTER" | cut -d' ' -f1)
RUNS=$WORK/runs
start_xvfb 471 540 "$WORK"
# The working folder is not the source tree: the starters are found as configs are.
cd "$WORK" || fail "no $WORK"
"$APP" --print-layout --ini none --worker-nice 0 --threads 1 --runs "$RUNS" > "$OUT" 2> "$ERR" &
APP_PID=$!
LINE=$(wait_line "^job load (done|failed) " 120) || fail "no starter model was loaded"
echo "$LINE"
case "$LINE" in "job load done path=$SRC/assets/starters/mnist/model.pt | loaded "*"a starter model"*) ;;
  *) fail "expected the MNIST starter: $LINE" ;; esac
LINE=$(wait_line "^job ControlNet (done|failed) " 60) || fail "the starter's ControlNet was not loaded"
echo "$LINE"
case "$LINE" in "job ControlNet done path=$SRC/assets/starters/mnist/controlnets/mixed/controlnet.pt "*) ;;
  *) fail "expected the starter's ControlNet: $LINE" ;; esac

M=$(lines)
click Generate 60
LINE=$(wait_new "$M" "^job sampling (done|failed|cancelled) " 300) || fail "Generate did not finish"
echo "$LINE"
case "$LINE" in "job sampling done "*) ;; *) fail "sampling from the starter failed: $LINE" ;; esac

# Scrub: a click at a third of the timeline moves into the recorded reverse process.
LINE=$(wait_line "^layout Timeline .* enabled=1" 60) || fail "no timeline"
read -r _ _ X Y W H _ <<< "$LINE"
app_window
M=$(lines)
xdotool mousemove --window "$WID" $((X + W / 3)) $((Y + H / 2))
sleep 0.3
xdotool click 1
LINE=$(wait_new "$M" "^scrub frame " 30) || fail "the click did not move the scrubber"
echo "$LINE"
read -r _ _ K _ F <<< "$LINE"
[ "$K" -gt 0 ] && [ "$K" -lt "$F" ] || fail "expected a frame inside the run: $LINE"
SCRUB=$LINE
sleep 0.5
press ctrl+p
wait_line "difflab_screenshot.png" 30 > /dev/null || fail "no screenshot"
"$CHECK" "$WORK/difflab_screenshot.png" || fail "the screenshot is not a plausible picture"

# Another hint kind: a click loads the starter's mask ControlNet from the panel's list; a
# closed outline drawn on the canvas is filled into a silhouette, and Generate sends it in
# the mask plane (3).
press ctrl+9
M=$(lines)
click ControlNetFound.mask 60
LINE=$(wait_new "$M" "^job ControlNet (done|failed) " 60) || fail "the mask ControlNet did not load"
case "$LINE" in "job ControlNet done path=$SRC/assets/starters/mnist/controlnets/mask/controlnet.pt "*) ;;
  *) fail "expected the starter's mask ControlNet: $LINE" ;; esac
sleep 0.5
LINE=$(wait_line "^layout ControlNetCanvas .* enabled=1" 60) || fail "no canvas"
read -r _ _ X Y W H _ <<< "$LINE"
app_window
PX0=3
PY0=2
xdotool mousemove --window "$WID" $((X + PX0 * W / 10)) $((Y + PY0 * H / 10))
sleep 0.2
xdotool mousedown 1
for P in "7 2" "7 8" "3 8" "3 2"; do  # a rectangle's corners, in tenths of the canvas
  read -r PX PY <<< "$P"
  for i in 1 2 3 4 5 6; do
    xdotool mousemove --window "$WID" $((X + (PX0 * 6 + (PX - PX0) * i) * W / 60)) \
      $((Y + (PY0 * 6 + (PY - PY0) * i) * H / 60))
    sleep 0.05
  done
  PX0=$PX
  PY0=$PY
done
xdotool mouseup 1
sleep 0.5
M=$(lines)
click ControlNetGenerate 60
LINE=$(wait_new "$M" "^controlnet hint kind " 30) || fail "Generate sent no hint"
echo "$LINE"
read -r _ _ _ KIND _ PLANE <<< "$LINE"
[ "$KIND" = mask ] || fail "expected a mask hint: $LINE"
case "$PLANE" in *" "*|"") fail "expected the mask plane alone: $LINE" ;; 3:*) ;; *) fail "expected the mask plane (3): $LINE" ;; esac
[ "${PLANE#3:}" -gt 60 ] || fail "the outline was not filled into a region: $LINE"
LINE=$(wait_new "$M" "^job ControlNet (done|failed|cancelled) path= " 300) || fail "Generate with the mask did not finish"
case "$LINE" in *"sampled "*" with the ControlNet"*) ;; *) fail "sampling with the mask failed: $LINE" ;; esac
press ctrl+9  # the ControlNet panel closes again: Train is the Training panel's
sleep 0.5

# Train: a model of one's own from step 0 in a new run folder; the starter is untouched.
M=$(lines)
click Train 60
wait_new "$M" "^job training running path=$RUNS/mnist-" 120 > /dev/null || fail "Train did not start a new run under $RUNS"
wait_step 1 120 "$M" > /dev/null || fail "training did not reach step 1"
grep -q "^status training step 0 " "$OUT" || fail "training did not start from step 0"
M=$(lines)
click Stop
wait_new "$M" "^status idle" 120 > /dev/null || fail "training did not stop"
[ "$(sha256sum "$STARTER" | cut -d' ' -f1)" = "$BEFORE" ] || fail "the starter file changed"
press ctrl+q
click UnsavedSave 30  # the new model's steps: saved into its run folder
wait_exit 60 || fail "difflab did not quit"
[ "$RC" -eq 0 ] || fail "difflab exited with $RC"
ls "$RUNS"/mnist-*/checkpoints/step_*.pt > /dev/null 2>&1 || fail "the new run's steps were not saved in its folder"
echo "PASS: the starter model loaded with its ControlNet, generated, scrubbed ($SCRUB), a drawn mask steered samples; Train started a new run"
exit 0

#!/usr/bin/env bash
# A new user's first minute: the app started plainly (no --config, no earlier run) loads
# the MNIST starter model and its ControlNet from assets/starters/; Generate samples from
# it, a click on the timeline scrubs into the reverse process, and Train starts a model of
# one's own in a new run folder while the starter file stays as it was.
#
# usage: gui_starter.sh APP SOURCE_DIR WORK_DIR PNG_CHECK
# Prints "SKIPPED: ..." and exits 0 when Xvfb or xdotool is missing.
set -u
APP=$1
SRC=$2
WORK=$3
CHECK=$4
[ -n "$WORK" ] && rm -rf -- "$WORK"
mkdir -p "$WORK"
OUT=$WORK/stdout.txt
ERR=$WORK/stderr.txt
: > "$OUT"
: > "$ERR"

source "$(dirname "${BASH_SOURCE[0]}")/gui_common.sh"
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
sleep 0.5
press ctrl+p
wait_line "difflab_screenshot.png" 30 > /dev/null || fail "no screenshot"
"$CHECK" "$WORK/difflab_screenshot.png" || fail "the screenshot is not a plausible picture"

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
echo "PASS: the starter model loaded with its ControlNet, generated, scrubbed to frame $LINE; Train started a new run"
exit 0

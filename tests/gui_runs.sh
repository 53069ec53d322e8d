#!/usr/bin/env bash
# Run folders in the GUI, driven with real xdotool clicks in a private Xvfb display:
#   1. train a tiny MNIST model, Stop, Save: the checkpoint goes into its own run folder
#      <runs>/mnist-YYYY-MM-DD-N/checkpoints/;
#   2. train on (unsaved steps), switch the Dataset to the 2-D toy set and Load: the
#      unsaved-training dialog asks; Save carries the switch out once saved;
#   3. train the toy model, Save: it goes into a second run folder; the MNIST checkpoint
#      is byte-for-byte unchanged (cmp);
#   4. "Save as" the MNIST checkpoint's path: the Replace dialog asks; Cancel leaves it as it was;
#   5. train on, Ctrl+Q: the dialog asks; Cancel keeps the app open; Ctrl+Q, Discard quits (0);
#   6. the GUI's MNIST run folder holds what a CLI run's does, and
#      `difflab-cli sample --run <it>` samples from it.
#
# usage: gui_runs.sh APP CLI SOURCE_DIR WORK_DIR
# Prints "SKIPPED: ..." and exits 0 when Xvfb or xdotool is missing.
set -u
APP=$1
CLI=$2
SRC=$3
WORK=$4
source "$(dirname "${BASH_SOURCE[0]}")/gui_common.sh"
gui_workdir "$WORK"
require_gui_tools
start_xvfb 231 300 "$WORK"

cd "$SRC" || fail "no source dir $SRC"
RUNS=$WORK/runs
TINY=(--set train.batch_size=16 --set data.max_train=2000 --set model.base_channels=16
      --set "model.channel_mult=[1,2]" --set "model.attention_resolutions=[]"
      --set train.log_every=2 --set train.eval_every=4 --set train.eval_batches=1
      --set train.sample_every=4 --set train.checkpoint_every=100000 --threads 1)
"$APP" --print-layout --ini none --worker-nice 0 --runs "$RUNS" --set train.steps=100000 "${TINY[@]}" \
  > "$OUT" 2> "$ERR" &
APP_PID=$!

# 1. MNIST: a preview grid every 5 steps (unit steps; samples/step_N.png, as a CLI run), Train, Stop, Save.
# (the field is below the loss plot: scroll the Training panel down to it first).
scroll_over Train 6
click PreviewUnit
click PreviewUnit.steps
type_into PreviewEvery 5
scroll_over CheckpointPath -6
M=$(lines)
click Train 120
wait_step 5 180 "$M" > /dev/null || fail "MNIST training did not reach step 5"
M=$(lines)
click Stop
wait_new "$M" "^status idle" 180 > /dev/null || fail "training did not stop"
M=$(lines)
click Save
LINE=$(wait_new "$M" "^job save (done|failed)" 180) || fail "Save did not finish"
MNIST_CKPT=${LINE#*path=}
MNIST_CKPT=${MNIST_CKPT%% | *}
echo "MNIST checkpoint: $MNIST_CKPT"
case "$MNIST_CKPT" in "$RUNS"/mnist-*/checkpoints/step_*.pt) ;; *) fail "Save: $LINE (expected a new run folder under $RUNS)" ;; esac
[ -f "$MNIST_CKPT" ] || fail "no file $MNIST_CKPT"
MNIST_RUN=${MNIST_CKPT%/checkpoints/*}
cp "$MNIST_CKPT" "$WORK/mnist_saved.pt"

# 2. Train on, Stop (unsaved steps), switch the dataset: the dialog asks; Save, then the switch.
SAVED_STEP=$(grep -E "^status idle step" "$OUT" | tail -n 1 | awk '{print $4}')
M=$(lines)
click Train
wait_step $((SAVED_STEP + 3)) 180 "$M" > /dev/null || fail "MNIST training did not continue"
M=$(lines)
click Stop
wait_new "$M" "^status idle" 180 > /dev/null || fail "training did not stop the second time"
click DatasetKind
click DatasetKind.toy2d
M=$(lines)
click Load
wait_new "$M" "^dialog unsaved: switch the dataset" 30 > /dev/null || fail "switching the dataset with unsaved training did not ask"
click UnsavedSave
LINE=$(wait_new "$M" "^job save (done|failed)" 180) || fail "the dialog's Save did not finish"
case "$LINE" in *"$MNIST_RUN/checkpoints/"*) ;; *) fail "the dialog's Save: $LINE (expected $MNIST_RUN)" ;; esac
wait_new "$M" "^dialog unsaved closed" 30 > /dev/null || fail "the dialog did not close after saving"
wait_new "$M" "^job dataset done .*(toy|2-D|points)" 120 > /dev/null || fail "the toy set did not load after the save"
cmp "$MNIST_CKPT" "$WORK/mnist_saved.pt" || fail "the first MNIST checkpoint changed"

# 3. The toy model: Train, Stop, Save into its own run folder.
sleep 1
M=$(lines)
click Train
wait_step 20 120 "$M" > /dev/null || fail "toy training did not reach step 20"
M=$(lines)
click Stop
wait_new "$M" "^status idle" 180 > /dev/null || fail "toy training did not stop"
M=$(lines)
click Save
LINE=$(wait_new "$M" "^job save (done|failed)" 180) || fail "Save of the toy model did not finish"
TOY_CKPT=${LINE#*path=}
TOY_CKPT=${TOY_CKPT%% | *}
echo "toy checkpoint: $TOY_CKPT"
case "$TOY_CKPT" in "$RUNS"/toy2d-*/checkpoints/step_*.pt) ;; *) fail "the toy Save: $LINE (expected its own run folder)" ;; esac
[ "${TOY_CKPT%/checkpoints/*}" != "$MNIST_RUN" ] || fail "the toy model went into the MNIST run folder"
cmp "$MNIST_CKPT" "$WORK/mnist_saved.pt" || fail "saving the toy model changed the MNIST checkpoint"

# 4. "Save as" over the MNIST checkpoint: asks; Cancel keeps it.
type_into CheckpointPath "$MNIST_CKPT"
M=$(lines)
click SaveAs
wait_new "$M" "^dialog replace: $MNIST_CKPT" 30 > /dev/null || fail "Save as over another run's checkpoint did not ask"
wait_new "$M" "^job save needs-confirmation" 5 > /dev/null || fail "no needs-confirmation outcome for the Save job"
click ReplaceCancel
sleep 1
cmp "$MNIST_CKPT" "$WORK/mnist_saved.pt" || fail "Save as replaced the MNIST checkpoint"

# 5. Unsaved toy training, Ctrl+Q: Cancel keeps the app, Discard quits.
M=$(lines)
click Train
wait_new "$M" "^status training" 60 > /dev/null || fail "toy training did not start again"
sleep 2
M=$(lines)
press ctrl+q
wait_new "$M" "^dialog unsaved: quit" 30 > /dev/null || fail "Ctrl+Q with unsaved training did not ask"
click UnsavedCancel
wait_new "$M" "^dialog unsaved closed" 10 > /dev/null || fail "Cancel did not close the dialog"
sleep 2
kill -0 "$APP_PID" 2> /dev/null || fail "Cancel did not keep the app open"
M=$(lines)
press ctrl+q
wait_new "$M" "^dialog unsaved: quit" 30 > /dev/null || fail "the second Ctrl+Q did not ask"
click UnsavedDiscard
wait_exit 60 || fail "Discard did not quit"
[ "$RC" -eq 0 ] || fail "difflab exited with $RC"
cmp "$MNIST_CKPT" "$WORK/mnist_saved.pt" || fail "the MNIST checkpoint changed by the end"

# 6. The GUI's run folder against a CLI run's, and sampling from it with the CLI.
"$CLI" train "${TINY[@]}" --steps 4 --set sample.n=4 --set sample.steps=2 --out "$WORK/cli_run" --quiet > "$WORK/cli_train.txt" 2>&1 \
  || { cat "$WORK/cli_train.txt"; fail "difflab-cli train failed"; }
for entry in $(cd "$WORK/cli_run" && ls); do
  [ "$entry" = "final.png" ] && continue  # written when a CLI run reaches its last step
  [ -e "$MNIST_RUN/$entry" ] || fail "the GUI run folder $MNIST_RUN lacks '$entry' (a CLI run has: $(ls "$WORK/cli_run" | tr '\n' ' '))"
done
[ -f "$MNIST_RUN/checkpoints/latest" ] || fail "no checkpoints/latest in $MNIST_RUN"
ls "$MNIST_RUN"/samples/step_*.png > /dev/null 2>&1 || fail "no samples/step_N.png in $MNIST_RUN"
ls "$MNIST_RUN"/tb/events.out.tfevents.* > /dev/null 2>&1 || fail "no TensorBoard events in $MNIST_RUN"
"$CLI" sample --run "$MNIST_RUN" --steps 2 --n 4 --threads 1 --out "$WORK/gui_run_sample.png" \
  > "$WORK/cli_sample.txt" 2>&1 || { cat "$WORK/cli_sample.txt"; fail "difflab-cli sample --run $MNIST_RUN failed"; }
[ -f "$WORK/gui_run_sample.png" ] || fail "difflab-cli sample wrote no PNG"

echo "PASS: run folders $MNIST_RUN and ${TOY_CKPT%/checkpoints/*}; the MNIST checkpoint is unchanged;"
echo "      switching and quitting asked; Save as asked before replacing; the CLI samples the GUI run"
grep -E "^(dialog|job save|run )" "$OUT"
exit 0

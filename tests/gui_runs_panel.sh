#!/usr/bin/env bash
# The Runs panel compares run folders: two runs trained by the CLI (one with two
# evaluations in evals.csv) and one from before train_s was logged sit in --runs; Ctrl+R
# opens the panel, which lists the three and plots the newest ones by steps; a real click
# on "by training minutes" plots the two with training time and says one has none.
#
# usage: gui_runs_panel.sh APP CLI SOURCE_DIR WORK_DIR
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
RUNS=$WORK/runs
TOY=(--config "$SRC/configs/toy2d.yaml" --quiet --threads 1 --set train.sample_every=0
     --set data.toy_points=512 --set train.log_every=2 --set train.eval_every=4)
for name in first second; do
  "$CLI" train "${TOY[@]}" --steps 8 --out "$RUNS/$name" > "$WORK/$name.txt" 2>&1 ||
    { cat "$WORK/$name.txt"; fail "CLI training of $name failed"; }
done
grep -q "^step,.*,train_s" "$RUNS/first/metrics.csv" || fail "metrics.csv has no train_s: $(head -1 "$RUNS/first/metrics.csv")"
# Two evaluations of the first run (as GUI Evaluate or difflab-cli eval record them).
printf 'checkpoint,step,n,sampler,steps,eta,guidance,classifier_scale,seed,accuracy,fd,fd_floor,reference_images,seconds\n' > "$RUNS/first/evals.csv"
printf 'a.pt,4,100,ddim,20,0,3,0,0,0.5,40.0,2.0,1000,3.0\n"b,2.pt",8,100,ddim,20,0,3,0,0,0.75,20.0,2.0,1000,3.0\n' >> "$RUNS/first/evals.csv"
# A run folder as an older version wrote it: no train_s column.
mkdir -p "$RUNS/old"
printf 'step,loss,test_loss,lr,grad_norm,images_per_s,epoch\n2,0.9,,0.001,1,100,0\n4,0.7,0.8,0.001,1,100,0\n' \
  > "$RUNS/old/metrics.csv"
touch -d '2020-01-01' "$RUNS/old/metrics.csv"

start_xvfb 401 470 "$WORK"
"$APP" --print-layout --ini none --runs "$RUNS" --config "$SRC/configs/toy2d.yaml" > "$OUT" 2> "$ERR" &
APP_PID=$!
wait_line "^layout " 60 > /dev/null || fail "the app did not start"
press ctrl+r
LINE=$(wait_line "^runs [0-9]+ folders in " 30) || fail "the Runs panel did not list the folder"
echo "$LINE"
[ "$LINE" = "runs 3 folders in $RUNS" ] || fail "expected 3 run folders in $RUNS"
LINE=$(wait_line "^runs plot " 30) || fail "no plot"
echo "$LINE"
[ "$LINE" = "runs plot 3 runs by steps, 0 without minutes, 2 evaluations" ] || fail "the three newest runs are not plotted by steps"
M=$(lines)
click runs.minutes 30
LINE=$(wait_new "$M" "^runs plot " 30) || fail "the x axis did not change"
echo "$LINE"
[ "$LINE" = "runs plot 2 runs by minutes, 1 without minutes, 2 evaluations" ] || fail "by minutes: expected the two runs with train_s"
echo "PASS: the Runs panel listed 3 run folders and plotted them by steps, and the 2 with train_s by minutes"
exit 0

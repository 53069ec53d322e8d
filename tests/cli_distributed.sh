#!/usr/bin/env bash
# difflab-cli train with several ranks (processes) on loopback: --nproc runs, resumes and
# matches one process on the global batch; rank 0 alone writes; a rank killed with -9
# makes the others stop within the timeout, saving the last good step; Ctrl-C reaches
# every rank; a run that cannot start on rank 0 ends every rank at once.
#   cli_distributed.sh CLI SRC WORK
set -uo pipefail
CLI=$1 SRC=$2 WORK=$3
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
TOY=(--config "$SRC/configs/toy2d.yaml" --quiet --set train.sample_every=0
     --set data.toy_points=1024 --set train.log_every=1 --set train.eval_every=0
     --set train.precision=fp32)

if "$CLI" train --help | grep -q -- "--nproc"; then :; else fail "train --help lacks --nproc"; fi

# ---- 2 ranks of 32 against 1 process of 64: the same losses, one run folder ----
out=$("$CLI" train "${TOY[@]}" --nproc 2 --set train.batch_size=32 --steps 6 --out two 2>&1)
rc=$?
[ $rc -eq 0 ] || fail "--nproc 2 -> rc $rc: $out"
[[ "$out" == *"ranks:  2 (gloo), global batch 64 = 32 x 2"* ]] || fail "no ranks line: $out"
[[ "$out" == *"launch: 2 ranks on this machine"* ]] || fail "no launch line: $out"
[ -f two/checkpoints/step_00000006.pt ] || fail "no checkpoint of step 6: $(ls -R two)"
[ ! -e two_2 ] || fail "another rank wrote a run folder: $(ls)"
n_logged=$(grep -c "^step " <<< "$out")
[ "$n_logged" -eq 6 ] || fail "expected 6 step lines (rank 0 only), got $n_logged: $out"
"$CLI" train "${TOY[@]}" --threads 1 --set train.batch_size=64 --steps 6 --out one > one.txt 2>&1 ||
  fail "one process: $(cat one.txt)"
# metrics.csv: step,loss,...: the losses agree to float rounding.
paste -d, <(cut -d, -f1,2 two/metrics.csv) <(cut -d, -f2 one/metrics.csv) | tail -n +2 |
  awk -F, '{ d = $2 - $3; if (d < 0) d = -d; if (d > 1e-4 * ($3 < 0 ? -$3 : $3) + 1e-6) { print "step " $1 ": " $2 " vs " $3; bad = 1 } } END { exit bad }' ||
  fail "2 ranks x 32 and 1 x 64 logged other losses"

# ---- resume on both ranks from rank 0's checkpoint ----
out=$("$CLI" train "${TOY[@]}" --nproc 2 --resume latest --out two --steps 10 2>&1)
rc=$?
[ $rc -eq 0 ] || fail "--nproc 2 --resume -> rc $rc: $out"
[[ "$out" == *"at step 6"* ]] || fail "did not resume at step 6: $out"
[ -f two/checkpoints/step_00000010.pt ] || fail "no checkpoint of step 10 after resuming"

# ---- a rank killed with -9: rank 0 stops within the timeout and keeps its last step ----
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
for r in 0 1; do
  RANK=$r WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$CLI" train "${TOY[@]}" \
    --threads 1 --set train.batch_size=32 --steps 100000000 --dist-timeout 20 --out killed \
    > "rank$r.txt" 2>&1 &
  eval "pid$r=$!"
done
for _ in $(seq 600); do grep -q "^step 20/" rank0.txt && break; sleep 0.1; done
grep -q "^step 20/" rank0.txt || fail "the two ranks did not train: $(cat rank0.txt rank1.txt)"
kill -9 "$pid1"
start=$SECONDS
wait "$pid0"
rc=$?
took=$((SECONDS - start))
[ $rc -eq 4 ] || fail "rank 0 after its partner was killed -> rc $rc: $(tail -5 rank0.txt)"
[ $took -le 25 ] || fail "rank 0 took ${took} s to notice (timeout 20 s)"
grep -q "training stopped: rank 0 of 2: .*failed" rank0.txt || fail "no clear error: $(tail -5 rank0.txt)"
grep -q "the last step all ranks finished is saved" rank0.txt || fail "no checkpoint kept: $(tail -5 rank0.txt)"
ls killed/checkpoints/step_*.pt > /dev/null 2>&1 || fail "no checkpoint in killed/"

# ---- the launcher: a child killed with -9 ends the run, non-zero ----
"$CLI" train "${TOY[@]}" --nproc 2 --set train.batch_size=32 --steps 100000000 \
  --dist-timeout 20 --out launched > launched.txt 2>&1 &
launcher=$!
for _ in $(seq 600); do grep -q "^step 20/" launched.txt && break; sleep 0.1; done
child=""
for p in $(pgrep -P "$launcher"); do
  tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "RANK=1" && child=$p
done
if [ -z "$child" ]; then
  fail "no rank 1 under the launcher: $(cat launched.txt)"
  kill "$launcher"
else
  kill -9 "$child"
  start=$SECONDS
  wait "$launcher"
  rc=$?
  [ $rc -ne 0 ] || fail "launcher exited 0 after a rank was killed"
  [ $((SECONDS - start)) -le 30 ] || fail "launcher took $((SECONDS - start)) s"
  grep -q "launch: rank 1 was killed by signal 9" launched.txt || fail "launcher did not say which rank: $(tail -5 launched.txt)"
fi

# ---- Ctrl-C (SIGINT to the launcher) stops every rank; rank 0 saves ----
"$CLI" train "${TOY[@]}" --nproc 2 --set train.batch_size=32 --steps 100000000 \
  --out stopped > stopped.txt 2>&1 &
launcher=$!
for _ in $(seq 600); do grep -q "^step 20/" stopped.txt && break; sleep 0.1; done
kill -INT "$launcher"
wait "$launcher"
rc=$?
[ $rc -eq 130 ] || fail "SIGINT -> rc $rc: $(tail -5 stopped.txt)"
grep -q "stopped at step" stopped.txt || fail "no 'stopped at step': $(tail -5 stopped.txt)"
ls stopped/checkpoints/step_*.pt > /dev/null 2>&1 || fail "no checkpoint after SIGINT"

# ---- the launcher killed with -9: its ranks stop too (rank 0 saves) ----
"$CLI" train "${TOY[@]}" --nproc 2 --set train.batch_size=32 --steps 100000000 \
  --out orphaned > orphaned.txt 2>&1 &
launcher=$!
for _ in $(seq 600); do grep -q "^step 20/" orphaned.txt && break; sleep 0.1; done
children=$(pgrep -P "$launcher" | tr '\n' ' ')
[ -n "$children" ] || fail "no ranks under the launcher: $(cat orphaned.txt)"
kill -9 "$launcher"
wait "$launcher" 2> /dev/null
for _ in $(seq 300); do
  alive=0
  for p in $children; do kill -0 "$p" 2> /dev/null && alive=1; done
  [ $alive -eq 0 ] && break
  sleep 0.1
done
[ $alive -eq 0 ] || { fail "ranks $children outlived their launcher by 30 s"; kill -9 $children 2> /dev/null; }
ls orphaned/checkpoints/step_*.pt > /dev/null 2>&1 || fail "no checkpoint after the launcher was killed: $(tail -3 orphaned.txt)"

# ---- rank 0 cannot start: every rank ends at once ----
start=$SECONDS
out=$("$CLI" train "${TOY[@]}" --nproc 2 --resume latest --out nothing_here 2>&1)
rc=$?
[ $rc -ne 0 ] || fail "--resume latest of an empty folder -> rc 0"
[[ "$out" == *"no checkpoint in nothing_here"* ]] || fail "no reason given: $out"
[ $((SECONDS - start)) -le 30 ] || fail "took $((SECONDS - start)) s to give up"

# ---- --nproc inside a rank is refused ----
out=$(RANK=0 WORLD_SIZE=2 "$CLI" train "${TOY[@]}" --nproc 2 --out nested 2>&1)
rc=$?
[ $rc -eq 2 ] || fail "--nproc in a rank -> rc $rc: $out"
[[ "$out" == *"already one rank"* ]] || fail "nested --nproc message: $out"

echo "cli_distributed: $failures failures"
[ $failures -eq 0 ]

#!/usr/bin/env bash
# difflab-cli under hostile input and faults. Every case asserts the exit status, the
# message (naming the file and the problem) and that no file that was there before changed
# or appeared. Then kill -9 at random points of training and checkpointing (resume always
# works; no temporary file is left after the next start), and a full disk (a small tmpfs
# where the machine allows mounting one, else DIFFLAB_FAULT_WRITE_LIMIT, an injected
# ENOSPC).
#   cli_faults.sh CLI FAULT_CORPUS SRC WORK      (FAULT_KILL_TRIALS=N: kill -9 trials, default 8)
set -uo pipefail
CLI=$1 CORPUS=$2 SRC=$3 WORK=$4
TRIALS=${FAULT_KILL_TRIALS:-8}
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1
export DIFFLAB_DATA_DIR="$WORK/data"  # nothing of the user's data folder is touched
cases=0
failures=0

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# Hashes of every file under the current folder (new, changed and removed files show).
snapshot() { find . -path ./full -prune -o -type f -print0 | sort -z | xargs -0 -r sha256sum; }

# expect RC 'TEXT' command...: exits RC, prints TEXT (a fixed string), changes no file.
expect() {
  local want_rc=$1 want=$2
  shift 2
  cases=$((cases + 1))
  local before after out rc
  before=$(snapshot)
  out=$("$@" 2>&1)
  rc=$?
  after=$(snapshot)
  if [ "$rc" -ne "$want_rc" ]; then fail "$* -> rc $rc, expected $want_rc: $out"; return; fi
  if [[ "$out" != *"$want"* ]]; then fail "$* -> message lacks '$want': $out"; return; fi
  if [ "$before" != "$after" ]; then
    fail "$* changed files:"; diff <(echo "$before") <(echo "$after") | head -5
  fi
}

"$CORPUS" corpus || exit 1
TOY=(--config "$SRC/configs/toy2d.yaml" --threads 1 --quiet --set train.batch_size=32
     --set train.sample_every=0 --set data.toy_points=512 --set train.log_every=1)
"$CLI" train "${TOY[@]}" --out run --steps 3 >/dev/null 2>&1 || { echo "cannot train the toy run"; exit 1; }
CKPT=run/checkpoints/step_00000003.pt
"$CLI" sample --run run --n 4 --steps 2 --out run/samples/mine.png --threads 1 >/dev/null 2>&1 ||
  { echo "cannot sample"; exit 1; }

# ---- command lines: numbers, dashes, stray words ----
expect 2 "--n: '4294967297' is out of range [1, 1000000]" "$CLI" sample --run run --n 4294967297 --out o.png
expect 2 "--steps: '4294967299' is out of range [1, 100000]" "$CLI" sample --run run --steps 4294967299 --out o.png
expect 2 "not expected: -n 1000 (options are spelled with two dashes" "$CLI" sample --run run -n 1000 --out o.png
expect 2 "not expected: stray" "$CLI" sample --run run stray --out o.png
expect 2 "--n: '1.5' is not a whole number" "$CLI" sample --run run --n 1.5 --out o.png
expect 2 "--guidance: 'nan' is not a finite number" "$CLI" sample --run run --guidance nan --out o.png
expect 2 "--seed: '-1' is out of range" "$CLI" sample --run run --seed -1 --out o.png
expect 2 "--threads: '2000' is out of range [0," "$CLI" train "${TOY[@]}" --out other --threads 2000
expect 2 "--threads: '2147483647' is out of range [0," "$CLI" sample --run run --threads 2147483647 --out o.png
expect 2 "--steps: '99999999999999999999' is out of range" "$CLI" train "${TOY[@]}" --out other --steps 99999999999999999999
expect 2 "not expected: --bogus" "$CLI" train "${TOY[@]}" --out other --bogus
expect 2 "expected at most 2 paths, got 3; not expected: c.png" "$CLI" canny corpus/ok.png b.png c.png
expect 2 "--low 300 is above --high 100" "$CLI" canny corpus/ok.png edges.png --low 300 --high 100
expect 2 "--low: 'nan' is not a finite number" "$CLI" canny corpus/ok.png edges.png --low nan
expect 2 "--high: '-5' is out of range [0, 10000]" "$CLI" canny corpus/ok.png edges.png --high -5

# ---- pictures ----
expect 1 "cannot read image 'corpus': it is a folder, not an image file" "$CLI" canny corpus edges.png
expect 1 "cannot read image 'corpus/huge.png': the file declares 20000x20000 pixels" "$CLI" canny corpus/huge.png edges.png
expect 1 "cannot read image 'corpus/cut.jpg': the file ends before the image data (no start-of-scan marker: truncated JPEG)" "$CLI" canny corpus/cut.jpg edges.png
head -c $(( $(stat -c %s corpus/ok.jpg) - 20 )) corpus/ok.jpg > corpus/cut_late.jpg
expect 1 "cannot read image 'corpus/cut_late.jpg': the file ends before the end-of-image marker (truncated JPEG)" "$CLI" canny corpus/cut_late.jpg edges.png
expect 1 "cannot read image 'corpus/cut.bmp': the pixel data ends after" "$CLI" canny corpus/cut.bmp edges.png
expect 1 "cannot read image 'corpus/cut.png': truncated or corrupt PNG" "$CLI" canny corpus/cut.png edges.png
expect 1 "cannot read image 'corpus/empty.png': the file is empty" "$CLI" canny corpus/empty.png edges.png
expect 1 "cannot read image 'corpus/notes.png': not a PNG, JPEG, BMP, GIF, TGA or PNM image" "$CLI" canny corpus/notes.png edges.png
expect 1 "cannot read image 'corpus/none.png': no such file" "$CLI" scribble corpus/none.png s.png
for ok in ok.png ok.jpg ok.bmp; do
  "$CLI" canny "corpus/$ok" "edges_$ok.png" >/dev/null 2>&1 || fail "canny of corpus/$ok"
done

# ---- output paths are checked before the work ----
touch afile
expect 1 "cannot write 'afile/grid.png': cannot create directory 'afile': Not a directory" "$CLI" sample --run run --n 4 --steps 2 --out afile/grid.png
expect 1 "cannot write 'run': it is a folder" "$CLI" sample --run run --n 4 --steps 2 --out run
expect 1 "cannot write 'afile/e.png'" "$CLI" canny corpus/ok.png afile/e.png

# ---- nothing written earlier is replaced without --overwrite ----
"$CLI" canny corpus/ok.png e1.png >/dev/null 2>&1 || fail "canny corpus/ok.png e1.png"
"$CLI" schedule --steps 100 --csv s.csv >/dev/null 2>&1 || fail "schedule --csv s.csv"
expect 2 "--out 'run/samples/mine.png': a file is already there; pass --overwrite to replace it" \
  "$CLI" sample --run run --n 4 --steps 2 --out run/samples/mine.png
expect 2 "output 'e1.png': a file is already there; pass --overwrite" "$CLI" canny corpus/ok.png e1.png
expect 2 "output 'e1.png': a file is already there; pass --overwrite" "$CLI" scribble corpus/ok.png e1.png
expect 2 "--csv 's.csv': a file is already there; pass --overwrite" "$CLI" schedule --steps 100 --csv s.csv
mkdir -p imgs && cp e1.png imgs/label3_0001.png
expect 2 "--out-dir 'imgs': label3_0001.png is already there; pass --overwrite" \
  "$CLI" sample --run run --n 4 --steps 2 --out o.png --out-dir imgs
# The default name moves on (sample.png, sample_2.png) and keeps the first one.
cases=$((cases + 1))
"$CLI" sample --run run --n 4 --steps 2 --threads 1 >/dev/null 2>&1 &&
  first=$(sha256sum run/samples/sample.png) &&
  "$CLI" sample --run run --n 4 --steps 2 --threads 1 --seed 9 >/dev/null 2>&1 &&
  [ -f run/samples/sample_2.png ] && [ "$first" = "$(sha256sum run/samples/sample.png)" ] ||
  fail "a second sample with the default name replaced the first or failed"
cases=$((cases + 1))
"$CLI" canny corpus/ok.png e1.png --overwrite --low 10 --high 20 >/dev/null 2>&1 ||
  fail "canny --overwrite could not replace e1.png"

# ---- checkpoints ----
cp "$CKPT" bad.pt
size=$(stat -c %s bad.pt)
printf '\xde\xad\xbe\xef%.0s' $(seq 16) | dd of=bad.pt bs=1 seek=$((size / 2)) conv=notrunc status=none
expect 1 "model checkpoint bad.pt: corrupt: its checksum is" "$CLI" sample --checkpoint bad.pt --n 4 --steps 2 --out o.png
expect 1 "model checkpoint bad.pt: corrupt: its checksum is" "$CLI" train "${TOY[@]}" --out run --resume bad.pt --steps 5
head -c 1000 "$CKPT" > short.pt
expect 1 "model checkpoint short.pt: cannot be read (truncated or not a model checkpoint)" "$CLI" sample --checkpoint short.pt --out o.png
expect 1 "model checkpoint run/checkpoints: is a folder, not a file" "$CLI" sample --checkpoint run/checkpoints --out o.png

# ---- configs and data ----
printf 'train:\n  lr: [1, 2\n' > broken.yaml
expect 1 "broken.yaml" "$CLI" train --config broken.yaml --out other
expect 1 "corpus/idx_cut/train-images-idx3-ubyte" "$CLI" dataset --config "$SRC/configs/mnist.yaml" --set data.kind=idx --set data.path=corpus/idx_cut --set data.image_size=8
expect 1 "model.attention_resolutions: 5 matches no level of this UNet (its levels are 8, 4 pixels" \
  "$CLI" train --config "$SRC/configs/mnist.yaml" --set data.kind=idx --set data.path=corpus/idx --set data.image_size=8 \
  --set model.channel_mult=[1,2] --set model.attention_resolutions=[5] --set model.base_channels=8 \
  --set model.norm_groups=4 --out other --steps 1 --threads 1
# A subset of a class-sorted split has every class.
out=$("$CLI" dataset --config "$SRC/configs/mnist.yaml" --set data.kind=idx --set data.path=corpus/idx \
      --set data.image_size=8 --set data.max_train=30 2>&1)
cases=$((cases + 1))
if [ "$(grep -c ': 3$' <<<"$out")" -ne 10 ]; then fail "max_train=30 is not 3 of each class: $out"; fi

# ---- a run folder is appended to only with --resume ----
cases=$((cases + 1))
before=$(cd run && snapshot)
out=$("$CLI" train "${TOY[@]}" --out run --steps 2 2>&1) || fail "second run: $out"
[ "$before" = "$(cd run && snapshot)" ] || fail "a second run without --resume changed run/"
[[ "$out" == *"holds another run; this one goes to run-2"* ]] || fail "second run: $out"

# ---- kill -9 during training and checkpointing ----
resumed=0
for trial in $(seq 1 "$TRIALS"); do
  cases=$((cases + 1))
  dir="killed_$trial"
  "$CLI" train "${TOY[@]}" --out "$dir" --steps 1000000 --set train.checkpoint_every=1 >/dev/null 2>&1 &
  pid=$!
  # 0.3-2.0 s: start-up, the first steps, or (mostly) in the middle of a checkpoint.
  sleep "$(awk -v s="$RANDOM" 'BEGIN { srand(s); printf "%.2f", 0.3 + rand() * 1.7 }')"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  [ -d "$dir/checkpoints" ] || continue
  if [ -f "$dir/checkpoints/latest" ]; then
    out=$("$CLI" train "${TOY[@]}" --out "$dir" --resume latest --steps 1000000 --time-limit 0.005 2>&1) ||
      fail "trial $trial: resume after kill -9: $out"
    resumed=$((resumed + 1))
    left=$(find "$dir" -name '*.tmp*')
    [ -z "$left" ] || fail "trial $trial: temporaries left after the next start: $left"
    steps=$(tail -n +2 "$dir/metrics.csv" | cut -d, -f1 | sort -n | tail -1)
    [ -n "$steps" ] || fail "trial $trial: metrics.csv holds no rows after a kill and a resume"
  fi
done

# ---- a full disk ----
mkdir -p full
TMPFS=0
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=3m tmpfs full 2>/dev/null; then
  TMPFS=1
  trap 'umount "$WORK/full" 2>/dev/null' EXIT
fi
echo "full disk: $([ $TMPFS = 1 ] && echo 'a 3 MiB tmpfs' || echo 'injected ENOSPC (DIFFLAB_FAULT_WRITE_LIMIT)')"
cases=$((cases + 1))
if [ $TMPFS = 1 ]; then
  out=$("$CLI" train "${TOY[@]}" --out full/run --steps 1000 --set train.checkpoint_every=1 2>&1)
else
  out=$(DIFFLAB_FAULT_WRITE_LIMIT=3000000 "$CLI" train "${TOY[@]}" --out full/run --steps 1000 \
        --set train.checkpoint_every=1 2>&1)
fi
rc=$?
[ $rc -eq 1 ] || fail "full disk during training: rc $rc: $out"
[[ "$out" == *"checkpoint: cannot write 'full/run/checkpoints/step_"*".pt': No space left on device"* ]] ||
  fail "full disk during training: $out"
left=$(find full -name '*.tmp*')
[ -z "$left" ] || fail "full disk: temporaries left: $left"
latest=$(cat full/run/checkpoints/latest 2>/dev/null)
[ -n "$latest" ] && "$CLI" sample --checkpoint "full/run/checkpoints/$latest" --n 4 --steps 2 --out ok_after_full.png \
  --threads 1 >/dev/null 2>&1 || fail "full disk: the last checkpoint ('$latest') does not sample"
# A picture onto the full disk keeps the one that was there.
cases=$((cases + 1))
if [ $TMPFS = 1 ]; then
  rm -rf full/run
  cp run/samples/mine.png full/grid.png
  head -c 3M /dev/zero > full/filler 2>/dev/null
  before=$(sha256sum full/grid.png)
  out=$("$CLI" sample --run run --n 64 --steps 2 --out full/grid.png --overwrite --threads 1 2>&1)
else
  cp run/samples/mine.png full/grid.png
  before=$(sha256sum full/grid.png)
  out=$(DIFFLAB_FAULT_WRITE_LIMIT=100 "$CLI" sample --run run --n 64 --steps 2 --out full/grid.png --overwrite \
        --threads 1 2>&1)
fi
rc=$?
[ $rc -eq 1 ] && [[ "$out" == *"cannot write 'full/grid.png': No space left on device"* ]] ||
  fail "a PNG onto a full disk: rc $rc: $out"
[ "$before" = "$(sha256sum full/grid.png)" ] || fail "a PNG onto a full disk replaced the one there"
[ -z "$(find full -name '*.tmp*')" ] || fail "a PNG onto a full disk left a temporary"

echo "cli_faults: $cases cases, $TRIALS kill -9 trials ($resumed resumed from their last checkpoint), $failures failures"
[ "$failures" -eq 0 ]

#!/usr/bin/env bash
# Fuzzes the file readers (issue #15): builds the libFuzzer targets of tests/fuzz/ with
# clang, ASan and UBSan in build-fuzz/, then runs each for SECONDS on a copy of its corpus
# (tests/fuzz/corpus/<name>/), one target after another. Fails when any target finds a
# crash, a sanitizer report, an escaped exception, an input slower than 10 s or one that
# needs more than 2 GiB; the input that did it is kept in build-fuzz/fuzz/<name>/findings/.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   # default 60 s, all five targets
#   JOBS=1 scripts/fuzz.sh 600 checkpoint              # build jobs; one long run
#
# Replay a finding: build-fuzz/tests/fuzz/fuzz_<name> build-fuzz/fuzz/<name>/findings/crash-*
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
JOBS="${JOBS:-$(nproc)}"
CXX_FUZZ="${CXX_FUZZ:-clang++-14}"
SECONDS_PER_TARGET="${1:-60}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(idx cifar10 image config checkpoint)

if ! [[ "$SECONDS_PER_TARGET" =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz: SECONDS_PER_TARGET must be a positive number of seconds, got '$SECONDS_PER_TARGET'" >&2
  exit 2
fi
for t in "${TARGETS[@]}"; do
  if [ ! -d "$ROOT/tests/fuzz/corpus/$t" ]; then
    echo "fuzz: unknown target '$t' (targets: idx cifar10 image config checkpoint)" >&2
    exit 2
  fi
done
# clang with libFuzzer's runtime, and lld (the checkpoint target drops unused code at link).
if ! command -v "$CXX_FUZZ" >/dev/null ||
   ! "$CXX_FUZZ" -fuse-ld=lld -print-prog-name=ld.lld | xargs test -x 2>/dev/null; then
  echo "fuzz: needs $CXX_FUZZ and lld; apt-get install clang-14 libclang-rt-14-dev lld-14" >&2
  exit 1
fi

# ---- Build (only the targets asked for) ----
mkdir -p "$BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_CXX_COMPILER="$CXX_FUZZ" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDIFFLAB_FUZZ=ON -DDIFFLAB_BUILD_GUI=OFF -DDIFFLAB_BUILD_TESTS=OFF \
  -DDIFFLAB_BUILD_BENCH=OFF >"$BUILD/configure.log" 2>&1 ||
  { cat "$BUILD/configure.log" >&2; exit 1; }
build_targets=()
for t in "${TARGETS[@]}"; do build_targets+=("fuzz_$t"); done
cmake --build "$BUILD" -j "$JOBS" --target "${build_targets[@]}"

# ---- Run ----
# The targets write their inputs as files (the readers take paths): into memory where
# /dev/shm is writable, in a folder removed at the end.
scratch_parent=/tmp
[ -d /dev/shm ] && [ -w /dev/shm ] && scratch_parent=/dev/shm
scratch="$(mktemp -d "$scratch_parent/difflab-fuzz.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT

failed=()
for t in "${TARGETS[@]}"; do
  work="$BUILD/fuzz/$t"
  rm -rf "$work"
  mkdir -p "$work/findings"
  cp -r "$ROOT/tests/fuzz/corpus/$t" "$work/corpus"
  echo "fuzz: $t for ${SECONDS_PER_TARGET} s on $(ls "$work/corpus" | wc -l) seeds"
  rc=0
  TMPDIR="$scratch" ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" \
    LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$ROOT/tests/fuzz/lsan.supp:print_suppressions=0}" \
    UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}" \
    "$BUILD/tests/fuzz/fuzz_$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/findings/" "$work/corpus" >"$work/log" 2>&1 || rc=$?
  done_line="$(grep -a -P '\tDONE ' "$work/log" | tail -n 1 || true)"
  runs="$(grep -a 'stat::number_of_executed_units' "$work/log" | awk '{print $2}' || true)"
  if [ "$rc" -ne 0 ] || [ -n "$(ls -A "$work/findings")" ]; then
    echo "fuzz: $t FAILED (exit $rc); log $work/log, input in $work/findings/:" >&2
    grep -a -m1 -A40 -E 'ERROR: |runtime error|fuzz: |==[0-9]+==' "$work/log" >&2 || tail -n 40 "$work/log" >&2
    failed+=("$t")
  else
    echo "fuzz: $t ok: ${runs:-?} inputs; ${done_line#*DONE   }"
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: no findings (${TARGETS[*]}, ${SECONDS_PER_TARGET} s each)"

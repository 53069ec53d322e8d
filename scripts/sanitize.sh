#!/usr/bin/env bash
# Sanitizer builds, each in its own folder beside build/:
#   base  ASan + UBSan (build-asan/) over the torch-free library's tests: the config, IDX,
#         CIFAR-10, image-folder, JSON, PNG, GIF and log readers and writers (~2 min)
#   asan  ASan + UBSan (build-asan/, no GUI): the unit tests, the CLI smoke test and the
#         hostile-input suite (cli_faults, 3 kill -9 trials)
#   tsan  TSan (build-tsan/): the engine tests (the worker thread, commands, snapshots) and
#         gui_click (real clicks under Xvfb: training, sampling and the scrubber while the
#         worker runs), LibTorch at 1 thread. gui_smoke and gui_refuse are left out: under
#         TSan their training got one step in 400 s (the GUI drawing with Mesa's llvmpipe
#         beside it); they time out rather than report anything.
# usage: scripts/sanitize.sh [base|asan|tsan|all] [--budget SECONDS]    (all = the three)
# With --budget, a phase that would start with less than its usual time left is skipped,
# and one that runs out is stopped; both are reported as "SKIPPED" (exit 0). A budget of 0 or
# less (the caller's time is already spent) skips every phase. A sanitizer
# report or a failing test exits 1. Needs the packages scripts/setup.sh installs.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WHICH=all
BUDGET=""   # empty: no budget
while [ $# -gt 0 ]; do
  case "$1" in
    base|asan|tsan|all) WHICH=$1 ;;
    --budget)
      [[ ${2:-} =~ ^-?[0-9]+$ ]] || { echo "sanitize: --budget needs a whole number of seconds" >&2; exit 2; }
      BUDGET=$((10#${2#-})); [ "${2:0:1}" = "-" ] && BUDGET=$((-BUDGET)); shift ;;
    *) echo "usage: $0 [asan|tsan|all] [--budget SECONDS]" >&2; exit 2 ;;
  esac
  shift
done
START=$(date +%s)
JOBS=${JOBS:-$(nproc)}
# Seconds each phase took on 2 cores (build from scratch + tests); README has the figures.
declare -A USUAL=([base]=240 [asan]=3600 [tsan]=2400)
status=0

left() { echo $((BUDGET - ($(date +%s) - START))); }
# A timeout for what is left of the budget (at least 1 s: `timeout 0` would mean none).
budget_wrap() { local l; l=$(left); wrap=(timeout "$((l > 1 ? l : 1))"); }

run_phase() {  # name, cmake flags, targets, ctest args...
  local name=$1 flags=$2 targets=$3
  shift 3
  local limit=0
  if [ -n "$BUDGET" ]; then
    limit=$(left)
    if [ "$limit" -lt "${USUAL[$name]}" ]; then
      echo "SKIPPED: sanitize $name: ${limit} s of the budget left, it takes about ${USUAL[$name]} s"
      return 0
    fi
  fi
  local dir="$ROOT/build-${BUILD_NAME:-$name}" t0
  t0=$(date +%s)
  echo "== sanitize $name ($dir)"
  cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DDIFFLAB_BUILD_BENCH=OFF $flags >/dev/null ||
    { echo "sanitize $name: configure failed"; status=1; return; }
  local wrap=()
  [ -n "$BUDGET" ] && budget_wrap
  # One target at a time: Make given several goals at -j builds a shared dependency twice at
  # once (seen: "Text file busy" as two links of test_engine raced).
  local rc=0 target
  : >"$dir/build.log"
  for target in $targets; do
    "${wrap[@]}" cmake --build "$dir" -j "$JOBS" --target "$target" >>"$dir/build.log" 2>&1
    rc=$?
    [ $rc -eq 0 ] || break
    [ -n "$BUDGET" ] && budget_wrap
  done
  if [ $rc -eq 124 ]; then echo "SKIPPED: sanitize $name: the budget ran out while building"; return 0; fi
  [ $rc -eq 0 ] || { tail -30 "$dir/build.log"; echo "sanitize $name: build failed"; status=1; return; }
  [ -n "$BUDGET" ] && budget_wrap
  (cd "$dir" && "${wrap[@]}" ctest --output-on-failure -j "$JOBS" "$@")
  rc=$?
  if [ $rc -eq 124 ]; then echo "SKIPPED: sanitize $name: the budget ran out while testing"; return 0; fi
  [ $rc -eq 0 ] || status=1
  echo "sanitize $name: $([ $rc -eq 0 ] && echo clean || echo FAILED) in $(( $(date +%s) - t0 )) s"
}

SUPP="$ROOT/tests/sanitizers"
export DIFFLAB_CACHE_DIR="$ROOT/build-sanitize-cache"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0"
export LSAN_OPTIONS="suppressions=$SUPP/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
BASE_TESTS="test_config test_data test_schedule test_logging test_gif"
if [ "$WHICH" = base ] || [ "$WHICH" = all ]; then
  # The torch-free tests' names: every test of those five programs.
  BUILD_NAME=asan run_phase base "-DDIFFLAB_SANITIZE=address -DDIFFLAB_BUILD_GUI=OFF" \
    "$BASE_TESTS" -R '^(Config|Crc32c|DataTest|Gif|MetricsLog|Paths|Png|Schedule|TensorBoardWriter)\.'
fi
if [ "$WHICH" = asan ] || [ "$WHICH" = all ]; then
  export FAULT_KILL_TRIALS=3
  run_phase asan "-DDIFFLAB_SANITIZE=address -DDIFFLAB_BUILD_GUI=OFF" all \
    -L unit -E '^(cli_controlnet|cli_hints)$'
fi
unset ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS
if [ "$WHICH" = tsan ] || [ "$WHICH" = all ]; then
  export TSAN_OPTIONS="suppressions=$SUPP/tsan.supp:halt_on_error=1:second_deadlock_stack=1"
  export OMP_NUM_THREADS=1
  run_phase tsan "-DDIFFLAB_SANITIZE=thread -DDIFFLAB_BUILD_GUI=ON" \
    "test_engine test_training_run difflab difflab-cli" \
    -R '^(Engine|EngineRuns|TrainingRun|RunFolder)\.|^gui_click$'
fi
echo "sanitize: $([ $status -eq 0 ] && echo done || echo FAILED) in $(( $(date +%s) - START )) s"
exit $status

# Shared by the GUI tests (sourced): tool checks, failure report, a private Xvfb display.
#
#   source gui_common.sh; gui_workdir "$WORK"; require_gui_tools; start_xvfb 91 160 "$WORK"
# fail() reports OUT and ERR (the app's stdout/stderr files, set by gui_workdir); sets
# DISPLAY, and APP_PID is killed with the display on exit.

# A fresh work folder (what an earlier run left is removed) with empty files for the app's
# output: OUT=WORK/stdout[N].txt, ERR=WORK/stderr[N].txt (N numbers the files of a test
# that starts the app more than once).
gui_workdir() {  # gui_workdir WORK [N]
  [ -n "$1" ] || { echo "FAIL: no work folder"; exit 1; }
  rm -rf -- "$1"
  mkdir -p "$1"
  OUT=$1/stdout${2:-}.txt
  ERR=$1/stderr${2:-}.txt
  : > "$OUT"
  : > "$ERR"
}

# Prints "SKIPPED: ..." and exits 0 when Xvfb or xdotool is missing.
require_gui_tools() {
  for tool in Xvfb xdotool; do
    if ! command -v "$tool" > /dev/null; then
      echo "SKIPPED: $tool not found"
      exit 0
    fi
  done
}

fail() {
  echo "FAIL: $*"
  echo "--- difflab stdout"; cat "$OUT"
  echo "--- difflab stderr"; cat "$ERR"
  exit 1
}

# start_xvfb FIRST LAST WORK: Xvfb 1280x800 on the first free display number in
# [FIRST, LAST] (tests running side by side pick different ranges), log in WORK.
start_xvfb() {
  local d num=
  for d in $(seq "$1" "$2"); do
    if [ ! -e "/tmp/.X11-unix/X$d" ] && [ ! -e "/tmp/.X$d-lock" ]; then num=$d; break; fi
  done
  [ -n "$num" ] || fail "no free X display number"
  Xvfb ":$num" -screen 0 1280x800x24 -nolisten tcp > "$3/xvfb.log" 2>&1 &
  XVFB_PID=$!
  APP_PID=
  trap 'cleanup_xvfb' EXIT
  export DISPLAY=":$num"
  for _ in $(seq 1 50); do
    xdotool getdisplaygeometry > /dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "Xvfb did not start on $DISPLAY"
}

cleanup_xvfb() {
  [ -n "${APP_PID:-}" ] && kill "$APP_PID" 2> /dev/null
  kill "$XVFB_PID" 2> /dev/null
  wait 2> /dev/null
}

# --- Driving a running app (APP_PID, stdout in OUT, printed with --print-layout) ---

# wait_line REGEX [SECONDS]: prints the last stdout line matching REGEX once there is one
# (default: wait up to 120 s); returns 1 when the app exits or time runs out first.
wait_line() {
  local line= tries=$(( ${2:-120} * 4 ))
  for _ in $(seq 1 "$tries"); do
    line=$(grep -E -- "$1" "$OUT" | tail -n 1)
    [ -n "$line" ] && { echo "$line"; return 0; }
    kill -0 "$APP_PID" 2> /dev/null || return 1
    sleep 0.25
  done
  return 1
}

# count_lines REGEX: how many stdout lines match.
count_lines() { grep -E -c -- "$1" "$OUT"; }

# wait_count REGEX N [SECONDS]: waits until at least N stdout lines match, then prints the
# last one; returns 1 on exit or timeout.
wait_count() {
  local tries=$(( ${3:-120} * 4 ))
  for _ in $(seq 1 "$tries"); do
    if [ "$(count_lines "$1")" -ge "$2" ]; then grep -E -- "$1" "$OUT" | tail -n 1; return 0; fi
    kill -0 "$APP_PID" 2> /dev/null || return 1
    sleep 0.25
  done
  return 1
}

# lines: how many stdout lines there are now (a mark before an action, for wait_new).
lines() { wc -l < "$OUT"; }

# wait_new SINCE REGEX [SECONDS]: prints the first stdout line after line SINCE that matches
# REGEX once there is one (default: wait up to 120 s); returns 1 on exit or timeout.
wait_new() {
  local line= tries=$(( ${3:-120} * 4 ))
  for _ in $(seq 1 "$tries"); do
    line=$(tail -n +$(( $1 + 1 )) "$OUT" | grep -E -m 1 -- "$2")
    [ -n "$line" ] && { echo "$line"; return 0; }
    kill -0 "$APP_PID" 2> /dev/null || return 1
    sleep 0.25
  done
  return 1
}

# wait_step N [SECONDS] [SINCE]: waits for a "status training step K" line (after line
# SINCE, default 0) with K >= N and prints K.
wait_step() {
  local tries=$(( ${2:-120} * 4 )) k
  for _ in $(seq 1 "$tries"); do
    k=$(tail -n +$(( ${3:-0} + 1 )) "$OUT" | grep -E "^status training step [0-9]+" | tail -n 1 | awk '{print $4}')
    [ -n "$k" ] && [ "$k" -ge "$1" ] && { echo "$k"; return 0; }
    kill -0 "$APP_PID" 2> /dev/null || return 1
    sleep 0.25
  done
  return 1
}

# app_window: the id of the Diffusion Lab window (WID).
app_window() {
  WID=$(xdotool search --name "Diffusion Lab" | head -n 1)
  [ -n "$WID" ] || fail "no window named Diffusion Lab"
}

# click NAME [SECONDS] [left]: waits until the newest "layout NAME ..." line says enabled=1,
# then clicks the centre of that rectangle (with "left": 12 px from its left edge, inside
# the text of a field whose rectangle also holds +/- buttons and a label).
click() {
  local line= tries=$(( ${2:-60} * 4 ))
  for _ in $(seq 1 "$tries"); do
    line=$(grep -E "^layout $1 " "$OUT" | tail -n 1)
    case "$line" in *enabled=1) break ;; esac
    line=
    kill -0 "$APP_PID" 2> /dev/null || fail "difflab exited while waiting for $1"
    sleep 0.25
  done
  [ -n "$line" ] || fail "$1 was never shown enabled"
  sleep 0.3  # a widget that just appeared may still move (a window settling): the newest place
  line=$(grep -E "^layout $1 " "$OUT" | tail -n 1)
  local x y w h
  read -r _ _ x y w h _ <<< "$line"
  [ -n "${WID:-}" ] || app_window
  local cx=$((x + w / 2))
  [ "${3:-}" = left ] && cx=$((x + 12))
  echo "click $1 at ($cx, $((y + h / 2))) [${SECONDS} s]"
  xdotool mousemove --window "$WID" "$cx" $((y + h / 2))
  sleep 0.3
  xdotool click 1
  sleep 0.3
}

# type_into NAME TEXT: clicks the text field NAME, selects all and types TEXT over it.
type_into() {
  click "$1" 60 left
  press ctrl+a
  xdotool type --delay 15 "$2"
  sleep 0.3
}

# scroll_over NAME CLICKS: turns the mouse wheel over widget NAME (its window scrolls),
# CLICKS notches down (negative: up).
scroll_over() {
  local line x y w h button=5 n=$2
  line=$(wait_line "^layout $1 " 60) || fail "no layout line for $1"
  read -r _ _ x y w h _ <<< "$line"
  [ -n "${WID:-}" ] || app_window
  [ "$n" -lt 0 ] && { button=4; n=$((-n)); }
  xdotool mousemove --window "$WID" $((x + w / 2)) $((y + h / 2))
  sleep 0.2
  for _ in $(seq 1 "$n"); do xdotool click "$button"; sleep 0.1; done
  sleep 0.5
}

# press KEYS: a key chord to the window under the pointer (e.g. ctrl+q), held for 0.2 s as
# a person would (ImGui 1.86 reads key state once a frame: a press and release that both
# arrive between two frames are never seen).
press() {
  xdotool keydown "$1"
  sleep 0.2
  xdotool keyup "$1"
  sleep 0.3
}

# wait_exit SECONDS: waits for the app to exit; sets RC (124 when it is still running).
wait_exit() {
  RC=124
  for _ in $(seq 1 $(( $1 * 4 ))); do
    if ! kill -0 "$APP_PID" 2> /dev/null; then
      wait "$APP_PID"
      RC=$?
      APP_PID=
      return 0
    fi
    sleep 0.25
  done
  return 1
}

# Shared by the GUI tests (sourced): tool checks, failure report, a private Xvfb display.
#
#   source gui_common.sh; require_gui_tools; start_xvfb 91 160 "$WORK"
# Expects OUT and ERR (the app's stdout/stderr files) for fail(); sets DISPLAY, and
# APP_PID is killed with the display on exit.

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

#!/usr/bin/env bash
# The README's ControlNet picture: difflab in a private Xvfb display with a trained
# ControlNet, a scribbled "7" drawn on the canvas with xdotool (as a user would with the
# mouse), Generate, and the app's own screenshot once the samples are in.
#
# usage: scripts/controlnet_demo.sh [CONTROLNET] [OUT.png] [scribble|picture]
#   defaults: runs/mnist_controlnet/controlnet.pt, assets/readme/gui_controlnet_scribble.png,
#   scribble. `picture` instead switches to "From a picture" and uses the first image of
#   the Dataset panel's preview (canny at the ControlNet's thresholds).
set -eu
cd "$(dirname "$0")/.."
CONTROLNET=${1:-runs/mnist_controlnet/controlnet.pt}
SHOT=${2:-assets/readme/gui_controlnet_scribble.png}
MODE=${3:-scribble}
APP=build/app/gui/difflab
for tool in Xvfb xdotool; do command -v "$tool" > /dev/null || { echo "needs $tool"; exit 1; }; done
[ -x "$APP" ] || { echo "build first (bash scripts/setup.sh)"; exit 1; }
WORK=$(mktemp -d)
D=:$(( (RANDOM % 50) + 240 ))
Xvfb "$D" -screen 0 1280x800x24 -nolisten tcp > "$WORK/xvfb.log" 2>&1 &
XVFB=$!
trap 'kill $XVFB 2> /dev/null; rm -rf "$WORK"' EXIT
export DISPLAY=$D
for _ in $(seq 1 50); do xdotool getdisplaygeometry > /dev/null 2>&1 && break; sleep 0.1; done
"$APP" --controlnet "$CONTROLNET" --print-layout --exit-when-sampled --screenshot "$SHOT" \
  --timeout 300 > "$WORK/out.txt" 2>&1 &
APP_PID=$!
line() { for _ in $(seq 1 240); do grep "$1" "$WORK/out.txt" | tail -n 1 | grep . && return 0; sleep 0.5; done; return 1; }
read -r _ _ X Y W H _ <<< "$(line '^layout ControlNetCanvas ')"
WID=$(xdotool search --name "Diffusion Lab" | head -n 1)
C=$((W / 28))  # screen pixels per canvas pixel
stroke() {  # stroke X0 Y0 X1 Y1 in canvas pixels
  xdotool mousemove --window "$WID" $((X + $1 * C)) $((Y + $2 * C)) mousedown 1
  for i in $(seq 1 16); do
    xdotool mousemove --window "$WID" $((X + ($1 + ($3 - $1) * i / 16) * C)) $((Y + ($2 + ($4 - $2) * i / 16) * C))
    sleep 0.03
  done
  xdotool mouseup 1
  sleep 0.2
}
click() {  # click NAME: the centre of a widget the app reported as enabled
  read -r _ _ X1 Y1 W1 H1 _ <<< "$(line "^layout $1 .* enabled=1")"
  xdotool mousemove --window "$WID" $((X1 + W1 / 2)) $((Y1 + H1 / 2)) click 1
  sleep 0.3
}
if [ "$MODE" = picture ]; then
  click ControlNetPictureMode
  click ControlNetUseDatasetImage
else
  stroke 8 7 20 7    # the 7's bar
  stroke 20 7 12 23  # its stem
fi
read -r _ _ X2 Y2 W2 H2 _ <<< "$(line '^layout ControlNetGenerate .* enabled=1')"
xdotool mousemove --window "$WID" $((X2 + W2 / 2)) $((Y2 + H2 / 2)) click 1
wait $APP_PID
grep "exit-when-sampled" "$WORK/out.txt"
echo "screenshot: $SHOT"

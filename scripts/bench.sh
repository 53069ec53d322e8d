#!/usr/bin/env bash
# C++ (LibTorch) vs Python (PyTorch) on the same model, same machine, same run:
# `difflab-cli bench` and then bench/pytorch_reference.py (the identical UNet in eager
# PyTorch 1.13), then the C++/Python ratios of training images/s and DDIM ms/step.
#
# Does not build: needs $BUILD_DIR/difflab-cli (default build/). Extra options go to both
# programs, so only the ones they share: --batch N, --train-steps N, --sample-batch N,
# --sample-steps N. Environment:
#   BUILD_DIR  build folder (default build; relative paths are from the repository root)
#   PYTHON     interpreter with torch (default: python3 if it imports torch, else /usr/bin/python3)
#   THREADS    intra-op threads for both (default: all cores)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BUILD_DIR="${BUILD_DIR:-build}"
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
CLI="$BUILD_DIR/difflab-cli"
if [[ ! -x "$CLI" ]]; then
  echo "bench.sh: $CLI not found; build first (scripts/setup.sh) or set BUILD_DIR" >&2
  exit 1
fi

if [[ -z "${PYTHON:-}" ]]; then
  PYTHON=python3
  if ! python3 -c 'import torch' >/dev/null 2>&1; then PYTHON=/usr/bin/python3; fi
fi
if ! "$PYTHON" -c 'import torch' >/dev/null 2>&1; then
  echo "bench.sh: $PYTHON cannot import torch (apt-get install python3-torch)" >&2
  exit 1
fi

THREADS="${THREADS:-$(nproc)}"
# The same BLAS settings for both sides (the CLI would set these itself). SkylakeX
# kernels need AVX-512; elsewhere OpenBLAS keeps its own choice.
export OPENBLAS_NUM_THREADS=1
if grep -qw avx512f /proc/cpuinfo; then
  export OPENBLAS_CORETYPE=SkylakeX
  # The same ATen kernels for both sides (difflab-cli sets this itself).
  if grep -qw avx512bw /proc/cpuinfo && grep -qw avx512vl /proc/cpuinfo && grep -qw avx512dq /proc/cpuinfo; then
    export ATEN_CPU_CAPABILITY=avx512
  fi
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

echo "== C++: $CLI bench --threads $THREADS $* (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
"$CLI" bench --threads "$THREADS" "$@" | tee "$TMP/cpp.txt"
echo
echo "== Python: $PYTHON bench/pytorch_reference.py --threads $THREADS $* (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
"$PYTHON" "$ROOT/bench/pytorch_reference.py" --threads "$THREADS" "$@" | tee "$TMP/py.txt"
echo

# The number before "images/s" on the line starting with "train", the first number
# before "ms/step" on the line starting with "sample", the number after "model:".
train_ips() { awk '/^train/ { for (i = 2; i <= NF; i++) if ($i ~ /^images\/s/) { print $(i - 1); exit } }' "$1"; }
ddim_ms() { awk '/^sample/ { for (i = 2; i <= NF; i++) if ($i ~ /^ms\/step/) { print $(i - 1); exit } }' "$1"; }
params() { awk '/^model:/ { print $2; exit }' "$1"; }

cpp_ips="$(train_ips "$TMP/cpp.txt")"; py_ips="$(train_ips "$TMP/py.txt")"
cpp_ms="$(ddim_ms "$TMP/cpp.txt")"; py_ms="$(ddim_ms "$TMP/py.txt")"
cpp_params="$(params "$TMP/cpp.txt")"; py_params="$(params "$TMP/py.txt")"
for v in cpp_ips py_ips cpp_ms py_ms; do
  if [[ -z "${!v}" ]]; then echo "bench.sh: could not read $v from the output above" >&2; exit 1; fi
done

awk -v th="$THREADS" -v ci="$cpp_ips" -v pi="$py_ips" -v cm="$cpp_ms" -v pm="$py_ms" \
    -v cp="$cpp_params" -v pp="$py_params" 'BEGIN {
  printf "== C++ / Python (%s threads)\n", th
  printf "%-26s %12s %12s %14s\n", "", "C++", "Python", "C++/Python"
  printf "%-26s %12.1f %12.1f %14.2f  (>1: C++ faster)\n", "train images/s", ci, pi, ci / pi
  printf "%-26s %12.1f %12.1f %14.2f  (<1: C++ faster)\n", "DDIM ms/step (no guidance)", cm, pm, cm / pm
  printf "%-26s %12s %12s %14s\n", "parameters", cp, pp, (cp == pp ? "equal" : "DIFFERENT")
}' </dev/null
if [[ "$cpp_params" != "$py_params" ]]; then
  echo "bench.sh: the two models differ in size; the comparison is not like for like" >&2
  exit 1
fi

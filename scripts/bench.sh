#!/usr/bin/env bash
# C++ (LibTorch) vs Python (PyTorch) on the same model, same machine, same run:
# `difflab-cli bench` and then bench/pytorch_reference.py (the identical UNet in eager
# PyTorch 1.13), then the C++/Python ratios of training images/s, DDIM ms/step and peak
# memory, for each precision.
#
# Does not build: needs $BUILD_DIR/difflab-cli (default build/). Extra options go to both
# programs, so only the ones they share: --batch N, --train-steps N, --sample-batch N,
# --sample-steps N. Environment:
#   BUILD_DIR  build folder (default build; relative paths are from the repository root)
#   PYTHON     interpreter with torch (default: python3 if it imports torch, else /usr/bin/python3)
#   THREADS    intra-op threads for both (default: all cores)
#   OMP_WAIT_POLICY  for both (default PASSIVE, difflab's own default)
#   PRECISIONS the precisions compared like for like (default "fp32 bf16": bf16 is CPU
#              autocast on both sides)
# Last, one C++ run with precision auto prints what auto chose on this machine and
# samples 1,000 images with guidance end to end.
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

# The same OpenMP waiting for both: difflab's programs wait passively unless told (README,
# "OpenMP waits passively"); PyTorch's default spins, which is faster for the many small
# parallel regions of a batch-16 DDIM step when nothing else wants the cores.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# The number before "images/s" on the line starting with "train", the first number
# before "ms/step" on the line starting with "sample", the number after "model:".
train_ips() { awk '/^train/ { for (i = 2; i <= NF; i++) if ($i ~ /^images\/s/) { print $(i - 1); exit } }' "$1"; }
ddim_ms() { awk '/^sample/ { for (i = 2; i <= NF; i++) if ($i ~ /^ms\/step/) { print $(i - 1); exit } }' "$1"; }
params() { awk '/^model:/ { print $2; exit }' "$1"; }
rss() { awk '/^peak memory/ { print $(NF - 1); exit }' "$1"; }

# Each precision PyTorch also has on a CPU (fp32, bf16 autocast), like for like. bf16 only
# where the CPU has bf16 instructions: elsewhere both sides emulate it (a training step
# took 10x fp32's on an AVX2 AMD EPYC), which measures nothing a user would run.
if [[ -z "${PRECISIONS:-}" ]]; then
  if grep -qwE 'avx512_bf16|amx_bf16|bf16' /proc/cpuinfo; then
    PRECISIONS="fp32 bf16"
  else
    PRECISIONS="fp32"
    echo "bench.sh: this CPU has no bf16 instructions: fp32 only (PRECISIONS=\"fp32 bf16\" to time emulated bf16 too)"
  fi
fi
rows=""
for p in $PRECISIONS; do
  echo "== C++ ($p): $CLI bench --threads $THREADS --precision $p --large 0 $* --set diffusion.objective=ddpm (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  # bench/pytorch_reference.py trains DDPM's ε and times DDIM: the C++ side does the same
  # whatever objective the preset has (flow matching and EDM cost the same network calls).
  "$CLI" bench --threads "$THREADS" --precision "$p" --large 0 --no-kernels "$@" \
    --set diffusion.objective=ddpm | tee "$TMP/cpp_$p.txt"
  echo
  echo "== Python ($p): $PYTHON bench/pytorch_reference.py --threads $THREADS --precision $p $* (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  "$PYTHON" "$ROOT/bench/pytorch_reference.py" --threads "$THREADS" --precision "$p" "$@" | tee "$TMP/py_$p.txt"
  echo
  cpp_ips="$(train_ips "$TMP/cpp_$p.txt")"; py_ips="$(train_ips "$TMP/py_$p.txt")"
  cpp_ms="$(ddim_ms "$TMP/cpp_$p.txt")"; py_ms="$(ddim_ms "$TMP/py_$p.txt")"
  cpp_params="$(params "$TMP/cpp_$p.txt")"; py_params="$(params "$TMP/py_$p.txt")"
  cpp_rss="$(rss "$TMP/cpp_$p.txt")"; py_rss="$(rss "$TMP/py_$p.txt")"
  for v in cpp_ips py_ips cpp_ms py_ms; do
    if [[ -z "${!v}" ]]; then echo "bench.sh: could not read $v from the output above" >&2; exit 1; fi
  done
  if [[ "$cpp_params" != "$py_params" ]]; then
    echo "bench.sh: the two models differ in size ($cpp_params, $py_params); not like for like" >&2
    exit 1
  fi
  rows+="$p $cpp_ips $py_ips $cpp_ms $py_ms ${cpp_rss:-0} ${py_rss:-0}"$'\n'
done

echo "== C++ end to end: $CLI bench --threads $THREADS --precision auto --train-steps 3 --sample-steps 3 --no-kernels $*"
"$CLI" bench --threads "$THREADS" --precision auto --train-steps 3 --sample-steps 3 --no-kernels "$@" |
  tee "$TMP/cpp_auto.txt" | grep -E '^(train|sample) (precision|[0-9])' || true
echo

printf '%s' "$rows" | awk -v th="$THREADS threads, OMP_WAIT_POLICY=$OMP_WAIT_POLICY" -v cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" '
BEGIN {
  printf "== C++ / Python on %s, %s, parameters equal\n", cpu, th
  printf "%-6s %9s %9s %8s   %9s %9s %8s   %9s %9s\n", "", "C++", "Python", "ratio", "C++", "Python", "ratio", "C++", "Python"
  printf "%-6s %28s   %28s   %19s\n", "", "train images/s (>1: C++ faster)", "DDIM ms/step (<1: C++ faster)", "peak RSS MiB"
}
{ printf "%-6s %9.1f %9.1f %8.2f   %9.1f %9.1f %8.2f   %9.0f %9.0f\n", $1, $2, $3, $2 / $3, $4, $5, $4 / $5, $6, $7 }'

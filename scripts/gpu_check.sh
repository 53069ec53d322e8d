#!/usr/bin/env bash
# The CUDA check of issue 14 in one call: builds difflab-cli and the tests (no GUI, no
# benchmarks) against the LibTorch of the Python `torch` found on this machine, runs the
# `gpu` tests on device cuda, trains the MNIST preset for 2 minutes, samples from it, prints
# `difflab-cli bench` on the GPU, then runs the unit suite in the time left. Everything
# goes to stdout and to $OUT (at most 8 files): summary.txt (this output), build.log,
# ctest_gpu.log, ctest_unit.log, train.log, metrics.csv, final.png, sample.png.
#
# A bare GPU machine has CUDA, Python + torch, CMake and ninja but not yaml-cpp, GoogleTest,
# stb or pkg-config, and no network: those come as Debian 12 .deb files that
# scripts/gpu_fetch_debs.sh downloads into .debs/ beforehand; this script unpacks them with
# `dpkg -x` into .gpu-prefix/ (never into /) and points CMake there. The MNIST run needs the
# imported IDX files in data/mnist (scripts/setup.sh makes them); send .debs and data/mnist
# along with the working tree.
#
#   bash scripts/gpu_fetch_debs.sh                 # here, once: .debs/ (~2.5 MB)
#   OUT=/some/dir bash scripts/gpu_check.sh        # on the GPU machine, from the repo root
#
# Without a CUDA torch (this CPU machine) it builds against Debian's LibTorch, runs the
# gpu tests (they skip) and the unit suite, and says which CUDA parts it skipped:
#   nice -n 10 env JOBS=2 bash scripts/gpu_check.sh
#
# Settings (environment): OUT, JOBS (default: all cores), BUILD_DIR (build-gpu),
# PYTHON (a python3 with torch; default /opt/torch/.venv/bin/python3, then python3),
# TRAIN_MINUTES (2), GPU_CHECK_DEADLINE (seconds the whole check may take with CUDA: 530;
# training is shortened and the unit suite cut to stay inside it).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
BUILD="${BUILD_DIR:-$ROOT/build-gpu}"
OUT="${OUT:-$BUILD/gpu-check-out}"
JOBS="${JOBS:-$(nproc)}"
PREFIX="$ROOT/.gpu-prefix"
DEBS="$ROOT/.debs"
TRAIN_MINUTES="${TRAIN_MINUTES:-2}"
ARCH_DIR=x86_64-linux-gnu
mkdir -p "$OUT" "$BUILD"
exec > >(tee "$OUT/summary.txt") 2>&1
TEE_PID=$!

START=$(date +%s)
elapsed() { echo $(($(date +%s) - START)); }
section() { printf '\n==== %s  [%s, +%ss] ====\n' "$*" "$(date +%T)" "$(elapsed)"; }
declare -a RESULTS=()
result() { RESULTS+=("$(printf '%-14s %-5s %s' "$1" "$2" "${3:-}")"); }
FAILED=0
fail() { FAILED=1; result "$1" FAIL "${2:-}"; }

finish() {
  section "Summary"
  printf '%s\n' "${RESULTS[@]}"
  echo "total: $(elapsed) s; files in $OUT:"
  ls -l "$OUT"
  exec 1>&- 2>&-
  wait "$TEE_PID" 2>/dev/null || sleep 1  # summary.txt complete before the caller reads it
  exit "$FAILED"
}

# ---------------------------------------------------------------------------------------
section "Machine"
uname -srm
(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME") || true
echo "cores: $(nproc), memory: $(free -g 2>/dev/null | awk '/Mem:/ {print $2 " GiB"}')"
if [ "$(uname -m)" != x86_64 ]; then
  echo "this script unpacks amd64 Debian packages; this machine is $(uname -m)"
  fail machine "not x86_64"
  finish
fi
command -v nvidia-smi >/dev/null &&
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -4
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi
if command -v nvcc >/dev/null; then
  nvcc --version | tail -2
  CUDACXX="$(command -v nvcc)"  # for CMake's enable_language(CUDA) in Caffe2's cuda.cmake
  export CUDACXX
fi
for tool in c++ cmake ninja; do
  if command -v "$tool" >/dev/null; then
    echo "$tool: $("$tool" --version 2>&1 | head -1)"
  else
    echo "$tool: not found"
  fi
done
if ! command -v c++ >/dev/null; then
  fail machine "no C++ compiler (c++)"
  finish
fi

# ---------------------------------------------------------------------------------------
section "Debian packages -> $PREFIX"
# dpkg -x unpacks a package's files under a folder as if it were /; nothing is installed.
if ! ls "$DEBS"/*.deb >/dev/null 2>&1; then
  echo "no .deb files in $DEBS: run scripts/gpu_fetch_debs.sh on a Debian 12 machine and send .debs along"
  fail packages "no .debs"
  finish
fi
if ! command -v dpkg-deb >/dev/null; then
  echo "dpkg-deb missing: cannot unpack .deb files here"
  fail packages "no dpkg-deb"
  finish
fi
rm -rf "$PREFIX"
mkdir -p "$PREFIX"
for deb in "$DEBS"/*.deb; do
  dpkg-deb -x "$deb" "$PREFIX" || { fail packages "dpkg-deb -x $deb"; finish; }
done
# Absolute links point into the host's / (zlib1g-dev: libz.so -> /lib/.../libz.so.1.2.13):
# aim them at the unpacked copy.
while IFS= read -r link; do
  target="$(readlink "$link")"
  case "$target" in /*) [ -e "$PREFIX$target" ] && ln -sfn "$PREFIX$target" "$link" ;; esac
done < <(find "$PREFIX" -type l)
# pkg-config files say prefix=/usr (gtest: libdir=/usr/...): make them name the prefix.
find "$PREFIX" -name '*.pc' -exec sed -i -E "s#^([A-Za-z_]+)=/usr#\\1=$PREFIX/usr#" {} +
export PKG_CONFIG_PATH="$PREFIX/usr/lib/$ARCH_DIR/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
PKG_CONFIG_ARG=()
if ! command -v pkg-config >/dev/null; then
  # Debian's pkgconf with its libpkgconf beside it.
  mkdir -p "$PREFIX/bin"
  cat > "$PREFIX/bin/pkg-config" <<EOF
#!/bin/sh
LD_LIBRARY_PATH="$PREFIX/usr/lib/$ARCH_DIR\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$PREFIX/usr/bin/pkgconf" "\$@"
EOF
  chmod +x "$PREFIX/bin/pkg-config"
  PKG_CONFIG_ARG=(-DPKG_CONFIG_EXECUTABLE="$PREFIX/bin/pkg-config")
  echo "pkg-config: none on this machine, using Debian's pkgconf from the prefix"
fi
PC=pkg-config
[ ${#PKG_CONFIG_ARG[@]} -gt 0 ] && PC="$PREFIX/bin/pkg-config"
echo "stb through pkg-config: $("$PC" --cflags --libs stb 2>&1)"
du -sh "$PREFIX" | cut -f1 | sed 's/^/prefix size: /'
result packages OK "$(ls "$DEBS"/*.deb | wc -l) .deb files"

# ---------------------------------------------------------------------------------------
section "LibTorch"
CUDA_MODE=0
EXPECT_CUDA=0
TORCH_PREFIX=""
TORCH_DIR=""
TORCH_ABI=1
for py in "${PYTHON:-}" /opt/torch/.venv/bin/python3 python3; do
  [ -n "$py" ] && command -v "$py" >/dev/null || continue
  info="$("$py" - 2>/dev/null <<'EOF'
import os, torch
ok = torch.cuda.is_available()
print("difflab-torch", torch.__version__, torch.version.cuda or "none", int(ok),
      int(torch._C._GLIBCXX_USE_CXX11_ABI), sep="|")
print("difflab-prefix", torch.utils.cmake_prefix_path, sep="|")
print("difflab-dir", os.path.dirname(torch.__file__), sep="|")
print("difflab-gpu", torch.cuda.get_device_name(0) if ok else "", sep="|")
EOF
)" || continue
  # Tagged lines: whatever else torch prints on import cannot shift the fields.
  field() { grep "^difflab-$1|" <<< "$info" | head -1 | cut -d'|' -f"$2"; }
  echo "python torch: $py -> torch $(field torch 2), CUDA $(field torch 3), cuda available: $(field torch 4) $(field gpu 2)"
  if [ -n "$(field torch 3)" ] && [ "$(field torch 3)" != none ]; then
    CUDA_MODE=1
    TORCH_VERSION="$(field torch 2)"
    EXPECT_CUDA="$(field torch 4)"
    TORCH_ABI="$(field torch 5)"
    TORCH_PREFIX="$(field prefix 2)"
    TORCH_DIR="$(field dir 2)"
    GPU_NAME="$(field gpu 2)"
    break
  fi
done
if [ "$CUDA_MODE" = 1 ]; then
  echo "building against $TORCH_PREFIX (CXX11 ABI $TORCH_ABI)"
  # The wheel's libtorch_cuda finds the nvidia-* wheels through its RUNPATH; these make it
  # work where that layout differs.
  site="$(dirname "$TORCH_DIR")"
  libs="$TORCH_DIR/lib"
  while IFS= read -r dir; do libs="$libs:$dir"; done < <(find "$site/nvidia" -maxdepth 3 -type d -name lib 2>/dev/null | sort)
  export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  result torch OK "torch $TORCH_VERSION, CUDA, GPU: ${GPU_NAME:-none visible}"
  [ "$EXPECT_CUDA" = 1 ] || echo "torch has CUDA but sees no GPU: the gpu tests will skip"
else
  echo "no Python torch with CUDA: building against Debian's LibTorch (CPU); the CUDA parts are skipped"
  result torch OK "Debian's LibTorch (CPU)"
fi
if [ "$CUDA_MODE" = 1 ]; then
  DEADLINE="${GPU_CHECK_DEADLINE:-530}"
else
  DEADLINE="${GPU_CHECK_DEADLINE:-100000}"
fi
left() { echo $((DEADLINE - $(elapsed))); }

# ---------------------------------------------------------------------------------------
section "Configure"
GENERATOR=(-G "Unix Makefiles")
KEEP_GOING=(-k)
if command -v ninja >/dev/null; then
  GENERATOR=(-G Ninja)
  KEEP_GOING=(-k 0)
fi
LIB="$PREFIX/usr/lib/$ARCH_DIR"
configure() {  # configure <CMAKE_PREFIX_PATH> [more cmake args]
  local prefix_path="$1"
  shift
  rm -f "$BUILD/CMakeCache.txt"  # a clean cache (another Torch config); objects stay
  cmake -S "$ROOT" -B "$BUILD" "${GENERATOR[@]}" \
    -DCMAKE_BUILD_TYPE=Release -DDIFFLAB_BUILD_GUI=OFF -DDIFFLAB_BUILD_BENCH=OFF \
    -DDIFFLAB_BUILD_TESTS=ON -DDIFFLAB_PCH=ON -DDIFFLAB_REQUIRE_CUDA="$CUDA_MODE" \
    -DCMAKE_PREFIX_PATH="$prefix_path" \
    -Dyaml-cpp_DIR="$LIB/cmake/yaml-cpp" -DGTest_DIR="$LIB/cmake/GTest" \
    -DZLIB_INCLUDE_DIR="$PREFIX/usr/include" -DZLIB_LIBRARY="$LIB/libz.so" \
    "${PKG_CONFIG_ARG[@]}" "$@" >> "$OUT/build.log" 2>&1
}
# Fallback for a CUDA torch whose own TorchConfig.cmake fails here (Caffe2's CUDA toolkit
# look-ups: cuDNN, cuFFT, CUB ... from a partial toolkit): a minimal TorchConfig.cmake that
# names the wheel's libraries directly (our code includes no CUDA header).
write_torch_shim() {
  mkdir -p "$PREFIX/torch-shim"
  cat > "$PREFIX/torch-shim/TorchConfig.cmake" <<EOF
# Written by scripts/gpu_check.sh: the wheel at $TORCH_DIR without Caffe2's CUDA set-up.
set(TORCH_INSTALL_PREFIX "$TORCH_DIR")
set(TORCH_INCLUDE_DIRS "\${TORCH_INSTALL_PREFIX}/include" "\${TORCH_INSTALL_PREFIX}/include/torch/csrc/api/include")
set(TORCH_CXX_FLAGS "-D_GLIBCXX_USE_CXX11_ABI=$TORCH_ABI")
add_library(torch SHARED IMPORTED)
set_target_properties(torch PROPERTIES
  IMPORTED_LOCATION "\${TORCH_INSTALL_PREFIX}/lib/libtorch.so"
  INTERFACE_INCLUDE_DIRECTORIES "\${TORCH_INCLUDE_DIRS}"
  INTERFACE_COMPILE_OPTIONS "\${TORCH_CXX_FLAGS}")
set(TORCH_CUDA_LIBRARIES "\${TORCH_INSTALL_PREFIX}/lib/libtorch_cuda.so" "\${TORCH_INSTALL_PREFIX}/lib/libc10_cuda.so")
# --no-as-needed: nothing calls libtorch_cuda directly, yet it must load to register CUDA.
set(TORCH_LIBRARIES torch "\${TORCH_INSTALL_PREFIX}/lib/libtorch_cpu.so" "\${TORCH_INSTALL_PREFIX}/lib/libc10.so"
    "-Wl,--no-as-needed,\${TORCH_INSTALL_PREFIX}/lib/libtorch_cuda.so,\${TORCH_INSTALL_PREFIX}/lib/libc10_cuda.so,--as-needed"
    "\${TORCH_INSTALL_PREFIX}/lib/libc10_cuda.so")
set(Torch_FOUND TRUE)
EOF
  echo "---- with the minimal Torch config $PREFIX/torch-shim" >> "$OUT/build.log"
  SHIM=1
}
configure_shim() {
  echo "retrying with a minimal Torch config (.gpu-prefix/torch-shim)"
  write_torch_shim
  configure "$PREFIX/usr" -DTorch_DIR="$PREFIX/torch-shim"
}
: > "$OUT/build.log"
SHIM=0
t0=$(elapsed)
if [ "$CUDA_MODE" = 1 ]; then
  configured=0
  # Libraries that libtorch_cuda needs come from the nvidia-* wheels (LD_LIBRARY_PATH above);
  # where ld still misses one, the dynamic loader finds it through the wheel's RUNPATH.
  export LDFLAGS="${LDFLAGS:+$LDFLAGS }-Wl,--allow-shlib-undefined"
  if configure "$TORCH_PREFIX;$PREFIX/usr"; then
    configured=1
  else
    echo "configure with the wheel's TorchConfig.cmake failed:"
    grep -A8 -m3 "CMake Error" "$OUT/build.log" | head -30
    configure_shim && configured=1
  fi
else
  configure "$PREFIX/usr" && configured=1 || configured=0
fi
if [ "$configured" = 0 ]; then
  tail -40 "$OUT/build.log"
  fail configure "see build.log"
  finish
fi
report_configuration() {
  grep -E "LibTorch .* CUDA|C\+\+ standard|No BLAS" "$OUT/build.log" | tail -3 | sed 's/^-- //'
  for var in Torch_DIR yaml-cpp_DIR GTest_DIR STB_INCLUDE_DIRS ZLIB_INCLUDE_DIR; do
    grep -E "^$var(:[A-Z]+)?=" "$BUILD/CMakeCache.txt" | head -1
  done
}
report_configuration
result configure OK "$(($(elapsed) - t0)) s"

# ---------------------------------------------------------------------------------------
section "Build (-j$JOBS)"
CLI="$BUILD/difflab-cli"
build() {
  t0=$(elapsed)
  cmake --build "$BUILD" --parallel "$JOBS" -- "${KEEP_GOING[@]}" >> "$OUT/build.log" 2>&1
  build_rc=$?
  build_s=$(($(elapsed) - t0))
  echo "build: ${build_s} s, exit $build_rc"
}
build
if [ "$CUDA_MODE" = 1 ] && [ "$SHIM" = 0 ]; then
  # The wheel's config configured, but linking failed (no compiler error in our sources),
  # or the programs linked without loading libtorch_cuda: try once with the minimal config.
  retry=""
  if [ ! -x "$CLI" ] && ! grep -qE "\.(cpp|h):[0-9]+:[0-9]+: error" "$OUT/build.log"; then
    retry="linking failed"
  elif [ "$EXPECT_CUDA" = 1 ] && [ -x "$BUILD/tests/test_cuda" ] &&
    ! DIFFLAB_EXPECT_CUDA=1 "$BUILD/tests/test_cuda" --gtest_filter='Cuda.DeviceChoice*' >/dev/null 2>&1; then
    retry="the programs built do not see the GPU"
  fi
  if [ -n "$retry" ]; then
    echo "$retry with the wheel's TorchConfig.cmake:"
    grep -E "error|undefined reference|cannot find" "$OUT/build.log" | head -10
    if configure_shim; then
      report_configuration
      build
    fi
  fi
fi
if [ "$build_rc" = 0 ]; then
  result build OK "$build_s s$([ "$SHIM" = 1 ] && echo ', minimal Torch config')"
else
  # -k 0 built everything that could be built: the errors are all in the log at once.
  grep -E "error|FAILED" "$OUT/build.log" | head -30
  fail build "$build_s s, see build.log"
fi
if [ ! -x "$CLI" ]; then
  echo "difflab-cli was not built; nothing to run"
  finish
fi
ldd "$CLI" | grep -E "torch|c10|cuda|yaml|stb|not found" | sed 's/ (0x[0-9a-f]*)//'

# ---------------------------------------------------------------------------------------
section "ctest -L gpu (DIFFLAB_EXPECT_CUDA=$EXPECT_CUDA)"
t0=$(elapsed)
(cd "$BUILD" && DIFFLAB_EXPECT_CUDA=$EXPECT_CUDA timeout 300 ctest -L gpu -V --timeout 120) > "$OUT/ctest_gpu.log" 2>&1
gpu_rc=$?
# The measured CPU-vs-CUDA differences, then ctest's verdict.
grep -E "^[0-9]+: (forward|backward|first loss|preset on cuda|ddim|ddpm|euler|LibTorch)" "$OUT/ctest_gpu.log" | sed 's/^[0-9]*: /  /'
grep -E "tests passed|tests failed|\(Failed\)|\*\*\*|Skipped" "$OUT/ctest_gpu.log" | tail -15
if [ "$gpu_rc" = 0 ]; then
  result "ctest gpu" OK "$(grep -oE '[0-9]+% tests passed.*' "$OUT/ctest_gpu.log"), $(($(elapsed) - t0)) s"
else
  fail "ctest gpu" "$(grep -oE '[0-9]+% tests passed.*' "$OUT/ctest_gpu.log")"
fi

# ---------------------------------------------------------------------------------------
if [ "$CUDA_MODE" = 1 ] && [ "$EXPECT_CUDA" = 1 ]; then
  section "Train the MNIST preset on cuda"
  RUN="$BUILD/gpu-run/mnist"
  if [ ! -f data/mnist/train-images-idx3-ubyte ] || [ ! -f data/mnist/t10k-labels-idx1-ubyte ]; then
    echo "SKIP: data/mnist has no IDX files (make them with scripts/setup.sh and send data/mnist along)"
    result train SKIP "no data/mnist"
  else
    # Keep ~110 s for the final samples, sampling, bench and the unit suite.
    minutes="$TRAIN_MINUTES"
    budget=$(( $(left) - 110 ))
    if [ "$budget" -lt $((TRAIN_MINUTES * 60)) ]; then
      minutes="$(awk -v b="$budget" 'BEGIN { m = b / 60; if (m < 0.5) m = 0.5; printf "%.1f", m }')"
      echo "note: the build took long; training for $minutes min instead of $TRAIN_MINUTES to finish in time"
    fi
    rm -rf "$RUN"
    t0=$(elapsed)
    # --steps far beyond the preset's 1,800: the time limit ends the run.
    "$CLI" train --config configs/mnist.yaml --device cuda --time-limit "$minutes" \
      --steps 1000000 --out "$RUN" --quiet > "$OUT/train.log" 2>&1
    train_rc=$?
    head -4 "$OUT/train.log"
    echo "..."
    tail -6 "$OUT/train.log"
    cp "$RUN/metrics.csv" "$OUT/metrics.csv" 2>/dev/null
    cp "$RUN/samples/final.png" "$OUT/final.png" 2>/dev/null
    steps="$(grep -oE 'trained [0-9]+ steps' "$OUT/train.log" | grep -oE '[0-9]+')"
    rate="$(awk -F, 'NR == 1 { for (i = 1; i <= NF; ++i) if ($i == "images_per_s") c = i; next }
                     c && $c != "" { s += $c; n++ } END { if (n) printf "%.0f", s / n }' "$RUN/metrics.csv" 2>/dev/null)"
    if [ "$train_rc" = 0 ]; then
      result train OK "$minutes min: ${steps:-?} steps, mean ${rate:-?} images/s, $(($(elapsed) - t0)) s"
    else
      fail train "exit $train_rc, see train.log"
    fi

    section "Sample from the run on cuda"
    t0=$(elapsed)
    "$CLI" sample --run "$RUN" --device cuda --out "$OUT/sample.png" 2>&1 | tail -5
    if [ "${PIPESTATUS[0]}" = 0 ]; then
      result sample OK "64 images, the preset's Euler 50 steps, guidance 3: $(($(elapsed) - t0)) s with start-up"
    else
      fail sample "see summary.txt"
    fi
  fi

  section "difflab-cli bench --device cuda"
  if "$CLI" bench --config configs/mnist.yaml --device cuda 2>&1; then
    result "bench cuda" OK
  else
    fail "bench cuda"
  fi
else
  section "CUDA run"
  echo "SKIP: no CUDA GPU for LibTorch here; not training, sampling or benchmarking on cuda"
  result train SKIP "no CUDA"
fi

# ---------------------------------------------------------------------------------------
section "ctest -L unit -j$JOBS"
budget=$(( $(left) - 15 ))
if [ "$budget" -lt 30 ]; then
  echo "SKIP: no time left before the ${DEADLINE} s deadline"
  result "ctest unit" SKIP "no time left"
else
  t0=$(elapsed)
  [ "$CUDA_MODE" = 1 ] && echo "(the CLI tests run with --device auto, i.e. on cuda here; ${budget} s at most)"
  # One intra-op thread per test: $JOBS tests at once fill the cores without oversubscribing.
  # --stop-time makes ctest itself end the tests still running at the deadline.
  stop="$(date -d "+$budget seconds" +%H:%M:%S)"
  (cd "$BUILD" && OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" timeout $((budget + 20)) \
    ctest -L unit -j "$JOBS" --timeout 300 --stop-time "$stop" --output-on-failure) \
    > "$OUT/ctest_unit.log" 2>&1
  unit_rc=$?
  grep -E "tests passed|tests failed|\(Failed\)|\(Timeout\)|Not Run|Total Test time" "$OUT/ctest_unit.log" | tail -25
  if [ "$unit_rc" = 0 ]; then
    result "ctest unit" OK "$(grep -oE '[0-9]+% tests passed.*' "$OUT/ctest_unit.log"), $(($(elapsed) - t0)) s"
  elif [ "$unit_rc" = 124 ]; then
    fail "ctest unit" "cut at the deadline after $(($(elapsed) - t0)) s"
  else
    fail "ctest unit" "$(grep -oE '[0-9]+% tests passed.*' "$OUT/ctest_unit.log")"
  fi
fi

if [ "$CUDA_MODE" = 1 ] && [ "$EXPECT_CUDA" = 1 ] && [ "$(left)" -gt 60 ]; then
  section "difflab-cli bench --device cpu (the same machine's CPU, for comparison)"
  timeout $(( $(left) - 10 )) "$CLI" bench --config configs/mnist.yaml --device cpu 2>&1
fi
finish

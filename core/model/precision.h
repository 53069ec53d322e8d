// Mixed precision for the denoiser: float32, or bfloat16 autocast (convolutions, linear
// layers and matrix products in bf16 with fp32 accumulation inside oneDNN; normalisation,
// softmax, the loss, optimizer state, EMA and master weights stay float32), and `auto`,
// which measures both on this machine and this network once and remembers the answer.
//
// Why it is a choice and not a constant: the same build ran a bf16 3x3 convolution 8x
// faster than fp32 on an AMD EPYC with AVX512-BF16 and slower on an Intel Xeon without it.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/config/config.h"
#include "core/model/denoiser_net.h"

namespace difflab {

// While alive, LibTorch's autocast runs the network's matrix work in bfloat16 on `device`
// (when `bf16`; otherwise it does nothing). Outputs of autocast ops are bf16: cast the
// network output back with .to(torch::kFloat32) before the loss or the sampler's update.
class PrecisionScope {
 public:
  PrecisionScope(bool bf16, c10::Device device);
  ~PrecisionScope();
  PrecisionScope(const PrecisionScope&) = delete;
  PrecisionScope& operator=(const PrecisionScope&) = delete;

 private:
  bool m_on;
  c10::DeviceType m_type;
  bool m_was_enabled = false;
};

// What `auto` measured and chose.
struct PrecisionChoice {
  Precision chosen = Precision::Fp32;  // Fp32 or Bf16, never Auto
  double fp32_ms = 0.0, bf16_ms = 0.0; // per timed call (0 when not measured)
  double error = 0.0;                  // bf16 against fp32 (see tune_precision)
  bool measured = false;               // false: requested explicitly, or not possible
  bool cached = false;                 // true: read from the cache, not timed now
  std::string reason;                  // one line, printed by the programs
};

// The largest difference from fp32 that `auto` accepts for bf16:
//  - training: 1 − cosine similarity of the whole gradient vector (one batch);
//  - sampling: mean |x_bf16 − x_fp32| of images after a short DDIM run, on the [-1, 1]
//    pixel scale (0.02 = about 2.5 grey levels of 255).
inline constexpr double kBf16GradientTolerance = 1e-3;
inline constexpr double kBf16SampleTolerance = 0.02;
// bf16 is chosen only when it is at least this much faster (a margin for timing noise).
inline constexpr double kBf16MinSpeedup = 1.10;

// The decision rule of `auto`, apart from the measuring (tested on its own).
PrecisionChoice decide_precision(double fp32_ms, double bf16_ms, double error, double tolerance);

// What the network will be timed on.
struct PrecisionProbe {
  bool training = true;  // forward + backward (training) or a forward in inference mode
  int64_t batch = 64;    // network images per call
  DataShape shape;
};

// True on a CPU without bf16 instructions (cpu_bf16() in core/util/runtime.h), where
// LibTorch emulates bf16: `auto` is fp32 there without timing anything.
bool bf16_emulated(c10::Device device);

// Resolves `requested` for `net` on `device`. Fp32 / Bf16 come back as they are (Bf16 on a
// CPU without bf16 instructions with a warning in the reason: LibTorch emulates it, many
// times slower). Auto on such a CPU is fp32 at once, untimed (see cpu_bf16() in
// core/util/runtime.h). Otherwise auto looks up the cache (key: CPU model and instruction
// set, LibTorch version, device, purpose, network fingerprint, batch; read
// from the file once per process) and
// otherwise times a few calls of both, checks bf16's error against fp32 (see the
// tolerances above) and stores the answer. `net` is used, never changed: its gradients and
// training mode are restored.
PrecisionChoice resolve_precision(Precision requested, const DenoiserNet& net,
                                  const PrecisionProbe& probe, c10::Device device);

// The cache file: $DIFFLAB_CACHE_DIR/precision.tsv, else $XDG_CACHE_HOME/difflab/...,
// else ~/.cache/difflab/... ("" when none can be named).
std::string precision_cache_path();

}  // namespace difflab

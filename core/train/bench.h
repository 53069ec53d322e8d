// `difflab-cli bench`: training and sampling speed of a config's model on synthetic
// data, with the machine's own sgemm and 3×3-convolution rates measured in the same
// run as the practical ceiling.
#pragma once

#include <c10/core/Device.h>

#include <string>

#include "core/config/config.h"

namespace difflab {

struct BenchOptions {
  int train_batch = 64;
  int train_steps = 20;  // timed steps, after `warmup`
  int warmup = 3;
  int sample_batch = 16;
  int sample_steps = 20;  // timed sampling steps (one network call each)
  bool kernels = true;    // also measure sgemm and conv ceilings
  // train.precision and sample.precision of the timed runs (fp32, bf16 or auto).
  Precision precision = Precision::Fp32;
  // Then sample this many images with guidance 3 end to end (0 = skip), in steps of the
  // one-call sampler (see BenchResult::sampler).
  int large_n = 1000;
  int large_steps = 20;
  c10::Device device = c10::kCPU;  // where everything runs, the ceilings included
};

struct BenchResult {
  int threads = 0;
  int64_t parameters = 0;
  double train_step_ms = 0;
  double train_images_per_s = 0;
  double train_gflop_per_step = 0;  // 3 × forward FLOPs (forward + backward ≈ 2 × forward)
  double train_gflops = 0;          // achieved
  // The sampler timed: one network call a step, so every objective's figure is comparable:
  // DDIM for ddpm models (what bench/pytorch_reference.py times), Euler for edm and
  // flow_matching (DDIM does not apply to them).
  std::string sampler;
  double ddim_ms_per_step = 0;      // at sample_batch, no guidance: one forward per step
  double ddim_cfg_ms_per_step = 0;  // with classifier-free guidance (2B per step); 0 if unconditional
  double sgemm_gflops = 0;          // 1024² × 1024 float32 matmul, on the device
  double conv_gflops = 0;           // 3×3 conv, 128 → 128 channels, 32 × 28 × 28, forward
  double large_seconds = 0;         // large_n images, end to end
  int64_t large_chunk = 0;          // images per chunk it used
  std::string train_precision;      // what training ran in, and why
  std::string sample_precision;
  double peak_rss_mb = 0;
  std::string runtime;              // LibTorch, device, threads, BLAS
};

BenchResult run_bench(const Config& config, const BenchOptions& options);
std::string format_bench(const BenchResult& result, const BenchOptions& options);

}  // namespace difflab

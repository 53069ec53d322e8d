#include "core/train/bench.h"

#include <torch/torch.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "core/model/flops.h"
#include "core/model/winograd_conv.h"
#include "core/train/trainer.h"
#include "core/util/runtime.h"

namespace difflab {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Peak resident set size of this process (VmHWM), in MiB.
double peak_rss_mb() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "VmHWM:") {
      double kb = 0;
      in >> kb;
      return kb / 1024.0;
    }
    in.ignore(1 << 12, '\n');
  }
  return 0.0;
}

// Random images of the config's shape with 10 labels: speed does not depend on content.
std::shared_ptr<DatasetSplits> synthetic_data(const Config& config, int64_t n) {
  auto data = std::make_shared<DatasetSplits>();
  const auto& d = config.data;
  const bool points = config.model.kind == ModelKind::Mlp;
  data->shape = points ? DataShape{2, 0, 0, true, 10}
                       : DataShape{d.channels, d.image_size, d.image_size, false, 10};
  auto make = [&](int64_t count) {
    TensorDataset set;
    set.data = points ? torch::randn({count, 2})
                      : torch::randint(0, 256, {count, d.channels, d.image_size, d.image_size},
                                       torch::kUInt8);
    set.labels = torch::randint(0, 10, {count}, torch::kLong);
    return set;
  };
  data->train = make(n);
  data->test = make(std::max<int64_t>(n / 8, 1));
  for (int k = 0; k < 10; ++k) data->class_names.push_back(std::to_string(k));
  return data;
}

// CUDA runs asynchronously: a clock read means something only after the device has
// finished the work queued before it.
void wait_for(c10::Device device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

template <typename F> double time_best(int repeats, c10::Device device, F&& f) {
  double best = 1e30;
  for (int i = 0; i < repeats; ++i) {
    wait_for(device);
    const auto start = Clock::now();
    f();
    wait_for(device);
    best = std::min(best, seconds_since(start));
  }
  return best;
}

}  // namespace

BenchResult run_bench(const Config& base, const BenchOptions& o) {
  torch::manual_seed(0);
  BenchResult r;
  r.threads = torch::get_num_threads();
  const auto device = o.device;
  r.runtime = runtime_summary(device);

  Config config = base;
  config.train.batch_size = o.train_batch;
  config.train.sample_every = 0;
  config.train.precision = o.precision;
  config.sample.precision = o.precision;
  auto data = synthetic_data(config, std::max<int64_t>(o.train_batch * 8, 512));
  Trainer trainer(config, data, device);
  r.parameters = trainer.parameter_count();

  r.train_precision = trainer.precision().reason;
  for (int i = 0; i < o.warmup; ++i) trainer.train_step();
  trainer.read_back();  // the timed steps start a group of their own
  {
    FlopCounter counter;
    torch::NoGradGuard no_grad;
    auto x = torch::zeros({o.train_batch, data->shape.channels, data->shape.height,
                           data->shape.width}, torch::TensorOptions().device(device));
    if (data->shape.points) x = torch::zeros({o.train_batch, 2}, torch::TensorOptions().device(device));
    auto t = torch::zeros({o.train_batch}, torch::TensorOptions().device(device));
    auto y = torch::zeros({o.train_batch}, torch::TensorOptions().dtype(torch::kLong).device(device));
    trainer.model()->forward(x, t, y);
    r.train_gflop_per_step = 3.0 * static_cast<double>(counter.flops()) * 1e-9;
  }
  wait_for(device);
  const auto start = Clock::now();
  for (int i = 0; i < o.train_steps; ++i) trainer.train_step();
  trainer.read_back();  // the deferred reads of a CUDA run are part of its time
  wait_for(device);
  const double train_s = seconds_since(start);
  r.train_step_ms = train_s * 1e3 / o.train_steps;
  r.train_images_per_s = o.train_batch * o.train_steps / train_s;
  r.train_gflops = r.train_gflop_per_step * o.train_steps / train_s;

  // DDIM (Euler for edm and flow matching, where DDIM does not apply; the same one network
  // call a step) without guidance, then with classifier-free guidance (one forward over 2B
  // per step) when the model is class-conditional.
  const SamplerKind one_call =
      config.diffusion.objective == Objective::Ddpm ? SamplerKind::Ddim : SamplerKind::Euler;
  r.sampler = one_call == SamplerKind::Ddim ? "DDIM" : "Euler";
  auto time_ddim = [&](double guidance) {
    SampleConfig sc = config.sample;
    sc.sampler = one_call;
    sc.n = o.sample_batch;
    sc.steps = o.sample_steps + 2;
    sc.guidance = guidance;
    int seen = 0;
    Clock::time_point sample_start;
    const auto result = trainer.sample(sc, false, [&](const StepInfo&) {
      // Steps 1–2 are warm-up; the clock starts after step 2's forward, so the window
      // holds exactly sample_steps forwards.
      if (++seen == 2) {
        wait_for(device);
        sample_start = Clock::now();
      }
      return true;
    });
    wait_for(device);
    if (guidance != 1.0 || r.sample_precision.empty()) r.sample_precision = result.precision.reason;
    return seconds_since(sample_start) * 1e3 / o.sample_steps;
  };
  r.ddim_ms_per_step = time_ddim(1.0);
  if (trainer.model()->num_classes() > 0) r.ddim_cfg_ms_per_step = time_ddim(3.0);

  if (o.large_n > 0) {
    // What a user asking for a big batch waits: all of it, chunked as run_sampling chooses.
    SampleConfig sc = config.sample;
    sc.sampler = one_call;
    sc.n = o.large_n;
    sc.steps = o.large_steps;
    sc.guidance = trainer.model()->num_classes() > 0 ? 3.0 : 1.0;
    wait_for(device);
    const auto start = Clock::now();
    const auto result = trainer.sample(sc, false);
    r.large_chunk = std::min<int64_t>(
        sc.n, sample_chunk_size(sc, device, result.precision.chosen, sampling_model(trainer, true).shape));
    wait_for(device);
    r.large_seconds = seconds_since(start);
  }

  if (o.kernels) {
    torch::NoGradGuard no_grad;
    const int64_t n = 1024;
    const auto on_device = torch::TensorOptions().device(device);
    auto a = torch::randn({n, n}, on_device), b = torch::randn({n, n}, on_device);
    torch::mm(a, b);
    const double mm_s = time_best(5, device, [&] { torch::mm(a, b); });
    r.sgemm_gflops = 2.0 * n * n * n / mm_s * 1e-9;
    auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(128, 128, 3).padding(1));
    conv->to(device);
    auto x = torch::randn({32, 128, 28, 28}, on_device);
    conv(x);
    const double conv_s = time_best(3, device, [&] { conv(x); });
    r.conv_gflops = 2.0 * 32 * 128 * 128 * 9 * 28 * 28 / conv_s * 1e-9;
  }
  r.peak_rss_mb = peak_rss_mb();
  return r;
}

std::string format_bench(const BenchResult& r, const BenchOptions& o) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(1);
  s << r.runtime << "\n"
    << "model: " << r.parameters << " parameters\n"
    << "train " << r.train_precision << "\n"
    << "sample " << r.sample_precision << "\n"
    << "train  (batch " << o.train_batch << "): " << r.train_images_per_s << " images/s, "
    << r.train_step_ms << " ms/step, " << r.train_gflop_per_step << " GFLOP/step, "
    << r.train_gflops << " GFLOP/s achieved\n"
    << "sample (" << r.sampler << ", batch " << o.sample_batch << "): " << r.ddim_ms_per_step << " ms/step";
  if (r.ddim_cfg_ms_per_step > 0)
    s << "; with guidance (2x" << o.sample_batch << " per step) " << r.ddim_cfg_ms_per_step << " ms/step";
  s << "\n";
  if (r.large_seconds > 0)
    s << "sample " << o.large_n << " images (" << r.sampler << " " << o.large_steps << " steps, guidance 3, chunks of "
      << r.large_chunk << "): " << r.large_seconds << " s end to end, "
      << 1e3 * r.large_seconds / (static_cast<double>(o.large_n) * o.large_steps) << " ms per image-step\n";
  if (r.sgemm_gflops > 0)
    s << "ceiling: sgemm 1024^3 " << r.sgemm_gflops << " GFLOP/s, conv3x3 128->128 @28x28x32 "
      << r.conv_gflops << " GFLOP/s; train step reaches " << 100.0 * r.train_gflops / r.conv_gflops
      << "% of the conv rate\n";
  if (const auto w = winograd_summary(); !w.empty()) s << w << "\n";
  s << "peak memory (RSS): " << r.peak_rss_mb << " MiB\n";
  return s.str();
}

}  // namespace difflab

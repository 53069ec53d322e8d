#include "core/model/precision.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "core/util/paths.h"
#include "core/util/runtime.h"

// LibTorch 2.4 replaced the per-device autocast switches with ones taking the device type.
#if defined(TORCH_VERSION_MAJOR) && \
    (TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4))
#define DIFFLAB_AUTOCAST_BY_DEVICE 1
#endif

namespace difflab {
namespace {

bool autocast_enabled(c10::DeviceType type) {
#ifdef DIFFLAB_AUTOCAST_BY_DEVICE
  return at::autocast::is_autocast_enabled(type);
#else
  return type == c10::DeviceType::CPU ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled();
#endif
}

void set_autocast(c10::DeviceType type, bool on) {
#ifdef DIFFLAB_AUTOCAST_BY_DEVICE
  at::autocast::set_autocast_dtype(type, at::kBFloat16);
  at::autocast::set_autocast_enabled(type, on);
#else
  if (type == c10::DeviceType::CPU) {
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(on);
  } else {
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(on);
  }
#endif
}

// The network's architecture in one string: the names and shapes of its parameters,
// hashed (FNV-1a), so two configs that build the same net share a cache entry.
std::string fingerprint(const DenoiserNet& net) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](const std::string& s) {
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  };
  for (const auto& item : net->named_parameters()) {
    mix(item.key());
    for (auto d : item.value().sizes()) mix(std::to_string(d) + ",");
  }
  std::ostringstream s;
  s << std::hex << h;
  return s.str();
}

// The cache file holds one line per key: key <TAB> fp32|bf16 <TAB> fp32_ms <TAB> bf16_ms
// <TAB> error. It is read once per process (per path) into g_cache: sampling asks on every run.
std::mutex g_cache_mutex;
std::map<std::string, PrecisionChoice> g_cache;
std::string g_cache_path;  // the file g_cache was read from ("" = none yet)

void load_cache_locked(const std::string& path) {
  if (g_cache_path == path) return;
  g_cache_path = path;
  g_cache.clear();
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {  // the last line for a key wins
    std::istringstream fields(line);
    std::string k, choice;
    double f = 0, b = 0, e = 0;
    if (!std::getline(fields, k, '\t')) continue;
    if (!(fields >> choice >> f >> b >> e) || (choice != "fp32" && choice != "bf16")) continue;
    PrecisionChoice c;
    c.chosen = choice == "bf16" ? Precision::Bf16 : Precision::Fp32;
    c.fp32_ms = f;
    c.bf16_ms = b;
    c.error = e;
    c.measured = true;
    c.cached = true;
    g_cache[k] = c;
  }
}

bool cache_lookup(const std::string& key, PrecisionChoice& out) {
  const auto path = precision_cache_path();
  if (path.empty()) return false;
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  load_cache_locked(path);
  const auto it = g_cache.find(key);
  if (it == g_cache.end()) return false;
  out = it->second;
  return true;
}

void cache_store(const std::string& key, const PrecisionChoice& c) {
  const auto path = precision_cache_path();
  if (path.empty()) return;
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  load_cache_locked(path);
  PrecisionChoice stored = c;
  stored.cached = true;
  g_cache[key] = stored;
  // Rewrite the file from what it holds now (another process may have added keys) plus
  // this entry.
  std::string bytes;
  {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line))
      if (line.rfind(key + "\t", 0) != 0 && !line.empty()) bytes += line + "\n";
  }
  std::ostringstream row;
  row << key << '\t' << (c.chosen == Precision::Bf16 ? "bf16" : "fp32") << '\t' << c.fp32_ms
      << '\t' << c.bf16_ms << '\t' << c.error << '\n';
  bytes += row.str();
  try {
    write_file_atomic(path, bytes);
  } catch (const std::exception&) {
    // A cache that cannot be written only means measuring again in the next process.
  }
}

std::string describe(const PrecisionChoice& c, double tolerance) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(1);
  s << "precision auto: " << (c.chosen == Precision::Bf16 ? "bf16" : "fp32") << " (fp32 "
    << c.fp32_ms << " ms, bf16 " << c.bf16_ms << " ms = " ;
  s.precision(2);
  s << (c.bf16_ms > 0 ? c.fp32_ms / c.bf16_ms : 0.0) << "x; bf16 error ";
  s.precision(5);
  s << c.error;
  s.precision(3);
  s << " against tolerance " << tolerance << ")";
  return s.str();
}

using Clock = std::chrono::steady_clock;

// The input batch of a probe: noise images, random timesteps and labels (the null label
// for an unconditional net is never used: y stays undefined).
struct ProbeBatch {
  at::Tensor x, t, y;
};

ProbeBatch probe_batch(const DenoiserNet& net, const PrecisionProbe& p, c10::Device device) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1234);
  std::vector<int64_t> shape = {p.batch};
  if (p.shape.points) {
    shape.push_back(2);
  } else {
    shape.insert(shape.end(), {p.shape.channels, p.shape.height, p.shape.width});
  }
  ProbeBatch b;
  b.x = torch::randn(shape, gen, torch::kFloat32).to(device);
  b.t = torch::randint(0, 1000, {p.batch}, gen, torch::kLong).to(torch::kFloat32).to(device);
  if (net->num_classes() > 0)
    b.y = torch::randint(0, net->num_classes() + 1, {p.batch}, gen, torch::kLong).to(device);
  return b;
}

double time_ms(const std::function<void()>& call, c10::Device device, int repeats) {
  double best = 1e30;
  for (int i = 0; i < repeats; ++i) {
    const auto start = Clock::now();
    call();
    if (device.is_cuda()) torch::cuda::synchronize();
    best = std::min(best, std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  return best;
}

// The gradient of a fixed loss, flattened, in one precision.
at::Tensor probe_gradient(const DenoiserNet& net, const ProbeBatch& b, bool bf16, c10::Device device) {
  at::Tensor out;
  {
    PrecisionScope scope(bf16, device);
    out = net->forward(b.x, b.t, b.y);
  }
  auto loss = (out.to(torch::kFloat32) - b.x.narrow(1, 0, std::min<int64_t>(b.x.size(1), out.size(1))))
                  .pow(2)
                  .mean();
  const auto params = net->parameters();
  std::vector<at::Tensor> with_grad;
  for (const auto& p : params)
    if (p.requires_grad()) with_grad.push_back(p);
  auto grads = torch::autograd::grad({loss}, with_grad, {}, false, false, true);
  std::vector<at::Tensor> flat;
  for (auto& g : grads)
    if (g.defined()) flat.push_back(g.reshape(-1).to(torch::kFloat32));
  return torch::cat(flat);
}

// A short deterministic DDIM-like run (eta 0, 8 steps of a linear schedule, x̂₀ clipped)
// from fixed noise, in one precision: what the images of a sampler come to.
at::Tensor probe_samples(const DenoiserNet& net, const ProbeBatch& b, bool bf16, c10::Device device) {
  constexpr int kSteps = 8;
  auto x = b.x.clone();
  for (int i = kSteps - 1; i >= 0; --i) {
    // Timesteps 999 ... 999/kSteps (never 0, where 1 − ᾱ vanishes); ᾱ of the linear DDPM
    // schedule is close to exp(−(β₀ t + (β₁−β₀) t²/(2T))).
    auto alpha_bar = [](double t) {
      return std::exp(-(1e-4 * t + (0.02 - 1e-4) * t * t / 2000.0));
    };
    const double tt = 999.0 * (i + 1) / kSteps;
    const double ab = alpha_bar(tt), ab_prev = i > 0 ? alpha_bar(999.0 * i / kSteps) : 1.0;
    at::Tensor eps;
    {
      PrecisionScope scope(bf16, device);
      eps = net->forward(x, torch::full({x.size(0)}, tt, x.options()), b.y);
    }
    eps = eps.to(torch::kFloat32).narrow(1, 0, x.size(1));
    auto x0 = ((x - std::sqrt(1 - ab) * eps) / std::sqrt(ab)).clamp(-1.0, 1.0);
    eps = (x - std::sqrt(ab) * x0) / std::sqrt(1 - ab);
    x = std::sqrt(ab_prev) * x0 + std::sqrt(1 - ab_prev) * eps;
  }
  return x;
}

// Restores a module's training mode (the probe's gradients come from autograd::grad, so
// none are left in the parameters).
class ProbeGuard {
 public:
  explicit ProbeGuard(const DenoiserNet& net) : m_net(net), m_training(net->is_training()) {}
  ~ProbeGuard() { m_net->train(m_training); }

 private:
  DenoiserNet m_net;
  bool m_training;
};

}  // namespace

PrecisionScope::PrecisionScope(bool bf16, c10::Device device)
    : m_on(bf16), m_type(device.type()) {
  if (!m_on) return;
  m_was_enabled = autocast_enabled(m_type);
  set_autocast(m_type, true);
  at::autocast::increment_nesting();
}

PrecisionScope::~PrecisionScope() {
  if (!m_on) return;
  // Casts of the weights are cached for the outermost scope's lifetime only.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_autocast(m_type, m_was_enabled);
}

PrecisionChoice decide_precision(double fp32_ms, double bf16_ms, double error, double tolerance) {
  PrecisionChoice c;
  c.fp32_ms = fp32_ms;
  c.bf16_ms = bf16_ms;
  c.error = error;
  c.measured = true;
  const bool faster = bf16_ms > 0 && fp32_ms >= kBf16MinSpeedup * bf16_ms;
  const bool close = std::isfinite(error) && error <= tolerance;
  c.chosen = faster && close ? Precision::Bf16 : Precision::Fp32;
  c.reason = describe(c, tolerance);
  if (!faster) c.reason += ": bf16 is not faster here";
  else if (!close) c.reason += ": bf16 is faster but strays too far from fp32";
  return c;
}

std::string precision_cache_path() {
  if (const char* dir = std::getenv("DIFFLAB_CACHE_DIR"); dir && *dir)
    return std::string(dir) + "/precision.tsv";
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return std::string(xdg) + "/difflab/precision.tsv";
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::string(home) + "/.cache/difflab/precision.tsv";
  return "";
}

PrecisionChoice resolve_precision(Precision requested, const DenoiserNet& net,
                                  const PrecisionProbe& probe, c10::Device device) {
  PrecisionChoice choice;
  if (requested != Precision::Auto) {
    choice.chosen = requested;
    choice.reason = std::string("precision ") + std::string(to_string(requested)) + " (as configured)";
    return choice;
  }
  std::ostringstream key;
  key << (device.is_cuda() ? "cuda" : cpu_model_name()) << '|' << TORCH_VERSION << '|'
      << (probe.training ? "train" : "sample") << '|' << fingerprint(net) << '|' << probe.batch;
  if (cache_lookup(key.str(), choice)) {
    const double tol = probe.training ? kBf16GradientTolerance : kBf16SampleTolerance;
    choice.reason = describe(choice, tol) + ", measured earlier on this machine";
    return choice;
  }

  ProbeGuard guard(net);
  const auto batch = probe_batch(net, probe, device);
  double fp32_ms = 0, bf16_ms = 0, error = 0;
  bool vacuous = false;
  if (probe.training) {
    net->train();
    auto step = [&](bool bf16) {
      at::Tensor out;
      {
        PrecisionScope scope(bf16, device);
        out = net->forward(batch.x, batch.t, batch.y);
      }
      auto loss = out.to(torch::kFloat32).pow(2).mean();
      const auto params = net->parameters();
      torch::autograd::grad({loss}, params, {}, false, false, true);
    };
    // One untimed call each (first-call set-up), then the best of three.
    step(false);
    step(true);
    fp32_ms = time_ms([&] { step(false); }, device, 3);
    bf16_ms = time_ms([&] { step(true); }, device, 3);
    // Dropout off for the comparison: the same function in both precisions.
    net->eval();
    const auto g32 = probe_gradient(net, batch, false, device);
    const auto g16 = probe_gradient(net, batch, true, device);
    const double denom = (g32.norm() * g16.norm()).item<double>();
    error = denom > 0 ? 1.0 - (g32.dot(g16)).item<double>() / denom : 0.0;
  } else {
    net->eval();
    c10::InferenceMode inference;
    auto call = [&](bool bf16) {
      PrecisionScope scope(bf16, device);
      net->forward(batch.x, batch.t, batch.y);
    };
    call(false);
    call(true);
    fp32_ms = time_ms([&] { call(false); }, device, 3);
    bf16_ms = time_ms([&] { call(true); }, device, 3);
    const int64_t n = std::min<int64_t>(batch.x.size(0), 16);
    ProbeBatch small{batch.x.narrow(0, 0, n), batch.t.narrow(0, 0, n),
                     batch.y.defined() ? batch.y.narrow(0, 0, n) : batch.y};
    const auto ref = probe_samples(net, small, false, device);
    error = (probe_samples(net, small, true, device) - ref).abs().mean().item<double>();
    // A network that outputs zeros (a fresh one: its last layers start at zero) gives the
    // same images in both precisions whatever the arithmetic: decide by speed now, but
    // leave the answer out of the cache so the trained network is checked.
    vacuous = net->forward(small.x, small.t, small.y).abs().max().item<double>() == 0.0;
  }
  choice = decide_precision(fp32_ms, bf16_ms, error,
                            probe.training ? kBf16GradientTolerance : kBf16SampleTolerance);
  if (vacuous)
    choice.reason += " (a network with zero output: accuracy not checked, not cached)";
  else
    cache_store(key.str(), choice);
  return choice;
}

}  // namespace difflab

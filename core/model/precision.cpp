#include "core/model/precision.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <tuple>

#include "core/model/conv_grad.h"
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

bool bf16_emulated(c10::Device device) {
  return device.is_cpu() && cpu_bf16() == CpuBf16::Emulated;
}

PrecisionChoice resolve_precision(Precision requested, const DenoiserNet& net,
                                  const PrecisionProbe& probe, c10::Device device) {
  PrecisionChoice choice;
  // Without bf16 instructions LibTorch emulates bf16 arithmetic: there is nothing to gain,
  // and timing it would cost minutes (a training step 10x, a sampling call 15x fp32's on
  // an AVX2-only AMD EPYC: 4.7 minutes before the first step of the default preset).
  const bool emulated = bf16_emulated(device);
  const std::string no_bf16 = "this CPU has no bf16 instructions (" + cpu_isa_tag() +
                              "; neither avx512_bf16 nor amx_bf16) and LibTorch emulates bf16";
  if (requested != Precision::Auto) {
    choice.chosen = requested;
    choice.reason = std::string("precision ") + std::string(to_string(requested)) + " (as configured)";
    if (requested == Precision::Bf16 && emulated)
      choice.reason += "; warning: " + no_bf16 + ", many times slower than fp32";
    return choice;
  }
  if (emulated) {
    choice.chosen = Precision::Fp32;
    choice.reason = "precision auto: fp32, not timed: " + no_bf16;
    return choice;
  }
  std::ostringstream key;
  // The model name alone does not tell machines apart (two "AMD EPYC", one with
  // AVX512-BF16 and one with AVX2 only): the instruction set is part of the key.
  key << (device.is_cuda() ? "cuda" : cpu_model_name() + " [" + cpu_isa_tag() + "]") << '|' << TORCH_VERSION << '|'
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

// ---- bf16 weight gradients that stall on a busy machine (core/model/conv_grad.h) ----

namespace {

std::atomic<int> g_conv_hooks{0};  // flagged shapes + live recorders
std::mutex g_flagged_mutex;
std::set<ConvShape> g_flagged;
thread_local ConvShapeRecorder* t_recorder = nullptr;

// The input gradient in bf16 (oneDNN's kernel, as autocast's backward would run it), the
// weight and bias gradients in float32 from the same bf16 operands cast up.
struct Float32WeightGradConv : torch::autograd::Function<Float32WeightGradConv> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& weight, const at::Tensor& bias, int64_t stride,
                            int64_t padding) {
    const auto xb = x.to(at::kBFloat16), wb = weight.to(at::kBFloat16);
    const auto bb = bias.defined() ? bias.to(at::kBFloat16) : bias;
    ctx->save_for_backward({xb, wb});
    ctx->saved_data["stride"] = stride;
    ctx->saved_data["padding"] = padding;
    ctx->saved_data["x_type"] = static_cast<int64_t>(x.scalar_type());
    ctx->saved_data["w_type"] = static_cast<int64_t>(weight.scalar_type());
    ctx->saved_data["bias"] = bias.defined();
    return at::convolution(xb, wb, bb, {stride, stride}, {padding, padding}, {1, 1}, false, {0, 0}, 1);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& xb = saved[0];
    const auto& wb = saved[1];
    const int64_t stride = ctx->saved_data["stride"].toInt();
    const int64_t padding = ctx->saved_data["padding"].toInt();
    const bool has_bias = ctx->saved_data["bias"].toBool();
    const auto gy = grads[0].to(at::kBFloat16).contiguous();
    const std::vector<int64_t> s{stride, stride}, p{padding, padding}, d{1, 1}, op{0, 0};
    at::Tensor gx, gw, gb;
    if (ctx->needs_input_grad(0)) {
      gx = std::get<0>(at::convolution_backward(gy, xb, wb, c10::nullopt, s, p, d, false, op, 1,
                                                {true, false, false}))
               .to(static_cast<at::ScalarType>(ctx->saved_data["x_type"].toInt()));
    }
    if (ctx->needs_input_grad(1) || (has_bias && ctx->needs_input_grad(2))) {
      const auto gy32 = gy.to(at::kFloat);
      gw = std::get<1>(at::convolution_backward(gy32, xb.to(at::kFloat), wb.to(at::kFloat),
                                                c10::nullopt, s, p, d, false, op, 1,
                                                {false, true, false}))
               .to(static_cast<at::ScalarType>(ctx->saved_data["w_type"].toInt()));
      if (has_bias) gb = gy32.sum({0, 2, 3});
    }
    return {gx, gw, gb, at::Tensor(), at::Tensor()};
  }
};

std::string conv_stall_cache_path() {
  const auto p = precision_cache_path();
  if (p.empty()) return "";
  return std::filesystem::path(p).parent_path().append("conv_stalls.tsv").string();
}

// conv_stalls.tsv: key <TAB> 0|1 <TAB> float32_ms <TAB> bf16_ms, the last line for a key wins.
struct StallEntry {
  bool stalls = false;
  double float32_ms = 0, bf16_ms = 0;
};

std::map<std::string, StallEntry> read_stall_cache(const std::string& path) {
  std::map<std::string, StallEntry> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string k;
    int flag = 0;
    StallEntry e;
    if (!std::getline(fields, k, '\t')) continue;
    if (!(fields >> flag >> e.float32_ms >> e.bf16_ms) || (flag != 0 && flag != 1)) continue;
    e.stalls = flag == 1;
    out[k] = e;
  }
  return out;
}

void write_stall_cache(const std::string& path, const std::map<std::string, StallEntry>& fresh) {
  if (path.empty() || fresh.empty()) return;
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  auto all = read_stall_cache(path);  // another process may have added keys
  for (const auto& [k, e] : fresh) all[k] = e;
  std::ostringstream bytes;
  for (const auto& [k, e] : all)
    bytes << k << '\t' << (e.stalls ? 1 : 0) << '\t' << e.float32_ms << '\t' << e.bf16_ms
          << '\n';
  try {
    write_file_atomic(path, bytes.str());
  } catch (const std::exception&) {
    // Not written: measured again by the next process.
  }
}

// Two busy threads per core while alive: the "other programs want the cores" of the probe.
// With one per core a kernel that can stall did so on a third of its calls (AMD EPYC, 2
// cores: 2-175 ms, 1 ms alone), with two on most (770-840 ms).
class BusyCores {
 public:
  BusyCores() {
    const unsigned n = 2 * std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < n; ++i)
      m_threads.emplace_back([this] {
        uint64_t x = 0;
        while (!m_stop.load(std::memory_order_relaxed)) x = x * 6364136223846793005ull + 1;
        m_sink.fetch_add(x, std::memory_order_relaxed);
      });
  }
  ~BusyCores() {
    m_stop = true;
    for (auto& t : m_threads) t.join();
  }

 private:
  std::atomic<bool> m_stop{false};
  std::atomic<uint64_t> m_sink{0};
  std::vector<std::thread> m_threads;
};

}  // namespace

std::string ConvShape::key() const {
  std::ostringstream s;
  s << 'b' << batch << "_i" << in << "_o" << out << '_' << height << 'x' << width << "_k" << kernel
    << "_s" << stride << "_p" << padding;
  return s.str();
}

bool ConvShape::operator<(const ConvShape& o) const {
  return std::tie(batch, in, out, height, width, kernel, stride, padding) <
         std::tie(o.batch, o.in, o.out, o.height, o.width, o.kernel, o.stride, o.padding);
}

bool conv_grad_hooks_active() { return g_conv_hooks.load(std::memory_order_relaxed) > 0; }

bool float32_weight_grad(const ConvShape& shape) {
  std::lock_guard<std::mutex> lock(g_flagged_mutex);
  return g_flagged.count(shape) > 0;
}

void set_float32_weight_grad(const std::vector<ConvShape>& shapes, bool on) {
  std::lock_guard<std::mutex> lock(g_flagged_mutex);
  for (const auto& s : shapes) {
    const bool had = g_flagged.count(s) > 0;
    if (on && !had) {
      g_flagged.insert(s);
      ++g_conv_hooks;
    } else if (!on && had) {
      g_flagged.erase(s);
      --g_conv_hooks;
    }
  }
}

bool bf16_autocast_on_cpu() { return autocast_enabled(c10::DeviceType::CPU); }

at::Tensor conv2d_float32_weight_grad(const at::Tensor& x, const at::Tensor& weight,
                                      const at::Tensor& bias, int64_t stride, int64_t padding) {
  return Float32WeightGradConv::apply(x, weight, bias, stride, padding);
}

ConvShapeRecorder::ConvShapeRecorder() : m_previous(t_recorder) {
  t_recorder = this;
  ++g_conv_hooks;
}

ConvShapeRecorder::~ConvShapeRecorder() {
  t_recorder = m_previous;
  --g_conv_hooks;
}

ConvShapeRecorder* ConvShapeRecorder::active() { return t_recorder; }

void ConvShapeRecorder::add(const ConvShape& shape) {
  if (std::find(m_shapes.begin(), m_shapes.end(), shape) == m_shapes.end()) m_shapes.push_back(shape);
}

bool conv_stalls(double float32_ms, double bf16_ms) {
  return bf16_ms > kConvStallRatio * float32_ms && bf16_ms - float32_ms >= kConvStallMinExtraMs;
}

ConvStallReport protect_stalling_convs(const DenoiserNet& net, const PrecisionProbe& probe,
                                       c10::Device device) {
  ConvStallReport report;
  const int threads = at::get_num_threads();
  // Without bf16 instructions every bf16 weight gradient is emulated, 20-50x float32's
  // (AVX2 AMD EPYC, the default UNet): all of them are taken in float32, untimed, at any
  // number of threads.
  const bool emulated = bf16_emulated(device);
  if (!device.is_cpu() || (threads < 2 && !emulated) || !probe.training || probe.shape.points)
    return report;

  // The shapes, from one bf16 forward at the training batch.
  std::vector<ConvShape> shapes;
  {
    ProbeGuard guard(net);
    net->eval();
    const auto batch = probe_batch(net, probe, device);
    torch::NoGradGuard no_grad;
    ConvShapeRecorder recorder;
    PrecisionScope scope(true, device);
    net->forward(batch.x, batch.t, batch.y);
    shapes = recorder.shapes();
  }
  report.shapes = static_cast<int>(shapes.size());
  if (shapes.empty()) return report;
  if (emulated) {
    set_float32_weight_grad(shapes, true);
    report.flagged = report.shapes;
    report.measured = true;
    report.reason = "bf16 weight gradients of all " + std::to_string(report.shapes) +
                    " convolution shapes in float32: this CPU has no bf16 instructions (" +
                    cpu_isa_tag() + "), emulated bf16 is many times slower";
    return report;
  }

  std::ostringstream prefix;
  prefix << cpu_model_name() << " [" << cpu_isa_tag() << "]|" << TORCH_VERSION << '|' << threads << '|';
  const auto path = conv_stall_cache_path();
  const auto cache = path.empty() ? std::map<std::string, StallEntry>{} : read_stall_cache(path);
  std::map<std::string, StallEntry> fresh;
  std::vector<ConvShape> todo;
  for (const auto& s : shapes)
    if (!cache.count(prefix.str() + s.key())) todo.push_back(s);

  if (!todo.empty()) {
    // Each shape's weight gradient beside busy cores: in float32 as the replacement computes
    // it (casts included; best of two after a set-up call), then in bf16.
    struct Operands {
      at::Tensor x, w, gy;
    };
    auto gen = at::make_generator<at::CPUGeneratorImpl>(4321);
    auto bf16_grad = [](const ConvShape& s, const Operands& o) {
      at::convolution_backward(o.gy, o.x, o.w, c10::nullopt, {s.stride, s.stride},
                               {s.padding, s.padding}, {1, 1}, false, {0, 0}, 1, {false, true, false});
    };
    auto float32_grad = [](const ConvShape& s, const Operands& o) {
      at::convolution_backward(o.gy.to(at::kFloat), o.x.to(at::kFloat), o.w.to(at::kFloat),
                               c10::nullopt, {s.stride, s.stride}, {s.padding, s.padding}, {1, 1},
                               false, {0, 0}, 1, {false, true, false});
    };
    BusyCores busy;
    for (const auto& s : todo) {
      Operands o;
      o.x = torch::randn({s.batch, s.in, s.height, s.width}, gen, torch::kFloat32).to(at::kBFloat16);
      o.w = torch::randn({s.out, s.in, s.kernel, s.kernel}, gen, torch::kFloat32).to(at::kBFloat16);
      const auto y = at::convolution(o.x, o.w, {}, {s.stride, s.stride}, {s.padding, s.padding},
                                     {1, 1}, false, {0, 0}, 1);
      o.gy = torch::randn(y.sizes(), gen, torch::kFloat32).to(at::kBFloat16);
      StallEntry e;
      float32_grad(s, o);
      e.float32_ms = time_ms([&] { float32_grad(s, o); }, device, 2);
      bf16_grad(s, o);
      // A kernel that can stall does not on every call (it depends on where the scheduler
      // puts the threads): up to five calls, the slowest counts, the first stall decides.
      for (int call = 0; call < 5 && !e.stalls; ++call) {
        e.bf16_ms = std::max(e.bf16_ms, time_ms([&] { bf16_grad(s, o); }, device, 1));
        e.stalls = conv_stalls(e.float32_ms, e.bf16_ms);
      }
      fresh[prefix.str() + s.key()] = e;
    }
    write_stall_cache(path, fresh);
  }

  std::vector<ConvShape> flagged;
  for (const auto& s : shapes) {
    const auto k = prefix.str() + s.key();
    const auto it = fresh.count(k) ? fresh.find(k) : cache.find(k);
    if (!it->second.stalls) continue;
    flagged.push_back(s);
    report.bf16_ms += it->second.bf16_ms;
    report.float32_ms += it->second.float32_ms;
  }
  set_float32_weight_grad(flagged, true);
  report.flagged = static_cast<int>(flagged.size());
  report.measured = true;
  report.cached = todo.empty();
  std::ostringstream r;
  r.setf(std::ios::fixed);
  r.precision(0);
  if (flagged.empty()) {
    r << "bf16 weight gradients: none of the " << report.shapes
      << " convolution shapes stalls beside busy cores";
  } else {
    r << "bf16 weight gradients of " << report.flagged << " of " << report.shapes
      << " convolution shapes in float32: oneDNN's bf16 kernel for them stalls when other programs "
         "want the cores (beside busy cores: bf16 "
      << report.bf16_ms << " ms, float32 " << report.float32_ms << " ms)";
  }
  r << (report.cached ? ", measured earlier on this machine" : ", measured now");
  report.reason = r.str();
  return report;
}

}  // namespace difflab

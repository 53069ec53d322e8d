#include "core/model/winograd_conv.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <c10/util/intrusive_ptr.h>
#include <torch/csrc/autograd/custom_function.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>

#include "core/model/conv_grad.h"
#include "core/model/winograd.h"

namespace difflab {
namespace {

struct CachedWeights {
  explicit CachedWeights(const at::Tensor& weight)
      : owner(weight.getIntrusivePtr()), data(weight.data_ptr()), version(weight._version()) {}
  c10::weak_intrusive_ptr<c10::TensorImpl> owner;
  const void* data = nullptr;
  uint32_t version = 0;
  at::Tensor u;
};

struct Decision {
  bool use = false;
  double direct_ms = 0, winograd_ms = 0;
};

using ShapeKey = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int>;  // B Cin Cout H W threads

std::mutex g_mutex;
// Keyed by the weight and whether it is the flipped, transposed one of the input gradient.
std::map<std::pair<const c10::TensorImpl*, bool>, CachedWeights> g_weights;
std::map<ShapeKey, Decision> g_decisions;

int64_t round_up8(int64_t n) { return (n + 7) / 8 * 8; }

// u (36, Cin, Cout) for this weight, transformed once per version of it; Cout rounded up
// to a multiple of 8 with zero filters (a network's last layer: 1 or 3 image channels).
// `flipped`: the weight of the input gradient's convolution, (Cin, Cout) swapped and
// turned 180 degrees (training: both already multiples of 8).
// `keep` false: a weight being trained changes every step, so its transform is made for
// this call alone and nothing stale is held (4x the weight's size per copy).
at::Tensor transformed(const at::Tensor& weight, bool flipped, bool keep = true) {
  const auto* impl = weight.unsafeGetTensorImpl();
  const uint32_t version = weight._version();
  const auto key = std::make_pair(impl, flipped);
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = g_weights.find(key);
  if (it != g_weights.end()) {
    auto owner = it->second.owner.lock();
    if (owner.get() == impl && it->second.data == weight.data_ptr() &&
        it->second.version == version)
      return it->second.u;
  }
  // Drop the entries of weights that are gone (a model replaced by a loaded one).
  for (auto e = g_weights.begin(); e != g_weights.end();)
    e = e->second.owner.expired() ? g_weights.erase(e) : std::next(e);
  auto w = flipped ? weight.detach().flip({2, 3}).transpose(0, 1).contiguous()
                   : weight.detach().contiguous();
  if (w.size(0) % 8 != 0)
    w = at::cat({w, at::zeros({round_up8(w.size(0)) - w.size(0), w.size(1), 3, 3}, w.options())});
  const int64_t cout = w.size(0), cin = w.size(1);
  auto u = at::empty({winograd::kPoints, cin, cout}, w.options());
  winograd::transform_weights(w.data_ptr<float>(), cout, cin, u.data_ptr<float>());
  g_weights.erase(key);
  if (!keep) return u;
  CachedWeights entry(weight);
  entry.u = u;
  g_weights.emplace(key, std::move(entry));
  return u;
}

template <typename F>
double best_ms(F&& f, int calls) {
  double best = 1e300;
  for (int i = 0; i < calls; ++i) {
    const auto start = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double, std::milli>(
                              std::chrono::steady_clock::now() - start)
                              .count());
  }
  return best;
}

}  // namespace

namespace {
std::atomic<int> g_mode{-1};  // -1: not read from the environment yet
}  // namespace

WinogradMode winograd_mode() {
  int mode = g_mode.load(std::memory_order_relaxed);
  if (mode < 0) {
    const char* v = std::getenv("DIFFLAB_WINOGRAD");
    WinogradMode m = WinogradMode::Auto;
    if (v && (std::strcmp(v, "on") == 0 || std::strcmp(v, "1") == 0)) m = WinogradMode::On;
    else if (v && (std::strcmp(v, "off") == 0 || std::strcmp(v, "0") == 0)) m = WinogradMode::Off;
    else if (v && *v && std::strcmp(v, "auto") != 0)
      std::fprintf(stderr, "DIFFLAB_WINOGRAD='%s' is not auto, on or off: using auto\n", v);
    mode = static_cast<int>(m);
    g_mode.store(mode, std::memory_order_relaxed);
  }
  return static_cast<WinogradMode>(mode);
}

void set_winograd_mode(WinogradMode mode) {
  g_mode.store(static_cast<int>(mode), std::memory_order_relaxed);
}

bool winograd_applies(const at::Tensor& x, const at::Tensor& weight, int64_t stride,
                      int64_t padding) {
  return stride == 1 && padding == 1 && x.dim() == 4 && weight.dim() == 4 &&
         weight.size(2) == 3 && weight.size(3) == 3 && x.size(1) == weight.size(1) &&
         x.device().is_cpu() && weight.device().is_cpu() &&
         x.scalar_type() == at::kFloat && weight.scalar_type() == at::kFloat &&
         !weight.is_inference() && winograd::supports(weight.size(1), round_up8(weight.size(0)));
}

namespace {

// The kernel reads and writes channels-last memory, (B, H, W, C) contiguous. to_nhwc
// reorders a (B, C, H, W) tensor unless it is channels-last already; from_nhwc gives back
// the (B, C, H, W) view (sampling: the next GroupNorm reads that layout as it is) or a
// contiguous copy (training: the backward kernels want NCHW).
at::Tensor to_nhwc(const at::Tensor& x) { return x.detach().permute({0, 2, 3, 1}).contiguous(); }
at::Tensor from_nhwc(const at::Tensor& yn, bool channels_last) {
  const auto y = yn.permute({0, 3, 1, 2});
  return channels_last ? y : y.contiguous();
}

// residual.permute(0, 2, 3, 1) when that is (B, H, W, C) contiguous float32 of the
// output's shape, else undefined (the caller adds it afterwards).
at::Tensor nhwc_view(const at::Tensor& residual, const at::Tensor& x, int64_t cout) {
  if (!residual.defined() || residual.dim() != 4 || residual.scalar_type() != at::kFloat ||
      residual.size(0) != x.size(0) || residual.size(1) != cout || residual.size(2) != x.size(2) ||
      residual.size(3) != x.size(3))
    return {};
  const auto view = residual.permute({0, 2, 3, 1});
  return view.is_contiguous() ? view : at::Tensor();
}

// yn (B, H, W, Cout) = conv3x3 of xn (B, H, W, Cin) with transformed weights u (36, Cin,
// Cout rounded up to 8) + bias + extras.image_bias + extras.residual. Sets *added to
// whether the extras went in (not when Cout was rounded up, nor for a residual in another
// layout).
at::Tensor conv_nhwc(const at::Tensor& xn, const at::Tensor& u, const at::Tensor& bias,
                     int64_t cout, const ConvExtras& extras = {}, bool* added = nullptr) {
  const int64_t b = xn.size(0), h = xn.size(1), w = xn.size(2), cin = xn.size(3);
  const int64_t padded = u.size(2);
  auto yn = at::empty({b, h, w, padded}, xn.options());
  at::Tensor bc;
  if (bias.defined()) bc = bias.detach().to(at::kFloat).contiguous();
  if (bc.defined() && padded != cout) bc = at::cat({bc, at::zeros({padded - cout}, bc.options())});
  winograd::Extras ex;
  at::Tensor rn;
  const bool fuse = padded == cout && (extras.image_bias.defined() || extras.residual.defined());
  if (fuse) rn = nhwc_view(extras.residual, xn.permute({0, 3, 1, 2}), cout);
  const bool fused = fuse && (!extras.residual.defined() || rn.defined());
  if (fused) {
    if (extras.image_bias.defined()) {
      auto ib = extras.image_bias.detach().to(at::kFloat).reshape({b, cout});
      bc = (bc.defined() ? ib + bc : ib).contiguous();
      ex.bias_per_image = true;
    }
    if (rn.defined()) ex.residual = rn.data_ptr<float>();
  }
  if (added) *added = fused;
  winograd::conv3x3_nhwc(xn.data_ptr<float>(), b, h, w, cin, u.data_ptr<float>(),
                         bc.defined() ? bc.data_ptr<float>() : nullptr, padded,
                         yn.data_ptr<float>(), ex);
  return padded == cout ? yn : yn.narrow(3, 0, cout);
}

// y + image_bias (B, C) per image and channel + residual, with LibTorch ops (what the
// kernel did not add itself).
at::Tensor add_extras(at::Tensor y, const ConvExtras& extras) {
  if (extras.image_bias.defined())
    y = y + extras.image_bias.reshape({y.size(0), y.size(1), 1, 1});
  if (extras.residual.defined()) y = y + extras.residual;
  return y;
}

// Forward, input gradient and weight gradient by Winograd (the bias gradient is a sum).
// The input is kept channels-last from the forward and the output gradient reordered once,
// for both gradients.
struct WinogradConvFunction : torch::autograd::Function<WinogradConvFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& weight, const at::Tensor& bias) {
    const auto xn = to_nhwc(x);
    ctx->save_for_backward({xn, weight});
    ctx->saved_data["bias"] = bias.defined();
    // A frozen weight (a ControlNet's base model) keeps its transform across steps.
    return from_nhwc(conv_nhwc(xn, transformed(weight, false, !weight.requires_grad()), bias,
                               weight.size(0)),
                     false);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& xn = saved[0];
    const auto& weight = saved[1];
    const bool has_bias = ctx->saved_data["bias"].toBool();
    const auto gy = grads[0];
    const auto gn = to_nhwc(gy);
    at::Tensor gx, gw, gb;
    if (ctx->needs_input_grad(0))
      gx = from_nhwc(
          conv_nhwc(gn, transformed(weight, true, !weight.requires_grad()), {}, weight.size(1)),
          false);
    if (ctx->needs_input_grad(1)) {
      gw = at::empty(weight.sizes(), weight.options().requires_grad(false));
      winograd::weight_grad_nhwc(xn.data_ptr<float>(), gn.data_ptr<float>(), xn.size(0),
                                 xn.size(1), xn.size(2), xn.size(3), weight.size(0),
                                 gw.data_ptr<float>());
    }
    if (has_bias && ctx->needs_input_grad(2)) gb = gy.sum({0, 2, 3});
    return {gx, gw, gb};
  }
};

bool decide(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  const ShapeKey key{x.size(0), x.size(1), weight.size(0), x.size(2), x.size(3),
                     omp_get_max_threads()};
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    auto it = g_decisions.find(key);
    if (it != g_decisions.end()) return it->second.use;
  }
  // First call of this shape: one untimed call each, then the better of two.
  c10::NoGradGuard no_grad;
  const auto xd = x.detach(), wd = weight.detach();
  const auto bd = bias.defined() ? bias.detach() : bias;
  winograd_conv2d(xd, wd, bd);
  at::conv2d(xd, wd, bd, 1, 1);
  Decision d;
  d.winograd_ms = best_ms([&] { winograd_conv2d(xd, wd, bd); }, 2);
  d.direct_ms = best_ms([&] { at::conv2d(xd, wd, bd, 1, 1); }, 2);
  d.use = d.winograd_ms < d.direct_ms;
  std::lock_guard<std::mutex> lock(g_mutex);
  g_decisions.emplace(key, d);
  return d.use;
}

}  // namespace

at::Tensor winograd_conv2d(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                           const ConvExtras& extras) {
  bool added = false;
  const auto yn = conv_nhwc(to_nhwc(x), transformed(weight, false), bias, weight.size(0), extras,
                            &added);
  // A narrowed (rounded-up) result is not channels-last memory: hand back a plain copy.
  const auto y = from_nhwc(yn, yn.is_contiguous());
  return added ? y : add_extras(y, extras);
}

at::Tensor winograd_conv2d_if_faster(const at::Tensor& x, const at::Tensor& weight,
                                     const at::Tensor& bias, int64_t stride, int64_t padding,
                                     const ConvExtras& extras) {
  const auto mode = winograd_mode();
  if (mode == WinogradMode::Off || bf16_autocast_on_cpu() ||
      !winograd_applies(x, weight, stride, padding))
    return {};
  const bool grad = c10::GradMode::is_enabled() &&
                    (x.requires_grad() || weight.requires_grad() ||
                     (bias.defined() && bias.requires_grad()));
  // The backward kernels take whole groups of 8 channels only.
  if (grad && weight.size(0) % 8 != 0) return {};
  if (mode == WinogradMode::Auto && !decide(x, weight, bias)) return {};
  if (!grad) return winograd_conv2d(x, weight, bias, extras);
  // LibTorch 1.13's custom functions cannot take an undefined tensor: no bias is a zero one.
  const auto b = bias.defined() ? bias : at::zeros({weight.size(0)}, weight.options());
  return add_extras(WinogradConvFunction::apply(x, weight, b), extras);
}

std::string winograd_summary() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_decisions.empty()) return "";
  int used = 0;
  double lo = 1e300, hi = 0;
  for (const auto& [key, d] : g_decisions) {
    if (!d.use) continue;
    ++used;
    const double r = d.direct_ms / std::max(d.winograd_ms, 1e-9);
    lo = std::min(lo, r);
    hi = std::max(hi, r);
  }
  char buf[200];
  if (used == 0)
    std::snprintf(buf, sizeof buf, "3x3 convolutions by Winograd: none of %zu shapes (LibTorch's were faster)",
                  g_decisions.size());
  else
    std::snprintf(buf, sizeof buf,
                  "3x3 convolutions by Winograd: %d of %zu shapes, %.1f-%.1fx faster than LibTorch's",
                  used, g_decisions.size(), lo, hi);
  return buf;
}

}  // namespace difflab

#include "core/vision/canny.h"

#include <torch/torch.h>

#include <cmath>
#include <stdexcept>
#include <string>

namespace difflab {
namespace {

namespace F = torch::nn::functional;

// tan 22.5° in OpenCV's fixed point (round(0.41421356 · 2¹⁵) / 2¹⁵, exactly representable in
// float), so integer gradients fall into the same direction bins as cv::Canny.
constexpr double kTan22 = 13573.0 / 32768.0;
// Dilation rounds between convergence checks in hysteresis (each check is one device sync).
constexpr int64_t kRoundsPerCheck = 4;

void check_single_channel(const at::Tensor& t, const char* what) {
  if (!t.defined() || t.dim() != 4 || t.size(1) != 1)
    throw std::invalid_argument(
        std::string(what) + " needs a (B, 1, H, W) tensor, got " +
        (t.defined()
             ? std::to_string(t.dim()) + "-D " +
                   (t.dim() == 4 ? std::to_string(t.size(1)) + " channel(s)" : std::string())
             : std::string("undefined")));
}

at::Tensor as_float(const at::Tensor& t) {
  return t.is_floating_point() ? t : t.to(torch::kFloat32);
}

// The neighbour at offset (dy, dx) of every pixel, from a tensor padded by 1 on each side.
at::Tensor shifted(const at::Tensor& padded, int dy, int dx) {
  const int64_t h = padded.size(2) - 2, w = padded.size(3) - 2;
  return padded.narrow(2, 1 + dy, h).narrow(3, 1 + dx, w);
}

// Pads the last two dims by (left, right, top, bottom): mirrored without repeating the edge
// (reflect-101) when the image is larger than the pad, else replicated.
at::Tensor pad_mirror(const at::Tensor& x, int64_t left, int64_t right, int64_t top,
                      int64_t bottom) {
  const bool fits = std::max(left, right) < x.size(3) && std::max(top, bottom) < x.size(2);
  F::PadFuncOptions::mode_t mode = torch::kReplicate;
  if (fits) mode = torch::kReflect;
  return F::pad(x, F::PadFuncOptions({left, right, top, bottom}).mode(mode));
}

}  // namespace

at::Tensor gaussian_blur(const at::Tensor& gray, double sigma) {
  check_single_channel(gray, "gaussian_blur");
  auto x = as_float(gray);
  if (!(sigma > 0.0)) return x;
  const int64_t radius = static_cast<int64_t>(std::ceil(3.0 * sigma));
  // g(i) ∝ exp(−i² / 2σ²), i = −r..r, normalised to sum 1 (in double, then cast).
  auto i = torch::arange(-radius, radius + 1, torch::kFloat64);
  auto kernel = torch::exp(-(i * i) / (2.0 * sigma * sigma));
  kernel = (kernel / kernel.sum()).to(x.options());
  const int64_t size = 2 * radius + 1;
  // Separable: rows, then columns. Each pass pads only its own axis.
  x = torch::conv2d(pad_mirror(x, radius, radius, 0, 0), kernel.view({1, 1, 1, size}));
  x = torch::conv2d(pad_mirror(x, 0, 0, radius, radius), kernel.view({1, 1, size, 1}));
  return x;
}

std::pair<at::Tensor, at::Tensor> sobel(const at::Tensor& gray) {
  check_single_channel(gray, "sobel");
  auto x = as_float(gray);
  // Correlation kernels (conv2d does not flip): d/dx = right − left, d/dy = below − above,
  // smoothed by [1 2 1] across.
  auto kx = torch::tensor({-1.0, 0.0, 1.0, -2.0, 0.0, 2.0, -1.0, 0.0, 1.0}, x.options())
                .view({1, 1, 3, 3});
  auto ky = kx.transpose(2, 3);
  auto weight = torch::cat({kx, ky}, 0).contiguous();
  auto g =
      torch::conv2d(F::pad(x, F::PadFuncOptions({1, 1, 1, 1}).mode(torch::kReplicate)), weight);
  return {g.narrow(1, 0, 1), g.narrow(1, 1, 1)};
}

at::Tensor non_max_suppression(const at::Tensor& magnitude, const at::Tensor& gx,
                               const at::Tensor& gy) {
  check_single_channel(magnitude, "non_max_suppression");
  if (gx.sizes() != magnitude.sizes() || gy.sizes() != magnitude.sizes())
    throw std::invalid_argument("non_max_suppression: magnitude, gx and gy differ in shape");
  auto m = as_float(magnitude);
  auto mp = F::pad(m, F::PadFuncOptions({1, 1, 1, 1}));  // zeros outside, as OpenCV
  const auto ax = gx.abs(), ay = gy.abs();
  // Direction bins as cv::Canny: |gy| < tan22.5·|gx| → across is horizontal; |gy| >
  // tan67.5·|gx| → vertical; otherwise the diagonal given by the signs of gx and gy.
  // tan 67.5° = tan 22.5° + 2 as OpenCV's tg67x = tg22x + 2x, written so that every product
  // stays exact in float32 for integer gradients (|g| <= 1020 · 2¹⁴ < 2²⁴).
  const auto tg22x = ax * kTan22;
  const auto horizontal = ay < tg22x;
  const auto vertical = (ay - 2.0 * ax > tg22x).logical_and(horizontal.logical_not());
  const auto diagonal = horizontal.logical_or(vertical).logical_not();
  const auto opposite_signs = (gx < 0).logical_xor(gy < 0);  // OpenCV: (gx ^ gy) < 0
  const auto keep_h = (m > shifted(mp, 0, -1)).logical_and(m >= shifted(mp, 0, 1));
  const auto keep_v = (m > shifted(mp, -1, 0)).logical_and(m >= shifted(mp, 1, 0));
  // Same signs: the gradient points along (1, 1) in (x, y) with y down → compare up-left and
  // down-right; opposite signs → up-right and down-left.
  const auto keep_d_same = (m > shifted(mp, -1, -1)).logical_and(m > shifted(mp, 1, 1));
  const auto keep_d_opposite = (m > shifted(mp, -1, 1)).logical_and(m > shifted(mp, 1, -1));
  const auto keep_d = torch::where(opposite_signs, keep_d_opposite, keep_d_same);
  const auto keep = horizontal.logical_and(keep_h)
                        .logical_or(vertical.logical_and(keep_v))
                        .logical_or(diagonal.logical_and(keep_d));
  return m * keep.to(m.scalar_type());
}

std::pair<at::Tensor, at::Tensor> double_threshold(const at::Tensor& nms, double low, double high) {
  auto strong = (nms > high).to(torch::kFloat32);
  auto weak = (nms > low).logical_and(nms <= high).to(torch::kFloat32);
  return {strong, weak};
}

at::Tensor hysteresis(const at::Tensor& strong, const at::Tensor& weak) {
  check_single_channel(strong, "hysteresis");
  if (weak.sizes() != strong.sizes())
    throw std::invalid_argument("hysteresis: strong and weak masks differ in shape");
  const auto allowed = ((strong > 0.5).logical_or(weak > 0.5)).to(torch::kFloat32);
  auto edges = (strong > 0.5).to(torch::kFloat32);
  const int64_t cap = strong.size(2) * strong.size(3);
  for (int64_t round = 0; round < cap; round += kRoundsPerCheck) {
    const auto before = edges;
    for (int64_t k = 0; k < kRoundsPerCheck; ++k)
      edges = torch::max_pool2d(edges, {3, 3}, {1, 1}, {1, 1}) * allowed;
    if (torch::equal(edges, before)) break;
  }
  return edges;
}

at::Tensor to_gray(const at::Tensor& images) {
  if (!images.defined() || images.dim() != 4)
    throw std::invalid_argument("to_gray needs (B, C, H, W) images");
  auto x = as_float(images);
  if (x.size(1) == 1) return x;
  if (x.size(1) != 3)
    throw std::invalid_argument("to_gray: " + std::to_string(x.size(1)) +
                                " channels (expected 1 or 3)");
  // ITU-R BT.601 luma, as OpenCV's RGB2GRAY.
  auto weights = torch::tensor({0.299, 0.587, 0.114}, x.options()).view({1, 3, 1, 1});
  return (x * weights).sum(1, /*keepdim=*/true);
}

at::Tensor canny(const at::Tensor& images, const CannyOptions& options) {
  // The 8-bit grey picture OpenCV would see.
  auto gray = to_gray(images).to(torch::kFloat32).clamp(0.0, 1.0).mul(255.0).round();
  if (options.blur_sigma > 0.0) gray = gaussian_blur(gray, options.blur_sigma);
  const auto [gx, gy] = sobel(gray);
  const auto magnitude = options.l2_gradient ? torch::sqrt(gx * gx + gy * gy) : gx.abs() + gy.abs();
  const auto nms = non_max_suppression(magnitude, gx, gy);
  double low = options.low, high = options.high;
  if (low > high) std::swap(low, high);
  const auto [strong, weak] = double_threshold(nms, low, high);
  return hysteresis(strong, weak);
}

}  // namespace difflab

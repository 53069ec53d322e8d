#include "core/vision/scribble.h"

#include <torch/torch.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "core/vision/canny.h"

namespace difflab {
namespace {

namespace F = torch::nn::functional;

// Side of the square blocks that the drop step erases, in pixels (about one stroke segment of
// a 28x28 digit).
constexpr int64_t kDropBlock = 4;
// Control points per side of the smooth random displacement field (bilinearly interpolated).
constexpr int64_t kElasticGrid = 4;

// The neighbour at offset (dy, dx) of every pixel, from a tensor padded by 1 on each side.
at::Tensor shifted(const at::Tensor& padded, int dy, int dx) {
  const int64_t h = padded.size(2) - 2, w = padded.size(3) - 2;
  return padded.narrow(2, 1 + dy, h).narrow(3, 1 + dx, w);
}

// Uniform [0, 1) numbers of the given shape on `device`, drawn from `gen` when defined (on the
// generator's own device, then moved, so a seeded CPU generator gives the same hints anywhere).
at::Tensor uniform(at::IntArrayRef sizes, const at::Generator& gen, const at::Device& device) {
  if (!gen.defined()) return torch::rand(sizes, torch::dtype(torch::kFloat32).device(device));
  return torch::rand(sizes, gen, torch::dtype(torch::kFloat32).device(gen.device())).to(device);
}

at::Tensor dilate(const at::Tensor& x) { return torch::max_pool2d(x, {3, 3}, {1, 1}, {1, 1}); }

}  // namespace

at::Tensor skeletonize(const at::Tensor& binary) {
  if (!binary.defined() || binary.dim() != 4 || binary.size(1) != 1)
    throw std::invalid_argument("skeletonize needs a (B, 1, H, W) 0/1 tensor");
  auto x = (binary > 0.5).to(torch::kFloat32);
  const int64_t cap = binary.size(2) + binary.size(3);
  for (int64_t iteration = 0; iteration < cap; ++iteration) {
    const auto before = x;
    for (int step = 0; step < 2; ++step) {
      const auto padded = F::pad(x, F::PadFuncOptions({1, 1, 1, 1}));
      // P2..P9 clockwise from north, as in Zhang & Suen's Fig. 1.
      const std::vector<at::Tensor> p = {shifted(padded, -1, 0), shifted(padded, -1, 1),
                                         shifted(padded, 0, 1),  shifted(padded, 1, 1),
                                         shifted(padded, 1, 0),  shifted(padded, 1, -1),
                                         shifted(padded, 0, -1), shifted(padded, -1, -1)};
      auto b = torch::zeros_like(x);  // B(P1): number of set neighbours
      auto a = torch::zeros_like(x);  // A(P1): 0→1 transitions in P2, P3, …, P9, P2
      for (size_t i = 0; i < p.size(); ++i) {
        b = b + p[i];
        a = a + (1.0 - p[i]) * p[(i + 1) % p.size()];
      }
      const auto& n = p[0];
      const auto& e = p[2];
      const auto& s = p[4];
      const auto& w = p[6];
      // Step 1 removes south-east boundary points and north-west corners, step 2 the opposite.
      const auto c1 = step == 0 ? n * e * s : n * e * w;
      const auto c2 = step == 0 ? e * s * w : n * s * w;
      const auto remove = (x > 0.5)
                              .logical_and(b >= 2)
                              .logical_and(b <= 6)
                              .logical_and(a == 1)
                              .logical_and(c1 == 0)
                              .logical_and(c2 == 0);
      x = x * remove.logical_not().to(torch::kFloat32);
    }
    if (torch::equal(x, before)) break;
  }
  return x;
}

at::Tensor synthesize_scribbles(const at::Tensor& images, at::Generator gen,
                                const ScribbleOptions& options) {
  if (!images.defined() || images.dim() != 4)
    throw std::invalid_argument("synthesize_scribbles needs (B, C, H, W) images in [0, 1]");
  if (options.max_drop < 0.0 || options.max_drop > 1.0)
    throw std::invalid_argument("synthesize_scribbles: max_drop must be in [0, 1]");
  if (options.max_dilate < 0 || options.jitter_px < 0.0)
    throw std::invalid_argument("synthesize_scribbles: max_dilate and jitter_px must be >= 0");
  const auto device = images.device();
  const int64_t batch = images.size(0), h = images.size(2), w = images.size(3);
  const auto gray = to_gray(images).to(torch::kFloat32).clamp(0.0, 1.0);
  auto hint = skeletonize((gray > options.threshold).to(torch::kFloat32));

  at::Tensor use_canny;  // (B, 1, 1, 1) bool, undefined when canny_share = 0
  if (options.canny_share > 0.0) {
    use_canny = uniform({batch, 1, 1, 1}, gen, device) < options.canny_share;
    hint = torch::where(use_canny, canny(gray), hint);
  }

  if (options.jitter_px > 0.0) {
    // Displacement in pixels: one translation per hint plus a smooth field, sampled nearest so
    // the hint stays 0/1. grid_sample wants (x, y) in [−1, 1] at pixel centres.
    const double j = options.jitter_px;
    const auto shift = (uniform({batch, 2, 1, 1}, gen, device) * 2.0 - 1.0) * j;
    const auto coarse =
        (uniform({batch, 2, kElasticGrid, kElasticGrid}, gen, device) * 2.0 - 1.0) * (0.5 * j);
    const auto field = F::interpolate(coarse, F::InterpolateFuncOptions()
                                                  .size(std::vector<int64_t>{h, w})
                                                  .mode(torch::kBilinear)
                                                  .align_corners(true));
    const auto opts = torch::dtype(torch::kFloat32).device(device);
    const auto xs = (torch::arange(w, opts) * 2.0 + 1.0) / static_cast<double>(w) - 1.0;
    const auto ys = (torch::arange(h, opts) * 2.0 + 1.0) / static_cast<double>(h) - 1.0;
    const auto disp = shift + field;  // (B, 2, H, W), channel 0 = x
    const auto gx = xs.view({1, 1, w}) + disp.select(1, 0) * (2.0 / static_cast<double>(w));
    const auto gy = ys.view({1, h, 1}) + disp.select(1, 1) * (2.0 / static_cast<double>(h));
    hint = F::grid_sample(hint, torch::stack({gx, gy}, -1),
                          F::GridSampleFuncOptions()
                              .mode(torch::kNearest)
                              .padding_mode(torch::kZeros)
                              .align_corners(false));
    // Nearest sampling doubles a 1-px line where the field compresses: thin it again, so the
    // thickening below alone sets the width (1 or 3 px).
    hint = skeletonize(hint);
  }

  if (options.max_dilate > 0) {
    auto rounds = (uniform({batch, 1, 1, 1}, gen, device) * (options.max_dilate + 1))
                      .floor()
                      .clamp_max(options.max_dilate);
    // Canny hints stay thin: dilated, a stroke's two outlines 2–3 px apart merge into a band.
    if (use_canny.defined()) rounds = rounds.masked_fill(use_canny, 0.0);
    for (int k = 1; k <= options.max_dilate; ++k)
      hint = torch::where(rounds >= k, dilate(hint), hint);
  }

  if (options.max_drop > 0.0) {
    // Erase a random share in [0, max_drop] of kDropBlock-sized blocks of each hint.
    const int64_t gh = (h + kDropBlock - 1) / kDropBlock, gw = (w + kDropBlock - 1) / kDropBlock;
    const auto share = uniform({batch, 1, 1, 1}, gen, device) * options.max_drop;
    const auto keep = (uniform({batch, 1, gh, gw}, gen, device) >= share).to(torch::kFloat32);
    hint = hint * keep.repeat_interleave(kDropBlock, 2)
                      .repeat_interleave(kDropBlock, 3)
                      .narrow(2, 0, h)
                      .narrow(3, 0, w);
  }
  return (hint > 0.5).to(torch::kFloat32);
}

}  // namespace difflab

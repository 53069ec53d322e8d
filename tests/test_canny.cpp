// The ControlNet hints of core/vision: each Canny stage on synthetic shapes whose edges are
// worked out by hand, skeletons and synthesised scribbles, and the edge F1 score.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/vision/canny.h"
#include "core/vision/edge_metrics.h"
#include "core/vision/scribble.h"

using namespace difflab;

namespace {

// '#' = 1, anything else 0 → (1, 1, H, W) float32.
torch::Tensor from_art(const std::vector<std::string>& rows) {
  const int64_t h = static_cast<int64_t>(rows.size()), w = static_cast<int64_t>(rows[0].size());
  auto t = torch::zeros({1, 1, h, w});
  auto a = t.accessor<float, 4>();
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) a[0][0][y][x] = rows[y][x] == '#' ? 1.0f : 0.0f;
  return t;
}

// (1, 1, H, W) or (H, W) → rows of '#' and '.', for readable failure messages.
std::string to_art(const torch::Tensor& t) {
  auto m = t.reshape({t.size(-2), t.size(-1)}).to(torch::kFloat32).contiguous();
  auto a = m.accessor<float, 2>();
  std::string s = "\n";
  for (int64_t y = 0; y < m.size(0); ++y) {
    for (int64_t x = 0; x < m.size(1); ++x) s += a[y][x] > 0.5f ? '#' : '.';
    s += '\n';
  }
  return s;
}

// H×W image, 1 on rows [r0, r1] × columns [c0, c1] (inclusive), 0 elsewhere.
torch::Tensor filled_rect(int64_t h, int64_t w, int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
  auto t = torch::zeros({1, 1, h, w});
  t.narrow(2, r0, r1 - r0 + 1).narrow(3, c0, c1 - c0 + 1).fill_(1.0);
  return t;
}

// 0 on columns < step, `value` from column `step` on.
torch::Tensor vertical_step(int64_t h, int64_t w, int64_t step, double value = 1.0) {
  auto t = torch::zeros({1, 1, h, w});
  t.narrow(3, step, w - step).fill_(value);
  return t;
}

// Every set pixel of `mask` within `radius` (Chebyshev) of a set pixel of `near`.
double share_near(const torch::Tensor& mask, const torch::Tensor& near, int radius) {
  auto grown = torch::max_pool2d(near, {2 * radius + 1, 2 * radius + 1}, {1, 1}, {radius, radius});
  const double n = mask.sum().item<double>();
  return n == 0 ? 1.0 : (mask * grown).sum().item<double>() / n;
}

// Number of 8-connected components of a (1, 1, H, W) 0/1 mask (a plain flood fill).
int components(const torch::Tensor& mask) {
  auto m = mask.reshape({mask.size(-2), mask.size(-1)}).contiguous();
  const int64_t h = m.size(0), w = m.size(1);
  std::vector<int> seen(h * w, 0);
  auto a = m.accessor<float, 2>();
  int count = 0;
  for (int64_t start = 0; start < h * w; ++start) {
    if (seen[start] || a[start / w][start % w] < 0.5f) continue;
    ++count;
    std::vector<int64_t> stack = {start};
    seen[start] = 1;
    while (!stack.empty()) {
      const int64_t p = stack.back();
      stack.pop_back();
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          const int64_t y = p / w + dy, x = p % w + dx;
          if (y < 0 || x < 0 || y >= h || x >= w || seen[y * w + x] || a[y][x] < 0.5f) continue;
          seen[y * w + x] = 1;
          stack.push_back(y * w + x);
        }
    }
  }
  return count;
}

}  // namespace

// ---- Canny stages ----

TEST(Canny, ToGrayUsesBt601Weights) {
  auto rgb = torch::tensor({0.2f, 0.6f, 1.0f}).view({1, 3, 1, 1}).expand({2, 3, 2, 2});
  auto g = to_gray(rgb);
  ASSERT_EQ(g.sizes(), (std::vector<int64_t>{2, 1, 2, 2}));
  EXPECT_NEAR(g[1][0][1][1].item<double>(), 0.299 * 0.2 + 0.587 * 0.6 + 0.114 * 1.0, 1e-6);
  auto one = torch::rand({2, 1, 3, 3});
  EXPECT_TRUE(torch::equal(to_gray(one), one));
  EXPECT_THROW(to_gray(torch::rand({1, 2, 3, 3})), std::invalid_argument);
}

TEST(Canny, BlurKeepsAConstantImageAndItsSum) {
  auto img = torch::full({2, 1, 9, 11}, 0.37);
  for (double sigma : {0.5, 1.0, 1.4, 4.0}) {  // 4.0: radius 12 > image, replicated border
    auto b = gaussian_blur(img, sigma);
    ASSERT_EQ(b.sizes(), img.sizes());
    EXPECT_NEAR(b.sum().item<double>(), img.sum().item<double>(), 1e-3) << sigma;
    EXPECT_LT((b - img).abs().max().item<double>(), 1e-6) << sigma;
  }
  EXPECT_TRUE(torch::equal(gaussian_blur(img, 0.0), img));
}

TEST(Canny, BlurOfAnImpulseIsTheSampledGaussian) {
  // An impulse far from the border: output(y, x) = g(y − 8) · g(x − 8) with g the
  // normalised 1-D Gaussian of radius ceil(3σ), computed here by hand.
  const double sigma = 1.3;
  const int radius = static_cast<int>(std::ceil(3 * sigma));  // 4
  std::vector<double> g(2 * radius + 1);
  double total = 0;
  for (int i = -radius; i <= radius; ++i)
    total += g[i + radius] = std::exp(-i * i / (2 * sigma * sigma));
  for (double& v : g) v /= total;
  auto img = torch::zeros({1, 1, 17, 17});
  img[0][0][8][8] = 1.0;
  auto b = gaussian_blur(img, sigma);
  for (int y = 0; y < 17; ++y)
    for (int x = 0; x < 17; ++x) {
      const int dy = y - 8, dx = x - 8;
      const double expected = (std::abs(dy) <= radius && std::abs(dx) <= radius)
                                  ? g[dy + radius] * g[dx + radius]
                                  : 0.0;
      EXPECT_NEAR(b[0][0][y][x].item<double>(), expected, 1e-6) << y << "," << x;
    }
  // Mirrored border (reflect-101: column −1 mirrors column 1): an impulse on column 1 reaches
  // column 0 from both sides, 2·g(1). (One row: the vertical pass replicates, a no-op.)
  auto edge = torch::zeros({1, 1, 1, 12});
  edge[0][0][0][1] = 1.0;
  auto e = gaussian_blur(edge, sigma);
  EXPECT_NEAR(e[0][0][0][0].item<double>(), 2 * g[radius + 1], 1e-6);
}

TEST(Canny, SobelAtAVerticalStep) {
  // Columns 0..2 dark, 3..5 bright (value 1). gx(x) = Σ_rows [1 2 1] · (I(x+1) − I(x−1)) =
  // 4 · (I(x+1) − I(x−1)) with the border replicated: 4 at columns 2 and 3, 0 elsewhere.
  auto img = vertical_step(5, 6, 3);
  auto [gx, gy] = sobel(img);
  const std::vector<double> expected = {0, 0, 4, 4, 0, 0};
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 6; ++x) {
      EXPECT_DOUBLE_EQ(gx[0][0][y][x].item<double>(), expected[x]) << y << "," << x;
      EXPECT_DOUBLE_EQ(gy[0][0][y][x].item<double>(), 0.0) << y << "," << x;
    }
  // Transposed: brighter downwards gives gy > 0 (OpenCV's sign), and linear in the input.
  auto [hx, hy] = sobel(img.transpose(2, 3).contiguous() * 255.0);
  EXPECT_DOUBLE_EQ(hy[0][0][2][1].item<double>(), 4 * 255.0);
  EXPECT_DOUBLE_EQ(hy[0][0][3][4].item<double>(), 4 * 255.0);
  EXPECT_DOUBLE_EQ(hx.abs().max().item<double>(), 0.0);
  // A general pixel against the 3x3 sum: a ramp I = x + 10·y gives gx = 8, gy = 80 inside.
  auto ramp = (torch::arange(6).view({1, 6}) + 10.0 * torch::arange(5).view({5, 1}))
                  .to(torch::kFloat32)
                  .view({1, 1, 5, 6});
  auto [rx, ry] = sobel(ramp);
  EXPECT_DOUBLE_EQ(rx[0][0][2][3].item<double>(), 8.0);
  EXPECT_DOUBLE_EQ(ry[0][0][2][3].item<double>(), 80.0);
}

TEST(Canny, NonMaxSuppressionKeepsOnePixelAtAStep) {
  // |g| has a 2-px plateau (columns 3 and 4) at the step; OpenCV's rule m > left && m >= right
  // keeps its left pixel only, the last dark column.
  auto img = vertical_step(6, 8, 4, 255.0);
  auto [gx, gy] = sobel(img);
  auto nms = non_max_suppression(gx.abs() + gy.abs(), gx, gy);
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 8; ++x)
      EXPECT_DOUBLE_EQ(nms[0][0][y][x].item<double>(), x == 3 ? 4 * 255.0 : 0.0) << y << "," << x;
  // A horizontal step (vertical gradient) likewise keeps the last dark row.
  auto timg = img.transpose(2, 3).contiguous();
  auto [tx, ty] = sobel(timg);
  auto tn = non_max_suppression(tx.abs() + ty.abs(), tx, ty);
  EXPECT_TRUE(torch::equal(tn > 0, (nms > 0).transpose(2, 3))) << to_art(tn);
}

TEST(Canny, NonMaxSuppressionAlongADiagonal) {
  // A ridge along the diagonal y = x (magnitude 10 on it, 6 next to it, 1 further out) with
  // gradients across it along ±(1, −1), i.e. gx and gy of opposite signs: only the ridge stays.
  // The anti-diagonal x + y = 6 with gradients along ±(1, 1) (same signs) likewise.
  auto mag = torch::zeros({2, 1, 7, 7});
  auto gx = torch::zeros({2, 1, 7, 7}), gy = torch::zeros({2, 1, 7, 7});
  for (int y = 0; y < 7; ++y)
    for (int x = 0; x < 7; ++x) {
      const int d = std::abs(x - y), e = std::abs(x + y - 6);
      mag[0][0][y][x] = d == 0 ? 10.0 : d == 1 ? 6.0 : 1.0;
      gx[0][0][y][x] = x >= y ? 1.0 : -1.0;
      gy[0][0][y][x] = x >= y ? -1.0 : 1.0;
      mag[1][0][y][x] = e == 0 ? 10.0 : e == 1 ? 6.0 : 1.0;
      gx[1][0][y][x] = x + y >= 6 ? 1.0 : -1.0;
      gy[1][0][y][x] = x + y >= 6 ? 1.0 : -1.0;
    }
  auto nms = non_max_suppression(mag, gx, gy);
  auto eye = torch::eye(7).view({1, 1, 7, 7}) > 0;
  EXPECT_TRUE(torch::equal(nms[0] > 0, eye[0])) << to_art(nms[0]);
  EXPECT_TRUE(torch::equal(nms[1] > 0, eye[0].flip(2))) << to_art(nms[1]);
  EXPECT_DOUBLE_EQ(nms.max().item<double>(), 10.0);
}

TEST(Canny, DoubleThresholdIsStrictOnBothSides) {
  auto nms = torch::tensor({50.0f, 100.0f, 101.0f, 200.0f, 200.5f, 0.0f}).view({1, 1, 1, 6});
  auto [strong, weak] = double_threshold(nms, 100, 200);
  EXPECT_TRUE(
      torch::equal(strong, torch::tensor({0.f, 0.f, 0.f, 0.f, 1.f, 0.f}).view({1, 1, 1, 6})));
  EXPECT_TRUE(torch::equal(weak, torch::tensor({0.f, 0.f, 1.f, 1.f, 0.f, 0.f}).view({1, 1, 1, 6})));
}

TEST(Canny, HysteresisKeepsWeakChainsTouchingStrongPixels) {
  // S strong; a diagonal weak chain leading away from it (8-connected) stays; an isolated
  // weak pixel and an isolated weak pair are dropped.
  auto strong = from_art(
      {"..........", ".#........", "..........", "..........", "..........", ".........."});
  auto weak = from_art(
      {"..........", "..##......", "....#.....", ".....#....", "........#.", ".##......."});
  auto expected = from_art(
      {"..........", ".###......", "....#.....", ".....#....", "..........", ".........."});
  auto edges = hysteresis(strong, weak);
  EXPECT_TRUE(torch::equal(edges, expected)) << to_art(edges);
  // A long winding weak path (more rounds than the check interval) is followed to its end.
  auto snake_weak = torch::zeros({1, 1, 9, 9});
  for (int y = 0; y < 9; y += 2) snake_weak[0][0][y] = 1.0;  // rows 0, 2, 4, 6, 8
  for (int y = 1; y < 9; y += 2) snake_weak[0][0][y][(y / 2) % 2 == 0 ? 8 : 0] = 1.0;
  auto snake_strong = torch::zeros({1, 1, 9, 9});
  snake_strong[0][0][0][0] = 1.0;
  auto snake = hysteresis(snake_strong, snake_weak);
  EXPECT_TRUE(
      torch::equal(snake, snake_weak.clamp_max(1) + snake_strong - snake_strong * snake_weak))
      << to_art(snake);
}

TEST(Canny, FilledSquareGivesItsOutline) {
  // A bright square on rows 3..7, columns 4..8. The step rule keeps the last pixel before each
  // step along the scan: the top side on row 2 and the left side on column 3 (outside), the
  // bottom side on row 7 and the right side on column 8 (inside). At the top-left, top-right
  // and bottom-left corners the square's own corner pixel (diagonal gradient, |gx| + |gy| =
  // 2·765) suppresses the outside pixels the sides would reach (|g| = 2·255 diagonally,
  // 255 + 765 above/beside it), so those corners are cut diagonally; the bottom-right corner
  // pixel lies on both inside sides. (Also checked against a scalar transcription of cv::Canny.)
  auto img = filled_rect(12, 12, 3, 7, 4, 8);
  auto expected = from_art({"............", "............", ".....###....", "....#...#...",
                            "...#....#...", "...#....#...", "...#....#...", "....#####...",
                            "............", "............", "............", "............"});
  auto edges = canny(img);
  ASSERT_EQ(edges.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(edges, expected)) << to_art(edges);
  EXPECT_EQ(components(edges), 1);
  // L2 magnitude: the same outline here (the thresholds are far below the step's 1020).
  CannyOptions l2;
  l2.l2_gradient = true;
  EXPECT_TRUE(torch::equal(canny(img, l2), expected)) << to_art(canny(img, l2));
}

TEST(Canny, ThresholdsAreOnThe255Scale) {
  // A unit step of height h (0–255 scale) has |g| = 4h at the edge: h = 40 → 160, below
  // high = 200 → no edge; h = 60 → 240 → an edge column.
  auto faint = vertical_step(6, 8, 4, 40.0 / 255.0);
  auto clear = vertical_step(6, 8, 4, 60.0 / 255.0);
  EXPECT_EQ(canny(faint).sum().item<double>(), 0.0);
  EXPECT_EQ(canny(clear).sum().item<double>(), 6.0);
  CannyOptions low;
  low.low = 50;
  low.high = 150;
  EXPECT_EQ(canny(faint, low).sum().item<double>(), 6.0);
  // Swapped thresholds are put in order, as OpenCV does.
  CannyOptions swapped;
  swapped.low = 150;
  swapped.high = 50;
  EXPECT_TRUE(torch::equal(canny(faint, swapped), canny(faint, low)));
}

TEST(Canny, BatchGivesTheSameEdgesAsEachImageAlone) {
  auto a = filled_rect(16, 16, 3, 10, 5, 12);
  auto b = torch::zeros({1, 1, 16, 16});
  for (int y = 0; y < 16; ++y)
    for (int x = 0; x < 16; ++x)
      b[0][0][y][x] = ((x - 8) * (x - 8) + (y - 7) * (y - 7) <= 25) ? 0.75 : 0.25;
  auto batch = torch::cat({a, b}, 0);
  for (double sigma : {0.0, 0.8}) {
    CannyOptions o;
    o.blur_sigma = sigma;
    auto both = canny(batch, o);
    ASSERT_EQ(both.sizes(), (std::vector<int64_t>{2, 1, 16, 16}));
    EXPECT_TRUE(torch::equal(both[0], canny(a, o)[0])) << sigma;
    EXPECT_TRUE(torch::equal(both[1], canny(b, o)[0])) << sigma;
    EXPECT_GT(both[1].sum().item<double>(), 10.0);
  }
  // Colour input: the grey of an RGB image where all channels agree.
  EXPECT_TRUE(torch::equal(canny(b.expand({1, 3, 16, 16})), canny(b)));
}

namespace {

// cv::Canny (aperture 3) written out pixel by pixel as in OpenCV's scalar path: integer Sobel
// with a replicated border, magnitude |gx| + |gy| (or gx² + gy² against squared thresholds),
// direction bins in 2¹⁵ fixed point, and a stack-based 8-connected hysteresis. An independent
// second implementation of the same rules, for random images.
std::vector<uint8_t> reference_canny(const std::vector<int>& img, int h, int w, double low,
                                     double high, bool l2) {
  auto at = [&](int y, int x) {
    return img[std::clamp(y, 0, h - 1) * w + std::clamp(x, 0, w - 1)];
  };
  std::vector<long> dx(h * w), dy(h * w), mag(h * w);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      dx[y * w + x] = (at(y - 1, x + 1) + 2 * at(y, x + 1) + at(y + 1, x + 1)) -
                      (at(y - 1, x - 1) + 2 * at(y, x - 1) + at(y + 1, x - 1));
      dy[y * w + x] = (at(y + 1, x - 1) + 2 * at(y + 1, x) + at(y + 1, x + 1)) -
                      (at(y - 1, x - 1) + 2 * at(y - 1, x) + at(y - 1, x + 1));
      const long gx = dx[y * w + x], gy = dy[y * w + x];
      mag[y * w + x] = l2 ? gx * gx + gy * gy : std::labs(gx) + std::labs(gy);
    }
  if (l2) {
    low *= low;
    high *= high;
  }
  const long lo = static_cast<long>(std::floor(low)), hi = static_cast<long>(std::floor(high));
  auto m_at = [&](int y, int x) {
    return (y < 0 || x < 0 || y >= h || x >= w) ? 0L : mag[y * w + x];
  };
  const long tg22 = static_cast<long>(0.4142135623730950488 * (1 << 15) + 0.5);
  std::vector<uint8_t> candidate(h * w, 0), out(h * w, 0);
  std::vector<int> stack;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const long m = mag[y * w + x];
      if (m <= lo) continue;
      const long xs = dx[y * w + x], ys = dy[y * w + x];
      const long ax = std::labs(xs), ay = std::labs(ys) << 15, t22 = ax * tg22;
      bool keep;
      if (ay < t22) {
        keep = m > m_at(y, x - 1) && m >= m_at(y, x + 1);
      } else if (ay > t22 + (ax << 16)) {
        keep = m > m_at(y - 1, x) && m >= m_at(y + 1, x);
      } else {
        const int s = ((xs < 0) != (ys < 0)) ? -1 : 1;
        keep = m > m_at(y - 1, x - s) && m > m_at(y + 1, x + s);
      }
      if (!keep) continue;
      candidate[y * w + x] = 1;
      if (m > hi) {
        out[y * w + x] = 1;
        stack.push_back(y * w + x);
      }
    }
  while (!stack.empty()) {
    const int p = stack.back();
    stack.pop_back();
    for (int ddy = -1; ddy <= 1; ++ddy)
      for (int ddx = -1; ddx <= 1; ++ddx) {
        const int y = p / w + ddy, x = p % w + ddx;
        if (y < 0 || x < 0 || y >= h || x >= w || !candidate[y * w + x] || out[y * w + x]) continue;
        out[y * w + x] = 1;
        stack.push_back(y * w + x);
      }
  }
  return out;
}

}  // namespace

TEST(Canny, MatchesAPixelByPixelTranscriptionOfOpenCv) {
  // Random 8-bit pictures: blocky shapes (bilinearly upsampled noise, so there are ties,
  // plateaus and all gradient directions) plus fine noise.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(42);
  const int n = 6, h = 19, w = 23;
  auto coarse = torch::rand({n, 1, 5, 6}, gen);
  auto images =
      torch::nn::functional::interpolate(coarse, torch::nn::functional::InterpolateFuncOptions()
                                                     .size(std::vector<int64_t>{h, w})
                                                     .mode(torch::kBilinear)
                                                     .align_corners(false));
  images = ((images + 0.15 * torch::rand({n, 1, h, w}, gen)) * 220.0).round() / 255.0;  // <= 253
  struct Case {
    double low, high;
    bool l2;
  };
  for (const Case c : {Case{100, 200, false}, Case{30, 90, false}, Case{60.5, 120.5, false},
                       Case{40, 110, true}}) {
    CannyOptions o;
    o.low = c.low;
    o.high = c.high;
    o.l2_gradient = c.l2;
    auto edges = canny(images, o);
    int64_t total = 0;
    for (int i = 0; i < n; ++i) {
      auto bytes = (images[i][0] * 255.0).round().to(torch::kInt).contiguous();
      std::vector<int> img(bytes.data_ptr<int>(), bytes.data_ptr<int>() + h * w);
      auto ref = reference_canny(img, h, w, c.low, c.high, c.l2);
      auto expected = torch::from_blob(ref.data(), {h, w}, torch::kUInt8).to(torch::kFloat32);
      total += static_cast<int64_t>(expected.sum().item<double>());
      EXPECT_TRUE(torch::equal(edges[i][0], expected))
          << "image " << i << " low " << c.low << " l2 " << c.l2 << to_art(edges[i])
          << to_art(expected);
    }
    EXPECT_GT(total, 20) << "the case should have edges at all";
  }
}

TEST(Canny, RejectsBadShapes) {
  EXPECT_THROW(canny(torch::rand({3, 8, 8})), std::invalid_argument);
  EXPECT_THROW(sobel(torch::rand({1, 3, 8, 8})), std::invalid_argument);
}

// ---- Skeletons and scribbles ----

TEST(Scribble, SkeletonOfA3PxBarIsItsCentreLine) {
  auto bar = filled_rect(11, 16, 4, 6, 2, 13);  // rows 4..6, columns 2..13
  auto s = skeletonize(bar);
  // Only the centre row, 1 px thick, and the 12-px length but for at most 3 px at the ends.
  EXPECT_EQ((s * (1 - filled_rect(11, 16, 5, 5, 0, 15))).sum().item<double>(), 0.0) << to_art(s);
  EXPECT_GE(s.sum().item<double>(), 9.0) << to_art(s);
  EXPECT_EQ(components(s), 1);
  // Vertical bar: the centre column.
  auto vbar = bar.transpose(2, 3).contiguous();
  auto vs = skeletonize(vbar);
  EXPECT_EQ((vs * (1 - filled_rect(16, 11, 0, 15, 5, 5))).sum().item<double>(), 0.0) << to_art(vs);
  EXPECT_GE(vs.sum().item<double>(), 9.0) << to_art(vs);
  // A 1-px line is already thin and stays as it is.
  auto line = filled_rect(9, 12, 4, 4, 1, 10);
  EXPECT_TRUE(torch::equal(skeletonize(line), line));
}

TEST(Scribble, SkeletonOfACross) {
  // A plus sign of 3-px-wide arms through (8, 8): a connected 1-px cross on rows/column 8.
  auto cross = (filled_rect(17, 17, 7, 9, 1, 15) + filled_rect(17, 17, 1, 15, 7, 9)).clamp_max(1);
  auto s = skeletonize(cross);
  auto centre_lines =
      (filled_rect(17, 17, 8, 8, 0, 16) + filled_rect(17, 17, 0, 16, 8, 8)).clamp_max(1);
  EXPECT_LE((s * (1 - centre_lines)).sum().item<double>(), 4.0)
      << to_art(s);  // a few at the centre
  EXPECT_EQ(components(s), 1) << to_art(s);
  EXPECT_GE(s.sum().item<double>(), 20.0) << to_art(s);
  // 1 px thick: no 2x2 block fully set.
  auto blocks = torch::avg_pool2d(s, {2, 2}, {1, 1});
  EXPECT_LT(blocks.max().item<double>(), 1.0) << to_art(s);
  // Batched: two different shapes together give each one's skeleton.
  auto bar = filled_rect(17, 17, 4, 6, 2, 13);
  auto both = skeletonize(torch::cat({cross, bar}, 0));
  EXPECT_TRUE(torch::equal(both[0], s[0]));
  EXPECT_TRUE(torch::equal(both[1], skeletonize(bar)[0]));
}

namespace {

// Digit-like test strokes in [0, 1]: a thick ring ("0") and an L-shaped stroke, 28x28.
torch::Tensor stroke_images() {
  auto ring = torch::zeros({1, 1, 28, 28});
  auto l = torch::zeros({1, 1, 28, 28});
  for (int y = 0; y < 28; ++y)
    for (int x = 0; x < 28; ++x) {
      const double r = std::sqrt((x - 14.0) * (x - 14.0) / 0.5 + (y - 14.0) * (y - 14.0));
      ring[0][0][y][x] = (r >= 7.5 && r <= 10.5) ? 1.0 : 0.0;
      l[0][0][y][x] =
          ((x >= 8 && x <= 10 && y >= 4 && y <= 23) || (y >= 21 && y <= 23 && x >= 8 && x <= 21))
              ? 0.95
              : 0.0;
    }
  return torch::cat({ring, l, ring, l}, 0);
}

}  // namespace

TEST(Scribble, WithoutRandomnessItIsTheSkeleton) {
  auto images = stroke_images();
  ScribbleOptions none;
  none.max_drop = 0;
  none.max_dilate = 0;
  none.jitter_px = 0;
  none.canny_share = 0;
  auto s = synthesize_scribbles(images, at::Generator(), none);
  EXPECT_TRUE(torch::equal(s, skeletonize((images > 0.5).to(torch::kFloat32))));
  // canny_share = 1 gives the Canny edges instead, never thickened.
  none.canny_share = 1;
  none.max_dilate = 2;
  EXPECT_TRUE(torch::equal(synthesize_scribbles(images, at::Generator(), none), canny(images)));
}

TEST(Scribble, ThickeningIsZeroOrOne3x3Dilation) {
  auto images = stroke_images().repeat({4, 1, 1, 1});  // 16 hints
  ScribbleOptions o;
  o.max_drop = 0;
  o.jitter_px = 0;
  o.canny_share = 0;
  o.max_dilate = 1;
  auto s = synthesize_scribbles(images, at::make_generator<at::CPUGeneratorImpl>(11), o);
  auto skeleton = skeletonize((images > 0.5).to(torch::kFloat32));
  auto dilated = torch::max_pool2d(skeleton, {3, 3}, {1, 1}, {1, 1});
  int thin = 0, thick = 0;
  for (int64_t i = 0; i < s.size(0); ++i) {
    if (torch::equal(s[i], skeleton[i]))
      ++thin;
    else if (torch::equal(s[i], dilated[i]))
      ++thick;
  }
  EXPECT_EQ(thin + thick, 16);
  EXPECT_GT(thin, 0);
  EXPECT_GT(thick, 0);
}

TEST(Scribble, SeededAndBinaryAndNearTheStrokes) {
  auto images = stroke_images();
  auto run = [&](uint64_t seed) {
    return synthesize_scribbles(images, at::make_generator<at::CPUGeneratorImpl>(seed));
  };
  auto a = run(7), b = run(7), c = run(8);
  ASSERT_EQ(a.sizes(), (std::vector<int64_t>{4, 1, 28, 28}));
  ASSERT_EQ(a.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
  EXPECT_TRUE(torch::equal(a, (a > 0.5).to(torch::kFloat32)));
  // The same image twice in one batch gets different random hints.
  EXPECT_FALSE(torch::equal(a[0], a[2]));
  auto binary = (images > 0.5).to(torch::kFloat32);
  for (int64_t i = 0; i < 4; ++i) {
    const auto s = a.narrow(0, i, 1), strokes = binary.narrow(0, i, 1);
    // Skeleton (inside the stroke) or Canny edge (≤ 1 px outside), moved by nearest sampling
    // ≤ round(1.5) = 2 px and thickened ≤ 1 px: all within 4 px of the strokes, and most
    // pixels on or next to them.
    EXPECT_EQ(share_near(s, strokes, 4), 1.0) << i << to_art(s);
    EXPECT_GT(share_near(s, strokes, 1), 0.8) << i << to_art(s);
    EXPECT_GT(s.sum().item<double>(), 8.0) << i << to_art(s);
  }
  // Over many draws, about the configured share of blocks is dropped: the mean pixel count
  // with drop lies below the one without, and above (1 − max_drop) of it minus noise.
  auto many = images.repeat({16, 1, 1, 1});
  ScribbleOptions keep_all;
  keep_all.max_drop = 0;
  auto gen1 = at::make_generator<at::CPUGeneratorImpl>(3);
  auto gen2 = at::make_generator<at::CPUGeneratorImpl>(3);
  const double full = synthesize_scribbles(many, gen1, keep_all).sum().item<double>();
  const double dropped = synthesize_scribbles(many, gen2).sum().item<double>();
  EXPECT_LT(dropped, 0.97 * full);
  EXPECT_GT(dropped, 0.7 * full);
}

// ---- Edge F1 ----

TEST(EdgeF1, HandMadeCases) {
  auto line = filled_rect(8, 8, 1, 6, 3, 3);
  auto shifted = filled_rect(8, 8, 1, 6, 4, 4);
  auto far = filled_rect(8, 8, 1, 6, 7, 7);
  auto empty = torch::zeros({1, 1, 8, 8});
  auto batch = [](std::vector<torch::Tensor> v) { return torch::cat(v, 0); };
  auto pred = batch({line, shifted, far, empty, empty, line});
  auto ref = batch({line, line, line, empty, line, empty});
  auto s1 = edge_f1(pred, ref, 1);
  auto s0 = edge_f1(pred, ref, 0);
  const std::vector<double> f1_t1 = {1, 1, 0, 1, 0, 0}, f1_t0 = {1, 0, 0, 1, 0, 0};
  for (int i = 0; i < 6; ++i) {
    EXPECT_DOUBLE_EQ(s1.f1[i].item<double>(), f1_t1[i]) << i;
    EXPECT_DOUBLE_EQ(s0.f1[i].item<double>(), f1_t0[i]) << i;
  }
  EXPECT_DOUBLE_EQ(s1.precision[2].item<double>(), 0.0);
  EXPECT_DOUBLE_EQ(s1.precision[3].item<double>(), 1.0);
  // The top half (rows 1..3) of the 6-px reference line, nothing extra: P = 1, R = 3/6,
  // F1 = 2/3 exactly; with tolerance 1 row 4 also counts as found: R = 4/6, F1 = 0.8.
  auto half = filled_rect(8, 8, 1, 3, 3, 3);
  auto h = edge_f1(half, line, 0);
  EXPECT_DOUBLE_EQ(h.precision[0].item<double>(), 1.0);
  EXPECT_DOUBLE_EQ(h.recall[0].item<double>(), 0.5);
  EXPECT_NEAR(h.f1[0].item<double>(), 2.0 / 3.0, 1e-6);
  auto h1 = edge_f1(half, line, 1);
  EXPECT_NEAR(h1.recall[0].item<double>(), 4.0 / 6.0, 1e-6);
  EXPECT_NEAR(h1.f1[0].item<double>(), 0.8, 1e-6);
  // The line 4 px away (columns 7 and 3) is out of reach with tolerance 2, within it with 4.
  EXPECT_DOUBLE_EQ(edge_f1(far, line, 2).f1[0].item<double>(), 0.0);
  EXPECT_DOUBLE_EQ(edge_f1(far, line, 4).f1[0].item<double>(), 1.0);
  // (B, H, W) works too; negative tolerance is an error.
  EXPECT_DOUBLE_EQ(edge_f1(line[0], shifted[0], 1).f1[0].item<double>(), 1.0);
  EXPECT_THROW(edge_f1(line, line, -1), std::invalid_argument);
  EXPECT_THROW(edge_f1(line, torch::zeros({1, 1, 8, 9}), 1), std::invalid_argument);
}

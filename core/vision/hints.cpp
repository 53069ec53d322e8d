#include "core/vision/hints.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <string>

#include "core/vision/scribble.h"

namespace difflab {
namespace {

constexpr double kPi = 3.14159265358979323846;
// Dilation rounds between convergence checks of the hole filling (each check is one sync).
constexpr int64_t kRoundsPerCheck = 4;
// "Infinitely far" for the distance transform: far above any squared distance in a picture
// (at most 2 · 16384² here), small enough that differences of it stay exact enough.
constexpr double kFar = 1e20;
// How far from a Hough cell's line (in pixels) a pixel still belongs to its segment.
constexpr double kCorridor = 0.75;

void check_maps(const at::Tensor& t, const char* what) {
  if (!t.defined() || t.dim() != 4 || t.size(1) != 1)
    throw std::invalid_argument(std::string(what) + " needs a (B, 1, H, W) tensor");
}

void check_options(const HoughOptions& o) {
  if (!(o.rho > 0) || !(o.theta > 0) || o.theta > kPi)
    throw std::invalid_argument("hough: rho must be > 0 and theta in (0, pi]");
  if (o.threshold < 1) throw std::invalid_argument("hough: threshold must be at least 1");
  if (!(o.min_line_length >= 0) || !(o.max_line_gap >= 0))
    throw std::invalid_argument("hough: min_line_length and max_line_gap must be >= 0");
}

struct HoughGrid {
  int64_t n_theta, n_rho;
};

HoughGrid hough_grid(int64_t height, int64_t width, const HoughOptions& o) {
  return {std::max<int64_t>(1, std::lround(kPi / o.theta)),
          std::max<int64_t>(1, std::lround((2.0 * static_cast<double>(width + height) + 1.0) / o.rho))};
}

// 4-connected dilation: the pixel and its left, right, upper and lower neighbours.
at::Tensor dilate_cross(const at::Tensor& x) {
  return torch::max(torch::max_pool2d(x, {3, 1}, {1, 1}, {1, 0}),
                    torch::max_pool2d(x, {1, 3}, {1, 1}, {0, 1}));
}

// The exact 1-D squared distance transform of a sampled function (Felzenszwalb &
// Huttenlocher 2012, "Distance Transforms of Sampled Functions", algorithm 1):
// d(p) = min_q ((p − q)² + f(q)), as the lower envelope of the parabolas rooted at each q,
// in O(n). `v` (n) and `z` (n + 1) are scratch.
void lower_envelope(const double* f, int64_t n, double* d, int64_t* v, double* z) {
  const auto cross = [&](int64_t q, int64_t r) {  // where the parabolas of q and r meet
    return ((f[q] + static_cast<double>(q * q)) - (f[r] + static_cast<double>(r * r))) /
           static_cast<double>(2 * q - 2 * r);
  };
  int64_t k = 0;
  v[0] = 0;
  z[0] = -std::numeric_limits<double>::infinity();
  z[1] = std::numeric_limits<double>::infinity();
  for (int64_t q = 1; q < n; ++q) {
    double s = cross(q, v[k]);
    while (s <= z[k]) s = cross(q, v[--k]);
    ++k;
    v[k] = q;
    z[k] = s;
    z[k + 1] = std::numeric_limits<double>::infinity();
  }
  k = 0;
  for (int64_t q = 0; q < n; ++q) {
    while (z[k + 1] < static_cast<double>(q)) ++k;
    d[q] = static_cast<double>((q - v[k]) * (q - v[k])) + f[v[k]];
  }
}

}  // namespace

at::Tensor hough_accumulator(const at::Tensor& edges, const HoughOptions& options) {
  check_maps(edges, "hough_accumulator");
  check_options(options);
  const int64_t batch = edges.size(0), height = edges.size(2), width = edges.size(3);
  const HoughGrid g = hough_grid(height, width, options);
  auto acc = torch::zeros({batch, g.n_theta, g.n_rho}, edges.options().dtype(torch::kFloat32));
  const auto where = (edges > 0.5).nonzero();  // (N, 4): b, 0, y, x
  if (where.size(0) == 0) return acc;
  const auto f64 = edges.options().dtype(torch::kFloat64);
  const auto theta = torch::arange(g.n_theta, f64) * options.theta;
  const auto y = where.select(1, 2).to(torch::kFloat64).unsqueeze(1);
  const auto x = where.select(1, 3).to(torch::kFloat64).unsqueeze(1);
  // OpenCV: r = cvRound(x cos θ / ρ + y sin θ / ρ) + (numrho − 1) / 2 (integer division).
  const auto r = ((x * torch::cos(theta) + y * torch::sin(theta)) / options.rho).round().to(torch::kLong) +
                 (g.n_rho - 1) / 2;
  const auto k = torch::arange(g.n_theta, edges.options().dtype(torch::kLong)).unsqueeze(0);
  const auto cell = where.select(1, 0).unsqueeze(1) * (g.n_theta * g.n_rho) + k * g.n_rho +
                    r.clamp(0, g.n_rho - 1);
  acc.view({-1}).index_add_(0, cell.flatten(),
                            torch::ones({cell.numel()}, acc.options()));
  return acc;
}

std::vector<std::vector<LineSegment>> hough_segments(const at::Tensor& edges,
                                                     const HoughOptions& options) {
  check_maps(edges, "hough_segments");
  check_options(options);
  const int64_t batch = edges.size(0), height = edges.size(2), width = edges.size(3);
  const HoughGrid g = hough_grid(height, width, options);
  std::vector<double> cos_t(g.n_theta), sin_t(g.n_theta);
  for (int64_t k = 0; k < g.n_theta; ++k) {
    cos_t[k] = std::cos(static_cast<double>(k) * options.theta);
    sin_t[k] = std::sin(static_cast<double>(k) * options.theta);
  }
  const auto on = (edges > 0.5).to(torch::kCPU).contiguous();
  const auto a = on.accessor<bool, 4>();
  std::vector<std::vector<LineSegment>> result(batch);
  for (int64_t b = 0; b < batch; ++b) {
    struct Point { int x, y; };
    std::vector<Point> points;
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x)
        if (a[b][0][y][x]) points.push_back({x, y});
    const auto n = static_cast<int64_t>(points.size());
    // The bin of every point at every angle, and the votes of the points still in play.
    std::vector<int64_t> bin(n * g.n_theta);
    std::vector<int> votes(g.n_theta * g.n_rho, 0);
    for (int64_t p = 0; p < n; ++p)
      for (int64_t k = 0; k < g.n_theta; ++k) {
        const double rho = (points[p].x * cos_t[k] + points[p].y * sin_t[k]) / options.rho;
        const int64_t r = std::clamp<int64_t>(std::lround(rho) + (g.n_rho - 1) / 2, 0, g.n_rho - 1);
        bin[p * g.n_theta + k] = r;
        ++votes[k * g.n_rho + r];
      }
    std::vector<char> alive(n, 1);
    for (;;) {
      const auto best = std::max_element(votes.begin(), votes.end());  // first of equals
      if (*best < options.threshold) break;
      const int64_t cell = best - votes.begin();
      const int64_t k = cell / g.n_rho, r = cell % g.n_rho;
      const double rho = static_cast<double>(r - (g.n_rho - 1) / 2) * options.rho;
      // The pixels within kCorridor of the cell's line, in order along it (direction
      // (−sin θ, cos θ)): a digital line's pixels stray up to half a pixel from the ideal
      // line, and the cell's ρ and θ are rounded too.
      std::vector<int64_t> members;
      for (int64_t p = 0; p < n; ++p)
        if (alive[p] && std::abs(points[p].x * cos_t[k] + points[p].y * sin_t[k] - rho) <= kCorridor)
          members.push_back(p);
      const auto along = [&](int64_t p) { return -points[p].x * sin_t[k] + points[p].y * cos_t[k]; };
      std::sort(members.begin(), members.end(),
                [&](int64_t p, int64_t q) { return along(p) < along(q); });
      // An end of a segment: the line's point at a pixel's position along it, rounded.
      const auto end_at = [&](int64_t p) {
        const double t = along(p);
        return std::make_pair(static_cast<int>(std::lround(rho * cos_t[k] - t * sin_t[k])),
                              static_cast<int>(std::lround(rho * sin_t[k] + t * cos_t[k])));
      };
      std::vector<int64_t> taken;
      size_t start = 0;
      for (size_t i = 1; i <= members.size(); ++i) {
        bool split = i == members.size();
        if (!split) {
          const Point& p = points[members[i - 1]];
          const Point& q = points[members[i]];
          const int steps = std::max(std::abs(q.x - p.x), std::abs(q.y - p.y));
          split = steps - 1 > options.max_line_gap;  // pixels missing between them
        }
        if (!split) continue;
        const auto [x1, y1] = end_at(members[start]);
        const auto [x2, y2] = end_at(members[i - 1]);
        if (std::max(std::abs(x2 - x1), std::abs(y2 - y1)) >= options.min_line_length) {
          result[b].push_back({std::clamp<int>(x1, 0, width - 1), std::clamp<int>(y1, 0, height - 1),
                               std::clamp<int>(x2, 0, width - 1), std::clamp<int>(y2, 0, height - 1)});
          taken.insert(taken.end(), members.begin() + static_cast<std::ptrdiff_t>(start),
                       members.begin() + static_cast<std::ptrdiff_t>(i));
        }
        start = i;
      }
      // Only a kept segment's pixels leave the votes (as OpenCV); a cell that gave none is
      // done, so its pixels stay for the lines that cross it.
      if (taken.empty()) votes[cell] = -1;
      for (int64_t p : taken) {
        alive[p] = 0;
        for (int64_t j = 0; j < g.n_theta; ++j) --votes[j * g.n_rho + bin[p * g.n_theta + j]];
      }
    }
  }
  return result;
}

at::Tensor draw_segments(const std::vector<std::vector<LineSegment>>& segments, int64_t height,
                         int64_t width) {
  auto out = torch::zeros({static_cast<int64_t>(segments.size()), 1, height, width});
  auto a = out.accessor<float, 4>();
  for (size_t b = 0; b < segments.size(); ++b)
    for (const LineSegment& s : segments[b]) {
      // Bresenham's line, every octant.
      int x = s.x1, y = s.y1;
      const int dx = std::abs(s.x2 - s.x1), dy = -std::abs(s.y2 - s.y1);
      const int sx = s.x1 < s.x2 ? 1 : -1, sy = s.y1 < s.y2 ? 1 : -1;
      int err = dx + dy;
      for (;;) {
        if (x >= 0 && x < width && y >= 0 && y < height) a[b][0][y][x] = 1.0f;
        if (x == s.x2 && y == s.y2) break;
        const int e2 = 2 * err;
        if (e2 >= dy) { err += dy; x += sx; }
        if (e2 <= dx) { err += dx; y += sy; }
      }
    }
  return out;
}

at::Tensor silhouette(const at::Tensor& gray, double threshold) {
  check_maps(gray, "silhouette");
  const auto dark = (gray <= threshold).to(torch::kFloat32);
  // Dark pixels on the border seed the outside; it grows through dark pixels only.
  auto border = torch::zeros_like(dark);
  border.narrow(2, 0, 1).fill_(1);
  border.narrow(2, dark.size(2) - 1, 1).fill_(1);
  border.narrow(3, 0, 1).fill_(1);
  border.narrow(3, dark.size(3) - 1, 1).fill_(1);
  auto outside = dark * border;
  const int64_t cap = dark.size(2) * dark.size(3);
  for (int64_t round = 0; round < cap; round += kRoundsPerCheck) {
    const auto before = outside;
    for (int64_t i = 0; i < kRoundsPerCheck; ++i) outside = dilate_cross(outside) * dark;
    if (torch::equal(outside, before)) break;
  }
  return 1.0f - outside;
}

at::Tensor distance_transform(const at::Tensor& mask) {
  check_maps(mask, "distance_transform");
  const int64_t batch = mask.size(0), height = mask.size(2), width = mask.size(3);
  // The picture grown by one outside pixel all round, so the border counts as outside
  // and every row and column of the padded grid has an outside pixel.
  const int64_t ph = height + 2, pw = width + 2;
  const auto inside = (mask > 0.5).to(torch::kCPU);
  const auto padded = torch::constant_pad_nd(inside.to(torch::kUInt8), {1, 1, 1, 1}, 0).contiguous();
  auto out = torch::zeros({batch, 1, height, width});
  const auto in = padded.accessor<uint8_t, 4>();
  auto o = out.accessor<float, 4>();
  std::vector<double> grid(ph * pw), f(std::max(ph, pw)), d(std::max(ph, pw)), z(std::max(ph, pw) + 1);
  std::vector<int64_t> v(std::max(ph, pw));
  for (int64_t b = 0; b < batch; ++b) {
    // Columns, then rows: the squared distance separates (Felzenszwalb & Huttenlocher).
    for (int64_t x = 0; x < pw; ++x) {
      for (int64_t y = 0; y < ph; ++y) f[y] = in[b][0][y][x] ? kFar : 0.0;
      lower_envelope(f.data(), ph, d.data(), v.data(), z.data());
      for (int64_t y = 0; y < ph; ++y) grid[y * pw + x] = d[y];
    }
    for (int64_t y = 1; y <= height; ++y) {
      lower_envelope(grid.data() + y * pw, pw, d.data(), v.data(), z.data());
      for (int64_t x = 1; x <= width; ++x)
        if (in[b][0][y][x]) o[b][0][y - 1][x - 1] = static_cast<float>(std::sqrt(d[x]));
    }
  }
  return out.to(mask.device());
}

at::Tensor distance_hint(const at::Tensor& mask) {
  const auto d = distance_transform(mask);
  const auto peak = std::get<0>(d.flatten(1).max(1)).clamp_min(1.0f).view({-1, 1, 1, 1});
  return d / peak;
}

at::Tensor hint_map(const at::Tensor& gray, HintKind kind, const HintMapOptions& options) {
  if (gray.dim() != 4 || gray.size(1) != 1)
    throw std::invalid_argument("hint_map: needs (B, 1, H, W) grey pictures");
  torch::NoGradGuard no_grad;
  switch (kind) {
    case HintKind::Scribble:
      return skeletonize((gray > options.threshold).to(torch::kFloat32));
    case HintKind::Hough:
      return draw_segments(hough_segments(canny(gray, options.canny), options.hough), gray.size(2),
                           gray.size(3))
          .to(gray.device());
    case HintKind::Mask:
      return silhouette(gray, options.threshold);
    case HintKind::Distance:
      return distance_hint(silhouette(gray, options.threshold));
    case HintKind::Canny:
    case HintKind::Mixed:
    case HintKind::Count:
      break;
  }
  return canny(gray, options.canny);
}

}  // namespace difflab

// 2-D toy distributions for quick diffusion experiments, in the spirit of the toy sets
// of scikit-learn (make_swiss_roll, make_moons) and of the FFJORD paper (Grathwohl et
// al. 2019: "8gaussians", "checkerboard"). All are scaled to about [-1, 1]; `noise` is
// the standard deviation of isotropic Gaussian noise added in those output units.
//
// Determinism: the std:: distributions are implementation-defined, so uniforms and
// normals are derived here from std::mt19937_64's raw output (whose sequence the
// standard fixes); the same seed gives the same points with any standard library.
#include <cmath>
#include <random>

#include "core/data/image_set.h"

namespace difflab {

namespace {

constexpr double kPi = 3.14159265358979323846;
// Swiss roll angle range [kRollStart, kRollStart + kRollSpan] (scikit-learn's 1.5*pi*(1+2u)).
constexpr double kRollStart = 1.5 * kPi;
constexpr double kRollSpan = 3.0 * kPi;
// Radius of the circle the eight Gaussian centres lie on.
constexpr double kGaussianRadius = 0.8;
// Number of Gaussians in the ring (labels 0..7, counter-clockwise from +x).
constexpr int kGaussians = 8;
// Checkerboard: kBoardCells x kBoardCells cells over [-1, 1]^2, half of them filled.
constexpr int kBoardCells = 4;

class Rng {
 public:
  explicit Rng(uint64_t seed) : m_engine(seed) {}

  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return double(m_engine() >> 11) * (1.0 / 9007199254740992.0); }

  // Uniform integer in [0, k).
  int below(int k) {
    const int v = static_cast<int>(uniform() * k);
    return v < k ? v : k - 1;
  }

  // Standard normal by the Box-Muller transform, caching the second value.
  double normal() {
    if (m_has_spare) {
      m_has_spare = false;
      return m_spare;
    }
    const double u1 = 1.0 - uniform();  // (0, 1]: log is finite
    const double u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    m_spare = r * std::sin(2.0 * kPi * u2);
    m_has_spare = true;
    return r * std::cos(2.0 * kPi * u2);
  }

 private:
  std::mt19937_64 m_engine;
  bool m_has_spare = false;
  double m_spare = 0.0;
};

struct Point {
  double x;
  double y;
  int64_t label;
};

Point swiss_roll(Rng& rng) {
  const double t = kRollStart + kRollSpan * rng.uniform();
  const double scale = 1.0 / (kRollStart + kRollSpan);
  return {t * std::cos(t) * scale, t * std::sin(t) * scale, 0};
}

// Moon 0: upper half circle centred at (0, 0); moon 1: lower half circle centred at
// (1, 0.5). Together they span x in [-1, 2], y in [-0.5, 1]; centred and scaled by 1/1.5.
Point two_moons(Rng& rng) {
  const int moon = rng.below(2);
  const double a = kPi * rng.uniform();
  double x = std::cos(a);
  double y = std::sin(a);
  if (moon == 1) {
    x = 1.0 - x;
    y = 0.5 - y;
  }
  return {(x - 0.5) / 1.5, (y - 0.25) / 1.5, moon};
}

Point eight_gaussians(Rng& rng) {
  const int k = rng.below(kGaussians);
  const double a = 2.0 * kPi * k / kGaussians;
  return {kGaussianRadius * std::cos(a), kGaussianRadius * std::sin(a), k};
}

// Uniform over the cells (row + col) even of the board.
Point checkerboard(Rng& rng) {
  const double cell = 2.0 / kBoardCells;
  const int k = rng.below(kBoardCells * kBoardCells / 2);
  const int row = k / (kBoardCells / 2);
  const int col = 2 * (k % (kBoardCells / 2)) + row % 2;
  const double x = -1.0 + cell * (col + rng.uniform());
  const double y = -1.0 + cell * (row + rng.uniform());
  return {x, y, 0};
}

}  // namespace

PointSet make_toy2d(Toy2dKind kind, int64_t n, double noise, uint64_t seed) {
  if (n < 0) throw DataError("toy2d: point count must be >= 0, got " + std::to_string(n));
  if (!(noise >= 0.0) || !std::isfinite(noise)) {
    throw DataError("toy2d: noise must be a finite value >= 0, got " + std::to_string(noise));
  }
  Point (*sample)(Rng&) = nullptr;
  switch (kind) {
    case Toy2dKind::SwissRoll: sample = swiss_roll; break;
    case Toy2dKind::TwoMoons: sample = two_moons; break;
    case Toy2dKind::EightGaussians: sample = eight_gaussians; break;
    case Toy2dKind::Checkerboard: sample = checkerboard; break;
    case Toy2dKind::Count: break;
  }
  if (sample == nullptr) {
    throw DataError("toy2d: unknown kind " + std::to_string(static_cast<int>(kind)));
  }

  Rng rng(seed);
  PointSet set;
  set.n = n;
  set.xy.resize(size_t(n) * 2);
  set.labels.resize(size_t(n));
  for (int64_t i = 0; i < n; ++i) {
    const Point p = sample(rng);
    double x = p.x;
    double y = p.y;
    if (noise > 0.0) {
      x += noise * rng.normal();
      y += noise * rng.normal();
    }
    set.xy[size_t(i) * 2] = static_cast<float>(x);
    set.xy[size_t(i) * 2 + 1] = static_cast<float>(y);
    set.labels[size_t(i)] = p.label;
  }
  return set;
}

}  // namespace difflab

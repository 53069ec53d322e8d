#include "core/schedule/forward_process.h"

#include <cmath>
#include <random>
#include <stdexcept>

namespace difflab {

std::vector<float> standard_normal(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<float> out(n);
  auto uniform = [&] { return (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53; };
  for (size_t i = 0; i < n; i += 2) {
    const double r = std::sqrt(-2.0 * std::log(uniform())), a = 2.0 * M_PI * uniform();
    out[i] = static_cast<float>(r * std::cos(a));
    if (i + 1 < n) out[i + 1] = static_cast<float>(r * std::sin(a));
  }
  return out;
}

std::vector<float> forward_noise(const std::vector<float>& x0, const std::vector<float>& eps,
                                 const NoiseSchedule& schedule, int t) {
  if (x0.size() != eps.size()) throw std::invalid_argument("forward_noise: x0 and eps differ in size");
  if (t < 0 || t >= schedule.size()) throw std::invalid_argument("forward_noise: t out of range");
  const float a = static_cast<float>(schedule.sqrt_alphas_cumprod()[t]);
  const float b = static_cast<float>(schedule.sqrt_one_minus_alphas_cumprod()[t]);
  std::vector<float> out(x0.size());
  for (size_t i = 0; i < x0.size(); ++i) out[i] = a * x0[i] + b * eps[i];
  return out;
}

ForwardPoint ddpm_forward_point(const NoiseSchedule& schedule, int t) {
  if (t < 0 || t >= schedule.size()) throw std::invalid_argument("ddpm_forward_point: t out of range");
  ForwardPoint p;
  p.a = schedule.sqrt_alphas_cumprod()[t];
  p.b = schedule.sqrt_one_minus_alphas_cumprod()[t];
  p.level = t;
  return p;
}

ForwardPoint flow_forward_point(int pos, int positions) {
  if (positions < 2 || pos < 0 || pos >= positions)
    throw std::invalid_argument("flow_forward_point: position out of range");
  ForwardPoint p;
  p.level = static_cast<double>(pos) / (positions - 1);
  p.a = 1.0 - p.level;
  p.b = p.level;
  return p;
}

ForwardPoint edm_forward_point(int pos, int positions, double sigma_min, double sigma_max) {
  if (positions < 2 || pos < 0 || pos >= positions || !(sigma_min > 0.0) || !(sigma_max > sigma_min))
    throw std::invalid_argument("edm_forward_point: position or σ range out of range");
  ForwardPoint p;
  const double u = static_cast<double>(pos) / (positions - 1);
  p.level = std::exp(std::log(sigma_min) + u * (std::log(sigma_max) - std::log(sigma_min)));
  const double scale = 1.0 / std::sqrt(1.0 + p.level * p.level);
  p.a = scale;
  p.b = p.level * scale;
  return p;
}

std::vector<float> forward_mix(const std::vector<float>& x0, const std::vector<float>& eps,
                               const ForwardPoint& p) {
  if (x0.size() != eps.size()) throw std::invalid_argument("forward_mix: x0 and eps differ in size");
  const float a = static_cast<float>(p.a), b = static_cast<float>(p.b);
  std::vector<float> out(x0.size());
  for (size_t i = 0; i < x0.size(); ++i) out[i] = a * x0[i] + b * eps[i];
  return out;
}

}  // namespace difflab

#include "core/schedule/noise_schedule.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <ostream>
#include <stdexcept>

namespace difflab {
namespace {

std::vector<double> linspace(double a, double b, int n) {
  std::vector<double> out(n);
  for (int i = 0; i < n; ++i) out[i] = n == 1 ? a : a + (b - a) * i / (n - 1);
  return out;
}

// Ho et al. (2020) used β from 1e-4 to 0.02 over T = 1000; improved-diffusion scales both
// ends by 1000/T so that any T gives the same overall noise level.
std::pair<double, double> linear_ends(int timesteps) {
  const double scale = 1000.0 / timesteps;
  return {scale * kLinearBetaStart, scale * kLinearBetaEnd};
}

// ᾱ(t) = cos²(((t/T + s) / (1 + s)) · π/2)  (Nichol & Dhariwal 2021, eq. 17),
// β_t = 1 − ᾱ(t+1)/ᾱ(t), capped at 0.999 to avoid the singularity at t = T.
std::vector<double> cosine_betas(int timesteps) {
  auto alpha_bar = [&](double t) {
    const double x = (t / timesteps + kCosineOffset) / (1.0 + kCosineOffset) * M_PI / 2.0;
    return std::cos(x) * std::cos(x);
  };
  std::vector<double> betas(timesteps);
  for (int i = 0; i < timesteps; ++i)
    betas[i] = std::min(1.0 - alpha_bar(i + 1) / alpha_bar(i), kMaxBeta);
  return betas;
}

}  // namespace

NoiseSchedule NoiseSchedule::named(ScheduleKind kind, int timesteps) {
  if (timesteps < 2) throw std::invalid_argument("noise schedule needs at least 2 timesteps");
  const auto [b0, b1] = linear_ends(timesteps);
  std::vector<double> betas;
  switch (kind) {
    case ScheduleKind::Linear:
      betas = linspace(b0, b1, timesteps);
      break;
    case ScheduleKind::Cosine:
      betas = cosine_betas(timesteps);
      break;
    case ScheduleKind::Quadratic:  // √β linear (Ho et al. 2020 appendix; diffusers' "scaled_linear")
      betas = linspace(std::sqrt(b0), std::sqrt(b1), timesteps);
      for (double& b : betas) b *= b;
      break;
    case ScheduleKind::Sigmoid:  // GeoDiff (Xu et al. 2022) / DDPM repository's "sigmoid"
      betas = linspace(-kSigmoidRange, kSigmoidRange, timesteps);
      for (double& b : betas) b = b0 + (b1 - b0) / (1.0 + std::exp(-b));
      break;
    case ScheduleKind::Count:
      throw std::invalid_argument("bad schedule kind");
  }
  return from_betas(std::move(betas));
}

NoiseSchedule NoiseSchedule::from_betas(std::vector<double> betas, std::vector<int> timestep_map) {
  if (betas.size() < 1) throw std::invalid_argument("noise schedule needs at least one beta");
  for (double b : betas)
    if (!(b > 0.0 && b < 1.0)) throw std::invalid_argument("every beta must lie in (0, 1)");
  if (timestep_map.empty())
    for (size_t i = 0; i < betas.size(); ++i) timestep_map.push_back(static_cast<int>(i));
  if (timestep_map.size() != betas.size())
    throw std::invalid_argument("timestep map and betas differ in length");
  NoiseSchedule s;
  s.m_betas = std::move(betas);
  s.m_timestep_map = std::move(timestep_map);
  s.compute_tables();
  return s;
}

std::vector<int> NoiseSchedule::space_timesteps(int timesteps, int steps) {
  if (steps < 1 || steps > timesteps)
    throw std::invalid_argument("cannot respace " + std::to_string(timesteps) + " steps to " +
                                std::to_string(steps));
  std::vector<int> out;
  if (steps == 1) return {timesteps - 1};
  // improved-diffusion respace.py: stride (T−1)/(K−1), rounded, so 0 and T−1 are both kept.
  const double stride = static_cast<double>(timesteps - 1) / (steps - 1);
  for (int i = 0; i < steps; ++i) out.push_back(static_cast<int>(std::lround(i * stride)));
  return out;
}

NoiseSchedule NoiseSchedule::respaced(int steps) const {
  const std::vector<int> keep = space_timesteps(size(), steps);
  std::vector<double> betas;
  std::vector<int> map;
  double last = 1.0;
  for (int k : keep) {
    betas.push_back(1.0 - m_alphas_cumprod[k] / last);
    last = m_alphas_cumprod[k];
    map.push_back(m_timestep_map[k]);
  }
  return from_betas(std::move(betas), std::move(map));
}

void NoiseSchedule::compute_tables() {
  const size_t n = m_betas.size();
  auto resize = [n](std::vector<double>& v) { v.assign(n, 0.0); };
  for (auto* v : {&m_alphas, &m_alphas_cumprod, &m_alphas_cumprod_prev, &m_alphas_cumprod_next,
                  &m_sqrt_alphas_cumprod, &m_sqrt_one_minus_alphas_cumprod,
                  &m_log_one_minus_alphas_cumprod, &m_sqrt_recip_alphas_cumprod,
                  &m_sqrt_recipm1_alphas_cumprod, &m_posterior_variance,
                  &m_posterior_log_variance_clipped, &m_posterior_mean_coef1,
                  &m_posterior_mean_coef2, &m_snr, &m_log_snr})
    resize(*v);
  double prod = 1.0;
  for (size_t t = 0; t < n; ++t) {
    m_alphas[t] = 1.0 - m_betas[t];
    m_alphas_cumprod_prev[t] = prod;
    prod *= m_alphas[t];
    m_alphas_cumprod[t] = prod;
  }
  for (size_t t = 0; t < n; ++t) {
    const double ab = m_alphas_cumprod[t];
    const double ab_prev = m_alphas_cumprod_prev[t];
    m_alphas_cumprod_next[t] = t + 1 < n ? m_alphas_cumprod[t + 1] : 0.0;
    m_sqrt_alphas_cumprod[t] = std::sqrt(ab);
    m_sqrt_one_minus_alphas_cumprod[t] = std::sqrt(1.0 - ab);
    m_log_one_minus_alphas_cumprod[t] = std::log(1.0 - ab);
    m_sqrt_recip_alphas_cumprod[t] = std::sqrt(1.0 / ab);
    m_sqrt_recipm1_alphas_cumprod[t] = std::sqrt(1.0 / ab - 1.0);
    // q(x_{t−1} | x_t, x_0) = N(coef1·x_0 + coef2·x_t, β̃_t)  (Ho et al. 2020, eq. 6–7):
    // β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t).
    m_posterior_variance[t] = m_betas[t] * (1.0 - ab_prev) / (1.0 - ab);
    m_posterior_mean_coef1[t] = m_betas[t] * std::sqrt(ab_prev) / (1.0 - ab);
    m_posterior_mean_coef2[t] = (1.0 - ab_prev) * std::sqrt(m_alphas[t]) / (1.0 - ab);
    m_snr[t] = ab / (1.0 - ab);
    m_log_snr[t] = std::log(ab) - std::log(1.0 - ab);
  }
  // β̃_0 = 0, so the log is clipped by using β̃_1 in its place (improved-diffusion).
  for (size_t t = 0; t < n; ++t) {
    const double v = (t == 0 && n > 1) ? m_posterior_variance[1] : m_posterior_variance[t];
    m_posterior_log_variance_clipped[t] = std::log(v > 0.0 ? v : m_betas[t]);
  }
}

const std::vector<std::string>& NoiseSchedule::table_names() {
  static const std::vector<std::string> names = {
      "betas",
      "alphas",
      "alphas_cumprod",
      "alphas_cumprod_prev",
      "alphas_cumprod_next",
      "sqrt_alphas_cumprod",
      "sqrt_one_minus_alphas_cumprod",
      "log_one_minus_alphas_cumprod",
      "sqrt_recip_alphas_cumprod",
      "sqrt_recipm1_alphas_cumprod",
      "posterior_variance",
      "posterior_log_variance_clipped",
      "posterior_mean_coef1",
      "posterior_mean_coef2",
      "snr",
      "log_snr",
  };
  return names;
}

const std::vector<double>& NoiseSchedule::table(const std::string& name) const {
  const std::map<std::string, const std::vector<double>*> tables = {
      {"betas", &m_betas},
      {"alphas", &m_alphas},
      {"alphas_cumprod", &m_alphas_cumprod},
      {"alphas_cumprod_prev", &m_alphas_cumprod_prev},
      {"alphas_cumprod_next", &m_alphas_cumprod_next},
      {"sqrt_alphas_cumprod", &m_sqrt_alphas_cumprod},
      {"sqrt_one_minus_alphas_cumprod", &m_sqrt_one_minus_alphas_cumprod},
      {"log_one_minus_alphas_cumprod", &m_log_one_minus_alphas_cumprod},
      {"sqrt_recip_alphas_cumprod", &m_sqrt_recip_alphas_cumprod},
      {"sqrt_recipm1_alphas_cumprod", &m_sqrt_recipm1_alphas_cumprod},
      {"posterior_variance", &m_posterior_variance},
      {"posterior_log_variance_clipped", &m_posterior_log_variance_clipped},
      {"posterior_mean_coef1", &m_posterior_mean_coef1},
      {"posterior_mean_coef2", &m_posterior_mean_coef2},
      {"snr", &m_snr},
      {"log_snr", &m_log_snr},
  };
  auto it = tables.find(name);
  if (it == tables.end()) throw std::invalid_argument("no schedule table named '" + name + "'");
  return *it->second;
}

void NoiseSchedule::write_csv(std::ostream& out) const {
  out << "t,timestep";
  for (const auto& name : table_names()) out << ',' << name;
  out << '\n';
  std::vector<const std::vector<double>*> cols;
  for (const auto& name : table_names()) cols.push_back(&table(name));
  char buf[64];
  for (int t = 0; t < size(); ++t) {
    out << t << ',' << m_timestep_map[t];
    for (const auto* col : cols) {
      std::snprintf(buf, sizeof buf, ",%.17g", (*col)[t]);
      out << buf;
    }
    out << '\n';
  }
}

}  // namespace difflab

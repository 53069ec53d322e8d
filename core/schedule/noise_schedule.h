// Noise schedules and every table derived from them, computed once in double.
//
// Names follow improved-diffusion's GaussianDiffusion (Nichol & Dhariwal 2021) so the
// CSV export reads like that code. Named schedules are append-only: never change the
// formula of one that exists, add a new name instead.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "core/config/enums.h"

namespace difflab {

class NoiseSchedule {
 public:
  // The named schedule with T steps (see noise_schedule.cpp for each formula's source).
  static NoiseSchedule named(ScheduleKind kind, int timesteps);
  // Any β sequence (each in (0, 1)); timestep_map[i] is the model's timestep for row i
  // (identity when empty).
  static NoiseSchedule from_betas(std::vector<double> betas, std::vector<int> timestep_map = {});

  // Respacing (Nichol & Dhariwal 2021, §4): keep K of the T steps, evenly spaced and
  // including 0 and T-1, with β'_i = 1 − ᾱ_{k_i} / ᾱ_{k_{i−1}} so that ᾱ' at each kept
  // step equals ᾱ of the original. The model still sees the original timestep k_i.
  NoiseSchedule respaced(int steps) const;
  // The evenly spaced subset of {0..T-1} of size K used by respaced().
  static std::vector<int> space_timesteps(int timesteps, int steps);

  int size() const { return static_cast<int>(m_betas.size()); }
  // Model timestep (on the original 0..T-1 scale) for row i.
  int model_timestep(int i) const { return m_timestep_map[i]; }
  const std::vector<int>& timestep_map() const { return m_timestep_map; }

  const std::vector<double>& betas() const { return m_betas; }
  const std::vector<double>& alphas() const { return m_alphas; }
  const std::vector<double>& alphas_cumprod() const { return m_alphas_cumprod; }
  const std::vector<double>& alphas_cumprod_prev() const { return m_alphas_cumprod_prev; }
  const std::vector<double>& alphas_cumprod_next() const { return m_alphas_cumprod_next; }
  const std::vector<double>& sqrt_alphas_cumprod() const { return m_sqrt_alphas_cumprod; }
  const std::vector<double>& sqrt_one_minus_alphas_cumprod() const {
    return m_sqrt_one_minus_alphas_cumprod;
  }
  const std::vector<double>& log_one_minus_alphas_cumprod() const {
    return m_log_one_minus_alphas_cumprod;
  }
  const std::vector<double>& sqrt_recip_alphas_cumprod() const { return m_sqrt_recip_alphas_cumprod; }
  const std::vector<double>& sqrt_recipm1_alphas_cumprod() const {
    return m_sqrt_recipm1_alphas_cumprod;
  }
  const std::vector<double>& posterior_variance() const { return m_posterior_variance; }
  const std::vector<double>& posterior_log_variance_clipped() const {
    return m_posterior_log_variance_clipped;
  }
  const std::vector<double>& posterior_mean_coef1() const { return m_posterior_mean_coef1; }
  const std::vector<double>& posterior_mean_coef2() const { return m_posterior_mean_coef2; }
  // Signal-to-noise ratio ᾱ / (1 − ᾱ) and its natural log.
  const std::vector<double>& snr() const { return m_snr; }
  const std::vector<double>& log_snr() const { return m_log_snr; }

  // Column names, in CSV order, and the table behind each.
  static const std::vector<std::string>& table_names();
  const std::vector<double>& table(const std::string& name) const;
  // One row per step: "t,timestep,<table_names...>", full precision (%.17g).
  void write_csv(std::ostream& out) const;

 private:
  void compute_tables();

  std::vector<int> m_timestep_map;
  std::vector<double> m_betas, m_alphas, m_alphas_cumprod, m_alphas_cumprod_prev,
      m_alphas_cumprod_next, m_sqrt_alphas_cumprod, m_sqrt_one_minus_alphas_cumprod,
      m_log_one_minus_alphas_cumprod, m_sqrt_recip_alphas_cumprod, m_sqrt_recipm1_alphas_cumprod,
      m_posterior_variance, m_posterior_log_variance_clipped, m_posterior_mean_coef1,
      m_posterior_mean_coef2, m_snr, m_log_snr;
};

// Cosine schedule offset s (Nichol & Dhariwal 2021, eq. 17) and the β cap they use.
constexpr double kCosineOffset = 0.008;
constexpr double kMaxBeta = 0.999;
// Linear schedule end points for T = 1000 (Ho et al. 2020, §4), scaled by 1000/T.
constexpr double kLinearBetaStart = 1e-4;
constexpr double kLinearBetaEnd = 0.02;
// Sigmoid schedule: β = b0 + (b1 − b0)·sigmoid(x) for x evenly spaced in [−6, 6].
constexpr double kSigmoidRange = 6.0;

}  // namespace difflab

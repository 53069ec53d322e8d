// The Gaussian diffusion process over one NoiseSchedule (full or respaced):
// forward noising, the true posterior, conversions between ε, x₀ and v, and L_simple.
//
// Index t here is a row of the schedule (0..size-1); the model is fed the original
// timestep schedule.model_timestep(t), so a respaced diffusion drives the same network.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include "core/config/enums.h"
#include "core/schedule/noise_schedule.h"

namespace difflab {

struct Posterior {
  at::Tensor mean, variance, log_variance;
};

class GaussianDiffusion {
 public:
  GaussianDiffusion(NoiseSchedule schedule, Prediction prediction, c10::Device device);

  const NoiseSchedule& schedule() const { return m_schedule; }
  Prediction prediction() const { return m_prediction; }
  int num_steps() const { return m_schedule.size(); }
  c10::Device device() const { return m_device; }

  // Gathers table[t] for a batch of row indices t (int64, (B)) and shapes it to broadcast
  // against a tensor of `ndim` dimensions: (B, 1, 1, ...).
  at::Tensor extract(const at::Tensor& table, const at::Tensor& t, int64_t ndim) const;
  // Original-scale timesteps for the model, as float (B).
  at::Tensor model_timesteps(const at::Tensor& t) const;

  // q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I)  (Ho et al. 2020, eq. 4).
  at::Tensor q_sample(const at::Tensor& x0, const at::Tensor& t, const at::Tensor& noise) const;
  // q(x_{t−1} | x_t, x_0)  (Ho et al. 2020, eq. 6–7).
  Posterior q_posterior(const at::Tensor& x0, const at::Tensor& xt, const at::Tensor& t) const;

  // x₀ = (x_t − √(1−ᾱ) ε) / √ᾱ  (eq. 4 solved for x₀).
  at::Tensor x0_from_eps(const at::Tensor& xt, const at::Tensor& t, const at::Tensor& eps) const;
  at::Tensor eps_from_x0(const at::Tensor& xt, const at::Tensor& t, const at::Tensor& x0) const;
  // v = √ᾱ ε − √(1−ᾱ) x₀ (Salimans & Ho 2022, §4); x₀ = √ᾱ x_t − √(1−ᾱ) v.
  at::Tensor v_target(const at::Tensor& x0, const at::Tensor& t, const at::Tensor& eps) const;
  at::Tensor x0_from_v(const at::Tensor& xt, const at::Tensor& t, const at::Tensor& v) const;

  // What the network should output for the configured prediction.
  at::Tensor training_target(const at::Tensor& x0, const at::Tensor& t,
                             const at::Tensor& eps) const;
  // Turns a network output into (ε̂, x̂₀); x̂₀ clipped to [−1, 1] when `clip` (and ε̂
  // recomputed from the clipped x̂₀ so the two stay consistent).
  std::pair<at::Tensor, at::Tensor> interpret(const at::Tensor& model_out, const at::Tensor& xt,
                                              const at::Tensor& t, bool clip) const;

  // Per-example L_simple: mean over all but the batch dimension of (out − target)².
  at::Tensor simple_loss(const at::Tensor& model_out, const at::Tensor& target) const;

  // Tables on the device, float32, one entry per row.
  const at::Tensor& sqrt_alphas_cumprod() const { return m_sqrt_ac; }
  const at::Tensor& sqrt_one_minus_alphas_cumprod() const { return m_sqrt_1m_ac; }
  const at::Tensor& alphas_cumprod() const { return m_ac; }
  const at::Tensor& alphas_cumprod_prev() const { return m_ac_prev; }
  const at::Tensor& betas() const { return m_betas; }
  const at::Tensor& posterior_variance() const { return m_post_var; }
  const at::Tensor& posterior_log_variance_clipped() const { return m_post_logvar; }

 private:
  NoiseSchedule m_schedule;
  Prediction m_prediction;
  c10::Device m_device;
  at::Tensor m_betas, m_ac, m_ac_prev, m_sqrt_ac, m_sqrt_1m_ac, m_sqrt_recip_ac,
      m_sqrt_recipm1_ac, m_post_var, m_post_logvar, m_post_c1, m_post_c2, m_timestep_map;
};

}  // namespace difflab

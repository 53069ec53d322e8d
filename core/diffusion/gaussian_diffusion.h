// The Gaussian diffusion process over one NoiseSchedule (full or respaced):
// forward noising, the true posterior, conversions between ε, x₀ and v, L_simple, the
// model's reverse step p_θ(x_{t−1} | x_t) with a fixed or learned-range variance, and the
// variational bound in bits/dim (Nichol & Dhariwal 2021, "Improved DDPM").
//
// Index t here is a row of the schedule (0..size-1); the model is fed the original
// timestep schedule.model_timestep(t), so a respaced diffusion drives the same network.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <functional>

#include "core/config/enums.h"
#include "core/schedule/noise_schedule.h"

namespace difflab {

struct Posterior {
  at::Tensor mean, variance, log_variance;
};

// A network output as the diffusion reads it: the prediction (C channels: ε, x₀ or v) and,
// for a model with a learned variance, the raw interpolation value v (the other C
// channels; undefined otherwise).
struct ModelOutput {
  at::Tensor prediction, variance;
};
// Splits (B, 2C, ...) into its halves along dim 1 when `learned_variance`, else returns
// {out, undefined}.
ModelOutput split_model_output(const at::Tensor& out, bool learned_variance);

// p_θ(x_{t−1} | x_t) = N(mean, exp(log_variance)), with the x̂₀ and ε̂ it came from.
struct MeanVariance {
  at::Tensor mean, log_variance, x0, eps;
};

// Per-example bound of one batch, every entry in bits/dim: L_T, Σ_{t≥1} L_t, L_0 and
// their total (Ho et al. 2020, eq. 5). `terms` (B, T) holds each L_t that was evaluated
// (0 elsewhere); `estimate` is true when only some t were (see nll_bits_per_dim).
struct NllBound {
  at::Tensor prior, kl_sum, decoder, total, terms;
  bool estimate = false;
};

// Boundaries b_0 = 1 < b_1 < … < b_K = T of K strata [b_{k−1}, b_k) over rows 1..T−1,
// spaced geometrically (b_k ≈ T^{k/K}, at least one row each): the VLB terms fall steeply
// with t (most of Σ L_t sits in the first few percent of t), so small t get strata of one
// row and are evaluated exactly, and the nearly flat tail shares wide strata.
// 1 <= K <= T − 1.
std::vector<int> nll_strata(int num_steps, int samples);

// The network for nll_bits_per_dim: x_t and schedule rows t -> its output.
using ModelFn = std::function<ModelOutput(const at::Tensor& xt, const at::Tensor& t)>;

// KL(N(mean1, e^logvar1) ‖ N(mean2, e^logvar2)) elementwise, in nats:
// ½ (logvar2 − logvar1 + e^{logvar1−logvar2} − 1 + (mean1 − mean2)² e^{−logvar2}),
// with e^d − 1 − d computed as expm1(d) − d so nearly equal variances keep their digits.
at::Tensor normal_kl(const at::Tensor& mean1, const at::Tensor& logvar1, const at::Tensor& mean2,
                     const at::Tensor& logvar2);
// Φ(x) of the standard normal, exact through erfc (improved-diffusion uses a tanh
// approximation): Φ(x) = ½ erfc(−x/√2).
at::Tensor standard_normal_cdf(const at::Tensor& x);
// log p(x) of data x in [−1, 1] from 8-bit pixels (x = 2k/255 − 1) under N(mean, e^{2 log_scale})
// integrated over x's bin of width 2/255; the end bins reach to ∓∞ (Ho et al. 2020, eq. 13).
// Computed in float64 (tails through erfc), each probability floored at 1e-12 as in
// improved-diffusion. Elementwise, in nats, in x's dtype.
at::Tensor discretized_gaussian_log_likelihood(const at::Tensor& x, const at::Tensor& mean,
                                               const at::Tensor& log_scale);

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

  // log Σ_θ = f log β_t + (1 − f) log β̃_t with f = (v + 1)/2, β̃ clipped at t = 0 to β̃_1
  // (Nichol & Dhariwal 2021, eq. 15). v: the variance half of the output.
  at::Tensor learned_range_log_variance(const at::Tensor& v, const at::Tensor& t) const;
  // log σ_t² of a fixed variance, shaped (B, 1, ...) for `ndim`: fixed_small = log β̃_t
  // (β̃_1 at t = 0), fixed_large = log β_t (β̃_1 at t = 0, as improved-diffusion).
  at::Tensor fixed_log_variance(VarianceKind kind, const at::Tensor& t, int64_t ndim) const;
  // The model's reverse step: mean μ̃_t(x̂₀, x_t) (eq. 7 with the predicted x̂₀; clipped to
  // [−1, 1] when `clip`) and the log variance `kind` asks for. Learned needs out.variance.
  MeanVariance p_mean_variance(const ModelOutput& out, const at::Tensor& xt, const at::Tensor& t,
                               VarianceKind kind, bool clip) const;
  // Per-example VLB term in bits/dim (a mean over dimensions / ln 2): for t ≥ 1
  // L_{t} = KL(q(x_{t−1} | x_t, x₀) ‖ p_θ(x_{t−1} | x_t)), for t = 0 the decoder
  // L_0 = −log p_θ(x₀ | x_1) under the discretized Gaussian (Ho et al. 2020, eq. 5, 13).
  at::Tensor vlb_terms_bpd(const MeanVariance& p, const at::Tensor& x0, const at::Tensor& xt,
                           const at::Tensor& t) const;
  // L_T = KL(q(x_T | x₀) ‖ N(0, I)) per example in bits/dim (no parameters; small).
  at::Tensor prior_bpd(const at::Tensor& x0) const;
  // The variational bound −log p(x₀) ≤ L_T + Σ_{t≥1} L_t + L_0 in bits/dim per example, with
  // fresh noise from `gen` for each t (improved-diffusion's calc_bpd_loop). Exact over all
  // T rows when t_samples = 0 or >= T − 1 (T network calls). Otherwise an *estimate* from
  // 1 + t_samples calls: rows 1..T−1 are cut into the t_samples strata of nll_strata(), one
  // random row of each (the same for the batch) stands for its stratum (weight = its size),
  // which keeps it unbiased; L_0 is always evaluated. `progress(done, total)` after each
  // network call.
  NllBound nll_bits_per_dim(const ModelFn& model, const at::Tensor& x0, VarianceKind kind,
                            bool clip, at::Generator& gen, int t_samples = 0,
                            const std::function<void(int, int)>& progress = {}) const;

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
      m_sqrt_recipm1_ac, m_post_var, m_post_logvar, m_post_c1, m_post_c2, m_timestep_map,
      m_log_betas, m_log_var_large;
};

}  // namespace difflab

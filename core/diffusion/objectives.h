// The training objectives beside DDPM's (README, "Objectives"), and the loss weights:
//
// - min-SNR-γ weighting (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR
//   Weighting Strategy", arXiv 2303.09556): every example's loss is
//   made the x₀-space loss ‖x̂₀ − x₀‖² times min(SNR_t, γ). With x̂₀'s error written through
//   each prediction's own error, that is a weight on the prediction's MSE of
//     ε:  min(SNR, γ) / SNR        (‖ε̂ − ε‖² = SNR ‖x̂₀ − x₀‖²)
//     x₀: min(SNR, γ)
//     v:  min(SNR, γ) / (SNR + 1)  (‖v̂ − v‖² = (SNR + 1) ‖x̂₀ − x₀‖² for VP's v)
//   and for flow matching's velocity, SNR = ((1 − t)/t)² and x̂₀ = x_t − t v̂, so
//     ‖v̂ − v‖² = ‖x̂₀ − x₀‖² / t²  and the weight is  min(SNR, γ) t²  (our derivation).
//
// - EDM (Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based Generative
//   Models", arXiv 2206.00364, Table 1 and §5): x = x₀ + σ ε with ln σ ~ N(P_mean, P_std²),
//   D(x; σ) = c_skip x + c_out F(c_in x; c_noise) with
//     c_skip = σ_d² / (σ² + σ_d²),  c_out = σ σ_d / √(σ² + σ_d²),  c_in = 1 / √(σ² + σ_d²),
//     c_noise = ¼ ln σ,
//   and the loss λ(σ) ‖D − x₀‖² with λ = (σ² + σ_d²) / (σ σ_d)² = 1 / c_out². Written on F
//   (eq. 8), it is ‖F − (x₀ − c_skip x) / c_out‖² with weight λ c_out² = 1: the network's
//   own target has unit variance at every σ when the data have std σ_d.
//   The network keeps its sinusoidal timestep embedding, built for timesteps 0..T
//   (T = diffusion.timesteps); it is fed the affine image of c_noise that sends σ_min to 0
//   and σ_max to T, t_net = T (4 c_noise − ln σ_min) / (ln σ_max − ln σ_min): a change of
//   units only (c_noise and t_net determine each other), so the embedding's frequencies
//   cover σ's range as they cover DDPM's timesteps. Draws outside [σ_min, σ_max] land
//   outside [0, T], where the sinusoids are still defined.
//
// - Flow matching / rectified flow (Lipman et al. 2022, arXiv 2210.02747; Liu et al. 2022,
//   arXiv 2209.03003), in the convention of Esser et al. 2024 (arXiv 2403.03206):
//   x_t = (1 − t) x₀ + t ε for t ∈ [0, 1], the network predicts the velocity
//   v = dx_t/dt = ε − x₀, t uniform or logit-normal, and is fed t_net = T t. Sampling
//   integrates dx/dt = v̂ from t = 1 (pure noise) to 0 on a grid warped by the shift
//   t ↦ s t / (1 + (s − 1) t) (Esser et al. 2024, "resolution-dependent shifting of
//   timestep schedules").
//   From a velocity: x̂₀ = x_t − t v̂ and ε̂ = x_t + (1 − t) v̂.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <vector>

#include "core/config/config.h"
#include "core/schedule/noise_schedule.h"

namespace difflab {

// What sampling needs to know about a model's objective (from its DiffusionConfig).
struct ObjectiveParams {
  Objective objective = Objective::Ddpm;
  double sigma_data = 0.5, sigma_min = 0.002, sigma_max = 80.0;  // edm
  int time_scale = 1000;  // T: the network's timesteps span [0, T]
  static ObjectiveParams from(const DiffusionConfig& diffusion);
};

// ---- min-SNR-γ ------------------------------------------------------------------------

// Weight on the prediction's MSE at signal-to-noise ratio `snr` (header comment).
double min_snr_weight(double snr, double gamma, Prediction prediction);
// Flow matching's velocity at time t ∈ (0, 1]: min(SNR, γ) t², SNR = ((1 − t)/t)².
double flow_min_snr_weight(double t, double gamma);
// The min-SNR weight of every row of a DDPM schedule (SNR_t = ᾱ_t / (1 − ᾱ_t)).
std::vector<double> min_snr_weights(const NoiseSchedule& schedule, Prediction prediction,
                                    double gamma);
// The per-example loss weight the trainer applies, at `points` positions equally spaced
// over the network's timestep axis [0, T) (the loss-by-timestep chart's x axis): the
// min-SNR weights (1 for uniform), and for edm λ(σ) c_out² = 1. For a chart beside the loss.
std::vector<double> loss_weight_curve(const DiffusionConfig& diffusion, int points);

// ---- EDM ------------------------------------------------------------------------------

struct EdmScalings {
  double c_skip = 0.0, c_out = 0.0, c_in = 0.0, c_noise = 0.0;
};
EdmScalings edm_scalings(double sigma, double sigma_data);
// λ(σ) = (σ² + σ_d²) / (σ σ_d)².
double edm_loss_weight(double sigma, double sigma_data);
// t_net of σ (header comment), and back.
double edm_network_time(double sigma, const ObjectiveParams& params);
double edm_sigma_of_network_time(double t_net, const ObjectiveParams& params);

// ---- Flow matching ----------------------------------------------------------------------

// s t / (1 + (s − 1) t): 0 ↦ 0, 1 ↦ 1, s > 1 pushes t towards 1.
double flow_shift_time(double t, double shift);
// The sampling grid t_0 = 1 > t_1 > … > t_n = 0: i/n steps of the shifted uniform grid.
std::vector<double> flow_time_grid(int steps, double shift);

// ---- Training draws ---------------------------------------------------------------------

// One batch as a continuous objective trains on it. Shapes: input like x₀; net_time (B)
// float; target like x₀ (what the raw network output regresses on); weight (B) float; all
// on x₀'s device. level (B) int64 on the CPU: the example's place on [0, T) for the
// loss-by-timestep chart (floor of t_net, clamped).
struct ObjectiveBatch {
  at::Tensor input, net_time, target, weight, level;
};
// σ = exp(P_mean + P_std u) of standard normal draws u (B).
at::Tensor edm_sigmas(const DiffusionConfig& diffusion, const at::Tensor& u);
// x = x₀ + σ ε, input c_in x, target (x₀ − c_skip x) / c_out, weight λ c_out² (= 1).
// sigma (B) on any device.
ObjectiveBatch edm_training_batch(const DiffusionConfig& diffusion, const at::Tensor& x0,
                                  const at::Tensor& eps, const at::Tensor& sigma);
// D = c_skip x + c_out F for x (B, ...) at σ (B): EDM's denoised x̂₀ from the raw output F.
at::Tensor edm_denoised(const at::Tensor& x, const at::Tensor& sigma, const at::Tensor& F,
                        double sigma_data);
// t (B) in (0, 1) as diffusion.flow_t_sampling asks, from `gen` (CPU, float32).
at::Tensor flow_times(const DiffusionConfig& diffusion, int64_t batch, at::Generator& gen);
// x_t = (1 − t) x₀ + t ε, input x_t, target ε − x₀, weight 1 or min-SNR. t (B).
ObjectiveBatch flow_training_batch(const DiffusionConfig& diffusion, const at::Tensor& x0,
                                   const at::Tensor& eps, const at::Tensor& t);
// x̂₀ = x_t − t v̂ and ε̂ = x_t + (1 − t) v̂; t broadcasts against x_t.
at::Tensor flow_x0(const at::Tensor& xt, const at::Tensor& t, const at::Tensor& v);
at::Tensor flow_eps(const at::Tensor& xt, const at::Tensor& t, const at::Tensor& v);

}  // namespace difflab

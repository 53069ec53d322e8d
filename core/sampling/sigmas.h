// The variance-exploding view of a VP schedule, shared by the σ-space samplers (Euler,
// Euler-ancestral, Heun, DPM-Solver++(2M)).
//
// With x = x_t / √ᾱ and σ = √((1 − ᾱ) / ᾱ), x_t = √ᾱ x₀ + √(1 − ᾱ) ε becomes x = x₀ + σ ε
// (Song et al. 2021, "Score-based generative modeling", VP ↔ VE; Karras et al. 2022,
// §2 and Table 1), the probability-flow ODE is dx/dσ = (x − D(x; σ)) / σ = ε̂ with the
// denoiser D = x̂₀, and √ᾱ = 1 / √(1 + σ²).
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <vector>

#include "core/config/enums.h"
#include "core/sampling/sampler.h"
#include "core/schedule/noise_schedule.h"

namespace difflab {

// σ of ᾱ and back.
double sigma_from_alpha_bar(double alpha_bar);
double alpha_bar_from_sigma(double sigma);

// σ of every row of a schedule with that row's model timestep, increasing in both. Maps σ
// to a fractional model timestep and back by linear interpolation in log σ between rows
// (as k-diffusion's DiscreteSchedule does), so that both directions agree and integer
// timesteps give the rows' σ.
class SigmaTable {
 public:
  explicit SigmaTable(const NoiseSchedule& schedule);
  int size() const { return static_cast<int>(m_sigmas.size()); }
  double sigma_min() const { return m_sigmas.front(); }
  double sigma_max() const { return m_sigmas.back(); }
  // Fractional model timestep of σ, clamped to the table's range.
  double timestep(double sigma) const;
  // σ at a fractional model timestep, clamped to the table's range.
  double sigma_at(double timestep) const;

 private:
  std::vector<double> m_sigmas, m_log_sigmas, m_timesteps;
};

// Karras et al. (2022, eq. 5): σ_i = (σ_max^(1/ρ) + i/(n−1) (σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ
// for i = 0..n−1, then σ_n = 0. ρ = 7 is their choice (Table 1); larger ρ spends more of
// the steps near σ_min. n = 1 gives {σ_max, 0}.
std::vector<double> karras_sigmas(int n, double sigma_min, double sigma_max, double rho);

// The noise levels of one σ-space run: σ_0 > … > σ_{n−1} > σ_n = 0, and the model
// timestep fed to the network at each σ_i (i < n).
struct SigmaSchedule {
  std::vector<double> sigmas;     // n + 1 entries, the last 0
  std::vector<double> timesteps;  // n entries
  int steps() const { return static_cast<int>(timesteps.size()); }
};

// `respaced` is the schedule being sampled (its size is the number of steps) and
// `model_schedule` the network's full schedule. Model spacing walks the respaced rows from
// the last to the first (their own timesteps); Karras spacing puts as many σ's between the
// model schedule's σ_min and σ_max and maps each to a fractional timestep (SigmaTable).
SigmaSchedule make_sigma_schedule(SigmaSpacing spacing, const NoiseSchedule& respaced,
                                  const NoiseSchedule& model_schedule, double rho);

// dx/dσ of the probability-flow ODE: (x − x̂₀) / σ (Karras et al. 2022, eq. 3 with
// s(t) = 1, σ(t) = t; k-diffusion's to_d).
at::Tensor to_d(const at::Tensor& x, double sigma, const at::Tensor& x0);

// Splits a step σ_from → σ_to of ancestral sampling into a deterministic part down to
// σ_down and fresh noise of std σ_up, with σ_down² + σ_up² = σ_to² and
// σ_up = min(σ_to, η σ_to √(σ_from² − σ_to²) / σ_from): η = 1 adds the variance of the
// reverse Gaussian step of the VE chain (Song et al. 2021, ancestral sampling; k-diffusion's
// get_ancestral_step), η = 0 is the ODE.
struct AncestralStep {
  double sigma_down = 0.0, sigma_up = 0.0;
};
AncestralStep ancestral_step(double sigma_from, double sigma_to, double eta = 1.0);

// EDM's grid (Karras et al. 2022, eq. 5 between diffusion.edm_sigma_min and _max, whatever
// sample.sigmas says: an EDM net has no schedule rows) with each σ's network time.
SigmaSchedule edm_sigma_schedule(int steps, const ObjectiveParams& params, double rho);
// Flow matching's grid: "sigmas" are the times t_0 = 1 > … > t_n = 0 (flow_time_grid) and
// the timesteps T t_i.
SigmaSchedule flow_sigma_schedule(int steps, const ObjectiveParams& params, double shift);

// What the σ-space samplers share: the grid, the change of variables, one network
// evaluation at a grid point, and the per-step callback in the original (VP) scale so the
// trajectory recorder shows the same frames as DDPM/DDIM.
//
// The ODE variable depends on the denoiser's objective: σ of the VP chain (ddpm), EDM's
// own σ (edm; x = x₀ + σ ε is already its variable), or flow matching's t (x = x_t itself,
// dx/dt = v̂, from t = 1 to 0). Euler and Heun are written on it through sigma(i) and
// slope(), so they serve all three; the ancestral step and DPM-Solver++ are σ-only.
class SigmaSpace {
 public:
  // `flow_shift` is sample.flow_shift (flow matching's grid; ignored otherwise).
  SigmaSpace(const Denoiser& denoiser, SigmaSpacing spacing, double rho, double flow_shift = 1.0);
  const SigmaSchedule& schedule() const { return m_schedule; }
  int steps() const { return m_schedule.steps(); }
  // σ_i, or t_i for flow matching.
  double sigma(int i) const { return m_schedule.sigmas[i]; }
  bool flow() const { return m_objective == Objective::FlowMatching; }

  // The starting noise x_T (unit variance) as the ODE's x: x_T √(1 + σ_0²) for ddpm (the
  // VP point of σ_0 rescaled), σ_0 x_T for edm (Karras et al. 2022, Alg. 1 line 2), and
  // x_T itself for flow matching (x_1 = ε).
  at::Tensor from_vp(const at::Tensor& x_t) const;
  struct Denoised {
    at::Tensor x0, eps, velocity;  // velocity: flow matching only
  };
  // x̂₀ = D(x; σ_i) and ε̂ (and v̂) for x at grid point i < steps(): one (guided) forward.
  Denoised denoise(const at::Tensor& x, int i) const;
  // The same at any σ > 0 (churn's σ̂); ddpm and edm only.
  Denoised denoise_at(const at::Tensor& x, double sigma) const;
  // dx/dσ = (x − x̂₀)/σ (to_d), or for flow matching dx/dt = v̂.
  at::Tensor slope(const at::Tensor& x, double sigma, const Denoised& d) const;
  // Karras et al. (2022, Alg. 2, lines 4–6) with S_tmin = 0, S_tmax = ∞, S_noise = 1:
  // σ̂ = (1 + γ) σ_i with γ = min(S_churn / steps, √2 − 1), x̂ = x + √(σ̂² − σ_i²) z, z from
  // `noise`. s_churn = 0, flow matching and the last step (σ_{i+1} = 0 is not "the last":
  // it churns too, as the paper) return {x, σ_i} unchanged when γ = 0.
  struct Churned {
    at::Tensor x;
    double sigma = 0.0;
  };
  Churned churn(const at::Tensor& x, int i, double s_churn, NoiseStreams& noise) const;
  // Calls `callback` (if any) for step i with x_t = x / √(1 + σ²) (σ = σ_i unless given), or
  // x itself for flow matching; false = cancel.
  bool report(const StepCallback& callback, int i, const at::Tensor& x, const Denoised& d,
              double sigma = -1.0) const;

 private:
  const Denoiser& m_denoiser;
  Objective m_objective;
  SigmaSchedule m_schedule;
  std::optional<SigmaTable> m_table;  // ddpm: the model schedule's, for denoise_at
};

}  // namespace difflab

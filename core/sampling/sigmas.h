// The variance-exploding view of a VP schedule, shared by the σ-space samplers (Euler,
// Euler-ancestral, Heun, DPM-Solver++(2M)).
//
// With x = x_t / √ᾱ and σ = √((1 − ᾱ) / ᾱ), x_t = √ᾱ x₀ + √(1 − ᾱ) ε becomes x = x₀ + σ ε
// (Song et al. 2021, "Score-based generative modeling", VP ↔ VE; Karras et al. 2022,
// §2 and Table 1), the probability-flow ODE is dx/dσ = (x − D(x; σ)) / σ = ε̂ with the
// denoiser D = x̂₀, and √ᾱ = 1 / √(1 + σ²).
#pragma once

#include <ATen/core/Tensor.h>

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

// What the σ-space samplers share: the grid, the change of variables, one network
// evaluation at a grid point, and the per-step callback in the original (VP) scale so the
// trajectory recorder shows the same frames as DDPM/DDIM.
class SigmaSpace {
 public:
  SigmaSpace(const Denoiser& denoiser, SigmaSpacing spacing, double rho);
  const SigmaSchedule& schedule() const { return m_schedule; }
  int steps() const { return m_schedule.steps(); }
  double sigma(int i) const { return m_schedule.sigmas[i]; }

  // x = x_t √(1 + σ_0²): the starting noise x_T (VP scale) in σ-space.
  at::Tensor from_vp(const at::Tensor& x_t) const;
  struct Denoised {
    at::Tensor x0, eps;
  };
  // x̂₀ = D(x; σ_i) and ε̂ for σ-space x at grid point i < steps(): one (guided) forward.
  Denoised denoise(const at::Tensor& x, int i) const;
  // Calls `callback` (if any) for step i with x_t = x / √(1 + σ_i²); false = cancel.
  bool report(const StepCallback& callback, int i, const at::Tensor& x, const Denoised& d) const;

 private:
  const Denoiser& m_denoiser;
  SigmaSchedule m_schedule;
};

}  // namespace difflab

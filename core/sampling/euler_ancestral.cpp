// Ancestral Euler sampling in σ-space: each step σ_i → σ_{i+1} is an Euler step of the
// probability-flow ODE down to σ_down followed by fresh noise of std σ_up, with
// σ_down² + σ_up² = σ_{i+1}² (ancestral_step in sigmas.cpp, η = 1: the variance of the
// reverse step of the VE Markov chain, Song et al. 2021 "Score-based generative modeling",
// ancestral sampling; k-diffusion's sample_euler_ancestral). The last step, to σ = 0,
// adds no noise and lands on x̂₀.
#include <torch/torch.h>

#include "core/sampling/samplers.h"
#include "core/sampling/sigmas.h"

namespace difflab {
namespace {

class EulerAncestralSampler : public Sampler {
 public:
  EulerAncestralSampler(SigmaSpacing spacing, double rho) : m_spacing(spacing), m_rho(rho) {}

  at::Tensor sample(const Denoiser& denoiser, at::Tensor x_T, at::Generator& gen,
                    const StepCallback& callback) const override {
    const SigmaSpace space(denoiser, m_spacing, m_rho);
    auto x = space.from_vp(x_T);
    for (int i = 0; i < space.steps(); ++i) {
      const auto d = space.denoise(x, i);
      if (!space.report(callback, i, x, d)) return {};
      const auto step = ancestral_step(space.sigma(i), space.sigma(i + 1));
      x = x + (step.sigma_down - space.sigma(i)) * to_d(x, space.sigma(i), d.x0);
      if (step.sigma_up > 0.0) x = x + step.sigma_up * noise_like(x, gen);
    }
    return x;
  }

 private:
  SigmaSpacing m_spacing;
  double m_rho;
};

}  // namespace

std::unique_ptr<Sampler> make_euler_ancestral_sampler(const SampleConfig& config) {
  return std::make_unique<EulerAncestralSampler>(config.sigmas, config.karras_rho);
}

}  // namespace difflab

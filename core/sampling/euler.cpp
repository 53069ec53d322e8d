// Euler's method on the probability-flow ODE in σ-space (Karras et al. 2022, Algorithm 2
// without the second-order correction and without churn): x_{i+1} = x_i + (σ_{i+1} − σ_i) d_i
// with d_i = (x_i − D(x_i; σ_i)) / σ_i. On the model's own σ's this is DDIM with η = 0
// (Song et al. 2021, eq. 13–14), written in the VE variable.
#include <torch/torch.h>

#include "core/sampling/samplers.h"
#include "core/sampling/sigmas.h"

namespace difflab {
namespace {

class EulerSampler : public Sampler {
 public:
  EulerSampler(SigmaSpacing spacing, double rho) : m_spacing(spacing), m_rho(rho) {}

  at::Tensor sample(const Denoiser& denoiser, at::Tensor x_T, at::Generator&,
                    const StepCallback& callback) const override {
    const SigmaSpace space(denoiser, m_spacing, m_rho);
    auto x = space.from_vp(x_T);
    for (int i = 0; i < space.steps(); ++i) {
      const auto d = space.denoise(x, i);
      if (!space.report(callback, i, x, d)) return {};
      x = x + (space.sigma(i + 1) - space.sigma(i)) * to_d(x, space.sigma(i), d.x0);
    }
    return x;
  }

 private:
  SigmaSpacing m_spacing;
  double m_rho;
};

}  // namespace

std::unique_ptr<Sampler> make_euler_sampler(const SampleConfig& config) {
  return std::make_unique<EulerSampler>(config.sigmas, config.karras_rho);
}

}  // namespace difflab

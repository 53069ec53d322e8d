// Euler's method on the probability-flow ODE in σ-space (Karras et al. 2022, Algorithm 2
// without the second-order correction): x_{i+1} = x_i + (σ_{i+1} − σ_i) d_i with
// d_i = (x_i − D(x_i; σ_i)) / σ_i. On the model's own σ's this is DDIM with η = 0
// (Song et al. 2021, eq. 13–14), written in the VE variable. With sample.s_churn > 0 each
// step first adds noise to raise σ_i to σ̂ (Alg. 2, lines 4–6) and steps from there.
//
// For flow matching the variable is t and the slope v̂ (SigmaSpace): x_{i+1} = x_i +
// (t_{i+1} − t_i) v̂_i, the Euler scheme of rectified flow (Liu et al. 2022, §2.1). With x̂₀
// and ε̂ held fixed it lands on (1 − t_{i+1}) x̂₀ + t_{i+1} ε̂, as DDIM does in its variable.
#include <torch/torch.h>

#include "core/sampling/samplers.h"
#include "core/sampling/sigmas.h"

namespace difflab {
namespace {

class EulerSampler : public Sampler {
 public:
  explicit EulerSampler(const SampleConfig& c)
      : m_spacing(c.sigmas), m_rho(c.karras_rho), m_churn(c.s_churn), m_shift(c.flow_shift) {}

  at::Tensor sample(const Denoiser& denoiser, at::Tensor x_T, NoiseStreams& noise,
                    const StepCallback& callback) const override {
    const SigmaSpace space(denoiser, m_spacing, m_rho, m_shift);
    auto x = space.from_vp(x_T);
    for (int i = 0; i < space.steps(); ++i) {
      const auto [x_hat, s] = space.churn(x, i, m_churn, noise);
      const auto d = s == space.sigma(i) ? space.denoise(x_hat, i) : space.denoise_at(x_hat, s);
      if (!space.report(callback, i, x_hat, d, s)) return {};
      x = x_hat + (space.sigma(i + 1) - s) * space.slope(x_hat, s, d);
    }
    return x;
  }

 private:
  SigmaSpacing m_spacing;
  double m_rho, m_churn, m_shift;
};

}  // namespace

std::unique_ptr<Sampler> make_euler_sampler(const SampleConfig& config) {
  return std::make_unique<EulerSampler>(config);
}

}  // namespace difflab

// Heun's second-order method on the probability-flow ODE in σ-space (Karras et al. 2022,
// Algorithm 1, deterministic): an Euler step to σ_{i+1}, then the average of the slopes at
// both ends. The last step, to σ = 0 where the slope is undefined, stays a plain Euler
// step, so n steps cost 2n − 1 network evaluations.
#include <torch/torch.h>

#include "core/sampling/samplers.h"
#include "core/sampling/sigmas.h"

namespace difflab {
namespace {

class HeunSampler : public Sampler {
 public:
  HeunSampler(SigmaSpacing spacing, double rho) : m_spacing(spacing), m_rho(rho) {}

  at::Tensor sample(const Denoiser& denoiser, at::Tensor x_T, at::Generator&,
                    const StepCallback& callback) const override {
    const SigmaSpace space(denoiser, m_spacing, m_rho);
    auto x = space.from_vp(x_T);
    for (int i = 0; i < space.steps(); ++i) {
      const auto d = space.denoise(x, i);
      if (!space.report(callback, i, x, d)) return {};
      const double s = space.sigma(i), s_next = space.sigma(i + 1);
      const auto slope = to_d(x, s, d.x0);
      auto x_euler = x + (s_next - s) * slope;
      if (s_next <= 0.0) {
        x = x_euler;
        continue;
      }
      const auto d_next = space.denoise(x_euler, i + 1);
      const auto slope_next = to_d(x_euler, s_next, d_next.x0);
      x = x + (s_next - s) * 0.5 * (slope + slope_next);
    }
    return x;
  }

 private:
  SigmaSpacing m_spacing;
  double m_rho;
};

}  // namespace

std::unique_ptr<Sampler> make_heun_sampler(const SampleConfig& config) {
  return std::make_unique<HeunSampler>(config.sigmas, config.karras_rho);
}

}  // namespace difflab

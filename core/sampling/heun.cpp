// Heun's second-order method on the probability-flow ODE in σ-space (Karras et al. 2022,
// Algorithm 1, deterministic; with sample.s_churn > 0 Algorithm 2, which first raises σ_i
// to σ̂ with fresh noise): an Euler step to σ_{i+1}, then the average of the slopes at
// both ends. The last step, to σ = 0 where the slope is undefined, stays a plain Euler
// step, so n steps cost 2n − 1 network evaluations.
//
// For flow matching the same scheme runs in t with slope v̂ (SigmaSpace), from t = 1 to 0;
// its last step to t = 0 is an Euler step too (2n − 1 evaluations).
#include <torch/torch.h>

#include "core/sampling/samplers.h"
#include "core/sampling/sigmas.h"

namespace difflab {
namespace {

class HeunSampler : public Sampler {
 public:
  explicit HeunSampler(const SampleConfig& c)
      : m_spacing(c.sigmas), m_rho(c.karras_rho), m_churn(c.s_churn), m_shift(c.flow_shift) {}

  at::Tensor sample(const Denoiser& denoiser, at::Tensor x_T, NoiseStreams& noise,
                    const StepCallback& callback) const override {
    const SigmaSpace space(denoiser, m_spacing, m_rho, m_shift);
    auto x = space.from_vp(x_T);
    for (int i = 0; i < space.steps(); ++i) {
      const auto [x_hat, s] = space.churn(x, i, m_churn, noise);
      const auto d = s == space.sigma(i) ? space.denoise(x_hat, i) : space.denoise_at(x_hat, s);
      if (!space.report(callback, i, x_hat, d, s)) return {};
      const double s_next = space.sigma(i + 1);
      const auto slope = space.slope(x_hat, s, d);
      auto x_euler = x_hat + (s_next - s) * slope;
      if (s_next <= 0.0) {
        x = x_euler;
        continue;
      }
      const auto d_next = space.denoise(x_euler, i + 1);
      const auto slope_next = space.slope(x_euler, s_next, d_next);
      x = x_hat + (s_next - s) * 0.5 * (slope + slope_next);
    }
    return x;
  }

 private:
  SigmaSpacing m_spacing;
  double m_rho, m_churn, m_shift;
};

}  // namespace

std::unique_ptr<Sampler> make_heun_sampler(const SampleConfig& config) {
  return std::make_unique<HeunSampler>(config);
}

}  // namespace difflab

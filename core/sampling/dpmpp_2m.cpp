// DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", Algorithm 2), the multistep
// second-order solver of the probability-flow ODE in the data-prediction form. In σ-space
// (α = 1) with λ = −log σ and h_i = λ_{i+1} − λ_i:
//   x_{i+1} = (σ_{i+1} / σ_i) x_i − (e^{−h_i} − 1) D_i,
// where D_i is x̂₀ at step i on the first step and the last (to σ = 0), and otherwise the
// extrapolation (1 + 1/(2 r_i)) x̂₀_i − 1/(2 r_i) x̂₀_{i−1} with r_i = h_{i−1} / h_i.
// One network evaluation per step.
#include <torch/torch.h>

#include <cmath>

#include "core/sampling/samplers.h"
#include "core/sampling/sigmas.h"

namespace difflab {
namespace {

class DpmppTwoMSampler : public Sampler {
 public:
  DpmppTwoMSampler(SigmaSpacing spacing, double rho) : m_spacing(spacing), m_rho(rho) {}

  at::Tensor sample(const Denoiser& denoiser, at::Tensor x_T, at::Generator&,
                    const StepCallback& callback) const override {
    const SigmaSpace space(denoiser, m_spacing, m_rho);
    auto x = space.from_vp(x_T);
    at::Tensor x0_prev;
    double h_prev = 0.0;
    for (int i = 0; i < space.steps(); ++i) {
      const auto d = space.denoise(x, i);
      if (!space.report(callback, i, x, d)) return {};
      const double s = space.sigma(i), s_next = space.sigma(i + 1);
      if (s_next <= 0.0) {
        x = d.x0;  // the limit of the update as σ_{i+1} → 0 (first order)
        break;
      }
      const double h = std::log(s) - std::log(s_next);
      auto x0 = d.x0;
      if (x0_prev.defined()) {
        const double r = h_prev / h;
        x0 = (1.0 + 1.0 / (2.0 * r)) * d.x0 - (1.0 / (2.0 * r)) * x0_prev;
      }
      x = (s_next / s) * x - std::expm1(-h) * x0;
      x0_prev = d.x0;
      h_prev = h;
    }
    return x;
  }

 private:
  SigmaSpacing m_spacing;
  double m_rho;
};

}  // namespace

std::unique_ptr<Sampler> make_dpmpp_2m_sampler(const SampleConfig& config) {
  return std::make_unique<DpmppTwoMSampler>(config.sigmas, config.karras_rho);
}

}  // namespace difflab

// DDIM sampling (Song et al. 2021, eq. 12): with ᾱ = ᾱ_t and ᾱ' = ᾱ_{t−1} of the
// (respaced) schedule,
//   σ = η √((1 − ᾱ') / (1 − ᾱ)) √(1 − ᾱ / ᾱ'),
//   x_{t−1} = √ᾱ' x̂₀ + √(1 − ᾱ' − σ²) ε̂ + σ z.
// η = 0 is deterministic; η = 1 matches DDPM's fixed-small variance. ddim_encode runs the
// η = 0 update backwards (inversion, §4.3 of the paper).
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "core/sampling/samplers.h"

namespace difflab {
namespace {

class DdimSampler : public Sampler {
 public:
  explicit DdimSampler(double eta) : m_eta(eta) {}

  at::Tensor sample(const Denoiser& denoiser, at::Tensor x, NoiseStreams& noise,
                    const StepCallback& callback) const override {
    const auto& diffusion = denoiser.diffusion();
    const int steps = diffusion.num_steps();
    for (int i = steps - 1; i >= 0; --i) {
      auto t = torch::full({x.size(0)}, i, torch::TensorOptions().dtype(torch::kLong).device(x.device()));
      auto [eps, x0] = denoiser(x, t, i);
      if (callback) {
        StepInfo info{steps - 1 - i, steps, diffusion.schedule().model_timestep(i), x, x0, eps};
        if (!callback(info)) return {};
      }
      const double ab = diffusion.schedule().alphas_cumprod()[i];
      const double ab_prev = diffusion.schedule().alphas_cumprod_prev()[i];
      const double sigma =
          m_eta * std::sqrt((1.0 - ab_prev) / (1.0 - ab)) * std::sqrt(1.0 - ab / ab_prev);
      const double dir = std::sqrt(std::max(1.0 - ab_prev - sigma * sigma, 0.0));
      x = std::sqrt(ab_prev) * x0 + dir * eps;
      if (i > 0 && sigma > 0.0) x = x + sigma * noise.like(x);
    }
    return x;
  }

 private:
  double m_eta;
};

}  // namespace

std::unique_ptr<Sampler> make_ddim_sampler(const SampleConfig& config) {
  return std::make_unique<DdimSampler>(config.eta);
}

at::Tensor ddim_encode(const Denoiser& denoiser, at::Tensor x, int refine) {
  const auto& schedule = denoiser.diffusion().schedule();
  const auto long_options = torch::TensorOptions().dtype(torch::kLong).device(x.device());
  auto rows = [&](int i) { return torch::full({x.size(0)}, i, long_options); };
  for (int i = 0; i < schedule.size(); ++i) {
    // From ᾱ' = ᾱ_{i−1} (1 before the first row) up to ᾱ = ᾱ_i: the decoding step
    // x' = √ᾱ' x̂₀ + √(1 − ᾱ') ε̂ solved for x = √ᾱ x̂₀ + √(1 − ᾱ) ε̂ at the same ε̂.
    const double ab_from = schedule.alphas_cumprod_prev()[i];
    const double ab_to = schedule.alphas_cumprod()[i];
    auto step = [&](const at::Tensor& eps) {
      auto x0 = (x - std::sqrt(1.0 - ab_from) * eps) / std::sqrt(ab_from);
      return std::sqrt(ab_to) * x0 + std::sqrt(1.0 - ab_to) * eps;
    };
    // ε̂ where we are (row i − 1; the clean input is taken as row 0, where σ ≈ 0).
    auto next = step(denoiser(x, rows(std::max(i - 1, 0)), std::max(i - 1, 0)).first);
    for (int k = 0; k < refine; ++k) next = step(denoiser(next, rows(i), i).first);
    x = next;
  }
  return x;
}

}  // namespace difflab

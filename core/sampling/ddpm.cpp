// Ancestral DDPM sampling (Ho et al. 2020, Algorithm 2), on any (respaced) schedule:
// x_{t−1} = μ̃_t(x̂₀, x_t) + σ_t z, with σ_t² = β̃_t ("fixed small"), β_t ("fixed large";
// improved-diffusion uses β̃_1 at t = 0 so the last step's variance is not β_0), or the
// model's own learned-range Σ_θ ("learned", Nichol & Dhariwal 2021, eq. 15; on a respaced
// schedule it interpolates between the respaced β_t and β̃_t, as improved-diffusion).
// Classifier guidance takes its ancestral form here (Dhariwal & Nichol 2021, Alg. 1):
// μ' = μ + s Σ ∇ₓ log p(y | x_t).
#include <torch/torch.h>

#include <stdexcept>

#include "core/sampling/samplers.h"

namespace difflab {
namespace {

class DdpmSampler : public Sampler {
 public:
  explicit DdpmSampler(VarianceKind variance) : m_variance(variance) {}

  at::Tensor sample(const Denoiser& denoiser, at::Tensor x, NoiseStreams& noise,
                    const StepCallback& callback) const override {
    const auto& diffusion = denoiser.diffusion();
    const int steps = diffusion.num_steps();
    const bool learned = m_variance == VarianceKind::Learned;
    if (learned && !denoiser.learns_variance())
      throw std::invalid_argument(
          "DDPM variance 'learned' needs a model trained with diffusion.learn_sigma = true; "
          "this one has a fixed variance (use fixed_small or fixed_large)");
    for (int i = steps - 1; i >= 0; --i) {
      auto t = torch::full({x.size(0)}, i, torch::TensorOptions().dtype(torch::kLong).device(x.device()));
      auto [eps, x0, learned_log_var] = denoiser.predict(x, t, /*classifier_eps=*/false, i);
      if (callback) {
        StepInfo info{steps - 1 - i, steps, diffusion.schedule().model_timestep(i), x, x0, eps};
        if (!callback(info)) return {};
      }
      auto mean = diffusion.q_posterior(x0, x, t).mean;
      auto log_var = learned ? learned_log_var : diffusion.fixed_log_variance(m_variance, t, x.dim());
      if (denoiser.classifier_enabled())
        mean = mean + torch::exp(log_var) * denoiser.classifier_gradient(x, t);
      if (i > 0) {
        x = mean + torch::exp(0.5 * log_var) * noise.like(x);
      } else {
        x = mean;
      }
    }
    return x;
  }

 private:
  VarianceKind m_variance;
};

}  // namespace

std::unique_ptr<Sampler> make_ddpm_sampler(const SampleConfig& config) {
  return std::make_unique<DdpmSampler>(config.variance);
}

}  // namespace difflab

#include "core/sampling/sampler.h"

#include <torch/torch.h>

#include <stdexcept>

#include "core/eval/noisy_classifier.h"
#include "core/sampling/samplers.h"

namespace difflab {

Denoiser::Denoiser(DenoiserNet net, const GaussianDiffusion& diffusion, at::Tensor labels,
                   double guidance, bool clip_denoised, ClassifierGuidance classifier)
    : m_net(std::move(net)),
      m_diffusion(diffusion),
      m_labels(std::move(labels)),
      m_guidance(guidance),
      m_clip(clip_denoised),
      m_classifier(std::move(classifier)) {}

at::Tensor Denoiser::classifier_gradient(const at::Tensor& xt, const at::Tensor& t) const {
  if (!classifier_enabled()) return {};
  return m_classifier.scale * m_classifier.gradient(xt, m_diffusion.model_timesteps(t), m_labels);
}

std::pair<at::Tensor, at::Tensor> Denoiser::predict(const at::Tensor& xt, const at::Tensor& t,
                                                    bool classifier_eps) const {
  const auto model_t = m_diffusion.model_timesteps(t);
  at::Tensor out;
  const bool conditional = m_labels.defined() && m_net->num_classes() > 0;
  if (conditional && m_guidance != 1.0) {
    // Classifier-free guidance (Ho & Salimans 2022): one forward over [x; x] with
    // [y; null], then ε_u + w (ε_c − ε_u). w = 0 is unconditional, w = 1 conditional.
    const auto b = xt.size(0);
    auto null = torch::full_like(m_labels, m_net->num_classes());
    auto both = m_net->forward(torch::cat({xt, xt}), torch::cat({model_t, model_t}),
                               torch::cat({m_labels, null}));
    auto cond = both.narrow(0, 0, b);
    auto uncond = both.narrow(0, b, b);
    out = uncond + m_guidance * (cond - uncond);
  } else {
    out = m_net->forward(xt, model_t, conditional ? m_labels : at::Tensor());
  }
  if (!classifier_eps || !classifier_enabled()) return m_diffusion.interpret(out, xt, t, m_clip);
  // Classifier guidance, DDIM form (Dhariwal & Nichol 2021, Alg. 2): shift ε̂, then x̂₀
  // follows from the shifted ε̂ (and is clipped as usual).
  auto [eps, x0] = m_diffusion.interpret(out, xt, t, false);
  eps = eps - m_diffusion.extract(m_diffusion.sqrt_one_minus_alphas_cumprod(), t, xt.dim()) *
                  classifier_gradient(xt, t);
  x0 = m_diffusion.x0_from_eps(xt, t, eps);
  if (m_clip) {
    x0 = x0.clamp(-1.0, 1.0);
    eps = m_diffusion.eps_from_x0(xt, t, x0);
  }
  return {eps, x0};
}

at::Tensor noise_like(const at::Tensor& like, at::Generator& gen) {
  auto z = torch::randn(like.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat32));
  return z.to(like.device());
}

std::unique_ptr<Sampler> make_sampler(const SampleConfig& config) {
  switch (config.sampler) {
    case SamplerKind::Ddpm: return make_ddpm_sampler(config.variance);
    case SamplerKind::Ddim: return make_ddim_sampler(config.eta);
    case SamplerKind::Count: break;
  }
  throw std::invalid_argument("bad sampler kind");
}

SampleResult run_sampling(const DenoiserNet& net, const NoiseSchedule& schedule,
                          Prediction prediction, const SampleRequest& request,
                          c10::Device device, const StepCallback& callback) {
  const SampleConfig& c = request.config;
  if (c.steps < 1 || c.steps > schedule.size())
    throw std::invalid_argument("sample.steps must be in [1, " + std::to_string(schedule.size()) +
                                "], got " + std::to_string(c.steps));
  // Loaded before inference mode: the classifier's weights must be ordinary tensors for
  // its gradient (see make_classifier_guidance).
  ClassifierGuidance classifier = request.classifier;
  if (!classifier.enabled())
    classifier = load_classifier_guidance(c, schedule.size(), device);
  const int num_classes = request.num_classes > 0 ? request.num_classes : classifier.num_classes;
  // Inference mode: no autograd bookkeeping at all (cheaper than no-grad); only the
  // classifier's gradient leaves it, in its own scope.
  c10::InferenceMode inference;
  // Eval mode for the run, the caller's mode restored on every exit (exceptions too).
  struct ModeGuard {
    const DenoiserNet& net;
    bool was_training;
    ~ModeGuard() { net->train(was_training); }
  } mode_guard{net, net->is_training()};
  net->eval();

  GaussianDiffusion diffusion(c.steps == schedule.size() ? schedule : schedule.respaced(c.steps),
                              prediction, device);
  SampleResult result;
  at::Tensor labels;
  if (num_classes > 0) {
    if (c.class_label >= num_classes)
      throw std::invalid_argument("class " + std::to_string(c.class_label) +
                                  " is out of range: the model has " +
                                  std::to_string(num_classes) + " classes");
    result.labels = c.class_label >= 0
                        ? torch::full({c.n}, c.class_label, torch::kLong)
                        : torch::arange(c.n, torch::kLong).remainder(num_classes);
    labels = result.labels.to(device);
  } else {
    result.labels = torch::full({c.n}, -1, torch::kLong);
  }

  auto gen = at::make_generator<at::CPUGeneratorImpl>(c.seed);
  std::vector<int64_t> shape = {c.n};
  shape.insert(shape.end(), request.shape.begin(), request.shape.end());
  auto x = torch::randn(shape, gen, torch::TensorOptions().dtype(torch::kFloat32)).to(device);

  Denoiser denoiser(net, diffusion, labels, c.guidance, c.clip_denoised, classifier);
  auto sampler = make_sampler(c);
  auto record = [&](const StepInfo& info) {
    if (request.record_trajectory) {
      // Half precision keeps a 1000-step run of 64 MNIST images at ~300 MB.
      auto compact = [](const at::Tensor& v) { return v.to(torch::kCPU, torch::kHalf); };
      result.trajectory.timesteps.push_back(info.timestep);
      result.trajectory.x_t.push_back(compact(info.x_t));
      result.trajectory.x0.push_back(compact(info.x0));
      result.trajectory.eps.push_back(compact(info.eps));
    }
    return callback ? callback(info) : true;
  };
  auto out = sampler->sample(denoiser, x, gen, record);
  if (!out.defined()) {
    result.cancelled = true;
    return result;
  }
  result.images = out.to(torch::kCPU, torch::kFloat32);
  return result;
}

}  // namespace difflab

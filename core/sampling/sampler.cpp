#include "core/sampling/sampler.h"

#include <torch/torch.h>

#include <optional>

#include <stdexcept>

#include "core/sampling/samplers.h"

namespace difflab {

Denoiser::Denoiser(DenoiserNet net, const GaussianDiffusion& diffusion, at::Tensor labels,
                   double guidance, bool clip_denoised, const NoiseSchedule* model_schedule,
                   ClassifierGuidance classifier)
    : m_net(std::move(net)),
      m_diffusion(diffusion),
      m_model_schedule(model_schedule),
      m_labels(std::move(labels)),
      m_guidance(guidance),
      m_clip(clip_denoised),
      m_classifier(std::move(classifier)) {}

bool Denoiser::learns_variance() const { return m_net->learns_variance(); }

at::Tensor Denoiser::classifier_gradient(const at::Tensor& xt, const at::Tensor& t) const {
  if (!classifier_enabled()) return {};
  return m_classifier.scale * m_classifier.gradient(xt, m_diffusion.model_timesteps(t), m_labels);
}

ModelOutput Denoiser::forward(const at::Tensor& xt, const at::Tensor& model_t) const {
  const bool conditional = m_labels.defined() && m_net->num_classes() > 0;
  if (conditional && m_guidance == 0.0)  // w = 0 is the unconditional model alone: one forward
    return split_model_output(m_net->forward(xt, model_t, torch::full_like(m_labels, m_net->num_classes())),
                              learns_variance());
  if (conditional && m_guidance != 1.0) {
    // Classifier-free guidance (Ho & Salimans 2022): one forward over [x; x] with
    // [y; null], then ε_u + w (ε_c − ε_u). w = 0 is unconditional, w = 1 conditional.
    // A learned variance half keeps the conditional branch's value.
    const auto b = xt.size(0);
    auto null = torch::full_like(m_labels, m_net->num_classes());
    auto both = m_net->forward(torch::cat({xt, xt}), torch::cat({model_t, model_t}),
                               torch::cat({m_labels, null}));
    auto cond = split_model_output(both.narrow(0, 0, b), learns_variance());
    auto uncond = split_model_output(both.narrow(0, b, b), learns_variance());
    return {uncond.prediction + m_guidance * (cond.prediction - uncond.prediction), cond.variance};
  }
  return split_model_output(m_net->forward(xt, model_t, conditional ? m_labels : at::Tensor()),
                            learns_variance());
}

std::pair<at::Tensor, at::Tensor> Denoiser::operator()(const at::Tensor& xt,
                                                       const at::Tensor& t) const {
  auto out = predict(xt, t);
  return {out.eps, out.x0};
}

DenoiserOutput Denoiser::predict(const at::Tensor& xt, const at::Tensor& t, bool classifier_eps) const {
  const ModelOutput parts = forward(xt, m_diffusion.model_timesteps(t));
  DenoiserOutput result;
  if (parts.variance.defined())
    result.log_variance = m_diffusion.learned_range_log_variance(parts.variance, t);
  if (!classifier_eps || !classifier_enabled()) {
    std::tie(result.eps, result.x0) = m_diffusion.interpret(parts.prediction, xt, t, m_clip);
    return result;
  }
  // Classifier guidance, DDIM form (Dhariwal & Nichol 2021, Alg. 2): shift ε̂, then x̂₀
  // follows from the shifted ε̂ (and is clipped as usual).
  auto [eps, x0] = m_diffusion.interpret(parts.prediction, xt, t, false);
  eps = eps - m_diffusion.extract(m_diffusion.sqrt_one_minus_alphas_cumprod(), t, xt.dim()) *
                  classifier_gradient(xt, t);
  x0 = m_diffusion.x0_from_eps(xt, t, eps);
  if (m_clip) {
    x0 = x0.clamp(-1.0, 1.0);
    eps = m_diffusion.eps_from_x0(xt, t, x0);
  }
  result.eps = eps;
  result.x0 = x0;
  return result;
}

std::pair<at::Tensor, at::Tensor> Denoiser::at_timestep(const at::Tensor& xt, double model_t,
                                                        double alpha_bar) const {
  auto t = torch::full({xt.size(0)}, model_t,
                       torch::TensorOptions().dtype(torch::kFloat32).device(xt.device()));
  auto out = forward(xt, t).prediction;
  // GaussianDiffusion::interpret with a scalar ᾱ: the same formulas (x_t = √ᾱ x₀ + √(1−ᾱ) ε,
  // v = √ᾱ ε − √(1−ᾱ) x₀).
  const double a = std::sqrt(alpha_bar), b = std::sqrt(1.0 - alpha_bar);
  at::Tensor eps, x0;
  switch (m_diffusion.prediction()) {
    case Prediction::Eps:
      eps = out;
      x0 = (xt - b * eps) / a;
      break;
    case Prediction::X0: x0 = out; break;
    case Prediction::V: x0 = a * xt - b * out; break;
    case Prediction::Count: break;
  }
  if (m_diffusion.prediction() != Prediction::Eps) eps = (xt - a * x0) / b;
  if (classifier_enabled()) {
    // Classifier guidance in its DDIM form, at this fractional timestep.
    eps = eps - b * m_classifier.scale * m_classifier.gradient(xt, t, m_labels);
    x0 = (xt - b * eps) / a;
  }
  if (m_clip) {
    x0 = x0.clamp(-1.0, 1.0);
    eps = (xt - a * x0) / b;
  }
  return {eps, x0};
}

at::Tensor noise_like(const at::Tensor& like, at::Generator& gen) {
  auto z = torch::randn(like.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat32));
  return z.to(like.device());
}

SamplingModel sampling_model(DenoiserNet net, const DiffusionConfig& diffusion,
                             const DataShape& shape) {
  SamplingModel model;
  model.num_classes = net->num_classes();
  model.net = std::move(net);
  model.schedule = NoiseSchedule::named(diffusion.schedule, diffusion.timesteps);
  model.prediction = diffusion.prediction;
  model.shape = shape.points ? std::vector<int64_t>{2}
                             : std::vector<int64_t>{shape.channels, shape.height, shape.width};
  return model;
}

SampleResult run_sampling(const SamplingModel& model, const SampleRequest& request,
                          c10::Device device, const StepCallback& callback) {
  const SampleConfig& c = request.config;
  const NoiseSchedule& schedule = model.schedule;
  const DenoiserNet& net = model.net;
  if (c.steps < 1 || c.steps > schedule.size())
    throw std::invalid_argument("sample.steps must be in [1, " + std::to_string(schedule.size()) +
                                "], got " + std::to_string(c.steps));
  // Classifier guidance comes in loaded: its weights must be ordinary tensors (made outside
  // the inference mode below) for its gradient (see make_classifier_guidance).
  const ClassifierGuidance& classifier = request.classifier;
  if (!c.classifier.empty() && c.classifier_scale != 0.0 && !classifier.enabled())
    throw std::invalid_argument("sample.classifier " + c.classifier +
                                " is not loaded: resolve it with load_classifier_guidance "
                                "(core/eval/noisy_classifier.h) into SampleRequest::classifier");
  const int num_classes = model.num_classes > 0 ? model.num_classes : classifier.num_classes;
  // Inference mode: no autograd bookkeeping at all (cheaper than no-grad); only the
  // classifier's gradient leaves it, in its own scope.
  c10::InferenceMode inference;
  // The caller's modes come back on every exit (the wrapper below is built fresh, so it
  // is not the one to guard: restoring its default mode would put both nets in training).
  EvalModeGuard eval_mode(net);
  std::optional<EvalModeGuard> control_mode;
  // A ControlNet wraps the base into one DenoiserNet, so every sampler runs it unchanged.
  DenoiserNet network = net;
  if (request.control.enabled()) {
    control_mode.emplace(request.control.net);
    const auto& hint = request.control.hint;
    if (hint.size(0) != 1 && hint.size(0) != c.n)
      throw std::invalid_argument("ControlNet: " + std::to_string(hint.size(0)) +
                                  " hints for " + std::to_string(c.n) + " samples (give 1 or " +
                                  std::to_string(c.n) + ")");
    network = std::make_shared<ControlledNetImpl>(net, request.control.net, hint.to(device),
                                                  request.control.scale);
  }

  GaussianDiffusion diffusion(c.steps == schedule.size() ? schedule : schedule.respaced(c.steps),
                              model.prediction, device);
  SampleResult result;
  at::Tensor labels;
  if (num_classes > 0) {
    if (c.class_label >= num_classes)
      throw std::invalid_argument("class " + std::to_string(c.class_label) +
                                  " is out of range: the model has " +
                                  std::to_string(num_classes) + " classes");
    if (request.labels.defined()) {
      if (request.labels.dim() != 1 || request.labels.size(0) != c.n ||
          request.labels.min().item<int64_t>() < 0 ||
          request.labels.max().item<int64_t>() >= num_classes)
        throw std::invalid_argument("sampling needs one label in [0, " +
                                    std::to_string(num_classes) + ") per image");
      result.labels = request.labels.to(torch::kCPU, torch::kLong);
    } else {
      result.labels = c.class_label >= 0
                          ? torch::full({c.n}, c.class_label, torch::kLong)
                          : torch::arange(c.n, torch::kLong).remainder(num_classes);
    }
    labels = result.labels.to(device);
  } else {
    result.labels = torch::full({c.n}, -1, torch::kLong);
  }

  auto gen = at::make_generator<at::CPUGeneratorImpl>(c.seed);
  std::vector<int64_t> shape = {c.n};
  shape.insert(shape.end(), model.shape.begin(), model.shape.end());
  auto x = torch::randn(shape, gen, torch::TensorOptions().dtype(torch::kFloat32)).to(device);

  Denoiser denoiser(network, diffusion, labels, c.guidance, c.clip_denoised, &schedule, classifier);
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

#include "core/sampling/sampler.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <stdexcept>

#include "core/sampling/field.h"
#include "core/sampling/sampler_registry.h"
#include "core/sampling/samplers.h"
#include "core/util/device_copy.h"

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

at::Tensor Denoiser::net_forward(const DenoiserNet& net, const at::Tensor& x, const at::Tensor& t,
                                 const at::Tensor& y) const {
  if (!m_bf16) return net->forward(x, t, y);
  at::Tensor out;
  {
    PrecisionScope scope(true, x.device());
    out = net->forward(x, t, y);
  }
  return out.to(torch::kFloat32);
}

double Denoiser::guidance_at(double sigma) const {
  const bool above = m_interval_lo <= 0.0 || sigma > m_interval_lo;
  const bool below = m_interval_hi <= 0.0 || sigma <= m_interval_hi;
  return above && below ? m_guidance : 1.0;
}

ModelOutput Denoiser::forward(const at::Tensor& xt, const at::Tensor& model_t, double w,
                              const at::Tensor& w_rows) const {
  const bool conditional = m_labels.defined() && m_net->num_classes() > 0;
  // Mixes a guided answer from `lo` (w = 0) and `hi` (w = 1), with w or one w per image.
  const auto mix = [&](const ModelOutput& hi, const ModelOutput& lo) -> ModelOutput {
    const auto delta = hi.prediction - lo.prediction;
    if (!w_rows.defined()) return {lo.prediction + w * delta, hi.variance};
    std::vector<int64_t> shape(static_cast<size_t>(xt.dim()), 1);
    shape[0] = xt.size(0);
    return {lo.prediction + w_rows.to(delta.options()).reshape(shape) * delta, hi.variance};
  };
  if (m_guide && (w_rows.defined() || w != 1.0)) {
    // Autoguidance: both models at the same class (or both unconditional), two forwards
    // (the nets differ, so they cannot share a batch).
    const at::Tensor y = conditional ? m_labels : at::Tensor();
    return mix(split_model_output(net_forward(xt, model_t, y), learns_variance()),
               split_model_output(net_forward(m_guide, xt, model_t, y), m_guide->learns_variance()));
  }
  if (conditional && !w_rows.defined() && w == 0.0)  // the unconditional model alone: one forward
    return split_model_output(net_forward(xt, model_t, torch::full_like(m_labels, m_net->num_classes())),
                              learns_variance());
  if (conditional && (w_rows.defined() || w != 1.0)) {
    // Classifier-free guidance (Ho & Salimans 2022): one forward over [x; x] with
    // [y; null], then ε_u + w (ε_c − ε_u). w = 0 is unconditional, w = 1 conditional.
    // A learned variance half keeps the conditional branch's value.
    const auto b = xt.size(0);
    auto null = torch::full_like(m_labels, m_net->num_classes());
    auto both = net_forward(torch::cat({xt, xt}), torch::cat({model_t, model_t}),
                               torch::cat({m_labels, null}));
    return mix(split_model_output(both.narrow(0, 0, b), learns_variance()),
               split_model_output(both.narrow(0, b, b), learns_variance()));
  }
  return split_model_output(net_forward(xt, model_t, conditional ? m_labels : at::Tensor()),
                            learns_variance());
}

std::pair<at::Tensor, at::Tensor> Denoiser::operator()(const at::Tensor& xt,
                                                       const at::Tensor& t, int row) const {
  auto out = predict(xt, t, true, row);
  return {out.eps, out.x0};
}

DenoiserOutput Denoiser::predict(const at::Tensor& xt, const at::Tensor& t, bool classifier_eps,
                                 int row) const {
  double w = m_guidance;
  at::Tensor w_rows;
  const auto sigma_of_row = [&](int64_t r) {
    const double ab = m_diffusion.schedule().alphas_cumprod().at(static_cast<size_t>(r));
    return std::sqrt((1.0 - ab) / ab);
  };
  const bool guided = (m_labels.defined() || m_guide) && m_guidance != 1.0;
  if (interval_set() && guided && row >= 0) w = guidance_at(sigma_of_row(row));
  if (interval_set() && guided && row < 0) {
    // σ of each image's schedule row, read on the host (one small copy a step, only with
    // an interval); samplers ask with one row for all images, so one w normally serves.
    const auto rows = t.to(torch::kCPU, torch::kLong).contiguous();
    std::vector<float> weights(static_cast<size_t>(rows.numel()));
    for (size_t i = 0; i < weights.size(); ++i)
      weights[i] = static_cast<float>(guidance_at(sigma_of_row(rows.data_ptr<int64_t>()[i])));
    if (std::all_of(weights.begin(), weights.end(), [&](float v) { return v == weights[0]; }))
      w = weights.empty() ? w : weights[0];
    else
      w_rows = torch::tensor(weights).to(xt.device());
  }
  const ModelOutput parts = forward(xt, m_diffusion.model_timesteps(t), w, w_rows);
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
  auto out = forward(xt, t, guidance_at(std::sqrt((1.0 - alpha_bar) / alpha_bar))).prediction;
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

std::pair<at::Tensor, at::Tensor> Denoiser::at_sigma(const at::Tensor& x, double sigma) const {
  // Karras et al. 2022, eq. 7: the network sees c_in x at its time for c_noise
  // (objectives.h); classifier-free guidance mixes F, which D and ε̂ follow linearly.
  const EdmScalings c = edm_scalings(sigma, m_objective.sigma_data);
  auto t = torch::full({x.size(0)}, edm_network_time(sigma, m_objective),
                       torch::TensorOptions().dtype(torch::kFloat32).device(x.device()));
  const auto F = forward(c.c_in * x, t, guidance_at(sigma)).prediction;
  auto x0 = c.c_skip * x + c.c_out * F;
  if (m_clip) x0 = x0.clamp(-1.0, 1.0);
  return {(x - x0) / sigma, x0};
}

FlowOutput Denoiser::at_flow_time(const at::Tensor& xt, double t) const {
  auto tn = torch::full({xt.size(0)}, t * m_objective.time_scale,
                        torch::TensorOptions().dtype(torch::kFloat32).device(xt.device()));
  FlowOutput out;
  // x_t / (1 − t) = x₀ + σ ε with σ = t / (1 − t): the interval's noise level.
  const double sigma = t < 1.0 ? t / (1.0 - t) : std::numeric_limits<double>::infinity();
  out.velocity = forward(xt, tn, guidance_at(sigma)).prediction;
  out.x0 = xt - t * out.velocity;
  if (m_clip && t > 0.0) {
    // x_t = (1 − t) x̂₀ + t ε̂ with the clipped x̂₀: v̂ = ε̂ − x̂₀ = (x_t − x̂₀) / t.
    out.x0 = out.x0.clamp(-1.0, 1.0);
    out.velocity = (xt - out.x0) / t;
  }
  out.eps = xt + (1.0 - t) * out.velocity;
  return out;
}

uint64_t NoiseStreams::image_seed(uint64_t seed, int64_t index) {
  // SplitMix64 (Steele et al. 2014) over seed and index: a cheap, well-mixed hash.
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (static_cast<uint64_t>(index) + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

NoiseStreams::NoiseStreams(uint64_t seed, int64_t first, int64_t count) {
  m_gens.reserve(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i)
    m_gens.push_back(at::make_generator<at::CPUGeneratorImpl>(image_seed(seed, first + i)));
}

at::Tensor NoiseStreams::draw(at::IntArrayRef row_shape) {
  std::vector<int64_t> shape = {size()};
  shape.insert(shape.end(), row_shape.begin(), row_shape.end());
  auto out = torch::empty(shape, torch::kFloat32);
  for (int64_t i = 0; i < size(); ++i) {
    auto row = out[i];
    row.normal_(0.0, 1.0, m_gens[static_cast<size_t>(i)]);
  }
  return out;
}

at::Tensor NoiseStreams::like(const at::Tensor& like) {
  if (like.size(0) != size())
    throw std::logic_error("NoiseStreams: " + std::to_string(like.size(0)) + " rows for " +
                           std::to_string(size()) + " streams");
  return to_device(draw(like.sizes().slice(1)), like.device());
}

int64_t sample_chunk_size(const SampleConfig& config, c10::Device device, Precision precision,
                          const std::vector<int64_t>& shape) {
  if (config.chunk > 0) return config.chunk;
  if (shape.size() < 3) return std::max<int64_t>(config.n, 1);  // points: one batch
  const int64_t per_forward = device.is_cuda()                  ? 2048
                              : precision == Precision::Bf16 ? kCpuSampleForwardBatchBf16
                                                             : kCpuSampleForwardBatchFp32;
  const int64_t pixels = std::max<int64_t>(1, shape[1] * shape[2]);
  const int64_t images = std::max<int64_t>(1, per_forward * 28 * 28 / pixels);
  // Classifier-free guidance doubles the batch; autoguidance runs two separate ones.
  const bool doubled = config.guidance != 0.0 && config.guidance != 1.0 && config.guide_model.empty();
  return std::max<int64_t>(1, doubled ? images / 2 : images);
}

SamplingModel sampling_model(DenoiserNet net, const DiffusionConfig& diffusion,
                             const DataShape& shape) {
  SamplingModel model;
  model.num_classes = net->num_classes();
  model.net = std::move(net);
  model.schedule = NoiseSchedule::named(diffusion.schedule, diffusion.timesteps);
  model.prediction = diffusion.prediction;
  model.objective = ObjectiveParams::from(diffusion);
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
  const Objective objective = model.objective.objective;
  check_sampler_applies(c.sampler, objective);
  if (objective != Objective::Ddpm && classifier.enabled())
    throw std::invalid_argument(
        "classifier guidance needs a model trained with diffusion.objective = ddpm (the noisy "
        "classifier knows DDPM's timesteps); this one is " + std::string(to_string(objective)) +
        " (classifier-free guidance, sample.guidance, works with every objective)");
  const int num_classes = model.num_classes > 0 ? model.num_classes : classifier.num_classes;
  // bf16 or fp32 for this network (auto measures once per machine and network, at the
  // fp32 chunk's batch), then the chunk that suits the precision.
  const bool guided = c.guidance != 0.0 && c.guidance != 1.0 && model.num_classes > 0;
  PrecisionProbe probe;
  probe.training = false;
  const int64_t fp32_chunk =
      std::min<int64_t>(c.n, sample_chunk_size(c, device, Precision::Fp32, model.shape));
  probe.batch = guided ? 2 * fp32_chunk : fp32_chunk;
  probe.shape.points = model.shape.size() == 1;
  if (!probe.shape.points) {
    probe.shape.channels = static_cast<int>(model.shape[0]);
    probe.shape.height = static_cast<int>(model.shape[1]);
    probe.shape.width = static_cast<int>(model.shape[2]);
  }
  const PrecisionChoice precision = resolve_precision(c.precision, net, probe, device);
  const int64_t chunk =
      std::min<int64_t>(c.n, sample_chunk_size(c, device, precision.chosen, model.shape));
  // Inference mode: no autograd bookkeeping at all (cheaper than no-grad); only the
  // classifier's gradient leaves it, in its own scope.
  c10::InferenceMode inference;
  // The caller's modes come back on every exit (the wrapper below is built fresh, so it
  // is not the one to guard: restoring its default mode would put both nets in training).
  EvalModeGuard eval_mode(net);
  std::optional<EvalModeGuard> control_mode;
  // A ControlNet wraps the base into one DenoiserNet, so every sampler runs it unchanged.
  DenoiserNet network = net;
  std::optional<EvalModeGuard> guide_mode;
  if (request.guide) {
    if (request.control.enabled())
      throw std::invalid_argument(
          "autoguidance (sample.guide_model) does not combine with a ControlNet: the "
          "ControlNet steers one base model; clear sample.guide_model to sample with it");
    if (request.guide->num_classes() != net->num_classes())
      throw std::invalid_argument("autoguidance: the guide model has " +
                                  std::to_string(request.guide->num_classes()) +
                                  " classes, the model " + std::to_string(net->num_classes()));
    guide_mode.emplace(request.guide);
  }
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
  result.precision = precision;
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

  // One sampler run per chunk of images, each with its images' own noise streams, so a
  // seed gives the same images whatever the chunk size (up to float rounding of batched
  // kernels). Steps are reported over the whole run: index runs 0 .. chunks·steps − 1.
  const int64_t chunks = (c.n + chunk - 1) / chunk;
  const auto& hint = request.control.hint;
  auto sampler = make_sampler(c);
  std::vector<at::Tensor> outputs;
  std::vector<Trajectory> trajectories;
  for (int64_t k = 0; k < chunks; ++k) {
    const int64_t first = k * chunk, count = std::min(chunk, c.n - first);
    NoiseStreams noise(c.seed, first, count);
    auto x = noise.draw(model.shape).to(device);
    at::Tensor chunk_labels = labels.defined() ? labels.narrow(0, first, count) : labels;
    DenoiserNet chunk_net = network;
    if (request.control.enabled() && hint.size(0) > 1 && chunks > 1)
      chunk_net = std::make_shared<ControlledNetImpl>(net, request.control.net,
                                                      hint.narrow(0, first, count).to(device),
                                                      request.control.scale);
    Denoiser denoiser(chunk_net, diffusion, chunk_labels, c.guidance, c.clip_denoised, &schedule,
                      classifier);
    denoiser.set_bf16(precision.chosen == Precision::Bf16);
    denoiser.set_objective(model.objective);
    denoiser.set_guidance_interval(c.guidance_sigma_min, c.guidance_sigma_max);
    denoiser.set_guide(request.guide);
    Trajectory trajectory;
    trajectory.velocity = objective == Objective::FlowMatching;
    auto record = [&](const StepInfo& info) {
      if (request.record_trajectory) {
        // Half precision keeps a 1000-step run of 64 MNIST images at ~300 MB.
        auto compact = [](const at::Tensor& v) { return v.to(torch::kCPU, torch::kHalf); };
        trajectory.timesteps.push_back(info.timestep);
        trajectory.x_t.push_back(compact(info.x_t));
        trajectory.x0.push_back(compact(info.x0));
        trajectory.eps.push_back(compact(info.eps));
      }
      if (!callback) return true;
      const StepInfo whole{static_cast<int>(k) * info.total + info.index,
                           static_cast<int>(chunks) * info.total, info.timestep, info.x_t, info.x0,
                           info.eps};
      return callback(whole);
    };
    auto out = sampler->sample(denoiser, x, noise, record);
    if (!out.defined()) {
      result.cancelled = true;
      return result;
    }
    outputs.push_back(out.to(torch::kCPU, torch::kFloat32));
    if (request.record_trajectory) trajectories.push_back(std::move(trajectory));
  }
  result.images = outputs.size() == 1 ? outputs.front() : torch::cat(outputs, 0);
  if (request.record_trajectory) {
    if (trajectories.size() == 1) {
      result.trajectory = std::move(trajectories.front());
    } else {
      Trajectory& all = result.trajectory;
      all.timesteps = trajectories.front().timesteps;
      all.velocity = trajectories.front().velocity;
      auto gather = [&](std::vector<at::Tensor> Trajectory::*field, size_t step) {
        std::vector<at::Tensor> parts;
        for (auto& tr : trajectories) parts.push_back((tr.*field)[step]);
        return torch::cat(parts, 0);
      };
      for (size_t i = 0; i < all.timesteps.size(); ++i) {
        all.x_t.push_back(gather(&Trajectory::x_t, i));
        all.x0.push_back(gather(&Trajectory::x0, i));
        all.eps.push_back(gather(&Trajectory::eps, i));
      }
    }
  }
  return result;
}

}  // namespace difflab

namespace difflab {

at::Tensor sampling_field(const SamplingModel& model, const at::Tensor& points, int timestep,
                          int64_t label, double guidance, c10::Device device,
                          double guidance_sigma_min, double guidance_sigma_max,
                          const DenoiserNet& guide) {
  if (model.shape.size() != 1)
    throw std::invalid_argument("sampling_field: a field is drawn for point models only");
  if (points.dim() != 2 || points.size(1) != model.shape[0])
    throw std::invalid_argument("sampling_field: points must be (G, " +
                                std::to_string(model.shape[0]) + ")");
  c10::InferenceMode inference;
  EvalModeGuard eval_mode(model.net);
  GaussianDiffusion diffusion(model.schedule, model.prediction, device);
  const int64_t g = points.size(0);
  at::Tensor labels;
  if (label >= 0 && model.num_classes > 0) {
    if (label >= model.num_classes)
      throw std::invalid_argument("sampling_field: class " + std::to_string(label) +
                                  " is out of range");
    labels = torch::full({g}, label, torch::kLong).to(device);
  }
  std::optional<EvalModeGuard> guide_mode;
  if (guide) guide_mode.emplace(guide);
  Denoiser denoiser(model.net, diffusion, labels, labels.defined() || guide ? guidance : 1.0,
                    /*clip_denoised=*/false);
  denoiser.set_objective(model.objective);
  denoiser.set_guidance_interval(guidance_sigma_min, guidance_sigma_max);
  denoiser.set_guide(guide);
  const auto x = points.to(device, torch::kFloat32);
  const ObjectiveParams& p = model.objective;
  at::Tensor field;
  switch (p.objective) {
    case Objective::FlowMatching: {
      const double t = std::clamp(timestep / static_cast<double>(p.time_scale), 1e-4, 1.0);
      field = -denoiser.at_flow_time(x, t).velocity;
      break;
    }
    case Objective::Edm: {
      // Trajectories record EDM's x on the variance-preserving scale, x / √(1 + σ²)
      // (SigmaSpace::report): the network sees a·x, and the score there is a times the
      // variance-exploding one, −ε̂ / σ.
      const double sigma = edm_sigma_of_network_time(timestep, p);
      const double a = std::sqrt(1.0 + sigma * sigma);
      field = -a * denoiser.at_sigma(x * a, sigma).first / sigma;
      break;
    }
    default: {
      const int row = std::clamp(timestep, 0, model.schedule.size() - 1);
      const double alpha_bar = model.schedule.alphas_cumprod()[static_cast<size_t>(row)];
      const auto t = torch::full({g}, static_cast<int64_t>(row), torch::kLong).to(device);
      field = -denoiser(x, t).first / std::sqrt(std::max(1.0 - alpha_bar, 1e-12));
      break;
    }
  }
  return field.to(torch::kCPU, torch::kFloat32).contiguous();
}

}  // namespace difflab

#include "core/eval/control_eval.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <stdexcept>

#include "core/eval/noisy_classifier.h"
#include "core/sampling/sampler.h"
#include "core/sampling/sampler_registry.h"
#include "core/vision/canny.h"
#include "core/vision/edge_metrics.h"

namespace difflab {
namespace {

// (n, C, H, W) in [−1, 1] → (n, 1, H, W) in [0, 1], grey as the trainer's hints see it.
at::Tensor unit_gray(const at::Tensor& images) {
  return to_gray(((images + 1.0) * 0.5).clamp(0.0, 1.0));
}

// Mixed ControlNets are probed and scored with canny hints.
HintKind probe_kind(HintKind kind) { return kind == HintKind::Mixed ? HintKind::Canny : kind; }

// (n) indices spread over the whole test split (loaders may keep it ordered by class).
at::Tensor spread(int64_t n, int64_t size) {
  return torch::arange(n, torch::kLong).mul(size).div(n, "floor");
}

}  // namespace

at::Tensor hint_scores(const at::Tensor& maps, const at::Tensor& reference, HintKind kind,
                       int tolerance) {
  if (maps.sizes() != reference.sizes() || maps.dim() != 4 || maps.size(1) != 1)
    throw std::invalid_argument("hint_scores: needs two (n, 1, H, W) maps of one shape");
  torch::NoGradGuard no_grad;
  if (kind == HintKind::Distance)
    return (maps.to(torch::kFloat32) - reference.to(torch::kFloat32)).abs().mean({1, 2, 3});
  if (kind == HintKind::Mask) {
    const auto a = maps > 0.5, b = reference > 0.5;
    const auto inter = (a & b).sum({1, 2, 3}).to(torch::kFloat32);
    const auto uni = (a | b).sum({1, 2, 3}).to(torch::kFloat32);
    return torch::where(uni > 0, inter / uni.clamp_min(1.0f), torch::ones_like(uni));
  }
  return edge_f1(maps, reference, tolerance).f1;
}

HintCurve make_hint_curve(const DatasetSplits& data, const ControlNetConfig& cn,
                          const HintCurveOptions& options) {
  torch::NoGradGuard no_grad;
  const int64_t n = std::min<int64_t>(options.n, data.test.size());
  if (n < 1) throw std::invalid_argument("the hint-following curve needs test images");
  if (data.shape.points) throw std::invalid_argument("the hint-following curve needs images, not 2-D points");
  HintCurve curve;
  curve.kind = probe_kind(cn.hint);
  curve.map_options = hint_map_options(cn, curve.kind);
  curve.tolerance = options.tolerance;
  curve.sample.sampler = SamplerKind::Ddim;
  curve.sample.eta = 0.0;
  curve.sample.steps = options.steps;
  curve.sample.seed = options.seed;
  curve.sample.n = static_cast<int>(n);
  curve.sample.class_label = -1;
  const auto images = gather_batch(data.test, spread(n, data.test.size()));
  curve.reference = hint_map(unit_gray(images), curve.kind, curve.map_options);
  curve.hints = make_hint(curve.reference, curve.kind);
  return curve;
}

double hint_curve_score(const HintCurve& curve, const SamplingModel& model,
                        const ControlNet& control, double scale, c10::Device device,
                        const StepCallback& callback) {
  torch::NoGradGuard no_grad;
  SamplingModel unconditional = model;
  unconditional.num_classes = 0;  // the hint alone decides what is drawn
  SampleRequest request;
  request.config = curve.sample;
  // DDIM where it applies (ddpm); otherwise the objective's own ODE sampler, same steps.
  if (!sampler_applies(request.config.sampler, model.objective.objective))
    request.config.sampler = default_sampler(model.objective.objective);
  if (control) request.control = {control, curve.hints.to(device), scale};
  const SampleResult result = run_sampling(unconditional, request, device, callback);
  if (result.cancelled || !result.images.defined()) return std::nan("");
  const auto maps = hint_map(unit_gray(result.images), curve.kind, curve.map_options);
  return hint_scores(maps, curve.reference, curve.kind, curve.tolerance).mean().item<double>();
}

ControlEvalResult evaluate_controlnet(const LoadedControlNet& control, const DatasetSplits& data,
                                      const ControlEvalOptions& options, c10::Device device) {
  const auto start = std::chrono::steady_clock::now();
  const int64_t n = std::min<int64_t>(options.n, data.test.size());
  if (n < 1) throw std::invalid_argument("the ControlNet evaluation needs test images");
  const auto& shape = control.base_info.shape;
  if (data.shape.channels != shape.channels || data.shape.height != shape.height ||
      data.shape.width != shape.width)
    throw std::invalid_argument("the dataset's images are not the shape the base model was trained on");
  const auto& cn = control.config.controlnet;
  ControlEvalResult r;
  r.kind = probe_kind(options.kind.value_or(cn.hint));
  r.metric = hint_metric(r.kind);
  if (options.edge_scale < 1) throw std::invalid_argument("edge_scale must be >= 1");
  if (options.edge_scale > 1 && r.kind != HintKind::Canny)
    throw std::invalid_argument("edge_scale applies to canny hints only, not " +
                                std::string(to_string(r.kind)));
  const HintMapOptions map_options = hint_map_options(cn, r.kind);
  // The kind's map of pictures in [−1, 1], for canny at `scale` × their size.
  auto map_of = [&](const at::Tensor& images, int scale) {
    auto unit = unit_gray(images);
    if (scale > 1) {
      namespace F = torch::nn::functional;
      unit = F::interpolate(unit, F::InterpolateFuncOptions()
                                      .scale_factor(std::vector<double>{double(scale), double(scale)})
                                      .mode(torch::kBilinear)
                                      .align_corners(false)
                                      .recompute_scale_factor(false));
    }
    return hint_map(unit, r.kind, map_options);
  };

  const auto index = spread(n, data.test.size());
  r.images = gather_batch(data.test, index);
  r.hints = map_of(r.images, 1);
  r.reference = options.edge_scale > 1 ? map_of(r.images, options.edge_scale) : r.hints;
  SamplingModel model = sampling_model(control);
  SampleRequest request;
  request.config = options.sample;
  request.config.n = static_cast<int>(n);
  request.classifier = load_classifier_guidance(request.config, model, device);
  if (options.class_labels && model.num_classes > 0)
    request.labels = data.test.labels.index_select(0, index);
  else
    model.num_classes = 0;  // unconditional: the net sees its null class
  r.without_samples = run_sampling(model, request, device).images;
  request.control = {control.net, make_hint(r.hints, r.kind), options.scale};
  r.with_samples = run_sampling(model, request, device).images;

  const int k = options.edge_scale;
  r.with_maps = map_of(r.with_samples, k);
  r.without_maps = map_of(r.without_samples, k);
  r.score_with = hint_scores(r.with_maps, r.reference, r.kind, options.tolerance);
  r.score_without = hint_scores(r.without_maps, r.reference, r.kind, options.tolerance);
  r.with_score = r.score_with.mean().item<double>();
  r.without_score = r.score_without.mean().item<double>();
  if (hint_is_lines(r.kind)) {
    auto summarise = [](const EdgeScores& s) {
      return EdgeScoreSummary{s.precision.mean().item<double>(), s.recall.mean().item<double>(),
                              s.f1.mean().item<double>()};
    };
    r.with_edges = summarise(edge_f1(r.with_maps, r.reference, options.tolerance));
    r.without_edges = summarise(edge_f1(r.without_maps, r.reference, options.tolerance));
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace difflab

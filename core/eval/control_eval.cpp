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
#include "core/vision/scribble.h"

namespace difflab {
namespace {

EdgeScoreSummary summarise(const EdgeScores& s) {
  return {s.precision.mean().item<double>(), s.recall.mean().item<double>(),
          s.f1.mean().item<double>()};
}

// Threshold of a sample's (or test image's) pixels in [0, 1] that count as strokes.
constexpr double kStrokeThreshold = 0.5;

// (n, C, H, W) in [−1, 1] → (n, 1, H, W) in [0, 1], the mean of the channels.
at::Tensor unit_gray(const at::Tensor& images) {
  return ((images + 1.0) * 0.5).clamp(0.0, 1.0).mean(1, /*keepdim=*/true);
}

// What a curve scores of pictures in [−1, 1]: canny edges, or thinned strokes.
at::Tensor curve_edges(const HintCurve& curve, const at::Tensor& images) {
  const auto gray = unit_gray(images);
  if (curve.kind == HintKind::Scribble) return skeletonize((gray > kStrokeThreshold).to(torch::kFloat32));
  CannyOptions options;
  options.low = curve.canny_low;
  options.high = curve.canny_high;
  return canny(gray, options);
}

}  // namespace

HintCurve make_hint_curve(const DatasetSplits& data, const ControlNetConfig& cn,
                          const HintCurveOptions& options) {
  torch::NoGradGuard no_grad;
  const int64_t n = std::min<int64_t>(options.n, data.test.size());
  if (n < 1) throw std::invalid_argument("the hint-following curve needs test images");
  if (data.shape.points) throw std::invalid_argument("the hint-following curve needs images, not 2-D points");
  HintCurve curve;
  curve.kind = cn.hint == HintKind::Scribble ? HintKind::Scribble : HintKind::Canny;
  curve.canny_low = cn.canny_low;
  curve.canny_high = cn.canny_high;
  curve.tolerance = options.tolerance;
  curve.sample.sampler = SamplerKind::Ddim;
  curve.sample.eta = 0.0;
  curve.sample.steps = options.steps;
  curve.sample.seed = options.seed;
  curve.sample.n = static_cast<int>(n);
  curve.sample.class_label = -1;
  // Spread over the whole test split (loaders may keep it ordered by class).
  const auto index = torch::arange(n, torch::kLong).mul(data.test.size()).div(n, "floor");
  curve.reference = curve_edges(curve, gather_batch(data.test, index));
  curve.hints = make_hint(curve.reference, curve.kind);
  return curve;
}

double hint_curve_f1(const HintCurve& curve, const SamplingModel& model, const ControlNet& control,
                     double scale, c10::Device device, const StepCallback& callback) {
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
  const auto scores = edge_f1(curve_edges(curve, result.images), curve.reference, curve.tolerance);
  return scores.f1.mean().item<double>();
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
  CannyOptions canny_options;
  canny_options.low = cn.canny_low;
  canny_options.high = cn.canny_high;
  if (options.edge_scale < 1) throw std::invalid_argument("edge_scale must be >= 1");
  auto edges_of = [&](const at::Tensor& images, int scale) {
    auto unit = ((images + 1.0) * 0.5).clamp(0.0, 1.0);
    if (scale > 1) {
      namespace F = torch::nn::functional;
      unit = F::interpolate(unit, F::InterpolateFuncOptions()
                                      .scale_factor(std::vector<double>{double(scale), double(scale)})
                                      .mode(torch::kBilinear)
                                      .align_corners(false)
                                      .recompute_scale_factor(false));
    }
    return canny(unit, canny_options);
  };

  ControlEvalResult r;
  // Spread over the whole test split (loaders may keep it ordered by class).
  const auto index = torch::arange(n, torch::kLong).mul(data.test.size()).div(n, "floor");
  r.images = gather_batch(data.test, index);
  r.hints = edges_of(r.images, 1);
  r.reference_edges = options.edge_scale > 1 ? edges_of(r.images, options.edge_scale) : r.hints;
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
  request.control = {control.net, make_hint(r.hints, HintKind::Canny), options.scale};
  r.with_samples = run_sampling(model, request, device).images;

  const int k = options.edge_scale;
  const auto with_scores = edge_f1(edges_of(r.with_samples, k), r.reference_edges, options.tolerance);
  const auto without_scores =
      edge_f1(edges_of(r.without_samples, k), r.reference_edges, options.tolerance);
  r.with_control = summarise(with_scores);
  r.without_control = summarise(without_scores);
  r.f1_with = with_scores.f1;
  r.f1_without = without_scores.f1;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace difflab

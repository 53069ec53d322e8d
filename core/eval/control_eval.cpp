#include "core/eval/control_eval.h"

#include <torch/torch.h>

#include <chrono>
#include <stdexcept>

#include "core/eval/noisy_classifier.h"
#include "core/sampling/sampler.h"
#include "core/vision/canny.h"
#include "core/vision/edge_metrics.h"

namespace difflab {
namespace {

EdgeScoreSummary summarise(const EdgeScores& s) {
  return {s.precision.mean().item<double>(), s.recall.mean().item<double>(),
          s.f1.mean().item<double>()};
}

}  // namespace

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

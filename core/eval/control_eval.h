// How well samples follow their hints (issues #5 and #12): for held-out test images
// (evenly spaced through the test split), the hint map of one kind of each image as its
// hint, samples drawn with the ControlNet and without it (the base model alone, same seeds
// and labels), and a score between the same kind of map of each sample and its hint's:
// edge F1 at a pixel tolerance for canny, scribble and Hough hints, IoU of silhouettes for
// mask hints, mean absolute difference of distance maps for distance hints.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <optional>

#include "core/config/config.h"
#include "core/data/dataset.h"
#include "core/sampling/sampler.h"
#include "core/train/controlnet_trainer.h"
#include "core/vision/hint_preview.h"
#include "core/vision/hints.h"

namespace difflab {

// Per-picture agreement of `maps` with `reference`, both (n, 1, H, W) hint maps of `kind`
// (core/vision/hints.h hint_map), as hint_metric(kind) names it: edge F1 at `tolerance`
// pixels (Chebyshev) for the line kinds; |A ∩ B| / |A ∪ B| of the pixels > 0.5 for mask
// (1 when both are empty); mean |a − b| over the pixels for distance. (n) float.
at::Tensor hint_scores(const at::Tensor& maps, const at::Tensor& reference, HintKind kind,
                       int tolerance = 1);

struct ControlEvalOptions {
  int n = 64;                   // hints: n test images spread evenly over the split
  // The hints' kind; unset = the ControlNet's own (a mixed one: canny).
  std::optional<HintKind> kind;
  bool class_labels = false;    // sample with each test image's label (else unconditional)
  double scale = 1.0;           // ControlNet conditioning scale
  int tolerance = 1;            // pixels (Chebyshev) for the edge F1
  // Canny hints only: compare edges on the pictures enlarged this many times (bilinear)
  // before canny: at 28×28 a 1-pixel tolerance is a band of about 5 pixels around each
  // stroke's two outlines, so even unrelated centred digits match much of it. The
  // ControlNet's hint is always canny at the model's own size.
  int edge_scale = 1;
  SampleConfig sample;          // sampler, steps, guidance, seed (n is set from `n`)
};

struct EdgeScoreSummary {
  double precision = 0, recall = 0, f1 = 0;  // means over the images
};

struct ControlEvalResult {
  HintKind kind = HintKind::Canny;  // the hints' kind
  HintMetric metric;                // what the scores measure
  double with_score = 0, without_score = 0;  // means over the images
  // Line kinds: precision, recall and F1 (= the score); zero for mask and distance.
  EdgeScoreSummary with_edges, without_edges;
  at::Tensor hints;             // (n, 1, H, W) the test images' maps, what the ControlNet is given
  at::Tensor reference;         // what the samples' maps are compared with (canny: at edge_scale)
  at::Tensor images;            // (n, C, H, W) the test images, [−1, 1]
  at::Tensor with_samples, without_samples;  // (n, C, H, W) in [−1, 1]
  at::Tensor with_maps, without_maps;        // the samples' maps, as `reference`
  at::Tensor score_with, score_without;      // (n) per-image scores
  double seconds = 0;
};

// The live hint-following curve of a ControlNet in training (the GUI's ControlNet panel):
// a fixed, small set of held-out hints of the kind the ControlNet learns (a mixed one:
// canny), fixed seeds and a few DDIM steps, so that a point costs seconds and points of one
// run compare. Each point scores the samples' maps against the hints' as hint_scores does
// (scribble hints are the test images' skeletons; training jitters and breaks them).
struct HintCurveOptions {
  int n = 8;              // test images, spread evenly over the test split
  int steps = 10;         // DDIM steps (η = 0)
  uint64_t seed = 1;      // the samples' noise (sample seed); the same for every point
  int tolerance = 1;      // pixels, for the edge F1
};

struct HintCurve {
  HintKind kind = HintKind::Canny;  // the hints' kind (never mixed)
  at::Tensor hints;       // (n, kHintChannels, H, W), what the ControlNet is given
  at::Tensor reference;   // (n, 1, H, W), the map the samples' maps are scored against
  SampleConfig sample;    // DDIM, `steps`, unconditional, seed
  int tolerance = 1;
  HintMapOptions map_options;
};
// The probe for ControlNets trained with `cn` (its hint kind and thresholds) on `data`.
HintCurve make_hint_curve(const DatasetSplits& data, const ControlNetConfig& cn,
                          const HintCurveOptions& options = {});
// Mean score (hint_metric(curve.kind)) of samples of `model` (sampled unconditionally)
// steered by `control` at `scale` over the curve's hints; an undefined `control` samples
// the base model alone. NaN when `callback` cancelled the run.
double hint_curve_score(const HintCurve& curve, const SamplingModel& model,
                        const ControlNet& control, double scale, c10::Device device,
                        const StepCallback& callback = {});

ControlEvalResult evaluate_controlnet(const LoadedControlNet& control, const DatasetSplits& data,
                                      const ControlEvalOptions& options, c10::Device device);

}  // namespace difflab

// How well samples follow their hints (issue #5's measurement): for held-out test images
// (evenly spaced through the test split),
// canny edges as hints, samples drawn with the ControlNet and without it (the base model
// alone, same seeds and labels), and the edge F1 between each hint and the canny edges of
// its sample, with a pixel tolerance.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include "core/config/config.h"
#include "core/data/dataset.h"
#include "core/sampling/sampler.h"
#include "core/train/controlnet_trainer.h"

namespace difflab {

struct ControlEvalOptions {
  int n = 64;                   // hints: n test images spread evenly over the split
  bool class_labels = false;    // sample with each test image's label (else unconditional)
  double scale = 1.0;           // ControlNet conditioning scale
  int tolerance = 1;            // pixels (Chebyshev) for the edge F1
  // Compare edges on the pictures enlarged this many times (bilinear) before canny: at
  // 28×28 a 1-pixel tolerance is a band of about 5 pixels around each stroke's two
  // outlines, so even unrelated centred digits match much of it. The ControlNet's hint is
  // always canny at the model's own size.
  int edge_scale = 1;
  SampleConfig sample;          // sampler, steps, guidance, seed (n is set from `n`)
};

struct EdgeScoreSummary {
  double precision = 0, recall = 0, f1 = 0;  // means over the images
};

struct ControlEvalResult {
  EdgeScoreSummary with_control, without_control;
  at::Tensor hints;             // (n, 1, H, W) canny edges of the test images, 0/1 (the hint)
  at::Tensor reference_edges;   // the same at edge_scale × the size (what F1 compares with)
  at::Tensor images;            // (n, C, H, W) the test images, [−1, 1]
  at::Tensor with_samples, without_samples;  // (n, C, H, W) in [−1, 1]
  at::Tensor f1_with, f1_without;            // (n) per-image F1
  double seconds = 0;
};

// The live hint-following curve of a ControlNet in training (the GUI's ControlNet panel):
// a fixed, small set of held-out hints of the kind the ControlNet learns, fixed seeds and a
// few DDIM steps, so that a point costs seconds and points of one run compare. Canny and
// mixed ControlNets get canny hints, scored as evaluate_controlnet scores them (edge F1 of
// the samples' canny edges against the hint); scribble ControlNets get the skeletons of the
// test images as strokes, scored by the edge F1 of the samples' own skeletons (pixels
// > 0.5, thinned) against those strokes.
struct HintCurveOptions {
  int n = 8;              // test images, spread evenly over the test split
  int steps = 10;         // DDIM steps (η = 0)
  uint64_t seed = 1;      // the samples' noise (sample seed); the same for every point
  int tolerance = 1;      // pixels, for the edge F1
};

struct HintCurve {
  HintKind kind = HintKind::Mixed;  // the hints' kind: canny or scribble
  at::Tensor hints;       // (n, kHintChannels, H, W) 0/1, what the ControlNet is given
  at::Tensor reference;   // (n, 1, H, W) 0/1, what the samples' edges are scored against
  SampleConfig sample;    // DDIM, `steps`, unconditional, seed
  int tolerance = 1;
  double canny_low = 100.0, canny_high = 200.0;
};
// The probe for ControlNets trained with `cn` (its hint kind and canny thresholds) on `data`.
HintCurve make_hint_curve(const DatasetSplits& data, const ControlNetConfig& cn,
                          const HintCurveOptions& options = {});
// Mean edge F1 of samples of `model` (sampled unconditionally) steered by `control` at
// `scale` over the curve's hints; an undefined `control` samples the base model alone.
// NaN when `callback` cancelled the run.
double hint_curve_f1(const HintCurve& curve, const SamplingModel& model, const ControlNet& control,
                     double scale, c10::Device device, const StepCallback& callback = {});

ControlEvalResult evaluate_controlnet(const LoadedControlNet& control, const DatasetSplits& data,
                                      const ControlEvalOptions& options, c10::Device device);

}  // namespace difflab

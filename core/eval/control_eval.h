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

ControlEvalResult evaluate_controlnet(const LoadedControlNet& control, const DatasetSplits& data,
                                      const ControlEvalOptions& options, c10::Device device);

}  // namespace difflab

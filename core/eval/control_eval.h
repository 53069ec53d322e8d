// How well samples follow their hints (issue #5's measurement): for held-out test images,
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
  int n = 64;                   // hints: the first n test images
  bool class_labels = false;    // sample with each test image's label (else unconditional)
  double scale = 1.0;           // ControlNet conditioning scale
  int tolerance = 1;            // pixels (Chebyshev) for the edge F1
  SampleConfig sample;          // sampler, steps, guidance, seed (n is set from `n`)
};

struct EdgeScoreSummary {
  double precision = 0, recall = 0, f1 = 0;  // means over the images
};

struct ControlEvalResult {
  EdgeScoreSummary with_control, without_control;
  at::Tensor hints;             // (n, 1, H, W) canny edges of the test images, 0/1
  at::Tensor images;            // (n, C, H, W) the test images, [−1, 1]
  at::Tensor with_samples, without_samples;  // (n, C, H, W) in [−1, 1]
  at::Tensor f1_with, f1_without;            // (n) per-image F1
  double seconds = 0;
};

ControlEvalResult evaluate_controlnet(const LoadedControlNet& control, const DatasetSplits& data,
                                      const ControlEvalOptions& options, c10::Device device);

}  // namespace difflab

// Scribble hints synthesised from training images, so that a ControlNet trained on them
// follows thin hand-drawn strokes at inference (Zhang et al. 2023 train their scribble model on
// synthesised scribbles too). At 28x28 a user draws a digit's centre line with a 1–3 px brush,
// not the outline Canny finds; so: binarise, thin to a skeleton, jitter, thicken at random and
// erase random parts; now and then use Canny edges instead. Batched and device-agnostic.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

namespace difflab {

struct ScribbleOptions {
  double threshold = 0.5;    // binarise: pixel > threshold (images in [0, 1])
  double max_drop = 0.3;     // each hint loses a random share in [0, max_drop] of its 4x4 blocks
  int max_dilate = 1;        // then 0..max_dilate random 3x3 dilations (not for Canny hints)
  double jitter_px = 1.0;    // random shift in [−j, j] px plus a smooth elastic one of ≤ j/2 px
  double canny_share = 0.1;  // share of hints made of Canny edges (default thresholds) instead
};

// (B, 1, H, W) 0/1 → thin centre lines: the parallel thinning of Zhang & Suen (1984, "A fast
// parallel algorithm for thinning digital patterns"), both sub-iterations as tensor masks,
// repeated until nothing changes. A filled 3-px-wide bar becomes a 1-px line on its centre.
at::Tensor skeletonize(const at::Tensor& binary);

// images: (B, C, H, W) in [0, 1]; gen: seeds every random choice (undefined = the default
// generator; a CPU generator also serves images on another device). Returns (B, 1, H, W)
// float32 0/1 on the images' device.
at::Tensor synthesize_scribbles(const at::Tensor& images, at::Generator gen,
                                const ScribbleOptions& options = {});

}  // namespace difflab

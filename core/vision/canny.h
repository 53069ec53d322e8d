// The Canny edge detector (Canny 1986, "A Computational Approach to Edge Detection") as a
// chain of small batched tensor functions, device-agnostic (conv2d / max_pool2d / masks, no
// per-pixel loops) so it runs on a whole training batch on the CPU or a GPU. The stages follow
// OpenCV's cv::Canny: 3x3 Sobel gradients with a replicated border, |gx| + |gy| (or the L2 norm)
// as the magnitude, non-maximum suppression in 4 directions with OpenCV's tie rules, strict
// thresholds (> low is weak, > high is strong) on the 0–255 scale, and 8-connected hysteresis.
#pragma once

#include <ATen/core/Tensor.h>

#include <utility>

namespace difflab {

struct CannyOptions {
  double low = 100.0;        // hysteresis thresholds on the gradient magnitude, on the 0–255
  double high = 200.0;       // scale as OpenCV (swapped when low > high, as OpenCV does)
  double blur_sigma = 0.0;   // Gaussian blur before Sobel; 0 = none (OpenCV's Canny has none)
  bool l2_gradient = false;  // |gx| + |gy| (OpenCV's default) or sqrt(gx² + gy²)
};

// (B, 1, H, W) → the same blurred by a normalised Gaussian of standard deviation `sigma`,
// kernel radius ceil(3σ), separable, with a mirrored border (OpenCV's BORDER_REFLECT_101; a
// replicated border where the image is not wider than the radius). sigma <= 0 returns the input.
at::Tensor gaussian_blur(const at::Tensor& gray, double sigma);

// (B, 1, H, W) → (gx, gy), the 3x3 Sobel derivatives as OpenCV computes them (correlation with
// [[-1 0 1] [-2 0 2] [-1 0 1]] and its transpose: gx > 0 where the image gets brighter to the
// right, gy > 0 where it gets brighter downwards), replicated border. Linear: on an image in
// [0, 255] a unit step gives |g| = 4 · 255.
std::pair<at::Tensor, at::Tensor> sobel(const at::Tensor& gray);

// Keeps the magnitude where it is a local maximum across the edge, the gradient's direction
// quantised to 4 (horizontal, vertical, two diagonals; boundaries at 22.5° and 67.5°), and 0
// elsewhere. Ties as OpenCV: horizontal/vertical need m > previous and m >= next neighbour (so a
// 2-px plateau at a step keeps one pixel), diagonals need m > both. Outside the image counts 0.
at::Tensor non_max_suppression(const at::Tensor& magnitude, const at::Tensor& gx,
                               const at::Tensor& gy);

// (strong, weak) float 0/1 masks: strong = nms > high, weak = low < nms <= high.
std::pair<at::Tensor, at::Tensor> double_threshold(const at::Tensor& nms, double low, double high);

// Grows `strong` into 8-connected `weak` pixels (repeated 3x3 dilation of strong within
// strong ∪ weak until nothing changes, at most H·W rounds). Float 0/1 result.
at::Tensor hysteresis(const at::Tensor& strong, const at::Tensor& weak);

// (B, C, H, W) → (B, 1, H, W) float: C = 1 is the identity, C = 3 uses the ITU-R BT.601 luma
// weights 0.299 R + 0.587 G + 0.114 B (as OpenCV's RGB2GRAY). Other C are an error.
at::Tensor to_gray(const at::Tensor& images);

// images: (B, C, H, W) floating, values in [0, 1] (the caller maps [−1, 1] to [0, 1]). The grey
// image is rounded to the 0–255 integers of an 8-bit picture first, as OpenCV sees it.
// Returns (B, 1, H, W) float32 0/1 edges on the images' device.
at::Tensor canny(const at::Tensor& images, const CannyOptions& options = {});

}  // namespace difflab

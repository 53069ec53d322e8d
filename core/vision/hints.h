// The ControlNet seed's other hint kinds, for 28x28 / 32x32 grey pictures: straight line
// segments from a Hough transform of the canny edges, the object's filled silhouette, and
// the distance transform of that silhouette (how far inside the shape each pixel lies, the
// closest honest analogue of a depth map for such pictures). Batched tensor functions on
// (B, 1, H, W), on the tensors' device, except the segment extraction, which walks the few
// hundred edge pixels of each picture, and the distance transform's linear-time passes,
// which run on the CPU.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "core/config/enums.h"
#include "core/vision/canny.h"

namespace difflab {

// The parameters of OpenCV's cv::HoughLinesP, with its meanings:
struct HoughOptions {
  double rho = 1.0;               // distance resolution of the accumulator, pixels
  double theta = 3.14159265358979323846 / 180.0;  // angle resolution, radians
  int threshold = 8;              // a line needs at least this many votes (edge pixels)
  double min_line_length = 5.0;   // "line segments shorter than that are rejected"
  double max_line_gap = 2.0;      // "maximum allowed gap between points on the same line to
                                  //  link them", in missing pixels
};

// A segment from (x1, y1) to (x2, y2), both ends edge pixels (x: column, y: row), as
// HoughLinesP reports one.
struct LineSegment {
  int x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  bool operator==(const LineSegment& o) const {
    return x1 == o.x1 && y1 == o.y1 && x2 == o.x2 && y2 == o.y2;
  }
};

// The Hough accumulator of (B, 1, H, W) 0/1 edges: (B, n_theta, n_rho) float votes, one
// per edge pixel and angle θ_k = k·theta (k < n_theta = round(π / theta)), in the bin
// r = round((x cos θ_k + y sin θ_k) / rho) + (n_rho − 1) / 2 with
// n_rho = round((2 (W + H) + 1) / rho), as cv::HoughLinesP lays it out.
at::Tensor hough_accumulator(const at::Tensor& edges, const HoughOptions& options = {});

// The segments of each picture, HoughLinesP's way but deterministic: take the strongest
// accumulator cell with at least `threshold` votes (ties: smallest θ, then ρ), walk the edge
// pixels within 0.75 px of its line in order along it, split where more than max_line_gap
// pixels are missing, keep the runs whose longer side (max |Δx|, |Δy|) reaches
// min_line_length (ends: the line's points at the run's first and last pixel, rounded),
// take the kept runs' pixels out of the votes (a cell that kept none is passed over from
// then on), and repeat. (OpenCV visits the pixels in random order and walks from each; on
// clean shapes both find the same segments.)
std::vector<std::vector<LineSegment>> hough_segments(const at::Tensor& edges,
                                                     const HoughOptions& options = {});

// The segments drawn 1 pixel wide (Bresenham) into (B, 1, height, width) float 0/1.
at::Tensor draw_segments(const std::vector<std::vector<LineSegment>>& segments, int64_t height,
                         int64_t width);

// The filled silhouette of (B, 1, H, W) grey pictures in [0, 1]: pixels above `threshold`,
// plus every hole (a dark pixel that no 4-connected path of dark pixels joins to the
// border). Float 0/1.
at::Tensor silhouette(const at::Tensor& gray, double threshold = 0.5);

// The exact Euclidean distance, in pixels, from each pixel of a (B, 1, H, W) 0/1 mask to
// the nearest pixel outside it (pixels beyond the border count as outside); 0 outside.
// Separable and linear in the pixels (computed on the CPU, returned on the mask's device).
at::Tensor distance_transform(const at::Tensor& mask);

// The depth-like hint: distance_transform(mask) divided by its largest value in each
// picture, so the deepest point of the shape is 1 and the outline about 1 / max.
at::Tensor distance_hint(const at::Tensor& mask);

struct HintMapOptions {
  CannyOptions canny;      // canny and hough (the edges Hough reads)
  HoughOptions hough;
  double threshold = 0.5;  // brightness that counts as the object: scribble, mask, distance
};
// The hint map of `kind` for (B, 1, H, W) grey pictures in [0, 1], (B, 1, H, W) float:
// canny (and mixed) → canny edges; scribble → the bright strokes thinned to centre lines
// (what a steady hand would draw; training adds jitter and breaks, core/vision/scribble.h);
// hough → the segments of hough_segments(canny edges) drawn 1 px wide; mask → silhouette;
// distance → distance_hint(silhouette). What the hint-following scores compare: the map of
// a sample against the map of the picture its hint came from.
at::Tensor hint_map(const at::Tensor& gray, HintKind kind, const HintMapOptions& options = {});

}  // namespace difflab

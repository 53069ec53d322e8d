// Torch-free entry points to the hint functions, for the GUI thread: small pure
// functions on one picture at the model's resolution (a 28×28 canny runs in well under a
// millisecond), so the canny sliders update live even while the worker is busy training.
// They hold no state; every model and long-lived tensor stays with the engine's worker.
#pragma once

#include <string>
#include <vector>

#include "core/config/enums.h"

namespace difflab {

// A grey picture, row-major, values in [0, 1].
struct GrayPicture {
  int height = 0, width = 0;
  std::vector<float> pixels;
  bool empty() const { return pixels.empty(); }
};

// Reads a PNG/JPG/BMP and brings it to height × width (area averaging, or bilinear when
// enlarging; colour → luma). Throws std::runtime_error naming the file and the problem.
GrayPicture load_gray_picture(const std::string& path, int height, int width);
// Canny edges (0/1) of `picture`, thresholds on the 0-255 scale as OpenCV's.
GrayPicture canny_edges(const GrayPicture& picture, double low, double high);
// The hint map of `kind` of a picture (core/vision/hints.h hint_map: canny edges, its
// strokes thinned, the Hough segments of its edges, its filled silhouette, its distance
// map); canny and hough use the canny thresholds (0-255 scale), mask and distance take
// pixels above `object` (in [0, 1]) as the object.
GrayPicture picture_hint(const GrayPicture& picture, HintKind kind, double low, double high,
                         double object = 0.2);
// What strokes drawn on a canvas (0/1) mean as a hint of `kind`: the strokes as drawn for
// the line kinds (canny, scribble, hough, mixed); the region they enclose, holes filled,
// for mask; that region's distance map for distance.
GrayPicture drawn_hint(const GrayPicture& canvas, HintKind kind);

// How the hint-following scores measure a kind: edge F1 at a pixel tolerance for the line
// kinds, intersection over union of silhouettes for mask, mean absolute difference of the
// distance maps for distance (the only one where lower is better).
struct HintMetric {
  const char* key = "f1";        // short name for files and columns: f1, iou, mad
  const char* name = "edge F1";  // for people
  bool higher_is_better = true;
};
HintMetric hint_metric(HintKind kind);

}  // namespace difflab

// Torch-free entry points to the hint functions, for the GUI thread: small pure
// functions on one picture at the model's resolution (a 28×28 canny runs in well under a
// millisecond), so the canny sliders update live even while the worker is busy training.
// They hold no state; every model and long-lived tensor stays with the engine's worker.
#pragma once

#include <string>
#include <vector>

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

}  // namespace difflab

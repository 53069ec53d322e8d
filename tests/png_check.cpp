// png_check PATH [MIN_WIDTH MIN_HEIGHT [MIN_STDDEV]]
//
// For the GUI tests: exits 0 when PATH is a readable image of at least the given size
// whose pixels are not blank, i.e. the standard deviation of all RGB values exceeds
// MIN_STDDEV (default 12, out of 255) and at least 64 distinct colours occur. Prints
// what it measured; on failure says why and exits 1.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <unordered_set>

#include "core/vision/png.h"

namespace {
// Fewer distinct colours than this is a blank or single-widget picture.
constexpr size_t kMinDistinctColours = 64;
constexpr double kDefaultMinStddev = 12.0;
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: png_check PATH [MIN_WIDTH MIN_HEIGHT [MIN_STDDEV]]\n");
    return 2;
  }
  const std::string path = argv[1];
  const int min_w = argc > 3 ? std::atoi(argv[2]) : 1;
  const int min_h = argc > 3 ? std::atoi(argv[3]) : 1;
  const double min_stddev = argc > 4 ? std::atof(argv[4]) : kDefaultMinStddev;
  difflab::Image8 image;
  try {
    image = difflab::read_image(path, 3);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "png_check: %s\n", e.what());
    return 1;
  }
  double sum = 0.0, sum_sq = 0.0;
  std::unordered_set<uint32_t> colours;
  const size_t pixels = static_cast<size_t>(image.width) * image.height;
  for (size_t i = 0; i < pixels; ++i) {
    const uint8_t* p = image.pixels.data() + i * 3;
    colours.insert(static_cast<uint32_t>(p[0]) << 16 | static_cast<uint32_t>(p[1]) << 8 | p[2]);
    for (int c = 0; c < 3; ++c) {
      sum += p[c];
      sum_sq += static_cast<double>(p[c]) * p[c];
    }
  }
  const double n = static_cast<double>(pixels) * 3.0;
  const double mean = n > 0 ? sum / n : 0.0;
  const double stddev = n > 0 ? std::sqrt(std::max(sum_sq / n - mean * mean, 0.0)) : 0.0;
  std::printf("%s: %dx%d, mean %.1f, stddev %.1f, %zu colours\n", path.c_str(), image.width,
              image.height, mean, stddev, colours.size());
  if (image.width < min_w || image.height < min_h) {
    std::fprintf(stderr, "png_check: %s is %dx%d, expected at least %dx%d\n", path.c_str(),
                 image.width, image.height, min_w, min_h);
    return 1;
  }
  if (stddev <= min_stddev || colours.size() < kMinDistinctColours) {
    std::fprintf(stderr, "png_check: %s looks blank (stddev %.1f <= %.1f or %zu < %zu colours)\n",
                 path.c_str(), stddev, min_stddev, colours.size(), kMinDistinctColours);
    return 1;
  }
  return 0;
}

// PNG files through stb_image_write / stb_image. No torch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace difflab {

// An 8-bit image, interleaved (HWC), 1, 3 or 4 channels.
struct Image8 {
  int width = 0;
  int height = 0;
  int channels = 1;
  std::vector<uint8_t> pixels;
};

// Writes atomically (temp file + rename); throws std::runtime_error naming the path.
void write_png(const std::string& path, const Image8& image);
// Reads PNG/JPG/BMP/TGA; `channels` 0 = as stored. Throws naming the path.
Image8 read_image(const std::string& path, int channels = 0);

}  // namespace difflab

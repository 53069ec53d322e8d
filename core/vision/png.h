// PNG files through stb_image_write / stb_image. No torch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/util/paths.h"

namespace difflab {

// An 8-bit image, interleaved (HWC), 1, 3 or 4 channels.
struct Image8 {
  int width = 0;
  int height = 0;
  int channels = 1;
  std::vector<uint8_t> pixels;
};

// Images larger than this are refused before any pixel is decoded (a small file can
// declare a huge picture). The app uses 28x28 to 64x64; photos for an image folder are
// scaled down, and a 24-megapixel camera picture still loads.
constexpr int kMaxImageSide = 16384;
constexpr int64_t kMaxImagePixels = int64_t{64} << 20;  // 64 Mi pixels (8192x8192)

// Encodes a PNG in memory.
std::string encode_png(const Image8& image);
// Writes atomically (write_file_atomic); throws std::runtime_error naming the path and
// the reason (errno text). IfExists::Refuse keeps a file already at `path`.
void write_png(const std::string& path, const Image8& image,
               IfExists if_exists = IfExists::Replace);
// Reads PNG/JPG/BMP/GIF/TGA/PNM (binary P5/P6); `channels` 0 = as stored. The other
// formats stb_image knows (PSD, Radiance HDR, Softimage PIC) are refused. Checks the
// declared size against the limits above before decoding, that a JPEG, BMP, TGA or PNM is
// complete (stb would decode a truncated one as grey, black or, for PNM, uninitialised
// memory), and JPEG Huffman tables, PNM headers and 16-bit PNMs to be converted to
// another channel count, which Debian's stb_image 2.27 would overrun. Throws
// std::runtime_error naming the path and the problem.
Image8 read_image(const std::string& path, int channels = 0);

}  // namespace difflab

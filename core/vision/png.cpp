#include "core/vision/png.h"

// Debian's libstb provides the implementations; only the declarations are needed.
#include <stb_image.h>
#include <stb_image_write.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <string_view>
#include <system_error>

#include "core/util/paths.h"

namespace difflab {

namespace fs = std::filesystem;

namespace {

void check_shape(const std::string& what, const Image8& image) {
  if (image.width <= 0 || image.height <= 0 || image.channels < 1 || image.channels > 4) {
    throw std::runtime_error(what + "bad image shape " + std::to_string(image.width) + "x" +
                             std::to_string(image.height) + "x" +
                             std::to_string(image.channels));
  }
  const size_t expected = static_cast<size_t>(image.width) * static_cast<size_t>(image.height) *
                          static_cast<size_t>(image.channels);
  if (image.pixels.size() != expected) {
    throw std::runtime_error(what + std::to_string(image.pixels.size()) +
                             " bytes of pixels, expected " + std::to_string(expected));
  }
}

void append_bytes(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data),
                                             static_cast<size_t>(size));
}

enum class Format { Png, Jpeg, Bmp, Gif, Other };

Format sniff(const std::string& bytes) {
  auto starts = [&](std::string_view magic) { return bytes.compare(0, magic.size(), magic) == 0; };
  if (starts("\x89PNG\r\n\x1a\n")) return Format::Png;
  if (starts("\xFF\xD8\xFF")) return Format::Jpeg;
  if (starts("BM")) return Format::Bmp;
  if (starts("GIF87a") || starts("GIF89a")) return Format::Gif;
  return Format::Other;
}

const char* format_name(Format f) {
  switch (f) {
    case Format::Png: return "PNG";
    case Format::Jpeg: return "JPEG";
    case Format::Bmp: return "BMP";
    case Format::Gif: return "GIF";
    case Format::Other: break;
  }
  return "image";
}

uint32_t le32(const std::string& b, size_t at) {
  return static_cast<uint32_t>(static_cast<uint8_t>(b[at])) |
         static_cast<uint32_t>(static_cast<uint8_t>(b[at + 1])) << 8 |
         static_cast<uint32_t>(static_cast<uint8_t>(b[at + 2])) << 16 |
         static_cast<uint32_t>(static_cast<uint8_t>(b[at + 3])) << 24;
}

// Empty when the file holds all it declares; else what is missing.
std::string incomplete(Format format, const std::string& b) {
  if (format == Format::Jpeg) {
    // Entropy-coded data stuffs 0xFF as FF 00, so an end-of-image marker after the first
    // start-of-scan can only be the real one (bytes after it, as some cameras add, are fine).
    const size_t scan = b.find("\xFF\xDA", 2);
    if (scan == std::string::npos) return "the file ends before the image data (no start-of-scan marker: truncated JPEG)";
    if (b.find("\xFF\xD9", scan + 2) == std::string::npos)
      return "the file ends before the end-of-image marker (truncated JPEG)";
    return {};
  }
  if (format == Format::Bmp && b.size() >= 34) {
    const uint32_t offset = le32(b, 10);
    const uint32_t header = le32(b, 14);
    if (header < 40) return {};  // OS/2 core header: leave it to stb
    const int64_t width = static_cast<int32_t>(le32(b, 18));
    const int64_t height = static_cast<int32_t>(le32(b, 22));
    const int64_t bits = static_cast<uint8_t>(b[28]) | static_cast<uint8_t>(b[29]) << 8;
    const uint32_t compression = le32(b, 30);
    if (compression != 0 && compression != 3) return {};  // RLE etc.: stb refuses those
    if (width <= 0 || height == 0 || bits <= 0) return {};
    const int64_t stride = (width * bits + 31) / 32 * 4;
    const int64_t need = int64_t{offset} + stride * (height < 0 ? -height : height);
    if (static_cast<int64_t>(b.size()) < need)
      return "the pixel data ends after " + std::to_string(b.size()) + " of " +
             std::to_string(need) + " bytes (truncated BMP)";
  }
  return {};
}

}  // namespace

std::string encode_png(const Image8& image) {
  check_shape("cannot encode PNG: ", image);
  std::string bytes;
  if (stbi_write_png_to_func(append_bytes, &bytes, image.width, image.height, image.channels,
                             image.pixels.data(), image.width * image.channels) == 0) {
    throw std::runtime_error("cannot encode PNG: out of memory");
  }
  return bytes;
}

void write_png(const std::string& path, const Image8& image) {
  check_shape("cannot write PNG '" + path + "': ", image);
  write_file_atomic(path, encode_png(image));
}

Image8 read_image(const std::string& path, int channels) {
  const std::string what = "cannot read image '" + path + "': ";
  if (channels < 0 || channels > 4)
    throw std::runtime_error(what + "asked for " + std::to_string(channels) + " channels");
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw std::runtime_error(what + "it is a folder, not an image file");
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      throw std::runtime_error(what + (fs::exists(path, ec) ? std::strerror(errno) : "no such file"));
    }
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) throw std::runtime_error(what + std::strerror(errno));
  }
  if (bytes.empty()) throw std::runtime_error(what + "the file is empty");
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()))
    throw std::runtime_error(what + "larger than 2 GiB");
  const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int size = static_cast<int>(bytes.size());
  const Format format = sniff(bytes);

  int width = 0;
  int height = 0;
  int stored_channels = 0;
  if (stbi_info_from_memory(data, size, &width, &height, &stored_channels) == 0) {
    const char* reason = stbi_failure_reason();
    const std::string stb = reason != nullptr ? reason : "unknown error";
    if (format == Format::Other)
      throw std::runtime_error(what + "not a PNG, JPEG, BMP, GIF, TGA or PNM image (" + stb + ")");
    throw std::runtime_error(what + "corrupt " + format_name(format) + " header (" + stb + ")");
  }
  if (width <= 0 || height <= 0 || width > kMaxImageSide || height > kMaxImageSide ||
      int64_t{width} * height > kMaxImagePixels) {
    throw std::runtime_error(what + "the file declares " + std::to_string(width) + "x" +
                             std::to_string(height) + " pixels; images up to " +
                             std::to_string(kMaxImagePixels >> 20) + " Mi pixels (" +
                             std::to_string(kMaxImageSide) + " a side) are read");
  }
  if (const std::string missing = incomplete(format, bytes); !missing.empty())
    throw std::runtime_error(what + missing);

  unsigned char* pixels = stbi_load_from_memory(data, size, &width, &height, &stored_channels, channels);
  if (pixels == nullptr) {
    const char* reason = stbi_failure_reason();
    throw std::runtime_error(what + "truncated or corrupt " + format_name(format) + " (" +
                             (reason != nullptr ? reason : "unknown error") + ")");
  }
  Image8 image;
  image.width = width;
  image.height = height;
  image.channels = channels != 0 ? channels : stored_channels;
  const size_t count = static_cast<size_t>(width) * static_cast<size_t>(height) *
                       static_cast<size_t>(image.channels);
  image.pixels.assign(pixels, pixels + count);
  stbi_image_free(pixels);
  return image;
}

}  // namespace difflab

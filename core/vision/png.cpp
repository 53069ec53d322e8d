#include "core/vision/png.h"

// Debian's libstb provides the implementations; only the declarations are needed.
#include <stb_image.h>
#include <stb_image_write.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>

#include "core/util/paths.h"

namespace difflab {

namespace fs = std::filesystem;

void write_png(const std::string& path, const Image8& image) {
  if (image.width <= 0 || image.height <= 0 || image.channels < 1 || image.channels > 4) {
    throw std::runtime_error("cannot write PNG '" + path + "': bad image shape " +
                             std::to_string(image.width) + "x" + std::to_string(image.height) +
                             "x" + std::to_string(image.channels));
  }
  const size_t expected = static_cast<size_t>(image.width) * static_cast<size_t>(image.height) *
                          static_cast<size_t>(image.channels);
  if (image.pixels.size() != expected) {
    throw std::runtime_error("cannot write PNG '" + path +
                             "': " + std::to_string(image.pixels.size()) +
                             " bytes of pixels, expected " + std::to_string(expected));
  }

  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) make_dirs(parent.string());

  // Temporary file in the same folder so the rename stays on one file system.
  static std::atomic<unsigned> counter{0};
  const std::string temp =
      path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++) + ".png";
  const int ok = stbi_write_png(temp.c_str(), image.width, image.height, image.channels,
                                image.pixels.data(), image.width * image.channels);
  std::error_code ec;
  if (ok != 0) fs::rename(temp, path, ec);
  if (ok == 0 || ec) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    throw std::runtime_error("cannot write PNG '" + path + "'" +
                             (ec ? ": " + ec.message() : std::string()));
  }
}

Image8 read_image(const std::string& path, int channels) {
  if (channels < 0 || channels > 4) {
    throw std::runtime_error("cannot read image '" + path + "': asked for " +
                             std::to_string(channels) + " channels");
  }
  int width = 0;
  int height = 0;
  int stored_channels = 0;
  unsigned char* data = stbi_load(path.c_str(), &width, &height, &stored_channels, channels);
  if (data == nullptr) {
    const char* reason = stbi_failure_reason();
    throw std::runtime_error("cannot read image '" + path +
                             "': " + (reason != nullptr ? reason : "unknown error"));
  }
  Image8 image;
  image.width = width;
  image.height = height;
  image.channels = channels != 0 ? channels : stored_channels;
  const size_t size = static_cast<size_t>(width) * static_cast<size_t>(height) *
                      static_cast<size_t>(image.channels);
  image.pixels.assign(data, data + size);
  stbi_image_free(data);
  return image;
}

}  // namespace difflab

// A folder of images laid out like torchvision's ImageFolder: one sub-folder per class
// (classes sorted by name), image files inside (not searched recursively). Files are
// decoded by read_image (stb_image: PNG, JPEG, BMP, TGA; size limits and
// truncation checks), converted to grey or RGB, resized so the
// short side equals `size` and centre-cropped to size x size.
#include <stb_image_resize.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/data/image_set.h"
#include "core/vision/png.h"

namespace difflab {

namespace fs = std::filesystem;

namespace {

// File extensions (lower case, with the dot) that stb_image decodes for us.
constexpr const char* kImageExtensions[] = {".png", ".jpg", ".jpeg", ".bmp", ".tga"};
// Largest accepted output side: keeps n * size * size within reason.
constexpr int kMaxSize = 4096;

std::string accepted_extensions() {
  std::string out;
  for (const char* ext : kImageExtensions) out += (out.empty() ? "" : ", ") + std::string(ext);
  return out;
}

bool is_image_file(const fs::directory_entry& entry) {
  std::error_code ec;
  if (!entry.is_regular_file(ec)) return false;
  const std::string name = entry.path().filename().string();
  if (name.empty() || name[0] == '.') return false;
  std::string ext = entry.path().extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* accepted : kImageExtensions) {
    if (ext == accepted) return true;
  }
  return false;
}

// Image files directly inside `dir`, sorted by name.
std::vector<fs::path> list_images(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (is_image_file(entry)) files.push_back(entry.path());
  }
  if (ec) throw DataError("cannot list image folder '" + dir.string() + "': " + ec.message());
  std::sort(files.begin(), files.end());
  return files;
}

// Visible sub-folders of `dir`, sorted by name.
std::vector<fs::path> list_subfolders(const fs::path& dir) {
  std::vector<fs::path> dirs;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    std::error_code ec2;
    if (!name.empty() && name[0] != '.' && entry.is_directory(ec2)) dirs.push_back(entry.path());
  }
  if (ec) throw DataError("cannot list image folder '" + dir.string() + "': " + ec.message());
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

// Decodes `path` with `channels` channels, resizes the short side to `size`, centre-crops,
// and appends the result as CHW planes to `out`.
void load_one(const fs::path& path, int size, int channels, std::vector<uint8_t>& out) {
  Image8 decoded;
  try {
    decoded = read_image(path.string(), channels);  // size limits, truncation checks
  } catch (const std::runtime_error& e) {
    throw DataError(e.what());
  }
  const int w = decoded.width;
  const int h = decoded.height;

  // Short side -> size, long side scaled to keep the aspect ratio (at least size).
  int rw = size;
  int rh = size;
  if (w < h) {
    rh = std::max(size, static_cast<int>(std::lround(double(h) * size / w)));
  } else {
    rw = std::max(size, static_cast<int>(std::lround(double(w) * size / h)));
  }
  std::vector<uint8_t> resized;
  const uint8_t* src = decoded.pixels.data();
  if (rw != w || rh != h) {
    resized.resize(size_t(rw) * rh * channels);
    if (!stbir_resize_uint8(decoded.pixels.data(), w, h, 0, resized.data(), rw, rh, 0, channels)) {
      throw DataError("cannot resize image '" + path.string() + "' from " + std::to_string(w) +
                      "x" + std::to_string(h) + " to " + std::to_string(rw) + "x" +
                      std::to_string(rh));
    }
    src = resized.data();
  }

  // Centre crop, interleaved HWC -> planar CHW.
  const int x0 = (rw - size) / 2;
  const int y0 = (rh - size) / 2;
  const size_t base = out.size();
  out.resize(base + size_t(channels) * size * size);
  for (int c = 0; c < channels; ++c) {
    uint8_t* plane = out.data() + base + size_t(c) * size * size;
    for (int y = 0; y < size; ++y) {
      const uint8_t* row = src + (size_t(y0 + y) * rw + x0) * channels + c;
      for (int x = 0; x < size; ++x) plane[size_t(y) * size + x] = row[size_t(x) * channels];
    }
  }
}

}  // namespace

ImageSet read_image_folder(const std::string& dir, int size, int channels) {
  if (channels != 1 && channels != 3) {
    throw DataError("image folder '" + dir + "': channels must be 1 or 3, got " +
                    std::to_string(channels));
  }
  if (size < 1 || size > kMaxSize) {
    throw DataError("image folder '" + dir + "': size must be 1.." + std::to_string(kMaxSize) +
                    ", got " + std::to_string(size));
  }
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw DataError("image folder not found: '" + dir + "'");
  if (!fs::is_directory(dir, ec)) throw DataError("image folder '" + dir + "' is not a folder");

  // Class name -> its files; sub-folders with no images are skipped.
  std::vector<std::string> names;
  std::vector<std::vector<fs::path>> files;
  for (const auto& sub : list_subfolders(dir)) {
    auto images = list_images(sub);
    if (images.empty()) continue;
    names.push_back(sub.filename().string());
    files.push_back(std::move(images));
  }
  if (names.empty()) {
    auto images = list_images(dir);
    if (!images.empty()) {
      // The folder's own name ("." and trailing slashes resolved); "images" for "/".
      std::string name = fs::canonical(dir, ec).filename().string();
      names.push_back(name.empty() ? "images" : name);
      files.push_back(std::move(images));
    }
  }
  if (names.empty()) {
    throw DataError("image folder '" + dir + "' is empty: no images found in it or its " +
                    "sub-folders (accepted extensions: " + accepted_extensions() + ")");
  }

  ImageSet set;
  set.channels = channels;
  set.height = size;
  set.width = size;
  set.class_names = names;
  size_t total = 0;
  for (const auto& list : files) total += list.size();
  set.pixels.reserve(total * channels * size * size);
  set.labels.reserve(total);
  for (size_t label = 0; label < files.size(); ++label) {
    for (const auto& path : files[label]) {
      load_one(path, size, channels, set.pixels);
      set.labels.push_back(static_cast<int64_t>(label));
    }
  }
  set.n = static_cast<int64_t>(set.labels.size());
  return set;
}

}  // namespace difflab

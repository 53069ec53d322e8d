// IDX files (LeCun et al., "THE MNIST DATABASE of handwritten digits",
// http://yann.lecun.com/exdb/mnist/ — "FILE FORMATS FOR THE MNIST DATABASE"):
//
//   magic   4 bytes, big-endian: 0x00 0x00 <type> <number of dimensions>
//           type 0x08 = unsigned byte; images 0x00000803 (3 dims), labels 0x00000801 (1 dim)
//   sizes   one big-endian int32 per dimension (images: count, rows, columns)
//   data    the values, row-major, last dimension fastest
//
// Files may also be gzip-compressed (as distributed); zlib's gzread reads plain and
// gzip files alike, so no detection is needed on our side.
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/data/image_set.h"
#include "core/util/paths.h"

namespace difflab {

namespace fs = std::filesystem;

namespace {

// IDX magic numbers for unsigned-byte tensors of 3 (images) and 1 (labels) dimensions.
constexpr uint32_t kIdxImagesMagic = 0x00000803;
constexpr uint32_t kIdxLabelsMagic = 0x00000801;
// Bytes in the header: the magic plus one int32 per dimension.
constexpr size_t kIdxImagesHeader = 4 + 3 * 4;
constexpr size_t kIdxLabelsHeader = 4 + 1 * 4;
// MNIST-style IDX sets have ten classes, named "0".."9" unless the caller renames them.
constexpr int kIdxClasses = 10;
// Largest image side accepted (keeps the size arithmetic far from overflow).
constexpr uint32_t kIdxMaxSide = 16384;
// Read in chunks of this many bytes (gzread takes an unsigned length).
constexpr unsigned kReadChunk = 1u << 20;

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", static_cast<unsigned>(v));
  return buf;
}

uint32_t read_be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

void put_be32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>((v >> 24) & 0xFF));
  out.push_back(static_cast<char>((v >> 16) & 0xFF));
  out.push_back(static_cast<char>((v >> 8) & 0xFF));
  out.push_back(static_cast<char>(v & 0xFF));
}

// The most pixel bytes one IDX file may declare: 2 GiB (MNIST's training images are 47 MB).
constexpr uint64_t kIdxMaxBytes = uint64_t{1} << 31;

// The file's contents, decompressed when it is gzip, but never more than its header
// promises: once `header` bytes are in, `declared` checks them and returns the total size
// they declare, and reading stops one byte past that (enough to see trailing data). So a
// gzip bomb, or a count far beyond the data, cannot take more memory than a file of the
// declared size. A file shorter than `header` is returned whole for the caller to report.
std::vector<uint8_t> read_maybe_gz(const std::string& path, size_t header,
                                   const std::function<uint64_t(const std::vector<uint8_t>&)>& declared) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw DataError("IDX file not found: '" + path + "'");
  if (fs::is_directory(path, ec)) {
    throw DataError("IDX file '" + path + "' is a folder, not a file");
  }
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) throw DataError("cannot open IDX file '" + path + "'");
  std::vector<uint8_t> bytes;
  uint64_t limit = header;  // until the header is in
  bool limit_known = false;
  try {
    for (;;) {
      if (bytes.size() >= limit) {
        if (limit_known) break;  // one byte past the declared size: trailing data
        const uint64_t total = declared(bytes);
        if (total - header > kIdxMaxBytes)
          throw DataError("IDX file '" + path + "' declares " + std::to_string(total - header) +
                          " bytes of data, more than the " + std::to_string(kIdxMaxBytes >> 20) +
                          " MiB this app loads from one file");
        limit = total + 1;
        limit_known = true;
        bytes.reserve(static_cast<size_t>(limit));
        continue;
      }
      const auto want = static_cast<unsigned>(std::min<uint64_t>(kReadChunk, limit - bytes.size()));
      const size_t at = bytes.size();
      bytes.resize(at + want);
      const int got = gzread(file, bytes.data() + at, want);
      if (got < 0) {
        int code = 0;
        throw DataError("cannot read IDX file '" + path + "' (corrupt gzip?): " + gzerror(file, &code));
      }
      bytes.resize(at + static_cast<size_t>(got));
      if (got == 0) break;
    }
  } catch (...) {
    gzclose(file);
    throw;
  }
  gzclose(file);
  return bytes;
}

void check_magic(const std::string& path, const std::vector<uint8_t>& bytes, uint32_t expected,
                 const char* what) {
  if (bytes.size() < 4) {
    throw DataError("IDX file '" + path + "' is truncated: expected at least 4 bytes, got " +
                    std::to_string(bytes.size()));
  }
  const uint32_t got = read_be32(bytes.data());
  if (got != expected) {
    throw DataError("IDX file '" + path + "' has wrong magic number: got " + hex32(got) +
                    ", expected " + hex32(expected) + " (" + what + ")");
  }
}

// `have` bytes read of a file whose header declares `expected` (read_maybe_gz stops one
// byte past it).
void check_size(const std::string& path, size_t have, uint64_t expected) {
  if (have < expected) {
    throw DataError("IDX file '" + path + "' is truncated: expected " + std::to_string(expected) +
                    " bytes, got " + std::to_string(have));
  }
  if (have > expected) {
    throw DataError("IDX file '" + path + "' has trailing data: expected " +
                    std::to_string(expected) + " bytes, but it holds more");
  }
}

std::vector<std::string> default_class_names() {
  std::vector<std::string> names;
  for (int i = 0; i < kIdxClasses; ++i) names.push_back(std::to_string(i));
  return names;
}

void write_atomic(const std::string& path, const std::string& bytes) {
  try {
    write_file_atomic(path, bytes);
  } catch (const DataError&) {
    throw;
  } catch (const std::runtime_error& e) {
    throw DataError(e.what());
  }
}

// The first of `names` that exists in `dir` (empty if none); appends what was tried.
std::string find_first(const fs::path& dir, const std::vector<std::string>& names,
                       std::string& tried) {
  std::error_code ec;
  for (const auto& name : names) {
    const fs::path p = dir / name;
    if (fs::is_regular_file(p, ec)) return p.string();
    tried += (tried.empty() ? "" : ", ") + name;
  }
  return {};
}

// train-images-idx3-ubyte, train-images.idx3-ubyte and the same with .gz.
std::vector<std::string> idx_names(const std::string& prefix, const std::string& kind,
                                   int dims) {
  const std::string tail = "idx" + std::to_string(dims) + "-ubyte";
  std::vector<std::string> names;
  for (const std::string& base :
       {prefix + "-" + kind + "-" + tail, prefix + "-" + kind + "." + tail}) {
    names.push_back(base);
    names.push_back(base + ".gz");
  }
  return names;
}

}  // namespace

ImageSet read_idx(const std::string& images_path, const std::string& labels_path) {
  ImageSet set;

  const std::vector<uint8_t> img =
      read_maybe_gz(images_path, kIdxImagesHeader, [&](const std::vector<uint8_t>& head) {
        check_magic(images_path, head, kIdxImagesMagic, "images: unsigned bytes, 3 dimensions");
        const uint32_t rows = read_be32(head.data() + 8);
        const uint32_t cols = read_be32(head.data() + 12);
        if (rows == 0 || cols == 0 || rows > kIdxMaxSide || cols > kIdxMaxSide) {
          throw DataError("IDX file '" + images_path + "' has an invalid image size " +
                          std::to_string(rows) + "x" + std::to_string(cols));
        }
        return kIdxImagesHeader + uint64_t(read_be32(head.data() + 4)) * rows * cols;
      });
  check_magic(images_path, img, kIdxImagesMagic, "images: unsigned bytes, 3 dimensions");
  if (img.size() < kIdxImagesHeader) {
    throw DataError("IDX file '" + images_path + "' is truncated: expected at least " +
                    std::to_string(kIdxImagesHeader) + " header bytes, got " +
                    std::to_string(img.size()));
  }
  const uint32_t n = read_be32(img.data() + 4);
  const uint32_t rows = read_be32(img.data() + 8);
  const uint32_t cols = read_be32(img.data() + 12);
  check_size(images_path, img.size(), kIdxImagesHeader + uint64_t(n) * rows * cols);

  const std::vector<uint8_t> lab =
      read_maybe_gz(labels_path, kIdxLabelsHeader, [&](const std::vector<uint8_t>& head) {
        check_magic(labels_path, head, kIdxLabelsMagic, "labels: unsigned bytes, 1 dimension");
        return kIdxLabelsHeader + uint64_t(read_be32(head.data() + 4));
      });
  check_magic(labels_path, lab, kIdxLabelsMagic, "labels: unsigned bytes, 1 dimension");
  if (lab.size() < kIdxLabelsHeader) {
    throw DataError("IDX file '" + labels_path + "' is truncated: expected at least " +
                    std::to_string(kIdxLabelsHeader) + " header bytes, got " +
                    std::to_string(lab.size()));
  }
  const uint32_t n_labels = read_be32(lab.data() + 4);
  check_size(labels_path, lab.size(), kIdxLabelsHeader + uint64_t(n_labels));
  if (n_labels != n) {
    throw DataError("IDX label count mismatch: '" + labels_path + "' has " +
                    std::to_string(n_labels) + " labels but '" + images_path + "' has " +
                    std::to_string(n) + " images");
  }

  set.n = n;
  set.channels = 1;
  set.height = static_cast<int>(rows);
  set.width = static_cast<int>(cols);
  set.pixels.assign(img.begin() + kIdxImagesHeader, img.end());
  set.labels.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    const uint8_t label = lab[kIdxLabelsHeader + i];
    if (label >= kIdxClasses) {
      throw DataError("IDX file '" + labels_path + "': label " + std::to_string(label) +
                      " at index " + std::to_string(i) + " is out of range 0.." +
                      std::to_string(kIdxClasses - 1));
    }
    set.labels[i] = label;
  }
  set.class_names = default_class_names();
  return set;
}

ImageSet read_idx_folder(const std::string& dir, bool train) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw DataError("IDX folder not found: '" + dir + "'");
  if (!fs::is_directory(dir, ec)) throw DataError("IDX path '" + dir + "' is not a folder");

  const std::string prefix = train ? "train" : "t10k";
  std::string tried_images;
  std::string tried_labels;
  const std::string images = find_first(dir, idx_names(prefix, "images", 3), tried_images);
  const std::string labels = find_first(dir, idx_names(prefix, "labels", 1), tried_labels);
  if (images.empty()) {
    throw DataError("no " + prefix + " images in IDX folder '" + dir + "'; looked for " +
                    tried_images);
  }
  if (labels.empty()) {
    throw DataError("no " + prefix + " labels in IDX folder '" + dir + "'; looked for " +
                    tried_labels);
  }
  return read_idx(images, labels);
}

void write_idx_images(const std::string& path, const ImageSet& set) {
  if (set.channels != 1) {
    throw DataError("cannot write '" + path + "': IDX images must have 1 channel, the set has " +
                    std::to_string(set.channels));
  }
  if (set.n < 0 || set.height <= 0 || set.width <= 0 ||
      set.pixels.size() != uint64_t(set.n) * set.height * set.width) {
    throw DataError("cannot write '" + path + "': the image set is inconsistent (n=" +
                    std::to_string(set.n) + ", " + std::to_string(set.height) + "x" +
                    std::to_string(set.width) + ", " + std::to_string(set.pixels.size()) +
                    " pixel bytes)");
  }
  std::string bytes;
  bytes.reserve(kIdxImagesHeader + set.pixels.size());
  put_be32(bytes, kIdxImagesMagic);
  put_be32(bytes, static_cast<uint32_t>(set.n));
  put_be32(bytes, static_cast<uint32_t>(set.height));
  put_be32(bytes, static_cast<uint32_t>(set.width));
  bytes.append(reinterpret_cast<const char*>(set.pixels.data()), set.pixels.size());
  write_atomic(path, bytes);
}

void write_idx_labels(const std::string& path, const std::vector<int64_t>& labels) {
  std::string bytes;
  bytes.reserve(kIdxLabelsHeader + labels.size());
  put_be32(bytes, kIdxLabelsMagic);
  put_be32(bytes, static_cast<uint32_t>(labels.size()));
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] > 255) {
      throw DataError("cannot write '" + path + "': label " + std::to_string(labels[i]) +
                      " at index " + std::to_string(i) + " does not fit in a byte");
    }
    bytes.push_back(static_cast<char>(labels[i]));
  }
  write_atomic(path, bytes);
}

}  // namespace difflab

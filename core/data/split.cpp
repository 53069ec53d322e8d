// Deterministic train/test split of an ImageSet. The permutation is a Fisher-Yates
// shuffle driven by std::mt19937_64's raw output (std::shuffle's use of the engine is
// implementation-defined), so a seed gives the same split with any standard library.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "core/data/image_set.h"

namespace difflab {

namespace {

// An unbiased integer in [0, bound] by rejection sampling on the 64-bit output.
uint64_t draw_upto(std::mt19937_64& rng, uint64_t bound) {
  const uint64_t range = bound + 1;
  if (range == 0) return rng();  // bound is the largest uint64_t
  const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
  uint64_t v = rng();
  while (v >= limit) v = rng();
  return v % range;
}

// A copy of `all`'s shape and class names holding the items at `indices`.
ImageSet take(const ImageSet& all, const std::vector<int64_t>& indices) {
  ImageSet out;
  out.channels = all.channels;
  out.height = all.height;
  out.width = all.width;
  out.class_names = all.class_names;
  const size_t item = size_t(all.channels) * all.height * all.width;
  out.n = static_cast<int64_t>(indices.size());
  out.pixels.resize(indices.size() * item);
  out.labels.resize(indices.size());
  for (size_t i = 0; i < indices.size(); ++i) {
    const size_t src = size_t(indices[i]);
    std::copy_n(all.pixels.begin() + src * item, item, out.pixels.begin() + i * item);
    out.labels[i] = all.labels[src];
  }
  return out;
}

}  // namespace

void split_image_set(const ImageSet& all, double test_fraction, uint64_t seed, ImageSet& train,
                     ImageSet& test) {
  if (!(test_fraction >= 0.0 && test_fraction <= 1.0)) {
    throw DataError("split: test_fraction must be in [0, 1], got " +
                    std::to_string(test_fraction));
  }
  const size_t item = size_t(all.channels) * all.height * all.width;
  if (all.n < 0 || all.labels.size() != size_t(all.n) ||
      all.pixels.size() != size_t(all.n) * item) {
    throw DataError("split: the image set is inconsistent (n=" + std::to_string(all.n) + ", " +
                    std::to_string(all.labels.size()) + " labels, " +
                    std::to_string(all.pixels.size()) + " pixel bytes)");
  }

  const int64_t n = all.n;
  int64_t n_test = static_cast<int64_t>(std::llround(double(n) * test_fraction));
  // With two or more items, a non-zero fraction holds out at least one and a fraction
  // below one keeps at least one for training.
  if (n >= 2 && test_fraction > 0.0 && n_test == 0) n_test = 1;
  if (n >= 2 && test_fraction < 1.0 && n_test == n) n_test = n - 1;

  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::mt19937_64 rng(seed);
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(draw_upto(rng, uint64_t(i)));
    std::swap(order[size_t(i)], order[size_t(j)]);
  }

  // Each split keeps the original order of its items.
  std::vector<int64_t> test_idx(order.begin(), order.begin() + n_test);
  std::vector<int64_t> train_idx(order.begin() + n_test, order.end());
  std::sort(test_idx.begin(), test_idx.end());
  std::sort(train_idx.begin(), train_idx.end());

  // Build both before assigning: `all` may be the same object as `train` or `test`.
  ImageSet new_train = take(all, train_idx);
  ImageSet new_test = take(all, test_idx);
  train = std::move(new_train);
  test = std::move(new_test);
}

}  // namespace difflab

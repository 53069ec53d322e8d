// Model checkpoint reader: load_checkpoint_model = open_checkpoint (the CRC-32 seal,
// LibTorch's zip and pickle readers, the format tag), read_checkpoint_info (the embedded
// config and the data shape), make_model and load_module (names, shapes, copy).
//
// The seeds carry no seal (archives without one load, as those written before seals did),
// so that mutated bytes reach LibTorch's reader instead of stopping at a checksum
// mismatch; one sealed seed keeps the seal check itself in play.
#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "core/train/checkpoint.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  torch::set_num_threads(1);  // one core per fuzzer; the machine runs other work
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const difflab::fuzz::Scratch scratch;
  const std::string dir = scratch.fresh_dir("checkpoint");
  const std::string path = dir + "/step_00000002.pt";
  difflab::fuzz::write_file(path, data, size);
  difflab::fuzz::expect_clean(path, [&] {
    difflab::load_checkpoint_model(path, /*use_ema=*/true, torch::kCPU);
  });
  return 0;
}

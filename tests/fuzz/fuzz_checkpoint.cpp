// Model checkpoint reader: load_checkpoint_model = open_checkpoint (the CRC-32 seal,
// LibTorch's zip and pickle readers, the format tag), read_checkpoint_info (the embedded
// config and the data shape), make_model and load_module (names, shapes, copy).
//
// The seeds carry no seal (archives without one load, as those written before seals did;
// one sealed seed keeps the seal check in play). Unsealed archives have each zip member
// checked against its CRC-32 instead, so most mutations end there, as a file damaged on
// disk would. To reach the code behind that check (the shape entry, make_model,
// load_module), the target rewrites the CRCs of the tensor members (<archive>/data/<n>) to
// match their mutated bytes; the pickles and the TorchScript stay checked, since
// LibTorch's parsers of those crash on crafted input and are not ours to fix.
#include <torch/torch.h>
#include <zlib.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/train/checkpoint.h"
#include "core/train/checkpoint_io.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

void put_le32(std::string& b, uint64_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<char>(v >> (8 * i));
}

std::string with_tensor_crcs_matching(std::string bytes) {
  std::vector<difflab::ZipMember> members;
  try {
    members = difflab::zip_members(bytes, "");
  } catch (const difflab::CheckpointError&) {
    return bytes;  // open_checkpoint refuses it the same way
  }
  for (const difflab::ZipMember& m : members) {
    if (m.method != 0 || m.name.find("/data/") == std::string::npos) continue;
    const auto crc = static_cast<uint32_t>(
        crc32(0L, reinterpret_cast<const Bytef*>(bytes.data() + m.data_offset),
              static_cast<uInt>(m.size)));
    put_le32(bytes, m.central_crc_at, crc);
    put_le32(bytes, m.local_crc_at, crc);
  }
  return bytes;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  torch::set_num_threads(1);  // one core per fuzzer; the machine runs other work
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const difflab::fuzz::Scratch scratch;
  const std::string dir = scratch.fresh_dir("checkpoint");
  const std::string path = dir + "/step_00000002.pt";
  const std::string bytes =
      with_tensor_crcs_matching(std::string(reinterpret_cast<const char*>(data), size));
  difflab::fuzz::write_file(path, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  difflab::fuzz::expect_clean(path, [&] {
    difflab::load_checkpoint_model(path, /*use_ema=*/true, torch::kCPU);
  });
  return 0;
}

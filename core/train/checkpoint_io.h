// Archive readers and writers behind checkpoint.h, shared by the loaders and savers of
// every checkpoint kind (trainer, ControlNet, noisy classifier, evaluator). Internal: it
// brings in the torch serialize headers, which the public checkpoint.h keeps out.
#pragma once

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/train/checkpoint.h"

namespace difflab {

// Writes the format tag of `kind`, which open_checkpoint checks.
void write_checkpoint_kind(torch::serialize::OutputArchive& archive, CheckpointKind kind);
// Reads a string / integer entry, throwing CheckpointError naming the file and key.
std::string read_string(torch::serialize::InputArchive& archive, const std::string& key,
                        const std::string& path);
int64_t read_int(torch::serialize::InputArchive& archive, const std::string& key,
                 const std::string& path);
// Loads `key` (a nested module archive) into `module`, checking that every parameter
// and buffer exists with the same shape. Throws CheckpointError on any mismatch, except
// for the tensors named in `widen_inputs` (convolution weights (out, in, ...)) stored with
// fewer input channels than the module has: those fill the leading input channels and the
// rest are set to zero (an older file read by a wider layer). Returns how many were widened.
int load_module(torch::serialize::InputArchive& archive, const std::string& key,
                torch::nn::Module& module, const std::string& path,
                const std::vector<std::string>& widen_inputs = {});
// Writes every parameter and buffer of `module` under `key` (names + tensors), in the
// layout load_module reads.
void write_module_weights(torch::serialize::OutputArchive& archive, const std::string& key,
                          const torch::nn::Module& module);
DataShape read_shape(torch::serialize::InputArchive& archive, const std::string& path);
void write_shape(torch::serialize::OutputArchive& archive, const DataShape& shape);
// The config, data shape and step of an already opened checkpoint (no second read).
CheckpointInfo read_checkpoint_info(torch::serialize::InputArchive& archive,
                                    const std::string& path);
// Saves through a temporary file and a rename.
void save_archive_atomic(torch::serialize::OutputArchive& archive, const std::string& path);

// One member of a checkpoint's zip archive, where LibTorch's reader (miniz) finds it.
struct ZipMember {
  std::string name;
  uint16_t method = 0;       // 0 = stored, the only kind LibTorch writes
  uint32_t crc = 0;          // the CRC-32 its directory entry records
  uint64_t data_offset = 0;  // its bytes: after the local header, name and extra field
  uint64_t size = 0;         // bytes at data_offset
  uint64_t unpacked_size = 0;
  uint64_t central_crc_at = 0;  // where the CRC fields are (tests/fuzz rewrites them)
  uint64_t local_crc_at = 0;
};
// The members the central directory of the zip archive `bytes` lists (zip64 included);
// empty when there is no end record. Throws CheckpointError `what` + "corrupt: ..." when
// the directory or a local header lies outside the file or is not where it says.
// open_checkpoint checks their CRC-32s when the file has no seal.
std::vector<ZipMember> zip_members(const std::string& bytes, const std::string& what);

}  // namespace difflab

// Archive readers and writers behind checkpoint.h, shared by the loaders and savers of
// every checkpoint kind (trainer, ControlNet, noisy classifier, evaluator). Internal: it
// brings in the torch serialize headers, which the public checkpoint.h keeps out.
#pragma once

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <string>

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
// and buffer exists with the same shape. Throws CheckpointError on any mismatch.
void load_module(torch::serialize::InputArchive& archive, const std::string& key,
                 torch::nn::Module& module, const std::string& path);
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

}  // namespace difflab

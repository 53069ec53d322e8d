// Checkpoint archive helpers shared by the Trainer and the sampling loaders.
// Internal to core/train; the public API is in trainer.h.
#pragma once

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <string>

#include "core/config/config.h"
#include "core/model/denoiser_net.h"
#include "core/train/trainer.h"

namespace difflab {

// Written into every checkpoint; a file without it is not ours.
constexpr const char* kCheckpointFormat = "difflab-checkpoint-v1";
// The tag of ControlNet checkpoints (core/train/controlnet_trainer.h).
constexpr const char* kControlNetFormat = "difflab-controlnet-v1";

// Opens a checkpoint and checks that its format tag is `format`; throws CheckpointError
// naming the file (and, for another of our kinds, which kind it is).
void open_checkpoint(const std::string& path, torch::serialize::InputArchive& archive,
                     const char* format = kCheckpointFormat);
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

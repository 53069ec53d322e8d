// Compact copies of trained models (difflab-cli export): the starter models in
// assets/starters/ are made this way by scripts/make_starters.sh.
//
// An exported model checkpoint holds the EMA weights alone (no raw weights, optimizer,
// RNG or data position), stored in half precision by default, with the config, data
// shape and step: it samples as the original's EMA does, and training from it starts a
// fresh optimizer. An exported ControlNet holds its weights the same way, with the base
// it belongs to (its path and weight fingerprint). Both carry an "exported" entry naming
// the precision; every loader reads them, casting back to float32.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/train/checkpoint.h"

namespace difflab {

enum class ExportPrecision { Fp32, Fp16, Bf16 };
// "fp32", "fp16", "bf16"; parse throws std::invalid_argument listing the three.
std::string_view to_string(ExportPrecision p);
ExportPrecision parse_export_precision(const std::string& text);

struct ExportOptions {
  ExportPrecision precision = ExportPrecision::Fp16;
  // ControlNets only: the base model the copy belongs to (an exported base, as shipped),
  // recorded relative to the output's folder when both lie in one tree, so the pair can
  // move together. Its weights must match the fingerprint the ControlNet was trained on.
  // Empty: the base the ControlNet names now (recorded relative to OUT's folder too).
  std::string base;
};

struct ExportSummary {
  CheckpointKind kind = CheckpointKind::Model;
  int64_t step = 0;
  int64_t parameters = 0;   // weights written
  uint64_t bytes = 0;       // size of the file written
  uint64_t source_bytes = 0;
  std::string base;         // ControlNets: the base path recorded
};

// Reads the model or ControlNet checkpoint `in` and writes its compact copy to `out`
// (atomically; the caller checks beforehand that it may replace a file there). Throws
// CheckpointError naming the file and the problem (another kind of checkpoint, a base
// whose weights do not match, ...); nothing is written then.
ExportSummary export_checkpoint(const std::string& in, const std::string& out,
                                const ExportOptions& options);

// The precision an exported checkpoint was stored in, or "" for a full checkpoint; the
// second form reads an archive already opened (open_checkpoint in checkpoint.h).
std::string exported_precision(const std::string& path);
std::string exported_precision(torch::serialize::InputArchive& archive);

// The starter models: assets/starters/<data kind>/model.pt (made by
// scripts/make_starters.sh), found as config paths are (working folder, then the source
// tree). The one for `data_kind` ("mnist", "fashion_mnist"), or "" when none ships.
std::string starter_model(const std::string& data_kind);
// All of them, by name.
std::vector<std::string> starter_models();

}  // namespace difflab

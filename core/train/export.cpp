#include "core/train/export.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>

#include "core/model/controlnet.h"
#include "core/train/checkpoint_io.h"
#include "core/train/controlnet_trainer.h"
#include "core/util/paths.h"

namespace difflab {
namespace fs = std::filesystem;

namespace {

c10::ScalarType dtype_of(ExportPrecision p) {
  switch (p) {
    case ExportPrecision::Fp16: return torch::kHalf;
    case ExportPrecision::Bf16: return torch::kBFloat16;
    case ExportPrecision::Fp32: break;
  }
  return torch::kFloat32;
}

// Opens `path` as a model checkpoint or, failing that, a ControlNet; any other file gets the
// model opener's message (missing, damaged, another kind) with `suffix`. True for a ControlNet.
bool open_model_or_controlnet(const std::string& path, torch::serialize::InputArchive& archive,
                              const std::string& suffix = "") {
  try {
    open_checkpoint(path, archive, CheckpointKind::Model);
    return false;
  } catch (const CheckpointError& model_error) {
    try {
      open_checkpoint(path, archive, CheckpointKind::ControlNet);
      return true;
    } catch (const CheckpointError&) {
      throw CheckpointError(std::string(model_error.what()) + suffix);
    }
  }
}

uint64_t file_size(const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  return ec ? 0 : static_cast<uint64_t>(size);
}

// `base` as seen from the folder of `out`: relative when both lie under one root.
std::string base_as_seen_from(const std::string& base, const std::string& out) {
  std::error_code ec;
  const fs::path from = fs::absolute(fs::path(out), ec).parent_path();
  const fs::path to = fs::absolute(fs::path(base), ec);
  fs::path rel = to.lexically_normal().lexically_relative(from.lexically_normal());
  return rel.empty() ? to.string() : rel.string();
}

ExportSummary export_model(const std::string& in, const std::string& out, const ExportOptions& o) {
  CheckpointInfo info;
  DenoiserNet net = load_checkpoint_model(in, /*use_ema=*/true, torch::kCPU, &info);
  ExportSummary summary;
  summary.kind = CheckpointKind::Model;
  summary.step = info.step;
  summary.parameters = count_parameters(*net);
  net->to(dtype_of(o.precision));
  torch::serialize::OutputArchive archive;
  write_checkpoint_kind(archive, CheckpointKind::Model);
  archive.write("exported", c10::IValue(std::string(to_string(o.precision))));
  archive.write("config", c10::IValue(config_to_yaml(info.config)));
  write_shape(archive, info.shape);
  archive.write("step", c10::IValue(info.step));
  write_module_weights(archive, "ema", *net);
  save_archive_atomic(archive, out);
  return summary;
}

ExportSummary export_controlnet(const std::string& in, const std::string& out,
                                const ExportOptions& o) {
  // Reads it as Load does: the base must exist and match the recorded fingerprint.
  LoadedControlNet cn = load_controlnet(in, torch::kCPU, o.base);
  ExportSummary summary;
  summary.kind = CheckpointKind::ControlNet;
  summary.step = cn.step;
  summary.parameters = count_parameters(*cn.net);
  // Where the ControlNet's base is now (as named, or as the file says, resolved), seen
  // from the copy: exported ControlNets read their base path against their own folder.
  summary.base = base_as_seen_from(o.base.empty() ? cn.base_path : o.base, out);
  cn.net->to(dtype_of(o.precision));
  torch::serialize::OutputArchive archive;
  write_checkpoint_kind(archive, CheckpointKind::ControlNet);
  archive.write("exported", c10::IValue(std::string(to_string(o.precision))));
  archive.write("config", c10::IValue(config_to_yaml(cn.config)));
  write_shape(archive, cn.base_info.shape);
  archive.write("step", c10::IValue(cn.step));
  archive.write("base_checkpoint", c10::IValue(summary.base));
  archive.write("base_step", c10::IValue(cn.base_info.step));
  archive.write("base_fingerprint", torch::tensor({weights_fingerprint(*cn.base)}, torch::kDouble));
  write_module_weights(archive, "controlnet", *cn.net);
  save_archive_atomic(archive, out);
  return summary;
}

}  // namespace

std::string_view to_string(ExportPrecision p) {
  switch (p) {
    case ExportPrecision::Fp16: return "fp16";
    case ExportPrecision::Bf16: return "bf16";
    case ExportPrecision::Fp32: break;
  }
  return "fp32";
}

ExportPrecision parse_export_precision(const std::string& text) {
  for (auto p : {ExportPrecision::Fp32, ExportPrecision::Fp16, ExportPrecision::Bf16})
    if (text == to_string(p)) return p;
  throw std::invalid_argument("precision '" + text + "' is not one of fp32, fp16, bf16");
}

ExportSummary export_checkpoint(const std::string& in, const std::string& out,
                                const ExportOptions& options) {
  std::error_code ec;
  if (fs::exists(out, ec) && fs::equivalent(in, out, ec))
    throw CheckpointError("export " + in + ": the copy would replace the checkpoint itself");
  torch::serialize::InputArchive probe;
  const bool controlnet =
      open_model_or_controlnet(in, probe, " (export takes model and ControlNet checkpoints)");
  if (!controlnet && !options.base.empty())
    throw CheckpointError("export " + in + ": a base is named only for a ControlNet, and " + in +
                          " is a model checkpoint");
  ExportSummary summary =
      controlnet ? export_controlnet(in, out, options) : export_model(in, out, options);
  summary.bytes = file_size(out);
  summary.source_bytes = file_size(in);
  return summary;
}

std::string exported_precision(const std::string& path) {
  torch::serialize::InputArchive archive;
  open_model_or_controlnet(path, archive);
  return exported_precision(archive);
}

std::string exported_precision(torch::serialize::InputArchive& archive) {
  c10::IValue v;
  return archive.try_read("exported", v) && v.isString() ? v.toStringRef() : std::string();
}

namespace {
constexpr const char* kStartersFolder = "assets/starters";
constexpr const char* kStarterFile = "model.pt";
}  // namespace

std::string starter_model(const std::string& data_kind) {
  if (data_kind.empty()) return "";
  const std::string path = resolve_path(std::string(kStartersFolder) + "/" + data_kind + "/" + kStarterFile);
  std::error_code ec;
  return fs::is_regular_file(path, ec) ? path : std::string();
}

std::vector<std::string> starter_models() {
  std::vector<std::string> out;
  std::error_code ec;
  const std::string root = resolve_path(kStartersFolder);
  if (!fs::is_directory(root, ec)) return out;
  for (const auto& entry : fs::directory_iterator(root, ec))
    if (fs::is_regular_file(entry.path() / kStarterFile, ec))
      out.push_back((entry.path() / kStarterFile).string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace difflab

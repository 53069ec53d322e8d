#include "core/train/checkpoint_io.h"

#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>

#include "core/util/paths.h"

namespace difflab {
namespace fs = std::filesystem;

namespace {

struct KindRow {
  CheckpointKind kind;
  std::string_view format;   // the tag in the file; never change one that exists
  std::string_view name;     // for messages
  std::string_view made_by;  // what writes such files
};
// One row per CheckpointKind, in enum order.
constexpr KindRow kKinds[] = {
    {CheckpointKind::Model, "difflab-checkpoint-v1", "model checkpoint", "difflab-cli train"},
    {CheckpointKind::ControlNet, "difflab-controlnet-v1", "ControlNet checkpoint",
     "difflab-cli train-controlnet"},
    {CheckpointKind::Classifier, "difflab-classifier-v1", "noise classifier checkpoint",
     "difflab-cli train-classifier"},
    {CheckpointKind::Evaluator, "difflab-evaluator-v1", "sample evaluator cache",
     "difflab-cli eval (<run>/evaluator.pt)"},
};
static_assert(std::size(kKinds) == static_cast<size_t>(CheckpointKind::Count),
              "one row per CheckpointKind");
constexpr bool kinds_in_order() {
  for (size_t i = 0; i < std::size(kKinds); ++i)
    if (kKinds[i].kind != static_cast<CheckpointKind>(i)) return false;
  return true;
}
static_assert(kinds_in_order(), "rows in CheckpointKind order");

const KindRow& row(CheckpointKind kind) {
  const auto i = static_cast<size_t>(kind);
  if (i >= std::size(kKinds)) throw std::invalid_argument("bad checkpoint kind");
  return kKinds[i];
}

const KindRow* row_of_format(const std::string& format) {
  for (const auto& r : kKinds)
    if (r.format == format) return &r;
  return nullptr;
}

}  // namespace

std::string_view checkpoint_format(CheckpointKind kind) { return row(kind).format; }
std::string_view checkpoint_kind_name(CheckpointKind kind) { return row(kind).name; }

void write_checkpoint_kind(torch::serialize::OutputArchive& archive, CheckpointKind kind) {
  archive.write("format", c10::IValue(std::string(checkpoint_format(kind))));
}

void open_checkpoint(const std::string& path, torch::serialize::InputArchive& archive,
                     CheckpointKind expected) {
  const KindRow& want = row(expected);
  const std::string what = std::string(want.name) + " " + path + ": ";
  if (!fs::exists(path)) throw CheckpointError(what + "no such file");
  if (fs::is_directory(path)) throw CheckpointError(what + "is a folder, not a file");
  try {
    archive.load_from(path, torch::kCPU);
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    throw CheckpointError(what + "cannot be read (truncated or not a " + std::string(want.name) +
                          "): " + msg.substr(0, msg.find('\n')));
  }
  c10::IValue tag;
  const bool tagged = archive.try_read("format", tag) && tag.isString();
  if (tagged && tag.toStringRef() == want.format) return;
  if (const KindRow* found = tagged ? row_of_format(tag.toStringRef()) : nullptr)
    throw CheckpointError(path + " is a " + std::string(found->name) + ", not a " +
                          std::string(want.name) + " (" + std::string(want.made_by) +
                          " writes those)");
  if (tagged)
    throw CheckpointError(what + "format '" + tag.toStringRef() + "' is not '" +
                          std::string(want.format) + "' (a newer or foreign file)");
  throw CheckpointError(what + "not a Diffusion Lab " + std::string(want.name) + " (no '" +
                        std::string(want.format) + "' tag; " + std::string(want.made_by) +
                        " writes those)");
}

std::string read_string(torch::serialize::InputArchive& archive, const std::string& key,
                        const std::string& path) {
  c10::IValue v;
  if (!archive.try_read(key, v) || !v.isString())
    throw CheckpointError("checkpoint " + path + ": missing entry '" + key + "'");
  return v.toStringRef();
}

int64_t read_int(torch::serialize::InputArchive& archive, const std::string& key,
                 const std::string& path) {
  c10::IValue v;
  if (!archive.try_read(key, v) || !v.isInt())
    throw CheckpointError("checkpoint " + path + ": missing entry '" + key + "'");
  return v.toInt();
}

void load_module(torch::serialize::InputArchive& archive, const std::string& key,
                 torch::nn::Module& module, const std::string& path) {
  c10::IValue names_v, tensors_v;
  if (!archive.try_read(key + "_names", names_v) || !names_v.isString() ||
      !archive.try_read(key + "_tensors", tensors_v) || !tensors_v.isTensorList())
    throw CheckpointError("checkpoint " + path + ": missing weights '" + key + "'");
  std::vector<std::string> names;
  std::istringstream in(names_v.toStringRef());
  for (std::string line; std::getline(in, line);) names.push_back(line);
  auto tensors = tensors_v.toTensorVector();
  if (names.size() != tensors.size())
    throw CheckpointError("checkpoint " + path + ": weights '" + key + "' are inconsistent");

  std::map<std::string, torch::Tensor> own;
  for (auto& p : module.named_parameters()) own[p.key()] = p.value();
  for (auto& b : module.named_buffers()) own[b.key()] = b.value();
  if (own.size() != names.size())
    throw CheckpointError("checkpoint " + path + ": '" + key + "' has " +
                          std::to_string(names.size()) + " tensors but this model has " +
                          std::to_string(own.size()) + " (different architecture)");
  for (size_t i = 0; i < names.size(); ++i) {
    auto it = own.find(names[i]);
    if (it == own.end())
      throw CheckpointError("checkpoint " + path + ": '" + key + "' has tensor '" + names[i] +
                            "' that this model lacks (different architecture)");
    if (it->second.sizes() != tensors[i].sizes()) {
      std::ostringstream msg;
      msg << "checkpoint " << path << ": tensor '" << names[i] << "' has shape "
          << tensors[i].sizes() << " but the model expects " << it->second.sizes()
          << " (different architecture)";
      throw CheckpointError(msg.str());
    }
  }
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < names.size(); ++i) own[names[i]].copy_(tensors[i]);
}

void write_module_weights(torch::serialize::OutputArchive& archive, const std::string& key,
                          const torch::nn::Module& module) {
  std::string names;
  c10::List<torch::Tensor> tensors;
  for (const auto& p : module.named_parameters()) {
    names += p.key() + "\n";
    tensors.push_back(p.value().detach().to(torch::kCPU));
  }
  for (const auto& b : module.named_buffers()) {
    names += b.key() + "\n";
    tensors.push_back(b.value().detach().to(torch::kCPU));
  }
  archive.write(key + "_names", c10::IValue(names));
  archive.write(key + "_tensors", c10::IValue(tensors));
}

DataShape read_shape(torch::serialize::InputArchive& archive, const std::string& path) {
  torch::Tensor s;
  try {
    archive.read("shape", s);
  } catch (const c10::Error&) {
    throw CheckpointError("checkpoint " + path + ": missing entry 'shape'");
  }
  if (s.numel() != 5) throw CheckpointError("checkpoint " + path + ": bad 'shape' entry");
  auto a = s.accessor<int64_t, 1>();
  return DataShape{static_cast<int>(a[0]), static_cast<int>(a[1]), static_cast<int>(a[2]),
                   a[3] != 0, static_cast<int>(a[4])};
}

void write_shape(torch::serialize::OutputArchive& archive, const DataShape& shape) {
  archive.write("shape", torch::tensor({static_cast<int64_t>(shape.channels),
                                        static_cast<int64_t>(shape.height),
                                        static_cast<int64_t>(shape.width),
                                        static_cast<int64_t>(shape.points ? 1 : 0),
                                        static_cast<int64_t>(shape.num_classes)}));
}

void save_archive_atomic(torch::serialize::OutputArchive& archive, const std::string& path) {
  const fs::path target(path);
  if (target.has_parent_path()) make_dirs(target.parent_path().string());
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  try {
    archive.save_to(tmp);
  } catch (const c10::Error& e) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw CheckpointError("checkpoint " + path + ": cannot write: " + e.what_without_backtrace());
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw CheckpointError("checkpoint " + path + ": cannot rename into place: " + ec.message());
  }
}

CheckpointInfo read_checkpoint_info(const std::string& path) {
  torch::serialize::InputArchive archive;
  open_checkpoint(path, archive, CheckpointKind::Model);
  return read_checkpoint_info(archive, path);
}

CheckpointInfo read_checkpoint_info(torch::serialize::InputArchive& archive,
                                    const std::string& path) {
  CheckpointInfo info;
  try {
    info.config = config_from_yaml(read_string(archive, "config", path), path + " (embedded config)");
  } catch (const ConfigError& e) {
    throw CheckpointError(std::string("checkpoint ") + path + ": bad embedded config: " + e.what());
  }
  info.shape = read_shape(archive, path);
  info.step = read_int(archive, "step", path);
  return info;
}

DenoiserNet load_checkpoint_model(const std::string& path, bool use_ema, c10::Device device,
                                  CheckpointInfo* info_out) {
  torch::serialize::InputArchive archive;
  open_checkpoint(path, archive, CheckpointKind::Model);
  CheckpointInfo info = read_checkpoint_info(archive, path);
  auto net = make_model(info.config, info.shape);
  load_module(archive, use_ema ? "ema" : "model", *net, path);
  net->to(device);
  net->eval();
  if (info_out) *info_out = info;
  return net;
}

SamplingModel load_sampling_model(const std::string& path, bool use_ema, c10::Device device,
                                  CheckpointInfo* info_out) {
  CheckpointInfo info;
  auto net = load_checkpoint_model(path, use_ema, device, &info);
  if (info_out) *info_out = info;
  return sampling_model(std::move(net), info.config.diffusion, info.shape);
}

}  // namespace difflab

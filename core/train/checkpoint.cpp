#include "core/train/checkpoint_io.h"

#include <torch/torch.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
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

// A checkpoint is a zip archive (LibTorch's format). Its end-of-central-directory record
// may carry a comment, which zip readers (LibTorch, PyTorch, unzip) skip; Diffusion Lab
// puts a CRC-32 of everything before the comment there. LibTorch does not check the zip's
// own per-entry CRCs, so without this a flipped byte in a weight loads silently.
constexpr uint32_t kEndOfDirectorySignature = 0x06054b50;
constexpr size_t kEndOfDirectorySize = 22;  // without the comment
constexpr std::string_view kSealPrefix = "difflab-crc32:";

uint32_t read_le32(const std::string& b, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 8 | static_cast<uint8_t>(b[at + i]);
  return v;
}
uint16_t read_le16(const std::string& b, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(b[at]) | static_cast<uint8_t>(b[at + 1]) << 8);
}

// Where the end-of-central-directory record starts whose comment runs to the end of the
// file; npos when there is none.
size_t find_end_of_directory(const std::string& b) {
  if (b.size() < kEndOfDirectorySize) return std::string::npos;
  const size_t lowest = b.size() > kEndOfDirectorySize + 0xFFFF
                            ? b.size() - kEndOfDirectorySize - 0xFFFF : 0;
  for (size_t at = b.size() - kEndOfDirectorySize;; --at) {
    if (read_le32(b, at) == kEndOfDirectorySignature &&
        at + kEndOfDirectorySize + read_le16(b, at + 20) == b.size())
      return at;
    if (at == lowest) return std::string::npos;
  }
}

// CRC-32 of the archive as written without a comment: bytes up to the comment-length
// field, then that field as zero.
uint32_t archive_crc(const std::string& b, size_t eocd) {
  const size_t length_field = eocd + kEndOfDirectorySize - 2;
  uLong crc = crc32(0L, Z_NULL, 0);
  for (size_t done = 0; done < length_field;) {
    const size_t n = std::min<size_t>(length_field - done, size_t{1} << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(b.data() + done), static_cast<uInt>(n));
    done += n;
  }
  const Bytef zeros[2] = {0, 0};
  return static_cast<uint32_t>(crc32(crc, zeros, 2));
}

std::string hex32(uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

// Adds the CRC comment to an archive LibTorch just wrote (which has no comment).
void seal_archive(std::string& b, const std::string& path) {
  const size_t eocd = find_end_of_directory(b);
  if (eocd == std::string::npos || read_le16(b, eocd + 20) != 0)
    throw CheckpointError("checkpoint " + path + ": LibTorch wrote an archive without a zip directory");
  const std::string comment = std::string(kSealPrefix) + hex32(archive_crc(b, eocd));
  b[eocd + 20] = static_cast<char>(comment.size() & 0xFF);
  b[eocd + 21] = static_cast<char>(comment.size() >> 8);
  b += comment;
}

// Checks the CRC comment. Archives without one (written before checksums) pass.
void check_seal(const std::string& b, const std::string& what) {
  const size_t eocd = find_end_of_directory(b);
  if (eocd == std::string::npos) return;  // LibTorch's reader gives the error
  const std::string comment = b.substr(eocd + kEndOfDirectorySize);
  if (comment.rfind(kSealPrefix, 0) != 0) return;
  const std::string stored = comment.substr(kSealPrefix.size());
  const std::string actual = hex32(archive_crc(b, eocd));
  if (stored != actual)
    throw CheckpointError(what + "corrupt: its checksum is " + actual + ", the file says " +
                          stored + " (the file changed after it was written; use an earlier "
                          "checkpoint)");
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
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw CheckpointError(what + "cannot open: " + std::strerror(errno));
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) throw CheckpointError(what + "cannot read: " + std::strerror(errno));
  }
  check_seal(bytes, what);
  try {
    archive.load_from(bytes.data(), bytes.size(), torch::kCPU);
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
  std::string bytes;
  try {
    archive.save_to([&bytes](const void* data, size_t size) {
      bytes.append(static_cast<const char*>(data), size);
      return size;
    });
  } catch (const c10::Error& e) {
    throw CheckpointError("checkpoint " + path + ": cannot serialise: " + e.what_without_backtrace());
  }
  seal_archive(bytes, path);
  try {
    write_file_atomic(path, bytes);
  } catch (const std::runtime_error& e) {
    throw CheckpointError(std::string("checkpoint: ") + e.what());
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

#include "core/train/checkpoint_io.h"

#include <torch/torch.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "core/train/run_folder.h"
#include "core/util/paths.h"
#include "core/vision/png.h"

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

// The largest data shape read_shape accepts: 4 channels (RGBA), read_image's largest side
// (core/vision/png.h), and more classes than any labelled set we read has.
constexpr int64_t kMaxShapeChannels = 4;
constexpr int64_t kMaxShapeSide = kMaxImageSide;
constexpr int64_t kMaxShapeClasses = int64_t{1} << 16;
constexpr const char* kChangedSinceWritten =
    " (the file changed after it was written; use an earlier checkpoint)";

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

// Checks the CRC comment; true when there is one (and it matches). Archives without one
// (written before checksums) pass unchecked: false.
bool check_seal(const std::string& b, const std::string& what) {
  const size_t eocd = find_end_of_directory(b);
  if (eocd == std::string::npos) return false;  // LibTorch's reader gives the error
  const std::string comment = b.substr(eocd + kEndOfDirectorySize);
  if (comment.rfind(kSealPrefix, 0) != 0) return false;
  const std::string stored = comment.substr(kSealPrefix.size());
  const std::string actual = hex32(archive_crc(b, eocd));
  if (stored != actual)
    throw CheckpointError(what + "corrupt: its checksum is " + actual + ", the file says " +
                          stored + kChangedSinceWritten);
  return true;
}

uint64_t read_le64(const std::string& b, size_t at) {
  return uint64_t{read_le32(b, at)} | uint64_t{read_le32(b, at + 4)} << 32;
}

// The zip layout (PKWARE APPNOTE 6.3: 4.3.7 local file header, 4.3.12 central directory
// header, 4.3.14-4.3.16 zip64 end of central directory record and locator, 4.5.3 zip64
// extended information), as far as LibTorch's reader (miniz) goes by it.
constexpr uint32_t kLocalHeaderSignature = 0x04034b50;
constexpr size_t kLocalHeaderSize = 30;
constexpr uint32_t kCentralHeaderSignature = 0x02014b50;
constexpr size_t kCentralHeaderSize = 46;
constexpr uint32_t kZip64EndSignature = 0x06064b50;
constexpr size_t kZip64EndSize = 56;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr size_t kZip64LocatorSize = 20;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint32_t kZip64Marker = 0xFFFFFFFF;  // "the value is in the zip64 extra field"

// Checks every stored member against the CRC-32 its directory entry records: the check
// LibTorch skips, and the only one an archive from before the seal has. Without it a
// flipped byte reaches LibTorch's TorchScript and pickle readers, which can crash on one
// (fuzz_checkpoint found such files), or makes it allocate what a broken size says.
void check_members(const std::string& b, const std::string& what) {
  const auto corrupt = [&](const std::string& why) {
    return CheckpointError(what + "corrupt: " + why + kChangedSinceWritten);
  };
  for (const ZipMember& m : zip_members(b, what)) {
    if (m.method != 0) continue;  // LibTorch writes stored members only
    if (m.size != m.unpacked_size)
      throw corrupt("zip member '" + m.name + "' is stored with two different sizes");
    uLong crc = crc32(0L, Z_NULL, 0);
    for (uint64_t done = 0; done < m.size;) {
      const uint64_t n = std::min<uint64_t>(m.size - done, uint64_t{1} << 30);
      crc = crc32(crc, reinterpret_cast<const Bytef*>(b.data() + m.data_offset + done),
                  static_cast<uInt>(n));
      done += n;
    }
    if (static_cast<uint32_t>(crc) != m.crc)
      throw corrupt("zip member '" + m.name + "' fails its CRC-32 check");
  }
}

}  // namespace

std::vector<ZipMember> zip_members(const std::string& b, const std::string& what) {
  const auto damaged = [&](const std::string& why) {
    return CheckpointError(what + "corrupt: " + why + kChangedSinceWritten);
  };
  const size_t eocd = find_end_of_directory(b);
  if (eocd == std::string::npos) return {};  // not a zip at all: LibTorch's reader says so
  uint64_t count = read_le16(b, eocd + 10);
  uint64_t directory_size = read_le32(b, eocd + 12);
  uint64_t directory_at = read_le32(b, eocd + 16);
  // A zip64 locator right before the end record points at the zip64 record, whose values
  // miniz takes instead (LibTorch always writes one).
  if (eocd >= kZip64LocatorSize &&
      read_le32(b, eocd - kZip64LocatorSize) == kZip64LocatorSignature) {
    const uint64_t record = read_le64(b, eocd - kZip64LocatorSize + 8);
    if (record > eocd - kZip64LocatorSize || eocd - kZip64LocatorSize - record < kZip64EndSize ||
        read_le32(b, record) != kZip64EndSignature)
      throw damaged("its zip64 end record is not where the locator says");
    count = read_le64(b, record + 32);
    directory_size = read_le64(b, record + 40);
    directory_at = read_le64(b, record + 48);
  }
  if (directory_at > b.size() || directory_size > b.size() - directory_at)
    throw damaged("its zip directory lies outside the file");

  std::vector<ZipMember> members;
  const uint64_t directory_end = directory_at + directory_size;
  uint64_t at = directory_at;
  for (uint64_t i = 0; i < count; ++i) {
    if (directory_end - at < kCentralHeaderSize || read_le32(b, at) != kCentralHeaderSignature)
      throw damaged("its zip directory ends after " + std::to_string(i) + " of " +
                    std::to_string(count) + " members");
    const size_t name_length = read_le16(b, at + 28);
    const size_t extra_length = read_le16(b, at + 30);
    const size_t comment_length = read_le16(b, at + 32);
    if (directory_end - at - kCentralHeaderSize < name_length + extra_length + comment_length)
      throw damaged("its zip directory ends inside member " + std::to_string(i));
    ZipMember m;
    m.name = b.substr(at + kCentralHeaderSize, name_length);
    m.method = read_le16(b, at + 10);
    m.crc = read_le32(b, at + 16);
    m.central_crc_at = at + 16;
    m.size = read_le32(b, at + 20);
    m.unpacked_size = read_le32(b, at + 24);
    uint64_t local = read_le32(b, at + 42);
    // zip64 extended information: 64-bit values for the fields that hold the marker, in
    // this order.
    const uint64_t extra_end = at + kCentralHeaderSize + name_length + extra_length;
    for (uint64_t e = at + kCentralHeaderSize + name_length; extra_end - e >= 4;) {
      const uint64_t length = read_le16(b, e + 2);
      if (extra_end - e - 4 < length)
        throw damaged("zip member '" + m.name + "' has a broken extra field");
      if (read_le16(b, e) == kZip64ExtraId) {
        uint64_t value = e + 4;
        for (uint64_t* field : {&m.unpacked_size, &m.size, &local}) {
          if (*field != kZip64Marker) continue;
          if (e + 4 + length - value < 8)
            throw damaged("zip member '" + m.name + "' has a broken zip64 field");
          *field = read_le64(b, value);
          value += 8;
        }
      }
      e += 4 + length;
    }
    if (local > b.size() || b.size() - local < kLocalHeaderSize ||
        read_le32(b, local) != kLocalHeaderSignature)
      throw damaged("zip member '" + m.name + "' has no local header where the directory says");
    m.local_crc_at = local + 14;
    m.data_offset = local + kLocalHeaderSize + read_le16(b, local + 26) + read_le16(b, local + 28);
    if (m.data_offset > b.size() || m.size > b.size() - m.data_offset)
      throw damaged("zip member '" + m.name + "' runs past the end of the file");
    members.push_back(std::move(m));
    at += kCentralHeaderSize + name_length + extra_length + comment_length;
  }
  return members;
}

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
  std::string bytes, why;
  if (!read_file(path, &bytes, &why)) throw CheckpointError(what + "cannot read: " + why);
  if (!check_seal(bytes, what)) check_members(bytes, what);
  const auto unreadable = [&](const std::string& msg) {
    return CheckpointError(what + "cannot be read (truncated or not a " + std::string(want.name) +
                           "): " + msg.substr(0, msg.find('\n')));
  };
  try {
    archive.load_from(bytes.data(), bytes.size(), torch::kCPU);
  } catch (const c10::Error& e) {
    throw unreadable(e.what_without_backtrace());
  } catch (const std::exception& e) {
    // LibTorch compiles the TorchScript in the archive's code/ folder, and its parser
    // throws errors of its own (not c10::Error).
    throw unreadable(e.what());
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

int load_module(torch::serialize::InputArchive& archive, const std::string& key,
                torch::nn::Module& module, const std::string& path,
                const std::vector<std::string>& widen_inputs) {
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

  // A tensor of `widen_inputs` with fewer input channels (dim 1) than the layer, the rest equal.
  auto narrower_input = [&](const std::string& name, const torch::Tensor& stored, const torch::Tensor& mine) {
    if (std::find(widen_inputs.begin(), widen_inputs.end(), name) == widen_inputs.end()) return false;
    if (stored.dim() != mine.dim() || stored.dim() < 2 || stored.size(1) >= mine.size(1)) return false;
    for (int64_t d = 0; d < stored.dim(); ++d)
      if (d != 1 && stored.size(d) != mine.size(d)) return false;
    return true;
  };
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
    if (it->second.sizes() != tensors[i].sizes() && !narrower_input(names[i], tensors[i], it->second)) {
      std::ostringstream msg;
      msg << "checkpoint " << path << ": tensor '" << names[i] << "' has shape "
          << tensors[i].sizes() << " but the model expects " << it->second.sizes()
          << " (different architecture)";
      throw CheckpointError(msg.str());
    }
  }
  torch::NoGradGuard no_grad;
  int widened = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    auto& target = own[names[i]];
    if (target.sizes() == tensors[i].sizes()) {
      target.copy_(tensors[i]);
      continue;
    }
    target.zero_();
    target.narrow(1, 0, tensors[i].size(1)).copy_(tensors[i]);
    ++widened;
  }
  return widened;
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
  if (!s.defined() || s.dim() != 1 || s.numel() != 5 || s.scalar_type() != torch::kLong)
    throw CheckpointError("checkpoint " + path + ": bad 'shape' entry (not 5 integers)");
  const auto a = s.accessor<int64_t, 1>();
  // What write_shape writes for the data sets there are (core/data/dataset.cpp): checked
  // before a network is built to it (a damaged channel count is a huge convolution).
  const bool points = a[3] == 1;
  const bool fits = points ? a[0] == 2 && a[1] == 0 && a[2] == 0
                           : a[3] == 0 && a[0] >= 1 && a[0] <= kMaxShapeChannels && a[1] >= 1 &&
                                 a[1] <= kMaxShapeSide && a[2] >= 1 && a[2] <= kMaxShapeSide;
  if (!fits || a[4] < 0 || a[4] > kMaxShapeClasses) {
    std::string values;
    for (int i = 0; i < 5; ++i) values += (i ? ", " : "") + std::to_string(a[i]);
    throw CheckpointError("checkpoint " + path + ": bad 'shape' entry [" + values +
                          "]: expected [channels 1.." + std::to_string(kMaxShapeChannels) +
                          ", height and width 1.." + std::to_string(kMaxShapeSide) +
                          ", 0, classes 0.." + std::to_string(kMaxShapeClasses) +
                          "] for images, [2, 0, 0, 1, classes] for points");
  }
  return DataShape{static_cast<int>(a[0]), static_cast<int>(a[1]), static_cast<int>(a[2]), points,
                   static_cast<int>(a[4])};
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

CheckpointInfo read_checkpoint_info(const std::string& path, CheckpointKind kind) {
  torch::serialize::InputArchive archive;
  open_checkpoint(path, archive, kind);
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
  DenoiserNet net;
  try {
    net = make_model(info.config, info.shape);
  } catch (const std::invalid_argument& e) {  // the config does not fit the shape
    throw CheckpointError("checkpoint " + path +
                          ": its config and data shape disagree: " + e.what());
  }
  // An exported checkpoint (core/train/export.h) holds the EMA weights alone.
  c10::IValue exported;
  const bool ema_only = archive.try_read("exported", exported);
  load_module(archive, use_ema || ema_only ? "ema" : "model", *net, path);
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

std::string checkpoint_or_newest(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return path;
  const std::string newest = latest_checkpoint(path);
  if (newest.empty())
    throw CheckpointError(what + " " + path +
                          ": a folder with no checkpoint in checkpoints/ (name a checkpoint "
                          "file or a run folder that has one)");
  return newest;
}

DenoiserNet load_guide_model(const SampleConfig& sample, const SamplingModel& model,
                             c10::Device device) {
  if (sample.guide_model.empty()) return nullptr;
  // Relative paths as the app's other paths (a run folder, or the source tree's assets/).
  const std::string path = checkpoint_or_newest(resolve_path(sample.guide_model), "guide model");
  SamplingModel guide;
  try {
    guide = load_sampling_model(path, sample.use_ema, device);
  } catch (const CheckpointError& e) {
    // The name may come from a checkpoint's saved config: say which file this is.
    throw CheckpointError("guide model (sample.guide_model): " + std::string(e.what()));
  }
  const std::string what = "guide model " + path + ": ";
  const auto differs = [&](const std::string& name, const std::string& theirs,
                           const std::string& ours) {
    return CheckpointError(what + name + " " + theirs + ", the model's " + ours +
                           " (autoguidance needs a weaker model of the same kind: the same "
                           "data, objective and classes, smaller or trained for less)");
  };
  const ObjectiveParams& a = guide.objective;
  const ObjectiveParams& b = model.objective;
  if (a.objective != b.objective)
    throw differs("objective", std::string(to_string(a.objective)), std::string(to_string(b.objective)));
  if (guide.prediction != model.prediction)
    throw differs("predicts", std::string(to_string(guide.prediction)),
                  std::string(to_string(model.prediction)));
  const auto shape_text = [](const std::vector<int64_t>& s) {
    std::string out;
    for (auto d : s) out += (out.empty() ? "" : "x") + std::to_string(d);
    return out;
  };
  if (guide.shape != model.shape) throw differs("data", shape_text(guide.shape), shape_text(model.shape));
  if (guide.num_classes != model.num_classes)
    throw differs("classes", std::to_string(guide.num_classes), std::to_string(model.num_classes));
  if (a.objective == Objective::Edm) {
    // σ_data sets the preconditioning, σ_min and σ_max how σ maps to the network's time.
    if (a.sigma_data != b.sigma_data)
      throw differs("sigma_data", std::to_string(a.sigma_data), std::to_string(b.sigma_data));
    if (a.sigma_min != b.sigma_min || a.sigma_max != b.sigma_max)
      throw differs("sigma range", std::to_string(a.sigma_min) + ".." + std::to_string(a.sigma_max),
                    std::to_string(b.sigma_min) + ".." + std::to_string(b.sigma_max));
  }
  if (a.time_scale != b.time_scale)
    throw differs("timesteps", std::to_string(a.time_scale), std::to_string(b.time_scale));
  if (a.objective == Objective::Ddpm) {
    // The guide answers at the model's schedule rows: its ᾱ must be the same at each (both
    // tables are computed from their configs the same way, so equal means identical).
    const auto& ga = guide.schedule.alphas_cumprod();
    const auto& ma = model.schedule.alphas_cumprod();
    if (ga != ma)
      throw differs("noise schedule", "of " + std::to_string(ga.size()) + " steps",
                    "of " + std::to_string(ma.size()) + " steps (or a different kind)");
  }
  return guide.net;
}

}  // namespace difflab

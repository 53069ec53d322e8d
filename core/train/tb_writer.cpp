// Wire formats written here:
//  - TFRecord: uint64 length (LE), uint32 masked CRC32C of the 8 length bytes,
//    the payload, uint32 masked CRC32C of the payload.
//  - Event (tensorflow/core/util/event.proto): 1 wall_time double, 2 step int64,
//    3 file_version string, 5 summary Summary.
//  - Summary (tensorflow/core/framework/summary.proto): repeated 1 value Summary.Value;
//    Summary.Value: 1 tag string, 2 simple_value float.
#include "core/train/tb_writer.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <stdexcept>

#include "core/util/paths.h"

namespace difflab {

namespace {

// Reflected CRC32C (Castagnoli) polynomial.
constexpr uint32_t kCrc32cPoly = 0x82F63B78u;
// Added after rotating, so that a CRC over data holding CRCs is not trivial (TFRecord).
constexpr uint32_t kCrcMaskDelta = 0xa282ead8u;
// The version string TensorBoard expects in the first record.
constexpr const char* kFileVersion = "brain.Event:2";

// Protocol buffer wire types.
constexpr uint32_t kWireVarint = 0;
constexpr uint32_t kWireFixed64 = 1;
constexpr uint32_t kWireLengthDelimited = 2;
constexpr uint32_t kWireFixed32 = 5;

std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc & 1u) ? (crc >> 1) ^ kCrc32cPoly : crc >> 1;
    table[i] = crc;
  }
  return table;
}

// --- Minimal protocol buffer encoding -------------------------------------------------

void put_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

void put_key(std::string& out, uint32_t field, uint32_t wire_type) {
  put_varint(out, (static_cast<uint64_t>(field) << 3) | wire_type);
}

void put_fixed32(std::string& out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

void put_fixed64(std::string& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

void put_bytes_field(std::string& out, uint32_t field, const std::string& bytes) {
  put_key(out, field, kWireLengthDelimited);
  put_varint(out, bytes.size());
  out += bytes;
}

void put_double_field(std::string& out, uint32_t field, double value) {
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  put_key(out, field, kWireFixed64);
  put_fixed64(out, bits);
}

void put_float_field(std::string& out, uint32_t field, float value) {
  uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  put_key(out, field, kWireFixed32);
  put_fixed32(out, bits);
}

void put_int64_field(std::string& out, uint32_t field, int64_t value) {
  put_key(out, field, kWireVarint);
  put_varint(out, static_cast<uint64_t>(value));  // negative int64: 10-byte two's complement
}

// Event fields common to every record.
std::string event_header(int64_t step) {
  const double wall_time =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::string event;
  put_double_field(event, 1, wall_time);
  put_int64_field(event, 2, step);
  return event;
}

std::string host_name() {
  std::array<char, 256> buf{};
  if (::gethostname(buf.data(), buf.size() - 1) != 0 || buf[0] == '\0') return "localhost";
  return buf.data();
}

}  // namespace

uint32_t crc32c(const void* data, size_t size) {
  static const std::array<uint32_t, 256> table = make_crc32c_table();
  const auto* bytes = static_cast<const uint8_t*>(data);
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ bytes[i]) & 0xffu] ^ (crc >> 8);
  return crc ^ 0xffffffffu;
}

uint32_t masked_crc32c(const void* data, size_t size) {
  const uint32_t crc = crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + kCrcMaskDelta;
}

TensorBoardWriter::TensorBoardWriter(const std::string& log_dir) {
  make_dirs(log_dir);
  const std::string base =
      (std::filesystem::path(log_dir) /
       ("events.out.tfevents." + std::to_string(std::time(nullptr)) + "." + host_name()))
          .string();
  // Two writers in one folder within one second must not clobber each other.
  m_path = base;
  for (int n = 1; std::filesystem::exists(m_path); ++n) m_path = base + "." + std::to_string(n);

  m_out.open(m_path, std::ios::binary | std::ios::trunc);
  if (!m_out) throw std::runtime_error("cannot create TensorBoard event file '" + m_path + "': " + std::strerror(errno));

  std::string event = event_header(0);
  put_bytes_field(event, 3, kFileVersion);
  write_record(event);
  flush();
}

void TensorBoardWriter::add_scalar(const std::string& tag, float value, int64_t step) {
  std::string summary_value;
  put_bytes_field(summary_value, 1, tag);
  put_float_field(summary_value, 2, value);
  std::string summary;
  put_bytes_field(summary, 1, summary_value);

  std::string event = event_header(step);
  put_bytes_field(event, 5, summary);
  write_record(event);
}

void TensorBoardWriter::flush() {
  m_out.flush();
  if (!m_out) throw std::runtime_error("cannot write TensorBoard event file '" + m_path + "': " + std::strerror(errno));
}

void TensorBoardWriter::write_record(const std::string& payload) {
  std::string header;
  put_fixed64(header, payload.size());
  const uint32_t length_crc = masked_crc32c(header.data(), header.size());
  put_fixed32(header, length_crc);

  std::string footer;
  put_fixed32(footer, masked_crc32c(payload.data(), payload.size()));

  m_out.write(header.data(), static_cast<std::streamsize>(header.size()));
  m_out.write(payload.data(), static_cast<std::streamsize>(payload.size()));
  m_out.write(footer.data(), static_cast<std::streamsize>(footer.size()));
  if (!m_out) throw std::runtime_error("cannot write TensorBoard event file '" + m_path + "': " + std::strerror(errno));
}

}  // namespace difflab

// TensorBoard event files written by hand: TFRecord framing (length, masked CRC32C)
// around hand-encoded `Event` protocol buffers holding scalar summaries.
// `tensorboard --logdir <dir>` shows the scalars. No torch, no protobuf library.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>

namespace difflab {

// CRC32C (Castagnoli), as TFRecord uses it, and TensorFlow's mask of it.
uint32_t crc32c(const void* data, size_t size);
uint32_t masked_crc32c(const void* data, size_t size);

class TensorBoardWriter {
 public:
  // Creates <log_dir>/events.out.tfevents.<unix time>.<host> (log_dir made if missing)
  // and writes the file_version record. Throws std::runtime_error naming the path.
  explicit TensorBoardWriter(const std::string& log_dir);
  void add_scalar(const std::string& tag, float value, int64_t step);
  void flush();
  const std::string& path() const { return m_path; }

 private:
  void write_record(const std::string& payload);
  std::string m_path;
  std::ofstream m_out;
};

}  // namespace difflab

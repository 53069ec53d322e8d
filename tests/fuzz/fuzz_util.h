// What the fuzz targets share: a scratch folder for the files the readers take by path,
// and the check that a failure is a clean error naming the file.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace difflab::fuzz {

// A folder of this process's own under $TMPDIR (scripts/fuzz.sh points that at /dev/shm),
// emptied before each input and removed at exit.
class Scratch {
 public:
  Scratch()
      : m_root(std::filesystem::temp_directory_path() /
               ("difflab-fuzz-" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(m_root);
  }
  ~Scratch() {
    std::error_code ec;
    std::filesystem::remove_all(m_root, ec);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  // An empty folder `name` inside the scratch folder.
  std::string fresh_dir(const std::string& name) const {
    const std::filesystem::path dir = m_root / name;
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir.string();
  }

 private:
  std::filesystem::path m_root;
};

inline void write_file(const std::string& path, const uint8_t* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write scratch file %s\n", path.c_str());
    std::abort();
  }
}

// Runs `read`; the errors a reader may give (DataError, ConfigError and CheckpointError
// are std::runtime_errors) must name `must_name` (the file or folder read), so that the
// user can tell which file is wrong. Any other exception escapes: libFuzzer reports it as
// a crash, as it does a sanitizer report.
template <typename F>
void expect_clean(const std::string& must_name, F&& read) {
  std::string message;
  try {
    read();
    return;
  } catch (const std::runtime_error& e) {
    message = e.what();
  } catch (const std::invalid_argument& e) {
    message = e.what();
  }
  if (message.find(must_name) == std::string::npos) {
    std::fprintf(stderr, "fuzz: the error does not name '%s': %s\n", must_name.c_str(),
                 message.c_str());
    std::abort();
  }
}

}  // namespace difflab::fuzz

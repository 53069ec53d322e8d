#include "core/util/paths.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <system_error>

#ifndef DIFFLAB_DATA_DIR
#error "DIFFLAB_DATA_DIR must be defined by the build (a string literal)"
#endif
#ifndef DIFFLAB_SOURCE_DIR
#error "DIFFLAB_SOURCE_DIR must be defined by the build (a string literal)"
#endif

namespace difflab {

namespace fs = std::filesystem;

namespace {

// Environment variable that overrides the configured data folder.
constexpr const char* kDataDirEnv = "DIFFLAB_DATA_DIR";

// A name for a temporary file next to `path`, unique per process and call.
std::string temp_path_for(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  return path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
}

}  // namespace

std::string data_dir() {
  const char* env = std::getenv(kDataDirEnv);
  if (env != nullptr && env[0] != '\0') return env;
  return DIFFLAB_DATA_DIR;
}

std::string resolve_path(const std::string& path) {
  if (path.empty()) return path;
  const fs::path p(path);
  if (p.is_absolute()) return path;
  std::error_code ec;
  if (fs::exists(p, ec)) return path;
  const fs::path in_source = fs::path(DIFFLAB_SOURCE_DIR) / p;
  if (fs::exists(in_source, ec)) return in_source.string();
  // Neither exists: hand back what the user wrote so the caller's error names it.
  return path;
}

void make_dirs(const std::string& dir) {
  if (dir.empty()) return;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot create directory '" + dir + "': " + ec.message());
  if (!fs::is_directory(dir, ec)) {
    throw std::runtime_error("cannot create directory '" + dir + "': a file is in the way");
  }
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) make_dirs(parent.string());

  const std::string temp = temp_path_for(path);
  bool ok = false;
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (out) {
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      out.flush();
      out.close();
      ok = !out.fail();
    }
  }
  std::error_code ec;
  if (ok) {
    fs::rename(temp, path, ec);
    ok = !ec;
  }
  if (!ok) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    throw std::runtime_error("cannot write '" + path + "'" +
                             (ec ? ": " + ec.message() : std::string()));
  }
}

}  // namespace difflab

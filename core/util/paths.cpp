#include "core/util/paths.h"

#include <fcntl.h>
#include <stdio.h>  // renameat2, RENAME_NOREPLACE (glibc 2.28)
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <limits>
#include <regex>

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

namespace {

// $DIFFLAB_FAULT_WRITE_LIMIT: bytes this process may write before writes fail (tests).
constexpr const char* kFaultWriteLimitEnv = "DIFFLAB_FAULT_WRITE_LIMIT";

std::atomic<int64_t>& fault_budget() {
  static std::atomic<int64_t> budget{[] {
    const char* env = std::getenv(kFaultWriteLimitEnv);
    if (env == nullptr || env[0] == '\0') return int64_t{-1};
    char* end = nullptr;
    const long long v = std::strtoll(env, &end, 10);
    return (end != env && *end == '\0' && v >= 0) ? static_cast<int64_t>(v) : int64_t{-1};
  }()};
  return budget;
}

// write(2) of everything, retrying after signals and short writes; false with errno set.
bool write_all(int fd, const char* data, size_t size) {
  auto& budget = fault_budget();
  while (size > 0) {
    size_t chunk = size;
    if (budget.load() >= 0) {
      const int64_t left = budget.load();
      if (left <= 0) {
        errno = ENOSPC;
        return false;
      }
      chunk = std::min<size_t>(chunk, static_cast<size_t>(left));
    }
    const ssize_t n = ::write(fd, data, chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (budget.load() >= 0) budget -= n;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

constexpr const char* kExistsText = "a file is already there (nothing was replaced)";

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

// The folder `path` lies in ("." for a bare name).
fs::path folder_of(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? fs::path(".") : parent;
}

}  // namespace

void inject_write_failure_after(int64_t bytes) { fault_budget() = bytes < 0 ? -1 : bytes; }

namespace {

// Opens a new temporary file beside `path` (making its folder), after checking that
// `path` names no folder. Returns the descriptor; throws "cannot write '<path>': why".
int open_temp_beside(const std::string& path, std::string* temp) {
  const std::string what = "cannot write '" + path + "': ";
  if (path.empty()) throw std::runtime_error("cannot write a file with an empty name");
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw std::runtime_error(what + "it is a folder");
  try {
    make_dirs(folder_of(path).string());
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(what + e.what());
  }
  *temp = temp_path_for(path);
  const int fd = ::open(temp->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) throw std::runtime_error(what + errno_text(errno));
  return fd;
}

}  // namespace

bool file_at(const std::string& path) {
  std::error_code ec;
  return fs::symlink_status(path, ec).type() != fs::file_type::not_found && !fs::is_directory(path, ec);
}

namespace {

// Renames `temp` to `path` only when nothing is at `path` (renameat2 NOREPLACE, else a hard
// link, else a check and a rename on file systems that have neither). errno on failure.
bool rename_no_replace(const std::string& temp, const std::string& path) {
#ifdef RENAME_NOREPLACE
  if (::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) == 0) return true;
  if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) return false;
#endif
  if (::link(temp.c_str(), path.c_str()) == 0) {
    ::unlink(temp.c_str());
    return true;
  }
  if (errno != EPERM && errno != ENOTSUP && errno != EOPNOTSUPP) return false;
  if (file_at(path)) {
    errno = EEXIST;
    return false;
  }
  return ::rename(temp.c_str(), path.c_str()) == 0;
}

}  // namespace

void write_file_atomic(const std::string& path, std::string_view bytes, IfExists if_exists) {
  const bool keep = if_exists == IfExists::Refuse;
  // Before writing a byte; the rename below refuses atomically in any case.
  if (keep && file_at(path)) throw std::runtime_error("cannot write '" + path + "': " + kExistsText);
  std::string temp;
  const int fd = open_temp_beside(path, &temp);
  int err = 0;
  if (!write_all(fd, bytes.data(), bytes.size())) err = errno;
  // fsync before the rename: after a power cut the new name never points at a file
  // whose blocks were not written yet.
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err == 0 && !(keep ? rename_no_replace(temp, path) : ::rename(temp.c_str(), path.c_str()) == 0))
    err = errno;
  if (err != 0) {
    ::unlink(temp.c_str());
    throw std::runtime_error("cannot write '" + path + "': " +
                             (err == EEXIST && keep ? kExistsText : errno_text(err)));
  }
  // Make the rename itself durable; a failure here loses nothing that was there before.
  const int dir = ::open(folder_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

void check_can_write(const std::string& path, IfExists if_exists) {
  if (if_exists == IfExists::Refuse && file_at(path))
    throw std::runtime_error("cannot write '" + path + "': " + kExistsText);
  std::string probe;
  ::close(open_temp_beside(path, &probe));
  ::unlink(probe.c_str());
}

bool read_file(const std::string& path, std::string* bytes, std::string* why) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *why = errno == ENOENT ? "no such file" : errno_text(errno);
    return false;
  }
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    *why = "it is a folder";
    return false;
  }
  bytes->clear();
  if (st.st_size > 0) bytes->reserve(static_cast<size_t>(st.st_size));
  char chunk[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      *why = errno_text(errno);
      ::close(fd);
      return false;
    }
    bytes->append(chunk, static_cast<size_t>(n));
  }
  ::close(fd);
  return true;
}

std::string free_path(const std::string& path) {
  std::error_code ec;
  const auto taken = [&](const fs::path& p) {
    return fs::symlink_status(p, ec).type() != fs::file_type::not_found;
  };
  if (!taken(path)) return path;
  const fs::path p(path);
  // A folder's name keeps its dots; a file's extension stays at the end.
  const bool folder = fs::is_directory(p, ec);
  const std::string stem = folder ? p.filename().string() : p.stem().string();
  const std::string ext = folder ? "" : p.extension().string();
  for (int k = 2;; ++k) {
    fs::path candidate = p.parent_path() / (stem + "_" + std::to_string(k) + ext);
    if (!taken(candidate)) return candidate.string();
  }
}

int remove_stale_temp_files(const std::string& dir) {
  // `<name>.tmp.<pid>.<n>[.ext]` (this helper, older PNG writer) and `<name>.tmp<pid>`
  // (the checkpoint writer before it).
  static const std::regex kTemp(R"(.+\.tmp\.?(\d+)(\.\d+)?(\.[A-Za-z]+)?)");
  int removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::smatch m;
    const std::string name = it->path().filename().string();
    if (!std::regex_match(name, m, kTemp)) continue;
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec)) continue;
    const long long pid = std::strtoll(m[1].str().c_str(), nullptr, 10);
    if (pid == ::getpid()) continue;  // this process may be writing it right now
    const bool alive = pid > 0 && pid <= std::numeric_limits<pid_t>::max() &&
                       (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
    if (alive) continue;
    std::error_code rm_ec;
    if (fs::remove(it->path(), rm_ec)) ++removed;
  }
  return removed;
}

}  // namespace difflab

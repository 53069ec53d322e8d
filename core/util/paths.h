// Where things live: the data folder made by the set-up, packaged datasets, and
// atomic file replacement.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace difflab {

// The folder the set-up imports datasets into: $DIFFLAB_DATA_DIR, else the build's
// configured DIFFLAB_DATA_DIR (the source tree's data/).
std::string data_dir();
// Resolves a config path: absolute paths as they are; relative ones against the
// working directory first, then against the source tree.
std::string resolve_path(const std::string& path);
// Writes `bytes` to `path` through a temporary file in the same folder
// (`<path>.tmp.<pid>.<n>`), fsync and a rename, so a crash or a full disk never leaves a
// half-written file and never replaces the previous one. Creates the parent folder.
// Every app file (PNG, GIF, CSV, YAML, checkpoint) is written through here. Throws
// std::runtime_error "cannot write '<path>': <errno text>"; the temporary is removed.
//
// Testing hook: $DIFFLAB_FAULT_WRITE_LIMIT=N makes writes through this function fail
// with ENOSPC once the process has written N bytes in all (a full disk on demand).
//
// IfExists::Refuse keeps a file already at `path`: the write fails with "cannot write
// '<path>': a file is already there (nothing was replaced)", atomically (no window in
// which another writer's file could be replaced).
enum class IfExists { Replace, Refuse };
void write_file_atomic(const std::string& path, std::string_view bytes,
                       IfExists if_exists = IfExists::Replace);
// The same full disk from inside a test: writes through write_file_atomic fail with
// ENOSPC once `bytes` more have been written (-1: never, the default).
void inject_write_failure_after(int64_t bytes);
// Checks, before long work, that a file can be created at `path` (its folder exists or
// can be made, and is writable) without touching any existing file there. Throws
// std::runtime_error "cannot write '<path>': <reason>".
// True when something other than a folder is at `path`: a file, or a symbolic link, even a
// dangling one (it is the user's). What IfExists::Refuse keeps.
bool file_at(const std::string& path);
// With IfExists::Refuse, a file already at `path` is an error too.
void check_can_write(const std::string& path, IfExists if_exists = IfExists::Replace);
// `path` when nothing is there, else the first free "<stem>_2<ext>", "<stem>_3<ext>", ...
// beside it (for a folder: "<name>_2", ...). For outputs with a default name, so a second
// run never replaces the first one's file.
std::string free_path(const std::string& path);
// Removes the temporary files that write_file_atomic (or an older checkpoint writer,
// `<name>.tmp<pid>`) left in `dir` when its process died mid-write: only those whose
// process is no longer running. Returns how many were removed. Never throws.
int remove_stale_temp_files(const std::string& dir);
// Reads the whole file at `path` into `bytes`. On failure returns false and sets `why` to
// the reason alone ("no such file", "it is a folder", or the errno text), for the caller
// to prefix with what the file was meant to be.
bool read_file(const std::string& path, std::string* bytes, std::string* why);
// Makes `dir` and its parents; throws std::runtime_error naming it on failure.
void make_dirs(const std::string& dir);

}  // namespace difflab

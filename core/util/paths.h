// Where things live: the data folder made by the set-up, packaged datasets, and
// atomic file replacement.
#pragma once

#include <string>

namespace difflab {

// The folder the set-up imports datasets into: $DIFFLAB_DATA_DIR, else the build's
// configured DIFFLAB_DATA_DIR (the source tree's data/).
std::string data_dir();
// Resolves a config path: absolute paths as they are; relative ones against the
// working directory first, then against the source tree.
std::string resolve_path(const std::string& path);
// Writes `bytes` to `path` through a temporary file in the same folder and a rename,
// so a crash never leaves a half-written file. Creates the parent folder.
void write_file_atomic(const std::string& path, const std::string& bytes);
// Makes `dir` and its parents; throws std::runtime_error naming it on failure.
void make_dirs(const std::string& dir);

}  // namespace difflab

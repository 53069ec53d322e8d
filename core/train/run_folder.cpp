#include "core/train/run_folder.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <system_error>

#include "core/util/paths.h"

namespace difflab {

namespace fs = std::filesystem;

namespace {

// Name of the file in the runs root that remembers the GUI's current run.
constexpr const char* kLastRunFile = "last-gui-run";

const std::regex& step_file_pattern() {
  static const std::regex kStepFile(R"(step_(\d+)\.(pt|png))");
  return kStepFile;
}

bool path_exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

std::string today() {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &local);
  return buf;
}

// Splits one CSV line into cells (metrics.csv has no quoting).
std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> cells;
  std::string cell;
  std::istringstream in(line);
  while (std::getline(in, cell, ',')) cells.push_back(cell);
  if (!line.empty() && line.back() == ',') cells.emplace_back();
  return cells;
}

bool parse_double(const std::string& text, double* out) {
  if (text.empty()) return false;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0' || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

}  // namespace

bool holds_run(const std::string& dir) {
  const fs::path d(dir);
  return path_exists(d / "config.yaml") || path_exists(d / "metrics.csv") || path_exists(d / "checkpoints");
}

std::string next_free_run_dir(const std::string& dir) {
  if (!holds_run(dir)) return dir;
  for (int n = 2;; ++n) {
    const std::string candidate = dir + "-" + std::to_string(n);
    if (!holds_run(candidate)) return candidate;
  }
}

std::string new_run_dir(const std::string& root, const std::string& stem) {
  make_dirs(root.empty() ? "." : root);
  const fs::path base = fs::path(root.empty() ? "." : root);
  const std::string prefix = stem + "-" + today() + "-";
  for (int n = 1;; ++n) {
    const fs::path candidate = base / (prefix + std::to_string(n));
    std::error_code ec;
    // create_directory is atomic: it returns false when the folder already exists.
    if (fs::create_directory(candidate, ec)) return candidate.string();
    if (ec) throw std::runtime_error("cannot create run folder '" + candidate.string() + "': " + ec.message());
  }
}

std::string run_dir_of_checkpoint(const std::string& path) {
  const fs::path p = fs::absolute(fs::path(path)).lexically_normal();
  const fs::path folder = p.parent_path();
  if (folder.filename() != "checkpoints") return "";
  const fs::path dir = folder.parent_path();
  if (!holds_run(dir.string())) return "";
  // Keep the caller's spelling (relative paths stay relative).
  const fs::path given = fs::path(path).parent_path().parent_path();
  return given.empty() ? std::string(".") : given.string();
}

std::string checkpoint_path(const std::string& run_dir, int64_t step) {
  char name[64];
  std::snprintf(name, sizeof name, "step_%08lld.pt", static_cast<long long>(step));
  return (fs::path(run_dir) / "checkpoints" / name).string();
}

std::string latest_checkpoint(const std::string& run_dir) {
  std::ifstream in(fs::path(run_dir) / "checkpoints" / "latest");
  std::string name;
  if (in && std::getline(in, name) && !name.empty()) {
    auto p = fs::path(run_dir) / "checkpoints" / name;
    if (path_exists(p)) return p.string();
  }
  // No (valid) pointer file: take the highest step file.
  std::string best;
  std::error_code ec;
  const auto dir = fs::path(run_dir) / "checkpoints";
  if (!fs::is_directory(dir, ec)) return "";
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const auto file = entry.path().filename().string();
    if (file.size() > 3 && file.compare(file.size() - 3, 3, ".pt") == 0 &&
        std::regex_match(file, step_file_pattern()) && file > fs::path(best).filename().string())
      best = entry.path().string();
  }
  return best;
}

void mark_latest_checkpoint(const std::string& run_dir, const std::string& path, int keep) {
  const auto dir = fs::path(run_dir) / "checkpoints";
  write_file_atomic((dir / "latest").string(), fs::path(path).filename().string() + "\n");
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const auto file = entry.path().filename().string();
    if (std::regex_match(file, step_file_pattern()) && file.compare(file.size() - 3, 3, ".pt") == 0)
      files.push_back(file);
  }
  std::sort(files.begin(), files.end());
  const auto latest_name = fs::path(path).filename().string();
  for (size_t i = 0; i + keep < files.size(); ++i)
    if (files[i] != latest_name) fs::remove(dir / files[i], ec);
}

int64_t checkpoint_step_from_name(const std::string& path) {
  std::smatch m;
  const std::string name = fs::path(path).filename().string();
  if (!std::regex_match(name, m, step_file_pattern())) return -1;
  return std::stoll(m[1].str());
}

RunHistory read_run_history(const std::string& dir, int64_t max_step) {
  RunHistory h;
  std::ifstream in(fs::path(dir) / "metrics.csv", std::ios::binary);
  std::string line;
  int loss_col = -1, test_col = -1;
  if (in && std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto header = split_csv(line);
    for (size_t i = 0; i < header.size(); ++i) {
      if (header[i] == "loss") loss_col = static_cast<int>(i);
      if (header[i] == "test_loss") test_col = static_cast<int>(i);
    }
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const auto cells = split_csv(line);
      double step = 0, v = 0;
      if (cells.empty() || !parse_double(cells[0], &step)) continue;  // a torn row
      const auto s = static_cast<int64_t>(step);
      if (max_step >= 0 && s > max_step) continue;  // after the checkpoint: not this model's
      // A resumed run may repeat steps after a crash: keep the newest row for a step.
      auto put = [&](std::vector<std::pair<int64_t, double>>& into, double value) {
        while (!into.empty() && into.back().first >= s) into.pop_back();
        into.emplace_back(s, value);
      };
      if (loss_col > 0 && loss_col < static_cast<int>(cells.size()) && parse_double(cells[loss_col], &v))
        put(h.loss, v);
      if (test_col > 0 && test_col < static_cast<int>(cells.size()) && parse_double(cells[test_col], &v))
        put(h.test_loss, v);
    }
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(fs::path(dir) / "samples", ec)) {
    const std::string name = entry.path().filename().string();
    const int64_t step = checkpoint_step_from_name(name);
    if (step < 0 || name.compare(name.size() - 4, 4, ".png") != 0) continue;
    if (max_step >= 0 && step > max_step) continue;
    if (step > h.newest_preview_step) {
      h.newest_preview_step = step;
      h.newest_preview = entry.path().string();
    }
  }
  return h;
}

void remember_last_run(const std::string& root, const std::string& dir) {
  write_file_atomic((fs::path(root.empty() ? "." : root) / kLastRunFile).string(),
                    fs::absolute(dir).lexically_normal().string() + "\n");
}

std::string last_run(const std::string& root) {
  std::ifstream in(fs::path(root.empty() ? "." : root) / kLastRunFile);
  std::string dir;
  if (!in || !std::getline(in, dir) || dir.empty()) return "";
  return latest_checkpoint(dir).empty() ? "" : dir;
}

}  // namespace difflab

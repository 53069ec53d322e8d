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
// A CSV line split into cells, with RFC 4180 quotes ("a, b" and "" inside them).
std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> cells(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        cells.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cells.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      cells.emplace_back();
    } else {
      cells.back() += c;
    }
  }
  return cells;
}

std::string csv_quote(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (const char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

constexpr const char* kEvaluationHeader =
    "checkpoint,step,n,sampler,steps,eta,guidance,classifier_scale,seed,accuracy,fd,fd_floor,"
    "reference_images,seconds";

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

void append_evaluation_csv(const std::string& path, const RunEvaluation& e) {
  std::string text;
  if (fs::exists(path)) {
    std::string why;
    if (!read_file(path, &text, &why)) throw std::runtime_error("cannot read '" + path + "': " + why);
    if (!text.empty() && text.back() != '\n') text += '\n';
  }
  if (text.empty()) text = std::string(kEvaluationHeader) + "\n";
  // The sampler text may hold a path (autoguidance): it goes in as a string, not through a
  // fixed buffer.
  char head[64], tail[256];
  std::snprintf(head, sizeof head, ",%lld,%lld,", static_cast<long long>(e.step),
                static_cast<long long>(e.n));
  std::snprintf(tail, sizeof tail, ",%d,%g,%g,%g,%llu,%.6f,%.6f,%.6f,%lld,%.2f\n", e.steps, e.eta,
                e.guidance, e.classifier_scale, static_cast<unsigned long long>(e.seed), e.accuracy,
                e.fd, e.fd_floor, static_cast<long long>(e.reference_images), e.seconds);
  text += csv_quote(e.checkpoint) + head + csv_quote(e.sampler) + tail;
  write_file_atomic(path, text);
}

std::vector<RunEvaluation> read_run_evaluations(const std::string& dir) {
  std::vector<RunEvaluation> rows;
  std::ifstream in(fs::path(dir) / kRunEvaluationsFile, std::ios::binary);
  std::string line;
  if (!in || !std::getline(in, line)) return rows;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line != kEvaluationHeader) return rows;  // another layout: nothing this reads
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto c = split_csv(line);
    if (c.size() != 14) continue;
    RunEvaluation e;
    double v[12];
    bool ok = true;
    for (int i = 0; i < 12 && ok; ++i) {
      const std::string& cell = c[static_cast<size_t>(i < 2 ? i + 1 : i + 2)];
      // accuracy ("nan" for an unconditional model) may be NaN; the rest must be numbers
      if (i == 7 && (cell == "nan" || cell == "-nan")) v[i] = std::nan("");
      else ok = parse_double(cell, &v[i]);
    }
    if (!ok) continue;  // a torn row
    e.checkpoint = c[0];
    e.sampler = c[3];
    e.step = static_cast<int64_t>(v[0]);
    e.n = static_cast<int64_t>(v[1]);
    e.steps = static_cast<int>(v[2]);
    e.eta = v[3];
    e.guidance = v[4];
    e.classifier_scale = v[5];
    e.seed = static_cast<uint64_t>(v[6]);
    e.accuracy = v[7];
    e.fd = v[8];
    e.fd_floor = v[9];
    e.reference_images = static_cast<int64_t>(v[10]);
    e.seconds = v[11];
    rows.push_back(std::move(e));
  }
  return rows;
}

RunHistory read_run_history(const std::string& dir, int64_t max_step) {
  RunHistory h;
  std::ifstream in(fs::path(dir) / "metrics.csv", std::ios::binary);
  std::string line;
  int loss_col = -1, test_col = -1, time_col = -1;
  if (in && std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto header = split_csv(line);
    for (size_t i = 0; i < header.size(); ++i) {
      if (header[i] == "loss") loss_col = static_cast<int>(i);
      if (header[i] == "test_loss") test_col = static_cast<int>(i);
      if (header[i] == "train_s") time_col = static_cast<int>(i);
    }
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const auto cells = split_csv(line);
      double step = 0, v = 0;
      if (cells.empty() || !parse_double(cells[0], &step)) continue;  // a torn row
      const auto s = static_cast<int64_t>(step);
      if (max_step >= 0 && s > max_step) continue;  // after the checkpoint: not this model's
      // A run resumed after a crash repeats the steps after its checkpoint: a row for step
      // s replaces whatever the earlier attempt wrote for steps ≥ s.
      for (auto* series : {&h.loss, &h.test_loss, &h.train_s})
        while (!series->empty() && series->back().first >= s) series->pop_back();
      if (loss_col > 0 && loss_col < static_cast<int>(cells.size()) && parse_double(cells[loss_col], &v))
        h.loss.emplace_back(s, v);
      if (test_col > 0 && test_col < static_cast<int>(cells.size()) && parse_double(cells[test_col], &v))
        h.test_loss.emplace_back(s, v);
      if (time_col > 0 && time_col < static_cast<int>(cells.size()) && parse_double(cells[time_col], &v))
        h.train_s.emplace_back(s, v);
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

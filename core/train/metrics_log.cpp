#include "core/train/metrics_log.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>

#include "core/util/paths.h"

namespace difflab {

namespace fs = std::filesystem;

namespace {

// printf format for CSV values: enough digits to round-trip a float.
constexpr const char* kValueFormat = "%.9g";

std::string csv_header(const std::vector<std::string>& columns) {
  std::string header = "step";
  for (const std::string& column : columns) header += "," + column;
  return header;
}

// First line of `path` without its line ending; empty when unreadable or empty.
std::string first_line(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string line;
  std::getline(in, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

bool ends_with_newline(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in || in.tellg() <= 0) return true;
  in.seekg(-1, std::ios::end);
  char last = '\0';
  in.get(last);
  return last == '\n';
}

// <path>.old-<n> with the first n that names no file.
std::string free_aside_path(const std::string& path) {
  for (int n = 1;; ++n) {
    std::string aside = path + ".old-" + std::to_string(n);
    if (!fs::exists(aside)) return aside;
  }
}

// Moves `path` out of the way to <path>.old-<n> with the first free n.
void move_aside(const std::string& path) {
  const std::string aside = free_aside_path(path);
  std::error_code ec;
  fs::rename(path, aside, ec);
  if (ec) {
    throw std::runtime_error("cannot move '" + path + "' to '" + aside + "': " + ec.message());
  }
}


// Rewrites `path` (whose header is `old_header`) under `header`, which adds columns at the
// end: every row gets that many empty cells. The original is copied to <path>.old-<n>
// first, and the new file replaces it atomically, so either one is complete at any time.
void widen_csv(const std::string& path, const std::string& old_header, const std::string& header) {
  const auto count = [](const std::string& h) { return std::count(h.begin(), h.end(), ','); };
  const std::string pad(static_cast<size_t>(count(header) - count(old_header)), ',');
  std::string bytes, why;
  if (!read_file(path, &bytes, &why)) throw std::runtime_error("cannot read '" + path + "': " + why);
  write_file_atomic(free_aside_path(path), bytes, IfExists::Refuse);
  std::string out = header + "\n";
  size_t pos = bytes.find('\n');
  while (pos != std::string::npos && pos + 1 < bytes.size()) {
    const size_t end = bytes.find('\n', pos + 1);
    std::string line = bytes.substr(pos + 1, end == std::string::npos ? std::string::npos : end - pos - 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) out += line + pad + "\n";
    pos = end;
  }
  write_file_atomic(path, out);
}

}  // namespace

MetricsLog::MetricsLog(const std::string& dir, std::vector<std::string> columns)
    : m_columns(std::move(columns)) {
  make_dirs(dir);
  m_csv_path = (fs::path(dir) / "metrics.csv").string();
  const std::string header = csv_header(m_columns);

  bool append = false;
  if (fs::exists(m_csv_path) && fs::file_size(m_csv_path) > 0) {
    const std::string old_header = first_line(m_csv_path);
    if (old_header == header) {
      append = true;
    } else if (header.size() > old_header.size() && header.compare(0, old_header.size(), old_header) == 0 &&
               header[old_header.size()] == ',') {
      // The same run logged by an older version, with fewer columns at the end (e.g. before
      // train_s): its rows continue in the new layout, their new cells empty. The file as
      // it was is kept beside it.
      widen_csv(m_csv_path, old_header, header);
      append = true;
    } else {
      move_aside(m_csv_path);  // a different run's columns: keep it, start fresh
    }
  }

  if (append) {
    const bool torn_row = !ends_with_newline(m_csv_path);  // e.g. a crash mid-write
    m_csv.open(m_csv_path, std::ios::binary | std::ios::app);
    if (m_csv && torn_row) m_csv << '\n';
  } else {
    m_csv.open(m_csv_path, std::ios::binary | std::ios::trunc);
    if (m_csv) m_csv << header << '\n';
  }
  if (!m_csv) throw std::runtime_error("cannot open metrics log '" + m_csv_path + "': " + std::strerror(errno));
  m_csv.flush();

  m_tb = std::make_unique<TensorBoardWriter>((fs::path(dir) / "tb").string());
}

void MetricsLog::write(int64_t step, const std::vector<double>& values) {
  if (values.size() != m_columns.size()) {
    throw std::invalid_argument("metrics log '" + m_csv_path +
                                "': " + std::to_string(values.size()) + " values for " +
                                std::to_string(m_columns.size()) + " columns");
  }
  std::string row = std::to_string(step);
  char cell[64];
  for (size_t i = 0; i < values.size(); ++i) {
    row += ',';
    if (std::isnan(values[i])) continue;
    std::snprintf(cell, sizeof cell, kValueFormat, values[i]);
    row += cell;
    m_tb->add_scalar(m_columns[i], static_cast<float>(values[i]), step);
  }
  m_csv << row << '\n';
  if (!m_csv) throw std::runtime_error("cannot write metrics log '" + m_csv_path + "': " + std::strerror(errno));
}

void MetricsLog::flush() {
  m_csv.flush();
  if (!m_csv) throw std::runtime_error("cannot write metrics log '" + m_csv_path + "': " + std::strerror(errno));
  m_tb->flush();
}

}  // namespace difflab

// Training metrics log: one CSV file (header + one row per record, appended so a
// resumed run continues the same file) plus a TensorBoard event file.
#pragma once

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/train/tb_writer.h"

namespace difflab {

class MetricsLog {
 public:
  // Opens <dir>/metrics.csv (appending when it exists and has the same header) and a
  // TensorBoard writer in <dir>/tb. `columns` excludes the leading "step" column.
  MetricsLog(const std::string& dir, std::vector<std::string> columns);
  // Values in column order; NaN is written as an empty cell (e.g. no test loss this row).
  void write(int64_t step, const std::vector<double>& values);
  void flush();

 private:
  std::vector<std::string> m_columns;
  std::string m_csv_path;  // named in error messages
  std::ofstream m_csv;
  std::unique_ptr<TensorBoardWriter> m_tb;
};

}  // namespace difflab

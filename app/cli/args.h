// difflab-cli's command lines, parsed by CLI11: `--name value`, `--name=value`, flags,
// repeatable options and a command's positional words. Unknown options, single-dash
// words (`-n 1000`) and stray words are errors; numbers are read as 64-bit and checked
// against each option's range before anything runs.
#pragma once

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace difflab::cli {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What an option's value must be. Text (the default) is not checked here.
struct ValueRule {
  enum class Kind { Text, Integer, Real };
  Kind kind = Kind::Text;
  int64_t int_min = std::numeric_limits<int64_t>::min();
  int64_t int_max = std::numeric_limits<int64_t>::max();
  double real_min = -std::numeric_limits<double>::infinity();
  double real_max = std::numeric_limits<double>::infinity();
};
// An integer in [lo, hi].
inline ValueRule integer(int64_t lo, int64_t hi) {
  ValueRule r;
  r.kind = ValueRule::Kind::Integer;
  r.int_min = lo;
  r.int_max = hi;
  return r;
}
// A finite number in [lo, hi] (NaN and infinities are refused).
inline ValueRule real(double lo, double hi) {
  ValueRule r;
  r.kind = ValueRule::Kind::Real;
  r.real_min = lo;
  r.real_max = hi;
  return r;
}
constexpr int64_t kIntMax = std::numeric_limits<int>::max();
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

struct OptionSpec {
  std::string name;   // without the dashes
  bool takes_value;
  std::string help;   // "PATH  the config file (default configs/mnist.yaml)"
  ValueRule rule = {};
};

class Args {
 public:
  // Parses argv[first..]. `max_positional` words may follow (0: none). Throws UsageError
  // on an unknown option, a missing value, a stray word or a value outside its rule.
  Args(int argc, char** argv, int first, const std::vector<OptionSpec>& specs,
       int max_positional = 0);

  bool has(const std::string& name) const;
  std::string get(const std::string& name, const std::string& fallback = "") const;
  std::vector<std::string> get_all(const std::string& name) const;
  // Numbers, parsed whole (no trailing text) as 64-bit; get_int also refuses what does not
  // fit an int, so nothing wraps.
  int get_int(const std::string& name, int fallback) const;
  int64_t get_int64(const std::string& name, int64_t fallback) const;
  double get_double(const std::string& name, double fallback) const;
  const std::vector<std::string>& positional() const { return m_positional; }

 private:
  std::vector<std::pair<std::string, std::vector<std::string>>> m_values;
  std::vector<std::string> m_positional;
};

std::string format_options(const std::vector<OptionSpec>& specs);

}  // namespace difflab::cli

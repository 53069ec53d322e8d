// A small command-line parser for difflab-cli: `--name value`, `--flag`, `--name=value`,
// repeatable options, and positional words. Unknown options are errors.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace difflab::cli {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct OptionSpec {
  std::string name;   // without the dashes
  bool takes_value;
  std::string help;   // "PATH  the config file (default configs/mnist.yaml)"
};

class Args {
 public:
  // Parses argv[first..]; throws UsageError on an unknown option or a missing value.
  Args(int argc, char** argv, int first, const std::vector<OptionSpec>& specs);

  bool has(const std::string& name) const { return m_values.count(name) > 0; }
  std::string get(const std::string& name, const std::string& fallback = "") const;
  std::vector<std::string> get_all(const std::string& name) const;
  int get_int(const std::string& name, int fallback) const;
  int64_t get_int64(const std::string& name, int64_t fallback) const;
  double get_double(const std::string& name, double fallback) const;
  const std::vector<std::string>& positional() const { return m_positional; }

 private:
  std::map<std::string, std::vector<std::string>> m_values;
  std::vector<std::string> m_positional;
};

std::string format_options(const std::vector<OptionSpec>& specs);

}  // namespace difflab::cli

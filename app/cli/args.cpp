#include "app/cli/args.h"

#include <cstdlib>
#include <sstream>

namespace difflab::cli {

Args::Args(int argc, char** argv, int first, const std::vector<OptionSpec>& specs) {
  auto find = [&](const std::string& name) -> const OptionSpec* {
    for (const auto& s : specs)
      if (s.name == name) return &s;
    return nullptr;
  };
  for (int i = first; i < argc; ++i) {
    std::string word = argv[i];
    if (word.rfind("--", 0) != 0 || word.size() == 2) {
      m_positional.push_back(word);
      continue;
    }
    std::string name = word.substr(2), value;
    bool inline_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inline_value = true;
    }
    const OptionSpec* spec = find(name);
    if (!spec) throw UsageError("unknown option --" + name);
    if (spec->takes_value) {
      if (!inline_value) {
        if (i + 1 >= argc) throw UsageError("option --" + name + " needs a value");
        value = argv[++i];
      }
    } else if (inline_value) {
      throw UsageError("option --" + name + " takes no value");
    }
    m_values[name].push_back(value);
  }
}

std::string Args::get(const std::string& name, const std::string& fallback) const {
  auto it = m_values.find(name);
  return it == m_values.end() ? fallback : it->second.back();
}

std::vector<std::string> Args::get_all(const std::string& name) const {
  auto it = m_values.find(name);
  return it == m_values.end() ? std::vector<std::string>{} : it->second;
}

namespace {
template <typename T, typename Parse>
T parse_number(const Args& args, const std::string& name, T fallback, Parse parse) {
  if (!args.has(name)) return fallback;
  const std::string text = args.get(name);
  char* end = nullptr;
  errno = 0;
  auto value = parse(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno != 0)
    throw UsageError("option --" + name + ": '" + text + "' is not a number");
  return static_cast<T>(value);
}
}  // namespace

int Args::get_int(const std::string& name, int fallback) const {
  return parse_number<int>(*this, name, fallback,
                           [](const char* s, char** e) { return std::strtol(s, e, 10); });
}

int64_t Args::get_int64(const std::string& name, int64_t fallback) const {
  return parse_number<int64_t>(*this, name, fallback,
                               [](const char* s, char** e) { return std::strtoll(s, e, 10); });
}

double Args::get_double(const std::string& name, double fallback) const {
  return parse_number<double>(*this, name, fallback,
                              [](const char* s, char** e) { return std::strtod(s, e); });
}

std::string format_options(const std::vector<OptionSpec>& specs) {
  std::ostringstream out;
  for (const auto& s : specs) {
    std::string left = "  --" + s.name;
    out << left;
    const size_t pad = left.size() < 18 ? 18 - left.size() : 1;
    out << std::string(pad, ' ') << s.help << "\n";
  }
  return out.str();
}

}  // namespace difflab::cli

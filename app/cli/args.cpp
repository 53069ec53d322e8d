#include "app/cli/args.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace difflab::cli {

namespace {

// Whole-string 64-bit integer; false on trailing text or overflow.
bool parse_int64(const std::string& text, int64_t* out) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (*end != '\0' || errno == ERANGE) return false;
  *out = v;
  return true;
}

bool parse_real(const std::string& text, double* out) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  if (*end != '\0' || errno == ERANGE) return false;
  *out = v;
  return true;
}

std::string range_text(const ValueRule& rule) {
  std::ostringstream out;
  if (rule.kind == ValueRule::Kind::Integer) {
    out << "[" << rule.int_min << ", " << rule.int_max << "]";
  } else {
    out << "[" << rule.real_min << ", " << rule.real_max << "]";
  }
  return out.str();
}

// Empty when `text` obeys `rule`, else why not.
std::string check_value(const std::string& text, const ValueRule& rule) {
  switch (rule.kind) {
    case ValueRule::Kind::Text:
      return {};
    case ValueRule::Kind::Integer: {
      int64_t v = 0;
      if (!parse_int64(text, &v)) {
        double d = 0;
        return parse_real(text, &d) && std::isfinite(d) && std::fabs(d) >= 9.2e18
                   ? "'" + text + "' is out of range " + range_text(rule)
                   : "'" + text + "' is not a whole number";
      }
      if (v < rule.int_min || v > rule.int_max)
        return "'" + text + "' is out of range " + range_text(rule);
      return {};
    }
    case ValueRule::Kind::Real: {
      double v = 0;
      if (!parse_real(text, &v)) return "'" + text + "' is not a number";
      if (!std::isfinite(v)) return "'" + text + "' is not a finite number";
      if (v < rule.real_min || v > rule.real_max)
        return "'" + text + "' is out of range " + range_text(rule);
      return {};
    }
  }
  return {};
}

}  // namespace

Args::Args(int argc, char** argv, int first, const std::vector<OptionSpec>& specs,
           int max_positional) {
  CLI::App app;
  app.set_help_flag();        // each command prints its own --help (a declared flag)
  app.allow_extras(false);    // unknown options and stray words are errors
  app.positionals_at_end(false);
  // CLI11 fills these; kept in spec order for get().
  std::vector<std::vector<std::string>> values(specs.size());
  std::vector<int> flag_counts(specs.size(), 0);
  std::vector<CLI::Option*> options(specs.size(), nullptr);
  for (size_t i = 0; i < specs.size(); ++i) {
    const OptionSpec& spec = specs[i];
    const std::string flag = "--" + spec.name;
    if (!spec.takes_value) {
      options[i] = app.add_flag(flag, flag_counts[i], spec.help);
      continue;
    }
    CLI::Option* opt = app.add_option(flag, values[i], spec.help);
    opt->type_size(1)->allow_extra_args(false)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    if (spec.rule.kind != ValueRule::Kind::Text) {
      const ValueRule rule = spec.rule;
      opt->check(CLI::Validator([rule](std::string& text) { return check_value(text, rule); },
                                range_text(rule)));
    }
    options[i] = opt;
  }
  if (max_positional > 0) app.add_option("words", m_positional, "positional words");
  try {
    // argv[first - 1] stands in for the program name CLI11 skips.
    app.parse(argc - first + 1, argv + first - 1);
  } catch (const CLI::ParseError& e) {
    std::string msg = e.what();
    if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr) {
      msg = "not expected:";
      for (const std::string& w : app.remaining()) msg += " " + w;
    }
    // CLI11 names the option with its dashes already; make "-n" errors say what to do.
    for (int i = first; i < argc; ++i) {
      const std::string w = argv[i];
      if (w.size() >= 2 && w[0] == '-' && w[1] != '-' && !std::isdigit(static_cast<unsigned char>(w[1])) &&
          w[1] != '.') {
        msg += " (options are spelled with two dashes: -" + w.substr(1) + " is not one)";
        break;
      }
    }
    throw UsageError(msg);
  }
  if (m_positional.size() > static_cast<size_t>(max_positional)) {
    std::string extra;
    for (size_t i = max_positional; i < m_positional.size(); ++i) extra += " " + m_positional[i];
    throw UsageError("expected at most " + std::to_string(max_positional) + " paths, got " +
                     std::to_string(m_positional.size()) + "; not expected:" + extra);
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    if (!specs[i].takes_value) {
      if (flag_counts[i] > 0) m_values.emplace_back(specs[i].name, std::vector<std::string>(1));
    } else if (!values[i].empty()) {
      m_values.emplace_back(specs[i].name, values[i]);
    }
  }
}

bool Args::has(const std::string& name) const {
  return std::any_of(m_values.begin(), m_values.end(), [&](const auto& v) { return v.first == name; });
}

std::string Args::get(const std::string& name, const std::string& fallback) const {
  for (const auto& [key, values] : m_values)
    if (key == name) return values.back();
  return fallback;
}

std::vector<std::string> Args::get_all(const std::string& name) const {
  for (const auto& [key, values] : m_values)
    if (key == name) return values;
  return {};
}

int64_t Args::get_int64(const std::string& name, int64_t fallback) const {
  if (!has(name)) return fallback;
  const std::string text = get(name);
  int64_t v = 0;
  if (!parse_int64(text, &v))
    throw UsageError("--" + name + ": " + check_value(text, integer(std::numeric_limits<int64_t>::min(), kInt64Max)));
  return v;
}

int Args::get_int(const std::string& name, int fallback) const {
  if (!has(name)) return fallback;
  const std::string text = get(name);
  const ValueRule as_int = integer(std::numeric_limits<int>::min(), kIntMax);
  if (const std::string why = check_value(text, as_int); !why.empty())
    throw UsageError("--" + name + ": " + why);
  return static_cast<int>(std::strtoll(text.c_str(), nullptr, 10));
}

double Args::get_double(const std::string& name, double fallback) const {
  if (!has(name)) return fallback;
  const std::string text = get(name);
  if (const std::string why = check_value(text, real(-HUGE_VAL, HUGE_VAL)); !why.empty())
    throw UsageError("--" + name + ": " + why);
  return std::strtod(text.c_str(), nullptr);
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

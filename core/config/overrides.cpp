#include <yaml-cpp/yaml.h>

#include "core/config/config.h"

namespace difflab {

Config apply_overrides(const Config& config, const std::vector<std::string>& overrides) {
  if (overrides.empty()) return config;
  YAML::Node root = YAML::Load(config_to_yaml(config));
  for (const auto& o : overrides) {
    const size_t eq = o.find('='), dot = o.find('.');
    if (eq == std::string::npos || dot == std::string::npos || dot > eq)
      throw ConfigError("--set " + o + ": expected SECTION.KEY=VALUE, e.g. train.lr=1e-3");
    const std::string section = o.substr(0, dot), key = o.substr(dot + 1, eq - dot - 1);
    YAML::Node value;
    try {
      value = YAML::Load(o.substr(eq + 1));
    } catch (const YAML::Exception& e) {
      throw ConfigError("--set " + o + ": bad value: " + e.msg);
    }
    root[section][key] = value;
  }
  YAML::Emitter out;
  out << root;
  return config_from_yaml(out.c_str(), "command line (--set)");
}

}  // namespace difflab

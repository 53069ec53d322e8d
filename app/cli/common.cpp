#include "app/cli/common.h"

#include <yaml-cpp/yaml.h>

#include "core/util/paths.h"
#include "core/util/runtime.h"

namespace difflab::cli {

std::vector<OptionSpec> config_options() {
  return {{"config", true, "PATH  YAML config (default configs/mnist.yaml)"},
          {"set", true, "SECTION.KEY=VALUE  override one config value (repeatable)"}};
}

std::vector<OptionSpec> runtime_options() {
  return {{"threads", true, "N  LibTorch intra-op threads (default: all cores)"},
          {"device", true, "auto|cpu|cuda  where to run (default auto)"}};
}

std::vector<OptionSpec> join(std::vector<OptionSpec> a, const std::vector<OptionSpec>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

Config apply_overrides(const Config& config, const std::vector<std::string>& overrides) {
  if (overrides.empty()) return config;
  YAML::Node root = YAML::Load(config_to_yaml(config));
  for (const auto& o : overrides) {
    const auto eq = o.find('=');
    const auto dot = o.find('.');
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

Config load_cli_config(const Args& args) {
  const std::string path = resolve_path(args.get("config", "configs/mnist.yaml"));
  return apply_overrides(load_config(path), args.get_all("set"));
}

c10::Device setup_runtime(const Args& args, int config_threads) {
  configure_threads(args.get_int("threads", config_threads));
  return choose_device(args.get("device", "auto"));
}

}  // namespace difflab::cli

#include "app/cli/common.h"

#include "core/util/paths.h"
#include "core/util/runtime.h"

namespace difflab::cli {

std::vector<OptionSpec> config_options() {
  return {{"config", true, "PATH  YAML config (default configs/mnist.yaml)"},
          {"set", true, "SECTION.KEY=VALUE  override one config value (repeatable)"}};
}

std::vector<OptionSpec> runtime_options() {
  return {{"threads", true, "N  LibTorch intra-op threads, at most 4x the cores (default 0: all cores)",
           integer(0, max_threads())},
          {"device", true, "auto|cpu|cuda  where to run (default auto)"}};
}

std::vector<OptionSpec> join(std::vector<OptionSpec> a, const std::vector<OptionSpec>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
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

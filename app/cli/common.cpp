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

OptionSpec overwrite_option() {
  return {"overwrite", false, "   replace output files that are already there (default: refuse)"};
}

IfExists if_exists(const Args& args) {
  return args.has("overwrite") ? IfExists::Replace : IfExists::Refuse;
}

void check_output(const Args& args, const std::string& option, const std::string& path) {
  if (!args.has("overwrite") && file_at(path))
    throw UsageError(option + " '" + path +
                     "': a file is already there; pass --overwrite to replace it, or choose "
                     "another path");
  check_can_write(path);
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

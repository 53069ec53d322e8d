// Pieces shared by the sub-commands: the config options and the runtime set-up.
#pragma once

#include <c10/core/Device.h>

#include <vector>

#include "app/cli/args.h"
#include "core/config/config.h"

namespace difflab::cli {

// --config PATH and --set section.key=value (repeatable).
std::vector<OptionSpec> config_options();
// --threads N and --device auto|cpu|cuda.
std::vector<OptionSpec> runtime_options();
std::vector<OptionSpec> join(std::vector<OptionSpec> a, const std::vector<OptionSpec>& b);

// Loads --config (default configs/mnist.yaml) and applies every --set in order.
Config load_cli_config(const Args& args);
// Sets LibTorch threads (--threads, else config threads, else all cores) and picks the device.
c10::Device setup_runtime(const Args& args, int config_threads);

}  // namespace difflab::cli

// Pieces shared by the sub-commands: the config options and the runtime set-up.
#pragma once

#include <c10/core/Device.h>

#include <vector>

#include "app/cli/args.h"
#include "core/config/config.h"
#include "core/util/paths.h"

namespace difflab::cli {

// --config PATH and --set section.key=value (repeatable).
std::vector<OptionSpec> config_options();
// --threads N and --device auto|cpu|cuda.
std::vector<OptionSpec> runtime_options();
// --overwrite: the one switch that lets a command replace a file already at a path the
// user named (commands never replace one otherwise).
OptionSpec overwrite_option();
std::vector<OptionSpec> join(std::vector<OptionSpec> a, const std::vector<OptionSpec>& b);

// Loads --config (default configs/mnist.yaml) and applies every --set in order.
Config load_cli_config(const Args& args);
// Sets LibTorch threads (--threads, else config threads, else all cores) and picks the device.
c10::Device setup_runtime(const Args& args, int config_threads);

// How a command writes a file the user named on its command line: with --overwrite it may
// replace what is there, otherwise a file already there is an error.
IfExists if_exists(const Args& args);
// Checks, before the work, that `path` (from option `option`, e.g. "--out") can be written:
// its folder is writable and, without --overwrite, no file is there. Throws UsageError
// "--out 'x.png': a file is already there; pass --overwrite to replace it, or choose
// another path".
void check_output(const Args& args, const std::string& option, const std::string& path);

}  // namespace difflab::cli

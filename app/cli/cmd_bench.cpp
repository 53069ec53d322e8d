// difflab-cli bench: training and sampling speed against this machine's own ceilings.
#include <iostream>

#include "app/cli/common.h"
#include "app/cli/commands.h"
#include "core/train/bench.h"

namespace difflab::cli {

int cmd_bench(int argc, char** argv) {
  const auto specs = join(join(config_options(), runtime_options()), {
      {"batch", true, "N  training batch (default 64)"},
      {"train-steps", true, "N  timed training steps (default 20)"},
      {"sample-batch", true, "N  DDIM batch (default 16)"},
      {"sample-steps", true, "N  timed DDIM steps (default 20)"},
      {"no-kernels", false, "   skip the sgemm / convolution ceiling"},
      {"help", false, "   show this help"},
  });
  Args args(argc, argv, 2, specs);
  if (args.has("help")) {
    std::cout << "usage: difflab-cli bench [options]\n\nTimes the config's model on "
                 "synthetic data of its shape.\n\n"
              << format_options(specs);
    return 0;
  }
  const Config config = load_cli_config(args);
  BenchOptions o;
  o.device = setup_runtime(args, config.train.threads);
  o.train_batch = args.get_int("batch", o.train_batch);
  o.train_steps = args.get_int("train-steps", o.train_steps);
  o.sample_batch = args.get_int("sample-batch", o.sample_batch);
  o.sample_steps = args.get_int("sample-steps", o.sample_steps);
  o.kernels = !args.has("no-kernels");
  std::cout << format_bench(run_bench(config, o), o);
  return 0;
}

}  // namespace difflab::cli

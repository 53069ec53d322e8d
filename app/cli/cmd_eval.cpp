// difflab-cli eval: measurements of a trained checkpoint, one mode each.
//
//   (default)  samples --n images with the given sampler settings and reports the
//              evaluator classifier's accuracy against the requested classes, the Fréchet
//              distance of their features to the real test split, and the floor (N real
//              training images against the same test split); see core/eval/evaluator.h.
//   --nll      the test-set NLL bound in bits/dim (L_T + Σ L_t + L_0; Ho et al. 2020, eq. 5).
//
// Each mode parses its own options, so their flags (--seed, --csv, --variance) can differ.
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/train/run_folder.h"
#include "app/cli/commands.h"
#include "app/cli/common.h"
#include "app/cli/sample_options.h"
#include "core/data/dataset.h"
#include "core/eval/evaluator.h"
#include "core/eval/noisy_classifier.h"
#include "core/train/checkpoint.h"
#include "core/train/nll_eval.h"
#include "core/util/paths.h"

namespace difflab::cli {
namespace {


// Options every mode shares: which checkpoint, which weights, config overrides.
const std::vector<OptionSpec> kCommonOptions = {
    {"checkpoint", true, "PATH  checkpoint file"},
    {"run", true, "DIR  use the newest checkpoint of a run folder (default runs/mnist)"},
    {"raw", false, "   use the raw weights instead of the EMA"},
    {"set", true, "SECTION.KEY=VALUE  override the checkpoint's config (e.g. data.path; repeatable)"},
    {"help", false, "   show this help"},
};

const std::vector<OptionSpec> kNllOptions = {
    {"nll", false, "   mode: test-set NLL bound in bits/dim"},
    {"batches", true, "N  test batches to evaluate (default 1; images spread over the test split)", integer(1, 1000000)},
    {"batch-size", true, "N  images per batch (default 64)", integer(1, 4096)},
    {"variance", true,
     "fixed_small|fixed_large|learned  reverse variance (default: learned for a learn_sigma "
     "model, else fixed_large)"},
    {"t-samples", true,
     "K  ESTIMATE from K log-spaced strata of t, K+1 network calls a batch (default 0 = exact, "
     "T calls)", integer(0, 1000000)},
    {"labels", true, "true|null  class-conditional nets: condition on the true labels (default) or null"},
    {"no-clip", false, "   do not clip the predicted x0 to [-1, 1]"},
    {"seed", true, "N  noise seed (default 0)", integer(0, kInt64Max)},
    {"csv", true, "PATH  write the mean L_t of every t (t, model_t, bits_per_dim)"},
    overwrite_option(),
};

struct Loaded {
  std::string path;
  CheckpointInfo info;
  DenoiserNet net;
  c10::Device device = torch::kCPU;
};

Loaded load(const Args& args) {
  Loaded l;
  l.path = args.get("checkpoint");
  const std::string run = args.get("run", "runs/mnist");
  if (l.path.empty()) {
    l.path = latest_checkpoint(run);
    if (l.path.empty())
      throw CheckpointError("no checkpoint in " + run +
                            "/checkpoints: train first, or pass --checkpoint");
  }
  l.device = setup_runtime(args, 0);
  l.net = load_checkpoint_model(l.path, !args.has("raw"), l.device, &l.info);
  l.info.config = apply_overrides(l.info.config, args.get_all("set"));
  return l;
}

int run_nll(const Args& args) {
  const Loaded l = load(args);
  const Config& c = l.info.config;
  NllEvalOptions o;
  o.variance = c.diffusion.learn_sigma ? VarianceKind::Learned : VarianceKind::FixedLarge;
  if (args.has("variance")) {
    const auto v = parse_enum<VarianceKind>(args.get("variance"));
    if (!v)
      throw UsageError("--variance " + args.get("variance") + ": choose one of " +
                       enum_choices<VarianceKind>());
    o.variance = *v;
  }
  o.batches = args.get_int("batches", 1);
  o.batch_size = args.get_int("batch-size", 64);
  o.t_samples = args.get_int("t-samples", 0);
  o.clip_denoised = !args.has("no-clip");
  o.seed = static_cast<uint64_t>(args.get_int64("seed", 0));
  const std::string labels = args.get("labels", "true");
  if (labels != "true" && labels != "null")
    throw UsageError("--labels " + labels + ": choose true or null");
  o.use_labels = labels == "true";
  if (o.batches < 1) throw UsageError("--batches must be >= 1");
  if (o.batch_size < 1) throw UsageError("--batch-size must be >= 1");
  if (o.t_samples < 0) throw UsageError("--t-samples must be >= 0 (0 = exact)");

  if (c.diffusion.objective != Objective::Ddpm)
    throw UsageError("the bound in bits/dim is DDPM's variational bound; this checkpoint was trained "
                     "with diffusion.objective = " + std::string(to_string(c.diffusion.objective)));
  const auto data = load_dataset(c.data);
  GaussianDiffusion diffusion(NoiseSchedule::named(c.diffusion.schedule, c.diffusion.timesteps),
                              c.diffusion.prediction, l.device);
  const int images = static_cast<int>(
      std::min<int64_t>(static_cast<int64_t>(o.batches) * o.batch_size, data.test.size()));
  std::printf("checkpoint: %s (step %lld, %s weights)\n", l.path.c_str(),
              static_cast<long long>(l.info.step), args.has("raw") ? "raw" : "EMA");
  std::printf("data:       %s\n", data.description.c_str());
  std::printf("bound:      %d test images, T = %d, variance %s, clip %s%s%s\n", images,
              c.diffusion.timesteps, std::string(to_string(o.variance)).c_str(),
              o.clip_denoised ? "on" : "off",
              l.net->num_classes() > 0
                  ? (o.use_labels ? ", conditioned on the true labels (-log p(x|y))"
                                  : ", null label (-log p(x))")
                  : "",
              o.t_samples > 0 && o.t_samples < c.diffusion.timesteps - 1
                  ? (", ESTIMATE from " + std::to_string(o.t_samples) + " strata of t").c_str()
                  : ", exact over all t");
  std::fflush(stdout);

  const auto start = std::chrono::steady_clock::now();
  const auto r = evaluate_nll(l.net, diffusion, data.test, o, [](int b, int nb, int s, int ns) {
    std::fprintf(stderr, "\rbatch %d/%d  t %d/%d", b, nb, s, ns);
  });
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "\n");
  const char* kind = r.estimate ? " (estimate)" : "";
  std::printf("NLL bound:  %.4f bits/dim%s  (+- %.4f standard error over %lld images)\n", r.total,
              kind, r.total_stderr, static_cast<long long>(r.images));
  std::printf("  prior     L_T                  %.6f\n", r.prior);
  std::printf("  sum L_t   t = 1..%d           %.4f%s\n", c.diffusion.timesteps - 1, r.kl_sum, kind);
  std::printf("  decoder   L_0                  %.4f\n", r.decoder);
  std::printf("time:       %.1f s\n", secs);
  if (args.has("csv")) {
    const std::string csv = args.get("csv");
    std::ostringstream out;
    out << "t,model_t,bits_per_dim\n";
    for (size_t t = 0; t < r.terms.size(); ++t)
      out << t << ',' << diffusion.schedule().model_timestep(static_cast<int>(t)) << ','
          << r.terms[t] << '\n';
    write_file_atomic(csv, out.str(), if_exists(args));
    std::printf("terms:      %s\n", csv.c_str());
  }
  return 0;
}


const std::vector<OptionSpec> kEvalOptions = {
    {"checkpoint", true, "PATH  checkpoint file"},
    {"run", true, "DIR  use the newest checkpoint of a run folder (default runs/mnist)"},
    {"n", true, "N  number of samples to score (default 1000)", integer(1, 1000000)},
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
  append_evaluation_csv(path, evaluation_record(checkpoint, step, sc, r, seconds));
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
  const SamplingModel model = load_sampling_model(path, use_ema, device, &info);
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
      args.get("evaluator", evaluator_cache_path(checkpoint_folder(path)));
  auto log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  auto evaluator = load_or_train_evaluator(cache, data, EvaluatorOptions{}, device, log);

  if (args.has("real")) return eval_real(args, path, info, sc, evaluator, data);
  SampleRequest request;
  request.config = sc;
  request.classifier = load_classifier_guidance(sc, model, device);
  request.guide = load_guide_model(sc, model, device);
  double seconds = 0;
  const auto start = std::chrono::steady_clock::now();
  auto r = evaluate_model(
      model, request, device, evaluator, data,
      [&](const StepInfo& s) {
        std::fprintf(stderr, "\rsampling step %d/%d", s.index + 1, s.total);
        return true;
      },
      &seconds);
  const double total =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "\n");
  const std::string interval = guidance_interval_text(sc);
  const std::string interval_note = interval.empty() ? "" : " (" + interval + ")";
  std::printf(
      "eval %s (step %lld): accuracy %.2f %%, FD %.3f, floor FD %.3f (N %lld vs %lld test "
      "images), %s %d steps, guidance %.2f%s, classifier scale %.2f, seed %llu, %.1f s "
      "(sampling %.1f s)\n",
      path.c_str(), static_cast<long long>(info.step), 100.0 * r.accuracy, r.fd, r.fd_floor,
      static_cast<long long>(r.n), static_cast<long long>(r.reference_size),
      std::string(to_string(sc.sampler)).c_str(), sc.steps, sc.guidance,
      interval_note.c_str(),
      sc.classifier_scale, static_cast<unsigned long long>(sc.seed), total, seconds);
  if (args.has("csv")) append_csv(args.get("csv"), path, info.step, sc, r, total);
  // A checkpoint of a run folder: the run keeps the score (the GUI's Runs panel shows it).
  const std::string run = run_dir_of_checkpoint(path);
  if (!run.empty()) {
    const std::string record = (std::filesystem::path(run) / kRunEvaluationsFile).string();
    if (!args.has("csv") || !std::filesystem::exists(args.get("csv")) ||
        !std::filesystem::equivalent(args.get("csv"), record)) {
      append_csv(record, path, info.step, sc, r, total);
      std::printf("recorded in %s\n", record.c_str());
    }
  }
  return 0;
}

int eval_nll_command(int argc, char** argv) {
  const auto specs = join(join(runtime_options(), kCommonOptions), kNllOptions);
  Args args(argc, argv, 2, specs);
  if (args.has("help")) {
    std::cout << "usage: difflab-cli eval --nll [--run DIR | --checkpoint PATH] [options]\n\n"
                 "The variational bound on the test-set negative log-likelihood in bits/dim,\n"
                 "L_T + sum of L_t + L_0, with the discretized Gaussian decoder over 8-bit pixel\n"
                 "bins (Ho et al. 2020, eq. 5, 13).\n\n"
              << format_options(specs);
    return 0;
  }
  if (args.has("csv")) check_output(args, "--csv", args.get("csv"));  // before minutes of work
  return run_nll(args);
}

int eval_samples_command(int argc, char** argv) {
  const auto specs = join(join(runtime_options(), kEvalOptions), sampling_options());
  Args args(argc, argv, 2, specs);
  if (args.has("help")) {
    std::cout << "usage: difflab-cli eval [--run DIR | --checkpoint PATH] [options]\n"
                 "       difflab-cli eval --nll ... (the NLL bound: eval --nll --help)\n\n"
                 "Samples --n images and scores them with a classifier trained on the real\n"
                 "training split (cached in <run>/evaluator.pt): accuracy against the requested\n"
                 "classes, Frechet distance of its features to the test split, and the floor\n"
                 "(N real training images against the same test split).\n\n"
              << format_options(specs);
    return 0;
  }
  if (args.has("csv")) check_can_write(args.get("csv"));  // before minutes of work
  return eval_classifier(args);
}


}  // namespace

int cmd_eval(int argc, char** argv) {
  for (int i = 2; i < argc; ++i)
    if (std::strcmp(argv[i], "--nll") == 0) return eval_nll_command(argc, argv);
  return eval_samples_command(argc, argv);
}

}  // namespace difflab::cli

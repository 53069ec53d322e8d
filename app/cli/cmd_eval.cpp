// difflab-cli eval: measurements of a trained checkpoint. One mode per flag; each mode
// is one function below with its own options, so new modes add a row to kModes.
//
//   --nll   the test-set NLL bound in bits/dim (L_T + Σ L_t + L_0; Ho et al. 2020, eq. 5)
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "app/cli/common.h"
#include "app/cli/commands.h"
#include "core/data/dataset.h"
#include "core/train/nll_eval.h"
#include "core/train/trainer.h"

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
    {"batches", true, "N  test batches to evaluate (default 1; from the start of the test split)"},
    {"batch-size", true, "N  images per batch (default 64)"},
    {"variance", true,
     "fixed_small|fixed_large|learned  reverse variance (default: learned for a learn_sigma "
     "model, else fixed_large)"},
    {"t-samples", true,
     "K  ESTIMATE from K log-spaced strata of t, K+1 network calls a batch (default 0 = exact, "
     "T calls)"},
    {"labels", true, "true|null  class-conditional nets: condition on the true labels (default) or null"},
    {"no-clip", false, "   do not clip the predicted x0 to [-1, 1]"},
    {"seed", true, "N  noise seed (default 0)"},
    {"csv", true, "PATH  write the mean L_t of every t (t, model_t, bits_per_dim)"},
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
    std::ofstream out(csv);
    if (!out) throw std::runtime_error("cannot write " + csv);
    out << "t,model_t,bits_per_dim\n";
    for (size_t t = 0; t < r.terms.size(); ++t)
      out << t << ',' << diffusion.schedule().model_timestep(static_cast<int>(t)) << ','
          << r.terms[t] << '\n';
    if (!out) throw std::runtime_error("write to " + csv + " failed");
    std::printf("terms:      %s\n", csv.c_str());
  }
  return 0;
}

struct Mode {
  const char* flag;
  const std::vector<OptionSpec>* options;
  int (*run)(const Args&);
};
const Mode kModes[] = {
    {"nll", &kNllOptions, run_nll},
};

}  // namespace

int cmd_eval(int argc, char** argv) {
  auto specs = join(runtime_options(), kCommonOptions);
  for (const Mode& m : kModes) specs = join(specs, *m.options);
  Args args(argc, argv, 2, specs);
  std::string modes;
  for (const Mode& m : kModes) modes += std::string(modes.empty() ? "" : "|") + "--" + m.flag;
  if (args.has("help")) {
    std::cout << "usage: difflab-cli eval " << modes
              << " [--run DIR | --checkpoint PATH] [options]\n\n"
                 "Measures a trained checkpoint. --nll: the variational bound on the test-set\n"
                 "negative log-likelihood in bits/dim, L_T + sum of L_t + L_0, with the\n"
                 "discretized Gaussian decoder over 8-bit pixel bins (Ho et al. 2020, eq. 5, 13).\n\n"
              << format_options(specs);
    return 0;
  }
  const Mode* chosen = nullptr;
  for (const Mode& m : kModes) {
    if (!args.has(m.flag)) continue;
    if (chosen) throw UsageError("choose one mode: " + modes);
    chosen = &m;
  }
  if (!chosen) throw UsageError("choose a mode: " + modes);
  return chosen->run(args);
}

}  // namespace difflab::cli

#include "core/train/run_folder.h"
#include "app/cli/sample_options.h"

#include "core/sampling/sampler_registry.h"
#include "core/train/checkpoint.h"

namespace difflab::cli {
namespace {

template <typename E> E enum_option(const Args& args, const std::string& name, E fallback) {
  if (!args.has(name)) return fallback;
  auto v = parse_enum<E>(args.get(name));
  if (!v)
    throw UsageError("--" + name + " " + args.get(name) + ": choose one of " + enum_choices<E>());
  return *v;
}

// The choices, then one line per sampler from the registry, under the help column.
std::string sampler_option_help() {
  const std::string indent(18, ' ');
  std::string help = enum_choices<SamplerKind>() + "  (default: the checkpoint's sample.sampler)";
  for (int i = 0; i < static_cast<int>(SamplerKind::Count); ++i) {
    const auto& row = sampler_info(static_cast<SamplerKind>(i));
    help += "\n" + indent + "  " + std::string(row.name) + ": " + std::string(row.help);
  }
  return help;
}

}  // namespace

std::vector<OptionSpec> sampling_options() {
  return {
      {"sampler", true, sampler_option_help()},
      {"steps", true, "N  sampling steps (respaced from T)", integer(1, 100000)},
      {"eta", true, "X  DDIM noise: 0 deterministic, 1 like DDPM", real(0, 1e3)},
      {"variance", true,
       enum_choices<VarianceKind>() + "  DDPM variance (learned: learn_sigma models)"},
      {"sigmas", true,
       enum_choices<SigmaSpacing>() + "  noise levels of " + sampler_names(SamplerFamily::Sigma)},
      {"rho", true, "X  Karras spacing rho (default 7, Karras et al. 2022)", real(0, 1e3)},
      {"s-churn", true, "X  S_churn of euler/heun in sigma-space (Karras et al. 2022, Alg. 2; 0 = off)",
       real(0, 1e6)},
      {"flow-shift", true, "S  time shift of flow-matching sampling (Esser et al. 2024; 1 = off)",
       real(1e-6, 1e6)},
      {"guidance", true, "W  classifier-free guidance scale (0 uncond, 1 cond)", real(0, 1e4)},
      {"guidance-sigma-min", true,
       "S  guide only above noise level S (sigma = noise/signal; Kynkaanniemi et al. 2024; 0 = off)",
       real(0, 1e6)},
      {"guidance-sigma-max", true, "S  guide only up to noise level S (0 = no upper limit)",
       real(0, 1e6)},
      {"guide-model", true,
       "PATH  autoguidance (Karras et al. 2024): a weaker model (checkpoint or run folder) of "
       "the same data and objective; --guidance W then mixes the two models"},
      {"class", true, "K  class to draw (-1 cycles through all classes)", integer(-1, 1000000)},
      {"seed", true, "N  noise seed", integer(0, kInt64Max)},
      {"classifier", true, "PATH  noisy classifier for classifier guidance (train-classifier)"},
      {"classifier-scale", true, "S  classifier guidance scale (0 = off)", real(0, 1e4)},
  };
}

SampleConfig apply_sampling_options(const Args& args, SampleConfig sc, int timesteps) {
  sc.sampler = enum_option(args, "sampler", sc.sampler);
  sc.variance = enum_option(args, "variance", sc.variance);
  if (args.has("sampler") && sc.sampler == SamplerKind::Ddpm && !args.has("steps"))
    sc.steps = timesteps;
  sc.steps = args.get_int("steps", sc.steps);
  sc.eta = args.get_double("eta", sc.eta);
  sc.sigmas = enum_option(args, "sigmas", sc.sigmas);
  sc.karras_rho = args.get_double("rho", sc.karras_rho);
  sc.s_churn = args.get_double("s-churn", sc.s_churn);
  sc.flow_shift = args.get_double("flow-shift", sc.flow_shift);
  sc.guidance = args.get_double("guidance", sc.guidance);
  sc.guidance_sigma_min = args.get_double("guidance-sigma-min", sc.guidance_sigma_min);
  sc.guidance_sigma_max = args.get_double("guidance-sigma-max", sc.guidance_sigma_max);
  sc.guide_model = args.get("guide-model", sc.guide_model);
  sc.class_label = args.get_int("class", sc.class_label);
  sc.seed = static_cast<uint64_t>(args.get_int64("seed", static_cast<int64_t>(sc.seed)));
  sc.classifier = args.get("classifier", sc.classifier);
  sc.classifier_scale = args.get_double("classifier-scale", sc.classifier_scale);
  return sc;
}

std::string checkpoint_from_args(const Args& args) {
  std::string path = args.get("checkpoint");
  if (!path.empty()) return path;
  const std::string run = args.get("run", "runs/mnist");
  path = latest_checkpoint(run);
  if (path.empty())
    throw CheckpointError("no checkpoint in " + run +
                          "/checkpoints: train first, or pass --checkpoint");
  return path;
}

}  // namespace difflab::cli

// difflab-cli sample: images from a checkpoint as a PNG grid and/or one PNG per image.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "app/cli/common.h"
#include "app/cli/commands.h"
#include "app/cli/sample_options.h"
#include "core/sampling/sampler.h"
#include "core/train/trainer.h"
#include "core/vision/image_grid.h"

namespace difflab::cli {
namespace {

// The options of `sample` alone; the sampler settings come from sampling_options().
const std::vector<OptionSpec> kSampleOptions = {
    {"checkpoint", true, "PATH  checkpoint file"},
    {"run", true, "DIR  use the newest checkpoint of a run folder (default runs/mnist)"},
    {"n", true, "N  number of images"},
    {"out", true, "PNG  grid file (default <run>/samples/sample.png)"},
    {"out-dir", true, "DIR  also write one PNG per image, named label<K>_<index>.png"},
    {"columns", true, "N  grid columns (default: one class per column when cycling)"},
    {"raw", false, "   use the raw weights instead of the EMA"},
    {"help", false, "   show this help"},
};

}  // namespace

int cmd_sample(int argc, char** argv) {
  const auto specs = join(join(runtime_options(), kSampleOptions), sampling_options());
  Args args(argc, argv, 2, specs);
  if (args.has("help")) {
    std::cout << "usage: difflab-cli sample [options]\n\n" << format_options(specs);
    return 0;
  }
  const std::string path = checkpoint_from_args(args);
  const std::string run = args.get("run", "runs/mnist");
  const auto device = setup_runtime(args, 0);
  CheckpointInfo info;
  const bool use_ema = !args.has("raw");
  auto net = load_checkpoint_model(path, use_ema, device, &info);

  SampleConfig sc = apply_sampling_options(args, info.config.sample, info.config.diffusion.timesteps);
  sc.n = args.get_int("n", sc.n);
  sc.use_ema = use_ema;
  Config check = info.config;
  check.sample = sc;
  validate(check, "command line");

  SampleRequest request;
  request.config = sc;
  request.num_classes = net->num_classes();
  const auto& shape = info.shape;
  request.shape = shape.points ? std::vector<int64_t>{2}
                               : std::vector<int64_t>{shape.channels, shape.height, shape.width};
  const auto start = std::chrono::steady_clock::now();
  auto result = run_sampling(net, NoiseSchedule::named(info.config.diffusion.schedule,
                                                       info.config.diffusion.timesteps),
                             info.config.diffusion.prediction, request, device,
                             [&](const StepInfo& s) {
                               std::fprintf(stderr, "\rstep %d/%d (t=%d)", s.index + 1, s.total,
                                            s.timestep);
                               return true;
                             });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "\n");
  const bool sigma_space = sc.sampler != SamplerKind::Ddpm && sc.sampler != SamplerKind::Ddim;
  std::printf("%d images, %s%s %d steps, guidance %.2f, seed %llu, %.1f s (%.1f ms/step)\n", sc.n,
              std::string(to_string(sc.sampler)).c_str(),
              sigma_space ? (" " + std::string(to_string(sc.sigmas))).c_str() : "", sc.steps,
              sc.guidance,
              static_cast<unsigned long long>(sc.seed), secs, secs * 1e3 / sc.steps);

  const std::string grid = args.get("out", run + "/samples/sample.png");
  if (shape.points) {
    write_png(grid, plot_points(result.images));
  } else {
    const int classes = request.num_classes;
    const int columns = args.get_int("columns", sc.class_label < 0 && classes > 0 ? classes : 0);
    write_png(grid, make_grid(result.images, columns, 2, 2));
  }
  std::printf("grid: %s\n", grid.c_str());
  if (args.has("out-dir") && !shape.points) {
    const std::string dir = args.get("out-dir");
    std::filesystem::create_directories(dir);
    for (int64_t i = 0; i < result.images.size(0); ++i) {
      const int64_t label = result.labels[i].item<int64_t>();
      char name[64];
      std::snprintf(name, sizeof name, "/label%lld_%04lld.png",
                    static_cast<long long>(label < 0 ? 0 : label), static_cast<long long>(i));
      write_png(dir + name, make_grid(result.images.narrow(0, i, 1), 1, 0, 1));
    }
    std::printf("images: %s (%lld files)\n", dir.c_str(),
                static_cast<long long>(result.images.size(0)));
  }
  return 0;
}

}  // namespace difflab::cli

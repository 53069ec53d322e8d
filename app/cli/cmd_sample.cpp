// difflab-cli sample: images from a checkpoint as a PNG grid and/or one PNG per image.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "app/cli/commands.h"
#include "app/cli/common.h"
#include "app/cli/sample_options.h"
#include "core/eval/noisy_classifier.h"
#include "core/sampling/sampler.h"
#include "core/sampling/sampler_registry.h"
#include "core/train/checkpoint.h"
#include "core/train/controlnet_trainer.h"
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
    {"controlnet", true, "PATH  steer with a ControlNet (train-controlnet); the base it names is the model (--checkpoint overrides that path)"},
    {"hint", true, "PNG  the ControlNet's hint picture (any size; resized to the model's)"},
    {"hint-kind", true, "canny|scribble  canny: use the picture's canny edges; scribble: the picture is white strokes on black (default canny)"},
    {"low", true, "X  canny low threshold, 0-255 (default: controlnet.canny_low)"},
    {"high", true, "X  canny high threshold, 0-255 (default: controlnet.canny_high)"},
    {"control-scale", true, "S  ControlNet conditioning scale (default: controlnet.scale)"},
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
  const std::string path = args.has("controlnet") ? args.get("checkpoint") : checkpoint_from_args(args);
  const std::string run = args.get("run", "runs/mnist");
  const auto device = setup_runtime(args, 0);
  CheckpointInfo info;
  const bool use_ema = !args.has("raw");
  SamplingModel model;
  ControlInput control;
  at::Tensor hint_map;  // (1, 1, H, W), for the PNG written next to the grid
  if (args.has("controlnet")) {
    if (!args.has("hint")) throw UsageError("--controlnet needs --hint PNG");
    if (args.has("raw")) throw UsageError("a ControlNet steers the base's EMA weights; drop --raw");
    auto loaded = load_controlnet(args.get("controlnet"), device, args.get("checkpoint"));
    model = sampling_model(loaded);
    info = loaded.base_info;
    info.config.controlnet = loaded.config.controlnet;
    const std::string kind_name = args.get("hint-kind", "canny");
    if (kind_name != "canny" && kind_name != "scribble")
      throw UsageError("--hint-kind must be canny or scribble");
    const auto kind = kind_name == "canny" ? HintKind::Canny : HintKind::Scribble;
    const auto& cn = loaded.config.controlnet;
    const auto picture = image_to_gray_tensor(read_image(args.get("hint")), info.shape.height,
                                              info.shape.width);
    control.net = loaded.net;
    control.hint = hint_from_picture(picture, kind, args.get_double("low", cn.canny_low),
                                     args.get_double("high", cn.canny_high));
    control.scale = args.get_double("control-scale", cn.scale);
    hint_map = control.hint.sum(1, /*keepdim=*/true);
  } else {
    model = load_sampling_model(path, use_ema, device, &info);
  }

  SampleConfig sc = apply_sampling_options(args, info.config.sample, info.config.diffusion.timesteps);
  sc.n = args.get_int("n", sc.n);
  sc.use_ema = use_ema;
  Config check = info.config;
  check.sample = sc;
  validate(check, "command line");

  SampleRequest request;
  request.config = sc;
  request.control = control;
  request.classifier = load_classifier_guidance(sc, model, device);
  const auto start = std::chrono::steady_clock::now();
  auto result = run_sampling(model, request, device, [&](const StepInfo& s) {
    std::fprintf(stderr, "\rstep %d/%d (t=%d)", s.index + 1, s.total, s.timestep);
    return true;
  });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "\n");
  const bool sigma_space = is_sigma_space(sc.sampler);
  std::printf("%d images, %s%s %d steps, guidance %.2f, seed %llu, %.1f s (%.1f ms/step)\n", sc.n,
              std::string(to_string(sc.sampler)).c_str(),
              sigma_space ? (" " + std::string(to_string(sc.sigmas))).c_str() : "", sc.steps,
              sc.guidance,
              static_cast<unsigned long long>(sc.seed), secs, secs * 1e3 / sc.steps);

  const std::string grid = args.get("out", run + "/samples/sample.png");
  const auto& shape = info.shape;
  if (shape.points) {
    write_png(grid, plot_points(result.images));
  } else {
    const int classes = model.num_classes;
    const int columns = args.get_int("columns", sc.class_label < 0 && classes > 0 ? classes : 0);
    write_png(grid, make_grid(result.images, columns, 2, 2));
  }
  std::printf("grid: %s\n", grid.c_str());
  if (hint_map.defined()) {
    const auto stem = std::filesystem::path(grid).replace_extension("").string();
    write_png(stem + "_hint.png", make_grid(hint_map * 2.0 - 1.0, 1, 0, 2));
    std::printf("hint: %s_hint.png (%lld pixels, scale %.2f)\n", stem.c_str(),
                static_cast<long long>(hint_map.sum().item<double>()), control.scale);
  }
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

// difflab-cli sample: images from a checkpoint as a PNG grid and/or one PNG per image.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <regex>

#include "app/cli/commands.h"
#include "app/cli/common.h"
#include "app/cli/sample_options.h"
#include "core/eval/noisy_classifier.h"
#include "core/sampling/sampler.h"
#include "core/sampling/sampler_registry.h"
#include "core/train/checkpoint.h"
#include "core/train/controlnet_trainer.h"
#include "core/util/paths.h"
#include "core/vision/image_grid.h"

namespace difflab::cli {
namespace {

// The options of `sample` alone; the sampler settings come from sampling_options().
const std::vector<OptionSpec> kSampleOptions = {
    {"checkpoint", true, "PATH  checkpoint file"},
    {"run", true, "DIR  use the newest checkpoint of a run folder (default runs/mnist)"},
    {"n", true, "N  number of images", integer(1, 1000000)},
    {"out", true, "PNG  grid file (default <run>/samples/sample.png, or sample_2.png, ... when taken)"},
    {"out-dir", true, "DIR  also write one PNG per image, named label<K>_<index>.png"},
    {"columns", true, "N  grid columns (default: one class per column when cycling)", integer(1, 10000)},
    {"raw", false, "   use the raw weights instead of the EMA"},
    {"controlnet", true, "PATH  steer with a ControlNet (train-controlnet); the base it names is the model (--checkpoint overrides that path)"},
    {"hint", true, "PNG  the ControlNet's hint picture (any size; resized to the model's)"},
    {"hint-kind", true, "canny|scribble|hough|mask|distance  what to make of the --hint picture: its canny edges, its white strokes on black thinned to centre lines (scribble), the Hough segments of its edges, its filled silhouette, the distance map of that silhouette (give a picture of the object, not a distance map) (default: the ControlNet's kind; canny for a mixed one)"},
    {"low", true, "X  canny low threshold, 0-255 (default: controlnet.canny_low)", real(0, 1e4)},
    {"high", true, "X  canny high threshold, 0-255 (default: controlnet.canny_high)", real(0, 1e4)},
    {"control-scale", true, "S  ControlNet conditioning scale (default: controlnet.scale)", real(0, 100)},
    overwrite_option(),
    {"help", false, "   show this help"},
};

// The per-image files `sample --out-dir DIR --n N` would write ("label<K>_<index>.png",
// index < N) that are already there; refused before the work unless --overwrite.
void check_out_dir(const Args& args, const std::string& dir, int64_t n) {
  check_can_write(dir + "/label0_0000.png");
  if (args.has("overwrite")) return;
  static const std::regex kName(R"(label\d+_(\d+)\.png)");
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::smatch m;
    const std::string name = it->path().filename().string();
    if (std::regex_match(name, m, kName) && std::stoll(m[1].str()) < n)
      throw UsageError("--out-dir '" + dir + "': " + name +
                       " is already there; pass --overwrite to replace the images, or choose "
                       "another folder");
  }
}

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
  // A bad --out fails now, not after the sampling run; the default name never replaces
  // an earlier sample.
  const std::string grid =
      args.has("out") ? args.get("out") : free_path(run + "/samples/sample.png");
  check_output(args, "--out", grid);
  const std::string hint_png = std::filesystem::path(grid).replace_extension("").string() + "_hint.png";
  if (args.has("controlnet")) check_output(args, "--out", hint_png);
  const auto device = setup_runtime(args, 0);
  CheckpointInfo info;
  const bool use_ema = !args.has("raw");
  SamplingModel model;
  ControlInput control;
  at::Tensor hint_shown;  // (1, 1, H, W), for the PNG written next to the grid
  if (args.has("controlnet")) {
    if (!args.has("hint")) throw UsageError("--controlnet needs --hint PNG");
    if (args.has("raw")) throw UsageError("a ControlNet steers the base's EMA weights; drop --raw");
    auto loaded = load_controlnet(args.get("controlnet"), device, args.get("checkpoint"));
    model = sampling_model(loaded);
    info = loaded.base_info;
    info.config.controlnet = loaded.config.controlnet;
    const auto& cn = loaded.config.controlnet;
    HintKind kind = cn.hint == HintKind::Mixed ? HintKind::Canny : cn.hint;
    if (args.has("hint-kind")) {
      const auto named = parse_enum<HintKind>(args.get("hint-kind"));
      if (!named || *named == HintKind::Mixed)
        throw UsageError("--hint-kind " + args.get("hint-kind") +
                         ": choose one of canny, scribble, hough, mask, distance");
      kind = *named;
    }
    const auto picture = image_to_gray_tensor(read_image(args.get("hint")), info.shape.height,
                                              info.shape.width);
    control.net = loaded.net;
    const double low = args.get_double("low", cn.canny_low);
    const double high = args.get_double("high", cn.canny_high);
    if (low > high)
      throw UsageError("--low " + std::to_string(low) + " is above --high " + std::to_string(high));
    HintMapOptions map_options = hint_map_options(cn, kind);
    map_options.canny.low = low;
    map_options.canny.high = high;
    control.hint = hint_from_picture(picture, kind, map_options);
    control.scale = args.get_double("control-scale", cn.scale);
    hint_shown = control.hint.sum(1, /*keepdim=*/true);
  } else {
    model = load_sampling_model(path, use_ema, device, &info);
  }

  SampleConfig sc = apply_sampling_options(args, info.config.sample, info.config.diffusion.timesteps);
  sc.n = args.get_int("n", sc.n);
  sc.use_ema = use_ema;
  if (args.has("out-dir")) check_out_dir(args, args.get("out-dir"), sc.n);
  Config check = info.config;
  check.sample = sc;
  validate(check, "command line");

  SampleRequest request;
  request.config = sc;
  request.control = control;
  request.classifier = load_classifier_guidance(sc, model, device);
  request.guide = load_guide_model(sc, model, device);
  const auto start = std::chrono::steady_clock::now();
  auto result = run_sampling(model, request, device, [&](const StepInfo& s) {
    std::fprintf(stderr, "\rstep %d/%d (t=%d)", s.index + 1, s.total, s.timestep);
    return true;
  });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "\n");
  std::printf("%s\n", result.precision.reason.c_str());
  // The σ spacing (model / karras) is a choice of DDPM models only; EDM and flow matching
  // have their own grids.
  const bool sigma_space =
      is_sigma_space(sc.sampler) && info.config.diffusion.objective == Objective::Ddpm;
  const std::string interval = guidance_interval_text(sc);
  std::printf("%d images, %s%s %d steps, guidance %.2f%s, seed %llu, %.1f s (%.1f ms/step)\n", sc.n,
              std::string(to_string(sc.sampler)).c_str(),
              sigma_space ? (" " + std::string(to_string(sc.sigmas))).c_str() : "", sc.steps,
              sc.guidance, interval.empty() ? "" : (" (" + interval + ")").c_str(),
              static_cast<unsigned long long>(sc.seed), secs, secs * 1e3 / sc.steps);

  const auto& shape = info.shape;
  if (shape.points) {
    write_png(grid, plot_points(result.images), if_exists(args));
  } else {
    const int classes = model.num_classes;
    const int columns = args.get_int("columns", sc.class_label < 0 && classes > 0 ? classes : 0);
    write_png(grid, make_grid(result.images, columns, 2, 2), if_exists(args));
  }
  std::printf("grid: %s\n", grid.c_str());
  if (hint_shown.defined()) {
    write_png(hint_png, make_grid(hint_shown * 2.0 - 1.0, 1, 0, 2), if_exists(args));
    std::printf("hint: %s (%lld pixels, scale %.2f)\n", hint_png.c_str(),
                static_cast<long long>((hint_shown > 0).sum().item<int64_t>()), control.scale);
  }
  if (args.has("out-dir") && !shape.points) {
    const std::string dir = args.get("out-dir");
    for (int64_t i = 0; i < result.images.size(0); ++i) {
      const int64_t label = result.labels[i].item<int64_t>();
      char name[64];
      std::snprintf(name, sizeof name, "/label%lld_%04lld.png",
                    static_cast<long long>(label < 0 ? 0 : label), static_cast<long long>(i));
      write_png(dir + name, make_grid(result.images.narrow(0, i, 1), 1, 0, 1), if_exists(args));
    }
    std::printf("images: %s (%lld files)\n", dir.c_str(),
                static_cast<long long>(result.images.size(0)));
  }
  return 0;
}

}  // namespace difflab::cli

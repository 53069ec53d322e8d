// difflab-cli train-controlnet / eval-controlnet: a ControlNet (Zhang et al. 2023) for a
// trained base checkpoint, and the edge-F1 measurement of how well samples follow hints.
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "app/cli/common.h"
#include "app/cli/commands.h"
#include "app/cli/sample_options.h"
#include "core/eval/control_eval.h"
#include "core/train/checkpoint.h"
#include "core/train/controlnet_trainer.h"
#include "core/train/metrics_log.h"
#include "core/util/paths.h"
#include "core/util/runtime.h"
#include "core/vision/image_grid.h"

namespace difflab::cli {
namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

const std::vector<OptionSpec> kTrainOptions = {
    {"base", true, "PATH  base checkpoint or run folder (overrides controlnet.base_checkpoint; default: the newest of runs/mnist)"},
    {"hint", true, enum_choices<HintKind>() + "  training hints (overrides controlnet.hint)"},
    {"steps", true, "N  training steps (overrides controlnet.steps)", integer(1, kInt64Max)},
    {"out", true, "DIR  output folder (overrides controlnet.out_dir); writes controlnet.pt, metrics.csv"},
    {"time-limit", true, "MIN  stop and save after MIN minutes", real(0, 1e7)},
    {"resume", false, "   continue the run in --out (its controlnet.pt, with its settings) up to --steps"},
    {"eval-every", true, "N  test loss with and without the ControlNet every N steps (default 200; 0 = off)", integer(0, kInt64Max)},
    {"help", false, "   show this help"},
};

}  // namespace

int cmd_train_controlnet(int argc, char** argv) {
  const auto specs = join(join(config_options(), runtime_options()), kTrainOptions);
  Args args(argc, argv, 2, specs);
  if (args.has("help")) {
    std::cout << "usage: difflab-cli train-controlnet [options]\n\n"
                 "Trains a ControlNet for a trained base model: a copy of its encoder that reads\n"
                 "hints computed from each batch (--hint: canny edges, synthetic scribbles, mixed =\n"
                 "one of those two per image, hough segments, mask = filled silhouettes, distance =\n"
                 "their distance maps); the base stays frozen. Ctrl-C stops after the current step\n"
                 "and saves.\n\n"
              << format_options(specs);
    return 0;
  }
  Config config = load_cli_config(args);
  // A resumed ControlNet keeps the settings it was trained with (the config its checkpoint
  // embeds), as `train --resume` does; --set, --steps, --base and --hint still apply. A
  // missing checkpoint is reported by resume() below.
  if (args.has("resume")) {
    const std::string saved = args.get("out", config.controlnet.out_dir) + "/controlnet.pt";
    if (std::filesystem::exists(saved)) {
      if (args.has("config"))
        std::cout << "note: --config is not used with --resume: the ControlNet keeps the settings "
                     "it was trained with (--set and --steps still apply)\n";
      config = apply_overrides(read_checkpoint_info(saved, CheckpointKind::ControlNet).config,
                               args.get_all("set"));
    }
  }
  auto& cn = config.controlnet;
  if (args.has("base")) cn.base_checkpoint = args.get("base");
  // A run folder stands for its newest checkpoint.
  if (!cn.base_checkpoint.empty()) cn.base_checkpoint = checkpoint_or_newest(cn.base_checkpoint, "--base");
  if (cn.base_checkpoint.empty()) {
    cn.base_checkpoint = latest_checkpoint("runs/mnist");
    if (cn.base_checkpoint.empty())
      throw UsageError("no base model: pass --base PATH (a difflab-cli train checkpoint)");
  }
  if (args.has("hint")) {
    auto kind = parse_enum<HintKind>(args.get("hint"));
    if (!kind) throw UsageError("--hint " + args.get("hint") + ": choose one of " + enum_choices<HintKind>());
    cn.hint = *kind;
  }
  cn.steps = args.get_int64("steps", cn.steps);
  cn.out_dir = args.get("out", cn.out_dir);
  validate(config, args.get("config", "configs/mnist.yaml"));
  const auto device = setup_runtime(args, config.train.threads);
  auto data = std::make_shared<DatasetSplits>(load_dataset(config.data));
  ControlNetTrainer trainer(config, data, device);
  const auto& c = trainer.config().controlnet;
  const std::string out = c.out_dir;
  const std::string path = out + "/controlnet.pt";
  if (args.has("resume")) {
    const bool exact = trainer.resume(path);
    std::cout << "resume: " << path << " at step " << trainer.step()
              << (exact ? "" : " (weights only: fresh optimizer and RNG)") << "\n";
  } else if (std::filesystem::exists(path)) {
    throw UsageError(path + " exists: pass --resume to continue it, or another --out");
  }
  std::filesystem::create_directories(out);
  save_config(trainer.config(), out + "/config.yaml");
  std::cout << "data:   " << data->description << "\n"
            << "base:   " << c.base_checkpoint << " (frozen)\n"
            << "model:  ControlNet, " << trainer.parameter_count() << " trainable parameters, hints "
            << to_string(c.hint) << "\n"
            << "run:    " << runtime_summary(device) << "\n"
            << "output: " << path << "\n"
            << std::flush;

  MetricsLog log(out, {"loss", "test_loss", "test_loss_base", "lr", "grad_norm", "images_per_s"});
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  using Clock = std::chrono::steady_clock;
  const auto run_start = Clock::now();
  auto window_start = run_start;
  const double time_limit_s = args.get_double("time-limit", 0.0) * 60.0;
  const int64_t eval_every = args.get_int64("eval-every", 200);
  constexpr int kEvalBatches = 4;
  constexpr int64_t kLogEvery = 25;
  double window_loss = 0, window_grad = 0;
  int window_steps = 0;
  bool out_of_time = false;
  try {
    while (trainer.step() < c.steps && !g_stop) {
      if (time_limit_s > 0 &&
          std::chrono::duration<double>(Clock::now() - run_start).count() >= time_limit_s) {
        out_of_time = true;
        break;
      }
      const auto r = trainer.train_step();
      const bool evaluate = eval_every > 0 && (r.step % eval_every == 0 || r.step == c.steps);
      const bool row = r.step % kLogEvery == 0 || evaluate || r.step == c.steps;
      // Rows and evaluations hold checked steps (controlnet.loss_read_every: on CUDA the
      // loss waits on the device and is read every 16 steps).
      if (row) trainer.read_back();
      for (const auto& m : trainer.take_measured()) {
        window_loss += m.loss;
        window_grad += m.grad_norm;
        ++window_steps;
      }
      double test = std::nan(""), test_base = std::nan("");
      if (evaluate) {
        test = trainer.evaluate(kEvalBatches, 1.0);
        test_base = trainer.evaluate(kEvalBatches, 0.0);
      }
      if (row) {
        const double dt = std::chrono::duration<double>(Clock::now() - window_start).count();
        const double rate = window_steps * c.batch_size / std::max(dt, 1e-9);
        log.write(r.step, {window_loss / window_steps, test, test_base, r.lr,
                           window_grad / window_steps, rate});
        std::printf("step %lld/%lld  loss %.4f  %.1f img/s  lr %.2e", static_cast<long long>(r.step),
                    static_cast<long long>(c.steps), window_loss / window_steps, rate, r.lr);
        if (!std::isnan(test))
          std::printf("  test %.4f (base alone %.4f)", test, test_base);
        std::printf("\n");
        std::fflush(stdout);
        window_loss = window_grad = 0;
        window_steps = 0;
        window_start = Clock::now();
      }
      if (c.checkpoint_every > 0 && r.step % c.checkpoint_every == 0) trainer.save(path);
    }
    trainer.read_back();  // a stop or the time limit between two reads
  } catch (const TrainingError& e) {
    std::fprintf(stderr, "training stopped: %s\n", e.what());
    log.flush();
    if (std::filesystem::exists(path))
      std::fprintf(stderr, "the last good checkpoint is %s\n", path.c_str());
    return 3;
  }
  log.flush();
  trainer.save(path);
  const double secs = std::chrono::duration<double>(Clock::now() - run_start).count();
  std::printf("trained %lld steps in %.0f s%s\ncontrolnet: %s\n",
              static_cast<long long>(trainer.step()), secs,
              out_of_time ? " (time limit reached)" : g_stop ? " (stopped)" : "", path.c_str());
  return g_stop ? 130 : 0;
}

namespace {

const std::vector<OptionSpec> kEvalOptions = {
    {"controlnet", true, "PATH  ControlNet checkpoint (default runs/mnist_controlnet/controlnet.pt)"},
    {"base", true, "PATH  base checkpoint, if it moved since training"},
    {"n", true, "N  hints from N test images spread over the test split (default 64)", integer(1, 100000)},
    {"labels", true, "none|true  sample unconditionally (default) or with each test image's class"},
    {"control-scale", true, "S  ControlNet conditioning scale (default: controlnet.scale)", real(0, 100)},
    {"kind", true, "canny|scribble|hough|mask|distance  the hints (default: the ControlNet's kind; canny for a mixed one)"},
    {"tolerance", true, "PX  edge F1 tolerance in pixels (default 1)", integer(0, 16)},
    {"edge-scale", true, "K  canny: compare edges on K-times enlarged pictures (default 1: the model's size)", integer(1, 16)},
    {"out", true, "DIR  writes hints/with/without grids and per-image scores (default <controlnet dir>/eval, or eval_2, ... when taken)"},
    overwrite_option(),
    {"help", false, "   show this help"},
};

}  // namespace

int cmd_eval_controlnet(int argc, char** argv) {
  const auto specs = join(join(runtime_options(), kEvalOptions), sampling_options());
  Args args(argc, argv, 2, specs);
  if (args.has("help")) {
    std::cout << "usage: difflab-cli eval-controlnet [options]\n\n"
                 "For N held-out test images (evenly spaced): their hint maps of one kind as hints, samples\n"
                 "with the ControlNet and with the base model alone (same seeds and labels), and how closely\n"
                 "the same kind of map of each sample matches its hint: edge F1 at a pixel tolerance for\n"
                 "canny, scribble (skeletons) and hough; IoU of the silhouettes for mask; mean absolute\n"
                 "difference of the distance maps for distance (lower is better).\n\n"
              << format_options(specs);
    return 0;
  }
  const std::string path = args.get("controlnet", "runs/mnist_controlnet/controlnet.pt");
  const auto device = setup_runtime(args, 0);
  const auto control = load_controlnet(path, device, args.get("base"));
  ControlEvalOptions options;
  options.n = args.get_int("n", options.n);
  const std::string labels = args.get("labels", "none");
  if (labels != "none" && labels != "true") throw UsageError("--labels must be none or true");
  options.class_labels = labels == "true";
  options.scale = args.get_double("control-scale", control.config.controlnet.scale);
  options.tolerance = args.get_int("tolerance", 1);
  options.edge_scale = args.get_int("edge-scale", 1);
  if (options.edge_scale < 1 || options.edge_scale > 8) throw UsageError("--edge-scale must be in [1, 8]");
  if (args.has("kind")) {
    const auto kind = parse_enum<HintKind>(args.get("kind"));
    if (!kind || *kind == HintKind::Mixed)
      throw UsageError("--kind " + args.get("kind") + ": choose one of canny, scribble, hough, mask, distance");
    options.kind = *kind;
  }
  const HintKind kind = options.kind.value_or(control.config.controlnet.hint);
  if (options.edge_scale > 1 && kind != HintKind::Canny && kind != HintKind::Mixed)
    throw UsageError("--edge-scale applies to canny hints only");
  if (options.tolerance < 0) throw UsageError("--tolerance must be >= 0");
  options.sample = apply_sampling_options(args, control.config.sample,
                                          control.config.diffusion.timesteps);
  if (options.n < 1) throw UsageError("--n must be >= 1");
  if (!options.sample.guide_model.empty())
    throw UsageError("--guide-model: autoguidance does not combine with a ControlNet (it "
                     "guides a base model alone)");
  Config check = control.config;
  check.sample = options.sample;
  validate(check, "command line");
  // The output folder is settled before the work: the default one never replaces an
  // earlier evaluation's files (eval, eval_2, ...); a named one only with --overwrite.
  const std::string out =
      args.has("out") ? args.get("out")
                      : free_path((std::filesystem::path(path).parent_path() / "eval").string());
  for (const char* name : {"hints.png", "with_controlnet.png", "without_controlnet.png",
                           "test_images.png", "scores.csv"})
    check_output(args, "--out", out + "/" + name);
  const auto data = load_dataset(control.config.data);
  const auto r = evaluate_controlnet(control, data, options, device);

  const IfExists mode = if_exists(args);
  const int64_t n = r.hints.size(0);
  write_png(out + "/hints.png", make_grid(r.hints * 2.0 - 1.0, 8, 2, 2), mode);
  write_png(out + "/with_controlnet.png", make_grid(r.with_samples, 8, 2, 2), mode);
  write_png(out + "/without_controlnet.png", make_grid(r.without_samples, 8, 2, 2), mode);
  write_png(out + "/test_images.png", make_grid(r.images, 8, 2, 2), mode);
  const std::string key = r.metric.key;
  {
    std::ostringstream csv;
    csv << "index," << key << "_with," << key << "_without\n";
    for (int64_t i = 0; i < n; ++i)
      csv << i << "," << r.score_with[i].item<double>() << "," << r.score_without[i].item<double>() << "\n";
    write_file_atomic(out + "/scores.csv", csv.str(), mode);
  }
  const auto& sc = options.sample;
  const auto& cn = control.config.controlnet;
  char guidance_text[64];
  std::snprintf(guidance_text, sizeof guidance_text, "true labels, guidance %.1f", sc.guidance);
  char thresholds[96] = "";
  if (r.kind == HintKind::Canny || r.kind == HintKind::Hough)
    std::snprintf(thresholds, sizeof thresholds, " (canny low %.0f, high %.0f)", cn.canny_low, cn.canny_high);
  else if (!hint_is_lines(r.kind))
    std::snprintf(thresholds, sizeof thresholds, " (object above %.2f)", cn.mask_threshold);
  std::printf("ControlNet %s (step %lld, %s hints) on base %s; %lld %s hints%s from held-out "
              "test images, %s %d steps, %s, seed %llu, %dx%d, %.1f s\n",
              path.c_str(), static_cast<long long>(control.step), std::string(to_string(cn.hint)).c_str(),
              control.base_path.c_str(), static_cast<long long>(n), std::string(to_string(r.kind)).c_str(),
              thresholds, std::string(to_string(sc.sampler)).c_str(), sc.steps,
              options.class_labels ? guidance_text : "unconditional",
              static_cast<unsigned long long>(sc.seed), static_cast<int>(r.reference.size(3)),
              static_cast<int>(r.reference.size(2)), r.seconds);
  if (hint_is_lines(r.kind)) {
    std::printf("edge F1 at %d px          precision  recall   edge F1\n", options.tolerance);
    std::printf("with ControlNet  %.2f  %8.3f  %7.3f  %8.3f\n", options.scale,
                r.with_edges.precision, r.with_edges.recall, r.with_edges.f1);
    std::printf("without (base)         %8.3f  %7.3f  %8.3f\n", r.without_edges.precision,
                r.without_edges.recall, r.without_edges.f1);
  } else {
    std::printf("%-24s %8s\n", "", r.metric.name);
    std::printf("with ControlNet  %.2f  %8.3f\n", options.scale, r.with_score);
    std::printf("without (base)          %8.3f\n", r.without_score);
  }
  // The ratio reads "times better" either way: with / without, or without / with when lower is better.
  const double ratio = r.metric.higher_is_better ? r.with_score / std::max(r.without_score, 1e-9)
                                                 : r.without_score / std::max(r.with_score, 1e-9);
  std::printf("ratio %.2fx (%s %s)\n", ratio, r.metric.name,
              r.metric.higher_is_better ? "with / without" : "without / with, lower is better");
  std::printf("pictures: %s/{hints,with_controlnet,without_controlnet,test_images}.png\n", out.c_str());
  return 0;
}

}  // namespace difflab::cli

// difflab-cli train: a training run with progress, logs, sample grids and checkpoints.
#include <torch/torch.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "app/cli/common.h"
#include "app/cli/commands.h"
#include "core/data/dataset.h"
#include "core/train/metrics_log.h"
#include "core/train/trainer.h"
#include "core/util/runtime.h"
#include "core/vision/image_grid.h"

namespace difflab::cli {
namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--";
  const int s = static_cast<int>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%dh%02dm", s / 3600, (s / 60) % 60);
  else
    std::snprintf(buf, sizeof buf, "%dm%02ds", s / 60, s % 60);
  return buf;
}

// A preview grid: a few images per class (one class per column) with few DDIM steps, so
// it costs seconds, not minutes, during training.
void write_preview(Trainer& trainer, const std::string& path, bool full) {
  SampleConfig sc = trainer.config().sample;
  const int classes = trainer.model()->num_classes();
  if (!full) {
    sc.sampler = SamplerKind::Ddim;
    sc.steps = std::min(sc.steps, 20);
    sc.eta = 0.0;
    sc.n = classes > 0 ? classes * 4 : 36;
  } else if (classes > 0) {
    sc.n = std::max(sc.n, classes) / classes * classes;
  }
  sc.class_label = -1;
  if (trainer.data().shape.points) {
    sc.n = 2000;
    write_png(path, plot_points(trainer.sample(sc).images));
    return;
  }
  auto result = trainer.sample(sc);
  // Labels cycle 0..K−1, so K columns put one class in each column.
  write_png(path, make_grid(result.images, classes > 0 ? classes : 0, 2, 2));
}

const std::vector<OptionSpec> kTrainOptions = {
    {"steps", true, "N  total training steps (overrides train.steps)"},
    {"out", true, "DIR  run folder (overrides train.out_dir)"},
    {"resume", true, "latest|PATH  continue from the run's newest checkpoint or a file"},
    {"time-limit", true, "MIN  stop (checkpoint + final samples) after MIN minutes of training"},
    {"quiet", false, "   no progress bar, one line per log interval"},
    {"help", false, "   show this help"},
};

}  // namespace

int cmd_train(int argc, char** argv) {
  const auto specs = join(join(config_options(), runtime_options()), kTrainOptions);
  Args args(argc, argv, 2, specs);
  if (args.has("help")) {
    std::cout << "usage: difflab-cli train [options]\n\nTrains a diffusion model; writes "
                 "<out>/metrics.csv, <out>/tb/ (TensorBoard), <out>/samples/*.png and\n"
                 "<out>/checkpoints/step_N.pt. Ctrl-C stops after the current step and "
                 "saves a checkpoint.\n\n"
              << format_options(specs);
    return 0;
  }
  Config config = load_cli_config(args);
  if (args.has("out")) config.train.out_dir = args.get("out");
  std::string resume_path;
  if (args.has("resume")) {
    const std::string r = args.get("resume");
    resume_path = r == "latest" ? latest_checkpoint(config.train.out_dir) : r;
    if (resume_path.empty())
      throw CheckpointError("--resume latest: no checkpoint in " + config.train.out_dir +
                            "/checkpoints");
    // The run continues with the settings it was trained with; --steps may extend it.
    const std::string out_dir = config.train.out_dir;
    config = apply_overrides(read_checkpoint_info(resume_path).config, args.get_all("set"));
    config.train.out_dir = out_dir;
  }
  if (args.has("steps")) config.train.steps = args.get_int64("steps", config.train.steps);
  validate(config, "command line");

  const auto device = setup_runtime(args, config.train.threads);
  auto data = std::make_shared<DatasetSplits>(load_dataset(config.data));
  Trainer trainer(config, data, device);
  if (!resume_path.empty()) trainer.load_checkpoint(resume_path);
  const auto& c = trainer.config();
  const std::string out = c.train.out_dir;
  std::filesystem::create_directories(out + "/samples");
  save_config(c, out + "/config.yaml");

  std::cout << "data:   " << data->description << "\n"
            << "model:  " << to_string(c.model.kind) << ", " << trainer.parameter_count()
            << " parameters\n"
            << "run:    " << runtime_summary(device) << "\n"
            << "output: " << out << "\n";
  if (!resume_path.empty())
    std::cout << "resume: " << resume_path << " at step " << trainer.step() << "\n";
  std::cout << std::flush;

  // The hybrid loss also logs its parts: L_simple and the mean L_t in bits/dim.
  const bool hybrid = c.diffusion.loss == LossKind::Hybrid;
  std::vector<std::string> columns = {"loss", "test_loss", "lr", "grad_norm", "images_per_s", "epoch"};
  if (hybrid) columns.insert(columns.end(), {"loss_simple", "loss_vlb"});
  MetricsLog log(out, columns);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  const bool tty = isatty(STDOUT_FILENO) && !args.has("quiet");
  using Clock = std::chrono::steady_clock;
  auto window_start = Clock::now();
  double window_loss = 0.0, window_grad = 0.0, rate = 0.0, window_simple = 0.0, window_vlb = 0.0;
  int window_steps = 0;
  const int64_t first_step = trainer.step();
  const double time_limit_s = args.get_double("time-limit", 0.0) * 60.0;
  const auto run_start = Clock::now();
  bool out_of_time = false;
  std::string last_checkpoint;

  auto checkpoint = [&] {
    last_checkpoint = checkpoint_path(out, trainer.step());
    trainer.save_checkpoint(last_checkpoint);
    mark_latest_checkpoint(out, last_checkpoint);
  };

  try {
    while (trainer.step() < c.train.steps && !g_stop) {
      if (time_limit_s > 0 &&
          std::chrono::duration<double>(Clock::now() - run_start).count() >= time_limit_s) {
        out_of_time = true;
        break;
      }
      const StepResult r = trainer.train_step();
      window_loss += r.loss;
      window_grad += r.grad_norm;
      window_simple += r.loss_simple;
      if (hybrid) window_vlb += r.loss_vlb;
      ++window_steps;
      const int64_t s = r.step;
      double test_loss = std::nan("");
      if (c.train.eval_every > 0 && s % c.train.eval_every == 0)
        test_loss = trainer.evaluate(c.train.eval_batches);
      if (s % c.train.log_every == 0 || !std::isnan(test_loss) || s == c.train.steps) {
        const double dt = std::chrono::duration<double>(Clock::now() - window_start).count();
        rate = window_steps * c.train.batch_size / std::max(dt, 1e-9);
        const double mean_loss = window_loss / window_steps;
        std::vector<double> values = {mean_loss, test_loss, r.lr, window_grad / window_steps, rate,
                                      static_cast<double>(trainer.epoch())};
        if (hybrid) values.insert(values.end(), {window_simple / window_steps, window_vlb / window_steps});
        log.write(s, values);
        const double eta = (c.train.steps - s) * c.train.batch_size / std::max(rate, 1e-9);
        char line[256];
        std::snprintf(line, sizeof line,
                      "step %lld/%lld  loss %.4f%s  %.1f img/s  lr %.2e  ETA %s",
                      static_cast<long long>(s), static_cast<long long>(c.train.steps), mean_loss,
                      std::isnan(test_loss) ? ""
                                            : ("  test " + std::to_string(test_loss)).c_str(),
                      rate, r.lr, format_duration(eta).c_str());
        if (tty) {
          const int width = 24;
          const int filled = static_cast<int>(width * s / std::max<int64_t>(c.train.steps, 1));
          std::printf("\r[%s%s] %s\033[K", std::string(filled, '#').c_str(),
                      std::string(width - filled, '.').c_str(), line);
        } else {
          std::printf("%s\n", line);
        }
        std::fflush(stdout);
        window_loss = window_grad = window_simple = window_vlb = 0.0;
        window_steps = 0;
        window_start = Clock::now();
      }
      if (c.train.sample_every > 0 && s % c.train.sample_every == 0) {
        char name[64];
        std::snprintf(name, sizeof name, "/samples/step_%08lld.png", static_cast<long long>(s));
        write_preview(trainer, out + name, false);
      }
      if (c.train.checkpoint_every > 0 && s % c.train.checkpoint_every == 0) checkpoint();
    }
  } catch (const TrainingError& e) {
    if (tty) std::printf("\n");
    std::fprintf(stderr, "training stopped: %s\n", e.what());
    if (!last_checkpoint.empty())
      std::fprintf(stderr, "the last good checkpoint is %s\n", last_checkpoint.c_str());
    log.flush();
    return 3;
  }
  if (tty) std::printf("\n");
  log.flush();
  const double trained_s = std::chrono::duration<double>(Clock::now() - run_start).count();
  std::printf("trained %lld steps in %s%s\n", static_cast<long long>(trainer.step() - first_step),
              format_duration(trained_s).c_str(), out_of_time ? " (time limit reached)" : "");
  if (trainer.step() > first_step || last_checkpoint.empty()) checkpoint();
  std::printf("checkpoint: %s\n", last_checkpoint.c_str());
  if (g_stop) {
    std::printf("stopped at step %lld; continue with --resume latest\n",
                static_cast<long long>(trainer.step()));
    return 130;
  }
  const std::string grid = out + "/samples/final.png";
  write_preview(trainer, grid, true);
  std::printf("samples: %s\n", grid.c_str());
  return 0;
}

}  // namespace difflab::cli

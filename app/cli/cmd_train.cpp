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
#include "core/train/run_folder.h"
#include "core/train/training_run.h"
#include "core/util/runtime.h"

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

const std::vector<OptionSpec> kTrainOptions = {
    {"steps", true, "N  total training steps (overrides train.steps)", integer(0, kInt64Max)},
    {"out", true, "DIR  run folder (overrides train.out_dir)"},
    {"resume", true, "latest|PATH  continue from the run's newest checkpoint or a file"},
    {"time-limit", true, "MIN  stop (checkpoint + final samples) after MIN minutes of training", real(0, 1e7)},
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
  bool resume_in_place = false;  // the run continues in the folder that holds its checkpoint
  if (args.has("resume")) {
    const std::string r = args.get("resume");
    resume_path = r == "latest" ? latest_checkpoint(config.train.out_dir) : r;
    if (resume_path.empty())
      throw CheckpointError("--resume latest: no checkpoint in " + config.train.out_dir +
                            "/checkpoints");
    if (args.has("config"))
      std::cout << "note: --config is not used with --resume: the run keeps the settings it "
                   "was trained with (--set and --steps still apply)\n";
    // The run continues with the settings it was trained with; --set and --steps may change it.
    const std::string own_dir = run_dir_of_checkpoint(resume_path);
    const std::string out_dir =
        args.has("out") || own_dir.empty() ? config.train.out_dir : own_dir;
    config = apply_overrides(read_checkpoint_info(resume_path).config, args.get_all("set"));
    config.train.out_dir = out_dir;
    resume_in_place = !own_dir.empty() && std::filesystem::equivalent(own_dir, out_dir);
  }
  if (args.has("steps")) config.train.steps = args.get_int64("steps", config.train.steps);
  validate(config, "command line");
  // A folder that holds another run is never written into: the next free numbered one is.
  if (!resume_in_place) {
    const std::string free_dir = next_free_run_dir(config.train.out_dir);
    if (free_dir != config.train.out_dir)
      std::cout << "note: " << config.train.out_dir << " holds another run; this one goes to "
                << free_dir << "\n";
    config.train.out_dir = free_dir;
  }

  const auto device = setup_runtime(args, config.train.threads);
  auto data = std::make_shared<DatasetSplits>(load_dataset(config.data));
  auto trainer = std::make_unique<Trainer>(config, data, device);
  if (!resume_path.empty()) trainer->load_checkpoint(resume_path);
  TrainingRun run(std::move(trainer), RunOptions{config.train.out_dir, resume_in_place});
  Trainer& t = run.trainer();
  const auto& c = t.config();
  const std::string out = run.dir();

  std::cout << "data:   " << data->description << "\n"
            << "model:  " << to_string(c.model.kind) << ", " << t.parameter_count()
            << " parameters\n"
            << "run:    " << runtime_summary(device) << "\n"
            << "output: " << out << "\n";
  if (!resume_path.empty())
    std::cout << "resume: " << resume_path << " at step " << t.step() << "\n";
  std::cout << std::flush;
  // auto measures fp32 against bf16 here on first use (seconds), before the clock starts.
  std::cout << "math:   " << t.precision().reason << "\n" << std::flush;

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  const bool tty = isatty(STDOUT_FILENO) && !args.has("quiet");
  using Clock = std::chrono::steady_clock;
  const int64_t first_step = t.step();
  const double time_limit_s = args.get_double("time-limit", 0.0) * 60.0;
  const auto run_start = Clock::now();
  bool out_of_time = false;

  try {
    while (t.step() < c.train.steps && !g_stop) {
      if (time_limit_s > 0 &&
          std::chrono::duration<double>(Clock::now() - run_start).count() >= time_limit_s) {
        out_of_time = true;
        break;
      }
      const RunStepReport r = run.step();
      if (!r.logged) continue;
      const int64_t s = r.step.step;
      char line[256];
      std::snprintf(line, sizeof line,
                    "step %lld/%lld  loss %.4f%s  %.1f img/s  lr %.2e  ETA %s",
                    static_cast<long long>(s), static_cast<long long>(c.train.steps), r.window_loss,
                    std::isnan(r.test_loss) ? ""
                                            : ("  test " + std::to_string(r.test_loss)).c_str(),
                    run.images_per_s(), r.step.lr, format_duration(run.eta_s()).c_str());
      if (tty) {
        const int width = 24;
        const int filled = static_cast<int>(width * s / std::max<int64_t>(c.train.steps, 1));
        std::printf("\r[%s%s] %s\033[K", std::string(filled, '#').c_str(),
                    std::string(width - filled, '.').c_str(), line);
      } else {
        std::printf("%s\n", line);
      }
      std::fflush(stdout);
    }
  } catch (const TrainingError& e) {
    if (tty) std::printf("\n");
    std::fprintf(stderr, "training stopped: %s\n", e.what());
    if (!run.saved_path().empty())
      std::fprintf(stderr, "the last good checkpoint is %s\n", run.saved_path().c_str());
    return 3;
  }
  if (tty) std::printf("\n");
  run.flush();
  const double trained_s = std::chrono::duration<double>(Clock::now() - run_start).count();
  std::printf("trained %lld steps in %s%s\n", static_cast<long long>(t.step() - first_step),
              format_duration(trained_s).c_str(), out_of_time ? " (time limit reached)" : "");
  if (run.unsaved_steps() > 0 || run.saved_path().empty()) run.checkpoint();
  std::printf("checkpoint: %s\n", run.saved_path().c_str());
  if (g_stop) {
    std::printf("stopped at step %lld; continue with --resume latest --out %s\n",
                static_cast<long long>(t.step()), out.c_str());
    return 130;
  }
  const std::string grid = out + "/samples/final.png";
  run.preview(true, grid);
  std::printf("samples: %s\n", grid.c_str());
  return 0;
}

}  // namespace difflab::cli

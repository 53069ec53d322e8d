// difflab-cli train: a training run with progress, logs, sample grids and checkpoints.
#include <sys/prctl.h>
#include <torch/torch.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <iostream>

#include "app/cli/common.h"
#include "app/cli/commands.h"
#include "app/cli/launch.h"
#include "core/data/dataset.h"
#include "core/train/distributed.h"
#include "core/train/export.h"
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
    {"nproc", true, "N  data-parallel: start N ranks on this machine (each trains train.batch_size "
                    "images a step; also launched as torchrun launches, from RANK, WORLD_SIZE, "
                    "MASTER_ADDR, MASTER_PORT)", integer(1, 1024)},
    {"dist-timeout", true, "SEC  data-parallel: how long a rank waits for the others (default 600)",
     real(1, 1e6)},
    {"help", false, "   show this help"},
};

// What to train and where: the config (with --resume, the checkpoint's own), the
// checkpoint to continue from, and a run folder that holds no other run.
struct TrainPlan {
  Config config;
  std::string resume_path;
  bool resume_in_place = false;  // the run continues in the folder that holds its checkpoint
};

TrainPlan plan_run(const Args& args) {
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
    if (!exported_precision(resume_path).empty())
      throw CheckpointError(resume_path + " is an exported copy (difflab-cli export: EMA weights "
                            "only, no optimizer or data position), so a run cannot continue "
                            "from it; train a new run");
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

  return TrainPlan{config, resume_path, resume_in_place};
}

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
  if (args.get_int("nproc", 1) > 1) {
    if (dist_env_from_environment())
      throw UsageError("--nproc: this process is already one rank of a run (RANK and "
                       "WORLD_SIZE are set); start it without --nproc");
    return launch_local_ranks(argc, argv, args.get_int("nproc", 1));
  }
  const auto env = dist_env_from_environment();
  if (const char* launcher = std::getenv("DIFFLAB_LAUNCHER_PID"); launcher && env) {
    // Started by --nproc: end with the launcher, even when it is killed outright.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (std::to_string(getppid()) != launcher) return 1;  // it is gone already
  }
  std::shared_ptr<Distributed> dist;
  TrainPlan plan;
  c10::Device device = c10::kCPU;
  // Another rank's copy of the resume checkpoint: removed once loaded, or on any error.
  struct RemovedAtExit {
    std::string path;
    void remove() {
      std::error_code ec;
      if (!path.empty()) std::filesystem::remove(path, ec);
      path.clear();
    }
    ~RemovedAtExit() { remove(); }
  } own_copy;
  if (!env || env->world_size == 1) {
    plan = plan_run(args);
    device = setup_runtime(args, plan.config.train.threads);
  } else {
    // Rendezvous first, so that a rank that cannot start is seen by the others at once.
    device = setup_runtime(args, load_cli_config(args).train.threads);
    // One GPU a rank on a machine with several (LOCAL_RANK), as torchrun runs are laid out.
    if (device.is_cuda() && torch::cuda::device_count() > 1)
      device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(
                                           env->local_rank % torch::cuda::device_count()));
    std::string why;
    if (!distributed_available(device, &why)) throw DistributedError(why);
    const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(
        args.get_double("dist-timeout", static_cast<double>(kDefaultDistTimeout.count())) * 1000));
    dist = std::make_shared<Distributed>(*env, device, timeout);
    // Rank 0 plans the run (folder, resume, config) and hands the config, and the checkpoint
    // to resume from, to the others: they need no access to its run folder.
    std::exception_ptr failed;
    if (dist->is_main()) {
      try {
        plan = plan_run(args);
      } catch (...) {
        failed = std::current_exception();
      }
    }
    const std::string yaml =
        dist->broadcast_bytes(failed ? "" : dist->is_main() ? config_to_yaml(plan.config) : "");
    if (failed) std::rethrow_exception(failed);
    if (yaml.empty()) return 1;  // rank 0 said why
    if (!dist->is_main()) plan.config = config_from_yaml(yaml, "rank 0's config");
    if (dist->any(!plan.resume_path.empty())) {
      std::string bytes, read_why;
      const bool unreadable = dist->is_main() && !read_file(plan.resume_path, &bytes, &read_why);
      // Empty bytes tell the others that rank 0 could not read it (rank 0 says why).
      bytes = dist->broadcast_bytes(unreadable ? "" : bytes);
      if (unreadable) throw CheckpointError("cannot read " + plan.resume_path + ": " + read_why);
      if (bytes.empty()) return 1;
      if (!dist->is_main()) {
        own_copy.path = (std::filesystem::temp_directory_path() /
                         ("difflab-rank" + std::to_string(dist->rank()) + "-" +
                          std::to_string(getpid()) + ".pt"))
                            .string();
        write_file_atomic(own_copy.path, bytes);
        plan.resume_path = own_copy.path;
      }
    }
  }
  const Config& config = plan.config;
  auto data = std::make_shared<DatasetSplits>(load_dataset(config.data));
  auto trainer = std::make_unique<Trainer>(config, data, device, dist);
  if (!plan.resume_path.empty()) trainer->load_checkpoint(plan.resume_path);
  own_copy.remove();

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  using Clock = std::chrono::steady_clock;
  const double time_limit_s = args.get_double("time-limit", 0.0) * 60.0;
  // Whether to stop before the next step: Ctrl-C or the time limit here, or on any rank
  // (every rank must take the same steps).
  auto should_stop = [&](Clock::time_point start) {
    const bool here = g_stop || (time_limit_s > 0 && std::chrono::duration<double>(
                                                         Clock::now() - start)
                                                             .count() >= time_limit_s);
    return dist ? dist->any(here) : here;
  };

  if (dist && !dist->is_main()) {
    // The other ranks train and nothing else: rank 0 writes every file and line.
    Trainer& t = *trainer;
    const std::string who = "rank " + std::to_string(dist->rank()) + ": ";
    try {
      t.precision();  // rank 0 measures and decides (a collective)
      const auto start = Clock::now();
      bool stopped = false;
      while (t.step() < config.train.steps) {
        if (should_stop(start)) {
          stopped = true;
          break;
        }
        t.train_step();
      }
      // As rank 0 does: asks whether it was Ctrl-C only after an early stop.
      return stopped && dist->any(g_stop) ? 130 : 0;
    } catch (const TrainingError&) {
      return 3;  // rank 0 reports it
    } catch (const DistributedError& e) {
      std::fprintf(stderr, "%s%s\n", who.c_str(), e.what());
      return 4;
    }
  }

  TrainingRun run(std::move(trainer), RunOptions{config.train.out_dir, plan.resume_in_place});
  Trainer& t = run.trainer();
  const auto& c = t.config();
  const std::string out = run.dir();

  std::cout << "data:   " << data->description << "\n"
            << "model:  " << to_string(c.model.kind) << ", " << t.parameter_count()
            << " parameters\n"
            << "run:    " << runtime_summary(device) << "\n";
  if (dist)
    std::cout << "ranks:  " << dist->world_size() << " (" << dist->backend() << "), global batch "
              << c.train.batch_size * dist->world_size() << " = " << c.train.batch_size << " x "
              << dist->world_size() << "\n";
  std::cout << "output: " << out << "\n";
  if (!plan.resume_path.empty())
    std::cout << "resume: " << plan.resume_path << " at step " << t.step() << "\n";
  std::cout << std::flush;
  const bool tty = isatty(STDOUT_FILENO) && !args.has("quiet");
  const int64_t first_step = t.step();
  double allreduce_s = 0.0;  // since the last log line
  int allreduce_steps = 0;
  Clock::time_point run_start;
  bool out_of_time = false, stopped = false;

  try {
    // auto measures fp32 against bf16 here on first use (seconds), before the clock starts.
    std::cout << "math:   " << t.precision().reason << "\n" << std::flush;
    run_start = Clock::now();
    while (t.step() < c.train.steps) {
      if (should_stop(run_start)) {
        stopped = true;
        break;
      }
      const RunStepReport r = run.step();
      allreduce_s += r.step.allreduce_s;
      ++allreduce_steps;
      if (!r.logged) continue;
      const int64_t s = r.step.step;
      char reduce[48] = "";
      if (dist)
        std::snprintf(reduce, sizeof reduce, "  all-reduce %.1f ms/step",
                      1000.0 * allreduce_s / std::max(1, allreduce_steps));
      allreduce_s = 0.0;
      allreduce_steps = 0;
      char line[320];
      std::snprintf(line, sizeof line,
                    "step %lld/%lld  loss %.4f%s  %.1f img/s%s  lr %.2e  ETA %s",
                    static_cast<long long>(s), static_cast<long long>(c.train.steps), r.window_loss,
                    std::isnan(r.test_loss) ? ""
                                            : ("  test " + std::to_string(r.test_loss)).c_str(),
                    run.images_per_s(), reduce, r.step.lr,
                    format_duration(run.eta_s()).c_str());
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
    // Steps whose losses still wait on the device (deferred read-back) are checked before
    // anything is counted or saved.
    run.read_back();
    // Whether it was Ctrl-C (anywhere) or the time limit: one more collective, all ranks.
    if (stopped) out_of_time = !(dist ? dist->any(g_stop) : static_cast<bool>(g_stop));
  } catch (const TrainingError& e) {
    if (tty) std::printf("\n");
    std::fprintf(stderr, "training stopped: %s\n", e.what());
    if (!run.saved_path().empty())
      std::fprintf(stderr, "the last good checkpoint is %s\n", run.saved_path().c_str());
    return 3;
  } catch (const DistributedError& e) {
    // Another rank is gone. The weights are those of the last step every rank finished:
    // keep them.
    if (tty) std::printf("\n");
    std::fprintf(stderr, "training stopped: %s\n", e.what());
    run.flush();
    if (t.step() > first_step && run.unsaved_steps() > 0) run.checkpoint();
    if (!run.saved_path().empty())
      std::fprintf(stderr, "the last step all ranks finished is saved: %s; continue with "
                           "--resume latest --out %s\n",
                   run.saved_path().c_str(), out.c_str());
    return 4;
  }
  if (tty) std::printf("\n");
  run.flush();
  const double trained_s = std::chrono::duration<double>(Clock::now() - run_start).count();
  std::printf("trained %lld steps in %s%s\n", static_cast<long long>(t.step() - first_step),
              format_duration(trained_s).c_str(), out_of_time ? " (time limit reached)" : "");
  if (run.unsaved_steps() > 0 || run.saved_path().empty()) run.checkpoint();
  std::printf("checkpoint: %s\n", run.saved_path().c_str());
  if (stopped && !out_of_time) {
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

// Command line of the `difflab` GUI, including the automation hooks used by the tests:
//
//   difflab [--config PATH] [--set section.key=value ...] [--runs DIR]
//           [--script smoke] [--frames N] [--screenshot PATH] [--bench-frames N]
//           [--print-layout] [--exit-when-step N] [--timeout S]
//           [--ini PATH|none] [--size WxH] [--threads N] [--device auto|cpu|cuda]
//           [--no-autoload] [--starter auto|none|PATH]
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config/config.h"

namespace difflab {

struct AppOptions {
  std::string config_path = "configs/mnist.yaml";
  std::vector<std::string> overrides;  // "section.key=value"
  std::string runs_root;               // --runs: where run folders go ("" = beside train.out_dir)
  std::string script;                  // "", "smoke" or "demo"
  std::string checkpoint;              // --checkpoint: for --script demo
  int64_t evaluate = 0;                // --evaluate N: the demo also scores N samples
  int64_t frames = 0;                  // exit after this many frames (0 = run until closed)
  std::string screenshot;              // PNG written before exiting (script or --frames)
  int64_t bench_frames = 0;            // frame-time benchmark while training
  bool print_layout = false;           // print widget rectangles and status changes
  int64_t exit_when_step = -1;         // exit 0 once training reaches this step
  bool exit_when_sampled = false;      // exit 0 (with --screenshot) after a sampling run ends
  std::string controlnet;              // --controlnet: load it at start-up, open its panel
  double timeout_s = 900.0;            // automation gives up (exit 1) after this long
  std::string ini = "default";         // imgui.ini path, "none", or "default"
  int width = 1280, height = 800;
  int threads = 0;                     // 0 = all cores
  int worker_nice = 5;                 // the worker's threads run this much nicer
  // While the worker is busy and the user does nothing, redraw this often: progress
  // moves about once a training step (~1 s here), and each software-rendered frame
  // takes CPU from training.
  double busy_redraw_s = 0.5;
  std::string device = "auto";
  bool autoload = true;                // load the config's dataset at start-up
  // The model loaded at start-up: "auto" = the starter model of the default dataset
  // (assets/starters/, core/train/export.h) when the app starts as a new user starts it
  // (no --config, --set or script, and no earlier run to resume); "none"; or a checkpoint.
  std::string starter = "auto";
  bool config_given = false;           // --config or --set was on the command line
  bool help = false;

  bool automated() const {
    return !script.empty() || frames > 0 || bench_frames > 0 || exit_when_step >= 0 ||
           exit_when_sampled;
  }
};

// Throws std::invalid_argument with a message naming the bad argument.
AppOptions parse_app_options(int argc, char** argv);
std::string app_usage();


// Where ImGui keeps the layout: $XDG_CONFIG_HOME/difflab/imgui.ini, else
// ~/.config/difflab/imgui.ini; empty when neither can be made.
std::string default_ini_path();

}  // namespace difflab

#include "app/gui/app_options.h"

#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <limits>
#include <stdexcept>

#include "core/util/runtime.h"

namespace difflab {

namespace {

// Frames drawn before a --screenshot given without --script or --frames (about 2 s).
constexpr int64_t kDefaultScreenshotFrames = 100;

// A finite number within [lo, hi]; CLI11's Range lets NaN through.
CLI::Validator finite_in(double lo, double hi) {
  return CLI::Validator(
      [lo, hi](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (text.empty() || *end != '\0' || !std::isfinite(v))
          return "'" + text + "' is not a finite number";
        if (v < lo || v > hi) return "'" + text + "' is out of range";
        return {};
      },
      "NUMBER");
}

}  // namespace

std::string app_usage() {
  return R"(difflab: Diffusion Lab, an interactive GUI for training and sampling diffusion models.

usage: difflab [options]
  --config PATH         YAML config to start from (default configs/mnist.yaml)
  --set S.KEY=VALUE     override one config value, e.g. --set train.steps=20 (repeatable)
  --runs DIR            where each new model's run folder goes (DIR/<dataset>-YYYY-MM-DD-N)
                        and the last run is remembered (default: the parent of train.out_dir)
  --ini PATH|none       where the panel layout is kept
                        (default ~/.config/difflab/imgui.ini; none when automated)
  --size WxH            window size (default 1280x800)
  --threads N           LibTorch threads for the worker (default: all cores)
  --worker-nice N       run the worker's threads N nicer than the window (0..19,
                        default 5), so drawing never waits behind training
  --busy-redraw-ms N    while training or sampling with no input, redraw every N ms
                        (default 500)
  --device D            auto | cpu | cuda
  --no-autoload         do not load the dataset at start-up
  --controlnet PATH     load a ControlNet (difflab-cli train-controlnet) at start-up and
                        open the ControlNet panel
  --starter auto|none|PATH
                        the model loaded at start-up: auto (default) loads the starter
                        model shipped for the dataset (assets/starters/) when the app starts
                        plainly (no --config, --set, --controlnet, --no-autoload or script,
                        no earlier run); none; or a checkpoint

automation (tests):
  --script smoke        load data, train a few steps, stop, sample DDIM 10 steps n=16,
                        move the scrubber to the middle frame, then exit 0 (1 on error)
  --script demo --checkpoint PATH
                        load a checkpoint, sample DDIM 50 steps n=40, scrub to 60 %
  --evaluate N          (demo) first press Evaluate with N samples
  --frames N            exit after N frames
  --screenshot PATH     write a PNG of the window before exiting (after --script or
                        --frames; alone: after 100 frames)
  --bench-frames N      train and report GUI frame times (p50/p99/max) over N frames
  --print-layout        print "layout NAME x y w h enabled=0|1" for named buttons and
                        "status ..." lines when the worker's status changes
  --exit-when-step N    exit 0 once training has reached step N
  --exit-when-sampled   exit 0 once a sampling run has finished (with --screenshot: after it)
  --timeout S           automation fails after S seconds (default 900)
)";
}

AppOptions parse_app_options(int argc, char** argv) {
  AppOptions o;
  CLI::App app;
  app.set_help_flag();  // app_usage() is the help
  app.allow_extras(false);
  int64_t busy_redraw_ms = 500;
  std::string size;
  app.add_flag("-h,--help", o.help);
  CLI::Option* config_option = app.add_option("--config", o.config_path);
  app.add_option("--set", o.overrides)->type_size(1)->allow_extra_args(false);
  app.add_option("--runs", o.runs_root);
  app.add_option("--script", o.script)->check(CLI::IsMember({"smoke", "demo"}));
  app.add_option("--evaluate", o.evaluate)->check(CLI::Range(int64_t{1}, int64_t{1000000}));
  app.add_option("--checkpoint", o.checkpoint);
  app.add_option("--frames", o.frames)->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  app.add_option("--screenshot", o.screenshot);
  app.add_option("--bench-frames", o.bench_frames)->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  app.add_flag("--print-layout", o.print_layout);
  app.add_option("--exit-when-step", o.exit_when_step)
      ->check(CLI::Range(int64_t{0}, std::numeric_limits<int64_t>::max()));
  app.add_flag("--exit-when-sampled", o.exit_when_sampled);
  app.add_option("--controlnet", o.controlnet);
  app.add_option("--timeout", o.timeout_s)->check(finite_in(0.0, 1e7));
  app.add_option("--ini", o.ini);
  app.add_option("--size", size);
  app.add_option("--threads", o.threads)->check(CLI::Range(0, max_threads()));
  app.add_option("--worker-nice", o.worker_nice)->check(CLI::Range(0, 19));
  app.add_option("--busy-redraw-ms", busy_redraw_ms)->check(CLI::Range(int64_t{1}, int64_t{60000}));
  app.add_option("--device", o.device)->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  app.add_flag("--no-autoload{false}", o.autoload);
  app.add_option("--starter", o.starter);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    throw std::invalid_argument(std::string(e.what()) + " (see --help)");
  }
  o.busy_redraw_s = static_cast<double>(busy_redraw_ms) / 1000.0;
  o.config_given = config_option->count() > 0 || !o.overrides.empty();
  if (!size.empty()) {
    const size_t x = size.find('x');
    int64_t w = 0;
    int64_t h = 0;
    if (x == std::string::npos || !CLI::detail::lexical_cast(size.substr(0, x), w) ||
        !CLI::detail::lexical_cast(size.substr(x + 1), h) || w > 16384 || h > 16384)
      throw std::invalid_argument("--size: expected WxH (up to 16384x16384), got '" + size + "'");
    o.width = static_cast<int>(w);
    o.height = static_cast<int>(h);
  }
  // A screenshot alone: take it once the start-up (dataset load) has had time to show.
  if (!o.screenshot.empty() && o.script.empty() && o.frames <= 0 && o.bench_frames <= 0 &&
      !o.exit_when_sampled && o.exit_when_step < 0)
    o.frames = kDefaultScreenshotFrames;
  if (o.width < 320 || o.height < 240) throw std::invalid_argument("--size: at least 320x240");
  return o;
}

std::string default_ini_path() {
  namespace fs = std::filesystem;
  fs::path dir;
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg)
    dir = fs::path(xdg) / "difflab";
  else if (const char* home = std::getenv("HOME"); home && *home)
    dir = fs::path(home) / ".config" / "difflab";
  else
    return {};
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return {};
  return (dir / "imgui.ini").string();
}

}  // namespace difflab

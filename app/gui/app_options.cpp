#include "app/gui/app_options.h"


#include <cstdlib>
#include <exception>
#include <filesystem>
#include <stdexcept>

namespace difflab {

namespace {

// Frames drawn before a --screenshot given without --script or --frames (about 2 s).
constexpr int64_t kDefaultScreenshotFrames = 100;

int64_t to_int(const std::string& flag, const std::string& value) {
  try {
    size_t used = 0;
    const long long v = std::stoll(value, &used);
    if (used == value.size()) return v;
  } catch (const std::exception&) {
  }
  throw std::invalid_argument(flag + ": expected an integer, got '" + value + "'");
}

double to_double(const std::string& flag, const std::string& value) {
  try {
    size_t used = 0;
    const double v = std::stod(value, &used);
    if (used == value.size()) return v;
  } catch (const std::exception&) {
  }
  throw std::invalid_argument(flag + ": expected a number, got '" + value + "'");
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
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(arg + ": missing value");
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") o.help = true;
    else if (arg == "--config") o.config_path = value();
    else if (arg == "--set") o.overrides.push_back(value());
    else if (arg == "--runs") o.runs_root = value();
    else if (arg == "--script") {
      o.script = value();
      if (o.script != "smoke" && o.script != "demo")
        throw std::invalid_argument("--script: unknown script '" + o.script + "' (known: smoke, demo)");
    } else if (arg == "--evaluate") {
      o.evaluate = to_int(arg, value());
    } else if (arg == "--checkpoint") {
      o.checkpoint = value();
    } else if (arg == "--frames") o.frames = to_int(arg, value());
    else if (arg == "--screenshot") o.screenshot = value();
    else if (arg == "--bench-frames") o.bench_frames = to_int(arg, value());
    else if (arg == "--print-layout") o.print_layout = true;
    else if (arg == "--exit-when-step") o.exit_when_step = to_int(arg, value());
    else if (arg == "--exit-when-sampled") o.exit_when_sampled = true;
    else if (arg == "--controlnet") o.controlnet = value();
    else if (arg == "--timeout") o.timeout_s = to_double(arg, value());
    else if (arg == "--ini") o.ini = value();
    else if (arg == "--size") {
      const std::string v = value();
      const size_t x = v.find('x');
      if (x == std::string::npos) throw std::invalid_argument("--size: expected WxH, got '" + v + "'");
      o.width = static_cast<int>(to_int(arg, v.substr(0, x)));
      o.height = static_cast<int>(to_int(arg, v.substr(x + 1)));
    } else if (arg == "--threads") o.threads = static_cast<int>(to_int(arg, value()));
    else if (arg == "--worker-nice") o.worker_nice = static_cast<int>(to_int(arg, value()));
    else if (arg == "--busy-redraw-ms") o.busy_redraw_s = static_cast<double>(to_int(arg, value())) / 1000.0;
    else if (arg == "--device") o.device = value();
    else if (arg == "--no-autoload") o.autoload = false;
    else throw std::invalid_argument("unknown argument '" + arg + "' (see --help)");
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

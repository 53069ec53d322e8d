// difflab: the Diffusion Lab GUI. See app_options.h for the command line.
#include <cstdio>
#include <exception>
#include <stdexcept>

#include "app/gui/app.h"
#include "app/gui/app_options.h"
#include "core/util/paths.h"
#include "core/util/runtime.h"

int main(int argc, char** argv) {
  using namespace difflab;
  configure_allocator();  // before anything allocates much (core/util/runtime.h)
  // The BLAS and ATen kernels of this CPU, as difflab-cli (re-executes once if it sets any).
  ensure_blas_environment(argc, argv);
  AppOptions options;
  try {
    options = parse_app_options(argc, argv);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "difflab: %s\n", e.what());
    return 2;
  }
  if (options.help) {
    std::printf("%s", app_usage().c_str());
    return 0;
  }
  Config config;
  try {
    config = apply_overrides(load_config(resolve_path(options.config_path)), options.overrides);
    validate(config, options.config_path);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "difflab: %s\n", e.what());
    return 2;
  }
  try {
    App app(options, config);
    return app.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "difflab: %s\n", e.what());
    return 1;
  }
}

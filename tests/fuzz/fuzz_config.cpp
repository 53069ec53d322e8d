// YAML config reader (config_from_yaml: yaml-cpp, the section and key checks, validate).
// A config that loads must also survive what a checkpoint does with it: saved with
// config_to_yaml, it loads again to the same config.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/config/config.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::string source = "fuzz.yaml";
  difflab::fuzz::expect_clean(source, [&] {
    const difflab::Config config = difflab::config_from_yaml(text, source);
    const std::string saved = difflab::config_to_yaml(config);
    std::string again;
    try {
      again = difflab::config_to_yaml(difflab::config_from_yaml(saved, "saved.yaml"));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "fuzz: a loaded config does not load once saved: %s\n%s\n", e.what(),
                   saved.c_str());
      std::abort();
    }
    if (again != saved) {
      std::fprintf(stderr, "fuzz: a config changes when saved and loaded:\n%s\n---\n%s\n",
                   saved.c_str(), again.c_str());
      std::abort();
    }
  });
  return 0;
}

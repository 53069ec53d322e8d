// Google Benchmark micro-benchmarks of the torch-free core: schedule tables and IDX
// parsing. The model-level figures come from `difflab-cli bench`.
#include <benchmark/benchmark.h>

#include <filesystem>

#include "core/data/image_set.h"
#include "core/schedule/noise_schedule.h"

namespace {

void BM_ScheduleCosine1000(benchmark::State& state) {
  for (auto _ : state) {
    auto s = difflab::NoiseSchedule::named(difflab::ScheduleKind::Cosine, 1000);
    benchmark::DoNotOptimize(s.posterior_mean_coef1().data());
  }
}
BENCHMARK(BM_ScheduleCosine1000);

void BM_Respace1000To50(benchmark::State& state) {
  auto s = difflab::NoiseSchedule::named(difflab::ScheduleKind::Linear, 1000);
  for (auto _ : state) {
    auto r = s.respaced(50);
    benchmark::DoNotOptimize(r.betas().data());
  }
}
BENCHMARK(BM_Respace1000To50);

// Reading 10,000 28×28 images through the IDX reader (written once to /tmp).
void BM_ReadIdx10k(benchmark::State& state) {
  const std::string dir = std::filesystem::temp_directory_path() / "difflab_bench_idx";
  difflab::ImageSet set;
  set.n = 10000;
  set.height = set.width = 28;
  set.pixels.assign(static_cast<size_t>(set.n) * 784, 7);
  set.labels.assign(set.n, 3);
  std::filesystem::create_directories(dir);
  difflab::write_idx_images(dir + "/images", set);
  difflab::write_idx_labels(dir + "/labels", set.labels);
  for (auto _ : state) {
    auto read = difflab::read_idx(dir + "/images", dir + "/labels");
    benchmark::DoNotOptimize(read.pixels.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(set.pixels.size()));
}
BENCHMARK(BM_ReadIdx10k);

}  // namespace

BENCHMARK_MAIN();

#include "core/util/runtime.h"

#include <torch/torch.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace difflab {
namespace {

std::set<std::string> split_flags(const std::string& flags) {
  std::istringstream words(flags);
  std::set<std::string> have;
  std::string w;
  while (words >> w) have.insert(w);
  return have;
}

// The feature flags of /proc/cpuinfo's first CPU (x86 "flags : fpu vme ...", Arm
// "Features : fp asimd ... bf16"), read once; empty where there is no such line.
const std::set<std::string>& cpu_flags() {
  static const std::set<std::string> flags = [] {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("flags", 0) != 0 && line.rfind("Features", 0) != 0) continue;
      const auto colon = line.find(':');
      if (colon != std::string::npos) return split_flags(line.substr(colon + 1));
    }
    return std::set<std::string>();
  }();
  return flags;
}

bool cpu_has_flag(const std::string& flag) { return cpu_flags().count(flag) > 0; }

std::string isa_tag(const std::set<std::string>& have) {
  const auto has = [&](const char* f) { return have.count(f) > 0; };
  if (has("amx_bf16")) return "amx_bf16";
  if (has("avx512_bf16")) return "avx512_bf16";
  if (has("avx512f")) return "avx512";
  if (has("avx2")) return "avx2";
  if (has("sse2")) return "sse";
  if (has("bf16")) return "bf16";  // Arm: BFDOT/BFMMLA
  if (has("asimd")) return "neon";
  return "";
}

}  // namespace

std::string cpu_model_name() {
  static const std::string name = [] {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("model name", 0) != 0) continue;
      const auto colon = line.find(':');
      const auto first = colon == std::string::npos ? colon : line.find_first_not_of(" \t", colon + 1);
      if (first != std::string::npos) return line.substr(first);
    }
    return std::string("unknown CPU");
  }();
  return name;
}

std::string cpu_isa_tag_from_flags(const std::string& flags) { return isa_tag(split_flags(flags)); }

std::string cpu_isa_tag() {
  static const std::string tag = isa_tag(cpu_flags());
  return tag;
}

CpuBf16 cpu_bf16_from_tag(const std::string& isa_tag) {
  if (isa_tag.empty()) return CpuBf16::Unknown;
  if (isa_tag == "amx_bf16" || isa_tag == "avx512_bf16" || isa_tag == "bf16") return CpuBf16::Native;
  return CpuBf16::Emulated;
}

CpuBf16 cpu_bf16() {
  // DIFFLAB_CPU_BF16=native|emulated overrides what the flags say (read on every call):
  // to time bf16 on a CPU without it anyway, and for the tests.
  if (const char* v = std::getenv("DIFFLAB_CPU_BF16"); v && *v) {
    const std::string s(v);
    if (s == "native") return CpuBf16::Native;
    if (s == "emulated") return CpuBf16::Emulated;
  }
  return cpu_bf16_from_tag(cpu_isa_tag());
}

void ensure_blas_environment(int argc, char** argv) {
  (void)argc;
  if (std::getenv("DIFFLAB_BLAS_ENV_SET")) return;  // already re-executed once
  bool changed = false;
  if (!std::getenv("OPENBLAS_NUM_THREADS")) {
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    changed = true;
  }
  const bool avx512 = cpu_has_flag("avx512f") && cpu_has_flag("avx512bw") &&
                      cpu_has_flag("avx512vl") && cpu_has_flag("avx512dq");
  if (!std::getenv("OPENBLAS_CORETYPE") && avx512) {
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
    changed = true;
  }
  // libgomp's threads spin at every barrier by default. When anything else wants a core
  // (the GUI drawing, a compiler, a browser), a spinning thread holds its core while its
  // partner waits to be scheduled, and each of the hundreds of parallel regions in a
  // training step stalls: measured 4-6 img/s spinning against 21-56 img/s passive with a
  // build running beside it. Passive threads sleep, so the waiting one can take the core.
  if (!std::getenv("OMP_WAIT_POLICY")) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    changed = true;
  }
  // Debian's LibTorch ships AVX-512 ATen kernels but picks AVX2 unless told otherwise.
  if (!std::getenv("ATEN_CPU_CAPABILITY") && avx512) setenv("ATEN_CPU_CAPABILITY", "avx512", 1);
  if (!changed) return;
  setenv("DIFFLAB_BLAS_ENV_SET", "1", 1);
  execv("/proc/self/exe", argv);
  // execv only returns on failure: carry on with the settings we have.
}

bool configure_allocator() {
#if defined(__GLIBC__)
  // A setting the user made through the environment wins (MALLOC_*_ or GLIBC_TUNABLES).
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") || std::getenv("MALLOC_TRIM_THRESHOLD_") ||
      std::getenv("GLIBC_TUNABLES"))
    return true;
  // 32 MiB is the most glibc accepts for M_MMAP_THRESHOLD on 64-bit (HEAP_MAX_SIZE / 2).
  const bool mmap_ok = mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024) == 1;
  // Never give the top of the heap back (the process keeps its high-water mark).
  const bool trim_ok = mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max()) == 1;
  return mmap_ok && trim_ok;
#else
  return false;
#endif
}

int max_threads() {
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  return std::max(8, 4 * std::max(cores, 1));
}

int configure_threads(int threads, int reserve) {
  int n = std::min(threads, max_threads());
  if (n <= 0) {
    const int cores = static_cast<int>(std::thread::hardware_concurrency());
    n = std::max(1, (cores > 0 ? cores : 1) - reserve);
  }
  torch::set_num_threads(n);
  return n;
}

bool lower_thread_priority(int nice) {
  if (nice <= 0) return true;
#ifdef __linux__
  const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
  errno = 0;
  const int current = ::getpriority(PRIO_PROCESS, tid);
  if (errno != 0) return false;
  return ::setpriority(PRIO_PROCESS, tid, std::min(current + nice, 19)) == 0;
#else
  return false;
#endif
}

c10::Device choose_device(const std::string& request) {
  if (request == "cpu") return torch::kCPU;
  const bool cuda = torch::cuda::is_available();
  if (request == "cuda") {
    if (!cuda) throw std::runtime_error("device cuda requested, but no CUDA GPU is available to LibTorch");
    return torch::kCUDA;
  }
  if (request != "auto") throw std::runtime_error("unknown device '" + request + "' (auto, cpu, cuda)");
  return cuda ? c10::Device(torch::kCUDA) : c10::Device(torch::kCPU);
}

std::string runtime_summary(c10::Device device) {
  std::ostringstream s;
  const char* core = std::getenv("OPENBLAS_CORETYPE");
  const char* aten = std::getenv("ATEN_CPU_CAPABILITY");
  const char* wait = std::getenv("OMP_WAIT_POLICY");
  s << "LibTorch " << TORCH_VERSION << ", device " << device.str() << ", "
    << torch::get_num_threads() << " threads, OPENBLAS_CORETYPE=" << (core ? core : "(auto)")
    << ", ATEN_CPU_CAPABILITY=" << (aten ? aten : "(auto)") << ", OMP_WAIT_POLICY=" << (wait ? wait : "(default)");
  if (!device.is_cuda())
    s << ", CPU " << cpu_model_name() << " (" << (cpu_isa_tag().empty() ? "?" : cpu_isa_tag()) << ")";
  return s.str();
}

}  // namespace difflab

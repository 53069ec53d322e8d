// Process-wide runtime set-up: BLAS environment, LibTorch threads, device choice.
#pragma once

#include <c10/core/Device.h>

#include <string>

namespace difflab {

// OpenBLAS reads its settings when the library loads, before main(). On a CPU with
// AVX-512 that OpenBLAS 0.3.21 does not recognise it falls back to slow SSE3 kernels,
// and its own thread pool fights LibTorch's. Call first thing in main(): if
// OPENBLAS_CORETYPE / OPENBLAS_NUM_THREADS are unset it sets them (SkylakeX when the
// CPU has avx512f, and 1 thread) and re-executes the program once. Returns normally
// when nothing needs changing (or re-exec failed). It also asks ATen for its AVX-512
// kernels (ATEN_CPU_CAPABILITY=avx512), which Debian's build has but does not pick, and
// OpenMP for passive waiting (OMP_WAIT_POLICY=PASSIVE) unless the caller set a policy.
void ensure_blas_environment(int argc, char** argv);

// glibc's malloc serves blocks over 128 KiB-32 MiB (its threshold moves) with mmap and
// hands them back to the kernel on free, and trims the top of the heap past 128 KiB free:
// a training step's tensors are then faulted in afresh every step (22 % of a training
// run's CPU time in the kernel). Call first thing in main(): keeps freed memory for
// reuse (mmap only above 32 MiB, glibc's largest threshold; no trimming). Measured, with
// jemalloc and tcmalloc, in README ("Speed"). Returns false where it cannot (not glibc).
bool configure_allocator();

// The most intra-op threads worth asking for: 4x the cores (at least 8). Beyond that
// each parallel region's barrier waits on threads that never get a core (2000 threads
// on 2 cores took minutes a step; 2^31 ran libgomp out of memory).
int max_threads();
// Intra-op threads for LibTorch: `threads` > 0 as given (at most max_threads()), else
// all cores minus `reserve` (at least 1). Returns the number set.
int configure_threads(int threads, int reserve = 0);

// Lowers the scheduling priority of the calling thread only (Linux: nice is per thread)
// by `nice` steps (1..19). Threads it creates afterwards, such as the OpenMP pool of its
// first parallel region, inherit the value. Returns false where that is not possible.
bool lower_thread_priority(int nice);

// "cuda" when LibTorch was built with CUDA and a GPU is present, else "cpu". `request`
// may be "auto", "cpu" or "cuda"; asking for cuda without one throws.
c10::Device choose_device(const std::string& request = "auto");

// "AMD EPYC 9R14" from /proc/cpuinfo (read once; "unknown CPU" elsewhere).
std::string cpu_model_name();

// The CPU's vector instructions in one word, from the feature flags of /proc/cpuinfo:
// "amx_bf16", "avx512_bf16", "avx512", "avx2", "sse" (x86), "bf16" or "neon" (Arm), ""
// when there is no flags line. Machines sold under one model name differ (two "AMD
// EPYC" seen here: one with AVX512-BF16, one with AVX2 only), so measurements cached
// per CPU are keyed by the name and this word.
std::string cpu_isa_tag_from_flags(const std::string& flags);
std::string cpu_isa_tag();  // this CPU's (read once)

// Whether the CPU multiplies bfloat16 in hardware (amx_bf16, avx512_bf16, Arm bf16):
// yes, no (LibTorch then emulates bf16: a training step was 10x and a sampling call 15x
// slower than float32 on an AVX2-only AMD EPYC), or unknown (no flags line to read).
enum class CpuBf16 { Native, Emulated, Unknown };
CpuBf16 cpu_bf16_from_tag(const std::string& isa_tag);
// This CPU's; the environment variable DIFFLAB_CPU_BF16=native|emulated overrides it.
CpuBf16 cpu_bf16();

// One line: LibTorch version, device, threads, BLAS core type — for logs and bench.
std::string runtime_summary(c10::Device device);

}  // namespace difflab

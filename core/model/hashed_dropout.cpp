#include "core/model/hashed_dropout.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>

namespace difflab {
namespace {

thread_local uint64_t t_seed = 0x9e3779b97f4a7c15ULL;
thread_local uint64_t t_call = 0;
thread_local int64_t t_first_row = 0;

// SplitMix64's finaliser (Steele et al. 2014): a bijective 64-bit mixer.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// 32-bit integer hash "lowbias32" (C. Wellons, 2018): cheap and well mixed.
inline uint32_t hash32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

void fill_mask(float* out, int64_t n, double p, uint64_t seed, uint64_t call, int64_t first) {
  const uint64_t key = mix64(seed ^ mix64(call + 0x632be59bd9b4e019ULL));
  const uint32_t key_lo = static_cast<uint32_t>(key), key_hi = static_cast<uint32_t>(key >> 32);
  // Keep when the 32-bit hash is ≥ p · 2³² (probability 1 − p, to 2⁻³²).
  const uint32_t threshold = static_cast<uint32_t>(std::min(p * 4294967296.0, 4294967295.0));
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  at::parallel_for(0, n, 1 << 14, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t e = first + i;
      const uint32_t lo = static_cast<uint32_t>(e), hi = static_cast<uint32_t>(e >> 32);
      const uint32_t h = hash32(hash32(lo ^ key_lo) + (hi ^ key_hi));
      out[i] = h >= threshold ? scale : 0.0f;
    }
  });
}

}  // namespace

void set_dropout_seed(uint64_t seed, int64_t first_row) {
  t_seed = seed;
  t_call = 0;
  t_first_row = first_row;
}

at::Tensor hashed_dropout_mask(at::IntArrayRef shape, double p, uint64_t seed, uint64_t call,
                               int64_t first_element) {
  auto mask = torch::empty(shape, torch::kFloat32);
  fill_mask(mask.data_ptr<float>(), mask.numel(), p, seed, call, first_element);
  return mask;
}

at::Tensor hashed_dropout(const at::Tensor& x, double p) {
  if (p <= 0.0) return x;
  if (!x.device().is_cpu()) return torch::dropout(x, p, /*train=*/true);
  // Rows are the leading dimension: row r of this process is row t_first_row + r of the batch.
  const int64_t row_elements = x.dim() > 0 && x.size(0) > 0 ? x.numel() / x.size(0) : 0;
  auto mask = hashed_dropout_mask(x.sizes(), p, t_seed, t_call++, t_first_row * row_elements);
  return x * mask.to(x.scalar_type());
}

}  // namespace difflab

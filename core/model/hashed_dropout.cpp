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

// The same mask as fill_mask, computed with tensor ops on the tensor's own device (CUDA):
// every 32-bit product is split in 16-bit halves so that no int64 intermediate overflows.
at::Tensor tensor_mask(const at::Tensor& x, double p, uint64_t seed, uint64_t call, int64_t first) {
  const uint64_t key = mix64(seed ^ mix64(call + 0x632be59bd9b4e019ULL));
  const int64_t key_lo = static_cast<int64_t>(key & 0xffffffffULL);
  const int64_t key_hi = static_cast<int64_t>(key >> 32);
  constexpr int64_t kLow32 = 0xffffffffLL;
  const auto mul32 = [](const at::Tensor& v, int64_t c) {  // (v · c) mod 2³², v < 2³²
    const int64_t c_lo = c & 0xffff, c_hi = c >> 16;
    return (v * c_lo + at::bitwise_left_shift((v * c_hi).bitwise_and(0xffff), 16))
        .bitwise_and(kLow32);
  };
  const auto hash = [&](at::Tensor v) {  // hash32 above
    v = v.bitwise_xor(at::bitwise_right_shift(v, 16));
    v = mul32(v, 0x7feb352d);
    v = v.bitwise_xor(at::bitwise_right_shift(v, 15));
    v = mul32(v, 0x846ca68b);
    return v.bitwise_xor(at::bitwise_right_shift(v, 16));
  };
  const auto e = torch::arange(first, first + x.numel(), x.options().dtype(torch::kLong));
  const auto lo = e.bitwise_and(kLow32), hi = at::bitwise_right_shift(e, 32);
  const auto h = hash((hash(lo.bitwise_xor(key_lo)) + hi.bitwise_xor(key_hi)).bitwise_and(kLow32));
  const auto threshold = static_cast<int64_t>(std::min(p * 4294967296.0, 4294967295.0));
  const double scale = 1.0 / (1.0 - p);
  return (h >= threshold).to(x.scalar_type()).mul_(scale).view(x.sizes());
}

}  // namespace

at::Tensor hashed_dropout_mask_on_device(const at::Tensor& like, double p, uint64_t seed,
                                         uint64_t call, int64_t first_element) {
  return tensor_mask(like, p, seed, call, first_element);
}

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
  // Rows are the leading dimension: row r of this process is row t_first_row + r of the batch.
  const int64_t row_elements = x.dim() > 0 && x.size(0) > 0 ? x.numel() / x.size(0) : 0;
  const int64_t first = t_first_row * row_elements;
  // On CUDA the same hash runs as tensor ops on the device: the same masks as on the CPU
  // (each rank of a data-parallel run its own rows'), no generator, no host transfer.
  if (!x.device().is_cpu()) return x * tensor_mask(x, p, t_seed, t_call++, first);
  auto mask = hashed_dropout_mask(x.sizes(), p, t_seed, t_call++, first);
  return x * mask.to(x.scalar_type());
}

}  // namespace difflab

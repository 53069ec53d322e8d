// The forward (noising) process on plain float arrays, for instant previews on the UI
// thread: x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε  (Ho et al. 2020, eq. 4). No torch.
#pragma once

#include <cstdint>
#include <vector>

#include "core/schedule/noise_schedule.h"

namespace difflab {

// n standard normal numbers from a seeded generator (Box–Muller on mt19937_64).
std::vector<float> standard_normal(size_t n, uint64_t seed);
// x_t for row t of `schedule`, given x₀ and a fixed ε of the same length.
std::vector<float> forward_noise(const std::vector<float>& x0, const std::vector<float>& eps,
                                 const NoiseSchedule& schedule, int t);

}  // namespace difflab

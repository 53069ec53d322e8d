// The forward (noising) process on plain float arrays, for instant previews on the UI
// thread: x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε  (Ho et al. 2020, eq. 4), and the other objectives'
// x = a x₀ + b ε (flow matching, EDM). No torch.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/schedule/noise_schedule.h"

namespace difflab {

// n standard normal numbers from a seeded generator (Box–Muller on mt19937_64).
std::vector<float> standard_normal(size_t n, uint64_t seed);
// x_t for row t of `schedule`, given x₀ and a fixed ε of the same length.
std::vector<float> forward_noise(const std::vector<float>& x0, const std::vector<float>& eps,
                                 const NoiseSchedule& schedule, int t);

// One point of a forward process x = a x₀ + b ε, at slider position `pos` of `positions`
// (0 = clean, positions − 1 = the noisiest):
//  - ddpm: row pos of the schedule, a = √ᾱ_t, b = √(1 − ᾱ_t);
//  - flow matching: t = pos / (positions − 1), a = 1 − t, b = t (Lipman et al. 2022);
//  - edm: σ from sigma_min to sigma_max evenly in log σ, x = x₀ + σ ε, shown in the
//    variance-preserving scale (divided by √(1 + σ²)) as the scrubber shows it.
struct ForwardPoint {
  double a = 1.0, b = 0.0;
  double level = 0.0;  // ddpm: t (the row); flow matching: t in [0, 1]; edm: σ
  double snr() const { return b > 0.0 ? (a * a) / (b * b) : INFINITY; }
};
ForwardPoint ddpm_forward_point(const NoiseSchedule& schedule, int t);
ForwardPoint flow_forward_point(int pos, int positions);
ForwardPoint edm_forward_point(int pos, int positions, double sigma_min, double sigma_max);
// a x₀ + b ε.
std::vector<float> forward_mix(const std::vector<float>& x0, const std::vector<float>& eps,
                               const ForwardPoint& p);

}  // namespace difflab

// Which timestep each training example gets, and the weight of its loss.
//
// uniform: t ~ U{0, …, T−1}, weight 1.
// loss_aware (Nichol & Dhariwal 2021, §3.3, improved-diffusion's LossSecondMomentResampler):
// the last kHistoryPerTimestep losses of every t are kept; until every t has that many, t
// is drawn uniformly; after that p_t ∝ √E[L_t²] over the history, mixed with a uniform
// share, p = (1 − u) p' + u / T. Each example's loss is weighted by 1/(T p_t), so the
// weighted loss is an unbiased estimate of the uniform-t loss with less variance.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <vector>

#include "core/config/enums.h"

namespace difflab {

class TimestepSampler {
 public:
  // Losses remembered per timestep (improved-diffusion's history_per_term).
  static constexpr int kHistoryPerTimestep = 10;

  TimestepSampler(TimestepSamplerKind kind, int num_steps, double uniform_mix);

  struct Draw {
    at::Tensor t;        // (B) int64, CPU
    at::Tensor weights;  // (B) float32, CPU: 1/(T p_t)
  };
  // Uniform draws use torch::randint(0, T) on `gen` (the same numbers as before this
  // sampler existed); importance draws use torch::multinomial on `gen`.
  Draw sample(int64_t batch, at::Generator& gen) const;
  // Records each example's (unweighted) loss at its t. t: (B) int64, losses: (B); any
  // device. A no-op for the uniform sampler.
  void update(const at::Tensor& t, const at::Tensor& losses);

  // p_t for t = 0..T−1 (uniform until warmed up, and always for the uniform kind).
  std::vector<double> probabilities() const;
  // True when every t has kHistoryPerTimestep losses.
  bool warmed_up() const;
  TimestepSamplerKind kind() const { return m_kind; }
  int num_steps() const { return m_steps; }
  double uniform_mix() const { return m_uniform_mix; }
  void set_uniform_mix(double uniform_mix);

  // State for checkpoints: history (T, kHistoryPerTimestep) float64 (oldest first, unused
  // slots 0) and counts (T) int64. set_state throws std::invalid_argument on wrong shapes
  // or counts.
  at::Tensor history() const;
  at::Tensor counts() const;
  void set_state(const at::Tensor& history, const at::Tensor& counts);
  void reset();

 private:
  TimestepSamplerKind m_kind;
  int m_steps;
  double m_uniform_mix;
  std::vector<double> m_history;  // T × kHistoryPerTimestep, row-major
  std::vector<int> m_counts;      // T
};

}  // namespace difflab

#include "core/diffusion/timestep_sampler.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace difflab {

TimestepSampler::TimestepSampler(TimestepSamplerKind kind, int num_steps, double uniform_mix)
    : m_kind(kind), m_steps(num_steps), m_uniform_mix(uniform_mix) {
  if (num_steps < 1)
    throw std::invalid_argument("timestep sampler: needs at least 1 timestep, got " +
                                std::to_string(num_steps));
  set_uniform_mix(uniform_mix);
  reset();
}

void TimestepSampler::set_uniform_mix(double uniform_mix) {
  if (!(uniform_mix >= 0.0 && uniform_mix <= 1.0))
    throw std::invalid_argument("timestep sampler: uniform mix must be in [0, 1], got " +
                                std::to_string(uniform_mix));
  m_uniform_mix = uniform_mix;
}

void TimestepSampler::reset() {
  m_history.assign(static_cast<size_t>(m_steps) * kHistoryPerTimestep, 0.0);
  m_counts.assign(m_steps, 0);
}

bool TimestepSampler::warmed_up() const {
  return std::all_of(m_counts.begin(), m_counts.end(),
                     [](int c) { return c == kHistoryPerTimestep; });
}

std::vector<double> TimestepSampler::probabilities() const {
  const double uniform = 1.0 / m_steps;
  std::vector<double> p(m_steps, uniform);
  if (m_kind != TimestepSamplerKind::LossAware || !warmed_up()) return p;
  double total = 0.0;
  for (int t = 0; t < m_steps; ++t) {
    double sum_sq = 0.0;
    for (int k = 0; k < kHistoryPerTimestep; ++k) {
      const double l = m_history[static_cast<size_t>(t) * kHistoryPerTimestep + k];
      sum_sq += l * l;
    }
    p[t] = std::sqrt(sum_sq / kHistoryPerTimestep);
    total += p[t];
  }
  if (!(total > 0.0) || !std::isfinite(total)) return std::vector<double>(m_steps, uniform);
  for (double& v : p) v = (1.0 - m_uniform_mix) * v / total + m_uniform_mix * uniform;
  return p;
}

TimestepSampler::Draw TimestepSampler::sample(int64_t batch, at::Generator& gen) const {
  Draw d;
  if (m_kind == TimestepSamplerKind::Uniform || !warmed_up()) {
    d.t = torch::randint(0, m_steps, {batch}, gen, torch::kLong);
    d.weights = torch::ones({batch}, torch::kFloat32);
    return d;
  }
  const auto p = probabilities();
  const auto probs = torch::tensor(p, torch::kFloat64);
  d.t = torch::multinomial(probs, batch, /*replacement=*/true, gen);
  // 1/(T p_t), computed in double.
  d.weights = (1.0 / (static_cast<double>(m_steps) * probs.index_select(0, d.t)))
                  .to(torch::kFloat32);
  return d;
}

void TimestepSampler::update(const at::Tensor& t, const at::Tensor& losses) {
  if (m_kind != TimestepSamplerKind::LossAware) return;
  const auto tc = t.to(torch::kCPU, torch::kLong).contiguous();
  const auto lc = losses.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  if (tc.numel() != lc.numel())
    throw std::invalid_argument("timestep sampler: " + std::to_string(tc.numel()) +
                                " timesteps but " + std::to_string(lc.numel()) + " losses");
  const auto* tp = tc.data_ptr<int64_t>();
  const auto* lp = lc.data_ptr<double>();
  for (int64_t i = 0; i < tc.numel(); ++i) {
    const int64_t step = tp[i];
    if (step < 0 || step >= m_steps)
      throw std::invalid_argument("timestep sampler: t = " + std::to_string(step) +
                                  " is outside [0, " + std::to_string(m_steps - 1) + "]");
    double* row = m_history.data() + step * kHistoryPerTimestep;
    int& count = m_counts[step];
    if (count == kHistoryPerTimestep) {
      std::copy(row + 1, row + kHistoryPerTimestep, row);  // drop the oldest
      row[kHistoryPerTimestep - 1] = lp[i];
    } else {
      row[count++] = lp[i];
    }
  }
}

at::Tensor TimestepSampler::history() const {
  return torch::tensor(m_history, torch::kFloat64).view({m_steps, kHistoryPerTimestep});
}

at::Tensor TimestepSampler::counts() const {
  std::vector<int64_t> c(m_counts.begin(), m_counts.end());
  return torch::tensor(c, torch::kLong);
}

void TimestepSampler::set_state(const at::Tensor& history, const at::Tensor& counts) {
  if (history.dim() != 2 || history.size(0) != m_steps ||
      history.size(1) != kHistoryPerTimestep || counts.dim() != 1 || counts.size(0) != m_steps)
    throw std::invalid_argument("timestep sampler state is for another number of timesteps (" +
                                std::to_string(history.dim() == 2 ? history.size(0) : -1) +
                                ", this run has " + std::to_string(m_steps) + ")");
  const auto h = history.to(torch::kCPU, torch::kFloat64).contiguous();
  const auto c = counts.to(torch::kCPU, torch::kLong).contiguous();
  std::vector<int> new_counts(m_steps);
  for (int t = 0; t < m_steps; ++t) {
    const int64_t v = c.data_ptr<int64_t>()[t];
    if (v < 0 || v > kHistoryPerTimestep)
      throw std::invalid_argument("timestep sampler state: count " + std::to_string(v) +
                                  " at t = " + std::to_string(t) + " is outside [0, " +
                                  std::to_string(kHistoryPerTimestep) + "]");
    new_counts[t] = static_cast<int>(v);
  }
  m_history.assign(h.data_ptr<double>(), h.data_ptr<double>() + h.numel());
  m_counts = std::move(new_counts);
}

}  // namespace difflab

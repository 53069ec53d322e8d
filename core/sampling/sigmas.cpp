#include "core/sampling/sigmas.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace difflab {

double sigma_from_alpha_bar(double alpha_bar) { return std::sqrt((1.0 - alpha_bar) / alpha_bar); }

double alpha_bar_from_sigma(double sigma) { return 1.0 / (1.0 + sigma * sigma); }

// ---- SigmaTable -----------------------------------------------------------------------

SigmaTable::SigmaTable(const NoiseSchedule& schedule) {
  const auto& ab = schedule.alphas_cumprod();
  const int n = schedule.size();
  if (n < 1) throw std::invalid_argument("SigmaTable: empty schedule");
  for (int i = 0; i < n; ++i) {
    const double s = sigma_from_alpha_bar(ab[i]);
    if (!(s > 0.0) || (i > 0 && !(s > m_sigmas.back())))
      throw std::invalid_argument("SigmaTable: σ must be positive and increase with t (row " +
                                  std::to_string(i) + ")");
    m_sigmas.push_back(s);
    m_log_sigmas.push_back(std::log(s));
    m_timesteps.push_back(schedule.model_timestep(i));
  }
}

double SigmaTable::timestep(double sigma) const {
  const double ls = std::log(sigma);
  if (!(ls > m_log_sigmas.front())) return m_timesteps.front();
  if (!(ls < m_log_sigmas.back())) return m_timesteps.back();
  // First row whose log σ is above ls; interpolate between it and the one before.
  const auto hi =
      std::upper_bound(m_log_sigmas.begin(), m_log_sigmas.end(), ls) - m_log_sigmas.begin();
  const auto lo = hi - 1;
  const double w = (ls - m_log_sigmas[lo]) / (m_log_sigmas[hi] - m_log_sigmas[lo]);
  return m_timesteps[lo] + w * (m_timesteps[hi] - m_timesteps[lo]);
}

double SigmaTable::sigma_at(double timestep) const {
  if (!(timestep > m_timesteps.front())) return m_sigmas.front();
  if (!(timestep < m_timesteps.back())) return m_sigmas.back();
  const auto hi =
      std::upper_bound(m_timesteps.begin(), m_timesteps.end(), timestep) - m_timesteps.begin();
  const auto lo = hi - 1;
  const double w = (timestep - m_timesteps[lo]) / (m_timesteps[hi] - m_timesteps[lo]);
  return std::exp(m_log_sigmas[lo] + w * (m_log_sigmas[hi] - m_log_sigmas[lo]));
}

// ---- Grids ----------------------------------------------------------------------------

std::vector<double> karras_sigmas(int n, double sigma_min, double sigma_max, double rho) {
  if (n < 1) throw std::invalid_argument("karras_sigmas: n must be >= 1");
  if (!(sigma_min > 0.0) || !(sigma_max >= sigma_min) || !(rho > 0.0))
    throw std::invalid_argument("karras_sigmas: need 0 < sigma_min <= sigma_max and rho > 0");
  const double a = std::pow(sigma_max, 1.0 / rho), b = std::pow(sigma_min, 1.0 / rho);
  std::vector<double> sigmas;
  for (int i = 0; i < n; ++i) {
    const double r = n == 1 ? 0.0 : static_cast<double>(i) / (n - 1);
    sigmas.push_back(std::pow(a + r * (b - a), rho));
  }
  sigmas.push_back(0.0);
  return sigmas;
}

SigmaSchedule make_sigma_schedule(SigmaSpacing spacing, const NoiseSchedule& respaced,
                                  const NoiseSchedule& model_schedule, double rho) {
  SigmaSchedule out;
  const int n = respaced.size();
  switch (spacing) {
    case SigmaSpacing::Model:
      for (int i = n - 1; i >= 0; --i) {
        out.sigmas.push_back(sigma_from_alpha_bar(respaced.alphas_cumprod()[i]));
        out.timesteps.push_back(respaced.model_timestep(i));
      }
      out.sigmas.push_back(0.0);
      return out;
    case SigmaSpacing::Karras: {
      const SigmaTable table(model_schedule);
      out.sigmas = karras_sigmas(n, table.sigma_min(), table.sigma_max(), rho);
      for (int i = 0; i < n; ++i) out.timesteps.push_back(table.timestep(out.sigmas[i]));
      return out;
    }
    case SigmaSpacing::Count:
      break;
  }
  throw std::invalid_argument("bad sigma spacing");
}

SigmaSchedule edm_sigma_schedule(int steps, const ObjectiveParams& params, double rho) {
  SigmaSchedule out;
  out.sigmas = karras_sigmas(steps, params.sigma_min, params.sigma_max, rho);
  for (int i = 0; i < steps; ++i) out.timesteps.push_back(edm_network_time(out.sigmas[i], params));
  return out;
}

SigmaSchedule flow_sigma_schedule(int steps, const ObjectiveParams& params, double shift) {
  SigmaSchedule out;
  out.sigmas = flow_time_grid(steps, shift);
  for (int i = 0; i < steps; ++i) out.timesteps.push_back(out.sigmas[i] * params.time_scale);
  return out;
}

// ---- Steps ----------------------------------------------------------------------------

at::Tensor to_d(const at::Tensor& x, double sigma, const at::Tensor& x0) {
  return (x - x0) / sigma;
}

AncestralStep ancestral_step(double sigma_from, double sigma_to, double eta) {
  AncestralStep s;
  if (sigma_to <= 0.0 || eta <= 0.0) {
    s.sigma_down = std::max(sigma_to, 0.0);
    return s;
  }
  const double var_up = sigma_to * sigma_to * (sigma_from * sigma_from - sigma_to * sigma_to) /
                        (sigma_from * sigma_from);
  s.sigma_up = std::min(sigma_to, eta * std::sqrt(std::max(var_up, 0.0)));
  s.sigma_down = std::sqrt(std::max(sigma_to * sigma_to - s.sigma_up * s.sigma_up, 0.0));
  return s;
}

// ---- SigmaSpace -----------------------------------------------------------------------

SigmaSpace::SigmaSpace(const Denoiser& denoiser, SigmaSpacing spacing, double rho,
                       double flow_shift)
    : m_denoiser(denoiser), m_objective(denoiser.objective().objective) {
  // The number of steps is the respaced schedule's size, whatever the objective.
  const int steps = denoiser.diffusion().num_steps();
  switch (m_objective) {
    case Objective::Edm:
      m_schedule = edm_sigma_schedule(steps, denoiser.objective(), rho);
      break;
    case Objective::FlowMatching:
      m_schedule = flow_sigma_schedule(steps, denoiser.objective(), flow_shift);
      break;
    default:
      m_schedule = make_sigma_schedule(spacing, denoiser.diffusion().schedule(),
                                       denoiser.model_schedule(), rho);
      m_table.emplace(denoiser.model_schedule());
      break;
  }
}

at::Tensor SigmaSpace::from_vp(const at::Tensor& x_t) const {
  switch (m_objective) {
    case Objective::Edm: return x_t * sigma(0);
    case Objective::FlowMatching: return x_t;
    default: return x_t * std::sqrt(1.0 + sigma(0) * sigma(0));
  }
}

SigmaSpace::Denoised SigmaSpace::denoise(const at::Tensor& x, int i) const {
  if (flow()) {
    auto out = m_denoiser.at_flow_time(x, sigma(i));
    return {out.x0, out.eps, out.velocity};
  }
  if (m_objective == Objective::Edm) {
    auto [eps, x0] = m_denoiser.at_sigma(x, sigma(i));
    return {x0, eps, {}};
  }
  const double s = sigma(i);
  const double ab = alpha_bar_from_sigma(s);
  auto [eps, x0] = m_denoiser.at_timestep(x * std::sqrt(ab), m_schedule.timesteps[i], ab);
  return {x0, eps, {}};
}

SigmaSpace::Denoised SigmaSpace::denoise_at(const at::Tensor& x, double s) const {
  if (flow()) throw std::logic_error("SigmaSpace::denoise_at: not for flow matching");
  if (m_objective == Objective::Edm) {
    auto [eps, x0] = m_denoiser.at_sigma(x, s);
    return {x0, eps, {}};
  }
  const double ab = alpha_bar_from_sigma(s);
  auto [eps, x0] = m_denoiser.at_timestep(x * std::sqrt(ab), m_table->timestep(s), ab);
  return {x0, eps, {}};
}

at::Tensor SigmaSpace::slope(const at::Tensor& x, double s, const Denoised& d) const {
  return flow() ? d.velocity : to_d(x, s, d.x0);
}

SigmaSpace::Churned SigmaSpace::churn(const at::Tensor& x, int i, double s_churn,
                                      NoiseStreams& noise) const {
  const double s = sigma(i);
  const double gamma = flow() ? 0.0 : std::min(s_churn / steps(), std::sqrt(2.0) - 1.0);
  if (!(gamma > 0.0)) return {x, s};
  const double s_hat = s * (1.0 + gamma);
  return {x + std::sqrt(s_hat * s_hat - s * s) * noise.like(x), s_hat};
}

bool SigmaSpace::report(const StepCallback& callback, int i, const at::Tensor& x,
                        const Denoised& d, double s) const {
  if (!callback) return true;
  if (s < 0.0) s = sigma(i);
  // Flow matching's x is x_t already; the scrubber's third frame is then v̂.
  const auto x_t = flow() ? x : x * std::sqrt(alpha_bar_from_sigma(s));
  const int timestep = static_cast<int>(std::lround(m_schedule.timesteps[i]));
  const StepInfo info{i, steps(), timestep, x_t, d.x0, flow() ? d.velocity : d.eps};
  return callback(info);
}

}  // namespace difflab

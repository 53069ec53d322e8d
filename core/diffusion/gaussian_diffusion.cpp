#include "core/diffusion/gaussian_diffusion.h"

#include <torch/torch.h>

namespace difflab {
namespace {

at::Tensor to_device(const std::vector<double>& v, c10::Device device) {
  // Built in double, stored in float32 (improved-diffusion computes in float64 and casts).
  return torch::tensor(v, torch::kFloat64).to(device, torch::kFloat32);
}

}  // namespace

GaussianDiffusion::GaussianDiffusion(NoiseSchedule schedule, Prediction prediction,
                                     c10::Device device)
    : m_schedule(std::move(schedule)), m_prediction(prediction), m_device(device) {
  const auto& s = m_schedule;
  m_betas = to_device(s.betas(), device);
  m_ac = to_device(s.alphas_cumprod(), device);
  m_ac_prev = to_device(s.alphas_cumprod_prev(), device);
  m_sqrt_ac = to_device(s.sqrt_alphas_cumprod(), device);
  m_sqrt_1m_ac = to_device(s.sqrt_one_minus_alphas_cumprod(), device);
  m_sqrt_recip_ac = to_device(s.sqrt_recip_alphas_cumprod(), device);
  m_sqrt_recipm1_ac = to_device(s.sqrt_recipm1_alphas_cumprod(), device);
  m_post_var = to_device(s.posterior_variance(), device);
  m_post_logvar = to_device(s.posterior_log_variance_clipped(), device);
  m_post_c1 = to_device(s.posterior_mean_coef1(), device);
  m_post_c2 = to_device(s.posterior_mean_coef2(), device);
  std::vector<int64_t> map(s.timestep_map().begin(), s.timestep_map().end());
  m_timestep_map = torch::tensor(map, torch::kLong).to(device);
}

at::Tensor GaussianDiffusion::extract(const at::Tensor& table, const at::Tensor& t,
                                      int64_t ndim) const {
  std::vector<int64_t> shape(ndim, 1);
  shape[0] = t.size(0);
  return table.index_select(0, t.to(table.device())).view(shape);
}

at::Tensor GaussianDiffusion::model_timesteps(const at::Tensor& t) const {
  return m_timestep_map.index_select(0, t.to(m_device)).to(torch::kFloat32);
}

at::Tensor GaussianDiffusion::q_sample(const at::Tensor& x0, const at::Tensor& t,
                                       const at::Tensor& noise) const {
  const auto n = x0.dim();
  return extract(m_sqrt_ac, t, n) * x0 + extract(m_sqrt_1m_ac, t, n) * noise;
}

Posterior GaussianDiffusion::q_posterior(const at::Tensor& x0, const at::Tensor& xt,
                                         const at::Tensor& t) const {
  const auto n = x0.dim();
  Posterior p;
  p.mean = extract(m_post_c1, t, n) * x0 + extract(m_post_c2, t, n) * xt;
  p.variance = extract(m_post_var, t, n);
  p.log_variance = extract(m_post_logvar, t, n);
  return p;
}

at::Tensor GaussianDiffusion::x0_from_eps(const at::Tensor& xt, const at::Tensor& t,
                                          const at::Tensor& eps) const {
  const auto n = xt.dim();
  return extract(m_sqrt_recip_ac, t, n) * xt - extract(m_sqrt_recipm1_ac, t, n) * eps;
}

at::Tensor GaussianDiffusion::eps_from_x0(const at::Tensor& xt, const at::Tensor& t,
                                          const at::Tensor& x0) const {
  const auto n = xt.dim();
  return (extract(m_sqrt_recip_ac, t, n) * xt - x0) / extract(m_sqrt_recipm1_ac, t, n);
}

at::Tensor GaussianDiffusion::v_target(const at::Tensor& x0, const at::Tensor& t,
                                       const at::Tensor& eps) const {
  const auto n = x0.dim();
  return extract(m_sqrt_ac, t, n) * eps - extract(m_sqrt_1m_ac, t, n) * x0;
}

at::Tensor GaussianDiffusion::x0_from_v(const at::Tensor& xt, const at::Tensor& t,
                                        const at::Tensor& v) const {
  const auto n = xt.dim();
  return extract(m_sqrt_ac, t, n) * xt - extract(m_sqrt_1m_ac, t, n) * v;
}

at::Tensor GaussianDiffusion::training_target(const at::Tensor& x0, const at::Tensor& t,
                                              const at::Tensor& eps) const {
  switch (m_prediction) {
    case Prediction::Eps: return eps;
    case Prediction::X0: return x0;
    case Prediction::V: return v_target(x0, t, eps);
    case Prediction::Count: break;
  }
  return eps;
}

std::pair<at::Tensor, at::Tensor> GaussianDiffusion::interpret(const at::Tensor& out,
                                                               const at::Tensor& xt,
                                                               const at::Tensor& t,
                                                               bool clip) const {
  at::Tensor eps, x0;
  switch (m_prediction) {
    case Prediction::Eps:
      eps = out;
      x0 = x0_from_eps(xt, t, eps);
      break;
    case Prediction::X0:
      x0 = out;
      break;
    case Prediction::V:
      x0 = x0_from_v(xt, t, out);
      break;
    case Prediction::Count:
      break;
  }
  if (clip) x0 = x0.clamp(-1.0, 1.0);
  if (clip || m_prediction != Prediction::Eps) eps = eps_from_x0(xt, t, x0);
  return {eps, x0};
}

at::Tensor GaussianDiffusion::simple_loss(const at::Tensor& out, const at::Tensor& target) const {
  return (out - target).pow(2).flatten(1).mean(1);
}

}  // namespace difflab

#include "core/diffusion/objectives.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "core/util/device_copy.h"

namespace difflab {

ObjectiveParams ObjectiveParams::from(const DiffusionConfig& d) {
  ObjectiveParams p;
  p.objective = d.objective;
  p.sigma_data = d.edm_sigma_data;
  p.sigma_min = d.edm_sigma_min;
  p.sigma_max = d.edm_sigma_max;
  p.time_scale = d.timesteps;
  return p;
}

// ---- min-SNR-γ ------------------------------------------------------------------------

double min_snr_weight(double snr, double gamma, Prediction prediction) {
  const double clipped = std::min(snr, gamma);
  switch (prediction) {
    case Prediction::Eps: return clipped / snr;
    case Prediction::X0: return clipped;
    case Prediction::V: return clipped / (snr + 1.0);
    case Prediction::Count: break;
  }
  throw std::invalid_argument("min_snr_weight: bad prediction");
}

double flow_min_snr_weight(double t, double gamma) {
  const double snr = (1.0 - t) * (1.0 - t) / (t * t);
  return std::min(snr, gamma) * t * t;
}

std::vector<double> min_snr_weights(const NoiseSchedule& schedule, Prediction prediction,
                                    double gamma) {
  std::vector<double> w;
  w.reserve(static_cast<size_t>(schedule.size()));
  for (int i = 0; i < schedule.size(); ++i) {
    const double ab = schedule.alphas_cumprod()[i];
    w.push_back(min_snr_weight(ab / (1.0 - ab), gamma, prediction));
  }
  return w;
}

std::vector<double> loss_weight_curve(const DiffusionConfig& d, int points) {
  std::vector<double> out(static_cast<size_t>(std::max(points, 0)), 1.0);
  if (d.loss_weighting != LossWeighting::MinSnr || d.objective == Objective::Edm) return out;
  const NoiseSchedule schedule = NoiseSchedule::named(d.schedule, d.timesteps);
  const auto rows = d.objective == Objective::Ddpm
                        ? min_snr_weights(schedule, d.prediction, d.min_snr_gamma)
                        : std::vector<double>{};
  for (int k = 0; k < points; ++k) {
    const double centre = (k + 0.5) / points;  // position on [0, 1) of the axis [0, T)
    if (d.objective == Objective::Ddpm)
      out[k] = rows[std::min(static_cast<size_t>(centre * d.timesteps), rows.size() - 1)];
    else
      out[k] = flow_min_snr_weight(centre, d.min_snr_gamma);
  }
  return out;
}

// ---- EDM ------------------------------------------------------------------------------

EdmScalings edm_scalings(double sigma, double sigma_data) {
  const double s2 = sigma * sigma, d2 = sigma_data * sigma_data;
  EdmScalings c;
  c.c_skip = d2 / (s2 + d2);
  c.c_out = sigma * sigma_data / std::sqrt(s2 + d2);
  c.c_in = 1.0 / std::sqrt(s2 + d2);
  c.c_noise = 0.25 * std::log(sigma);
  return c;
}

double edm_loss_weight(double sigma, double sigma_data) {
  const double sd = sigma * sigma_data;
  return (sigma * sigma + sigma_data * sigma_data) / (sd * sd);
}

double edm_network_time(double sigma, const ObjectiveParams& p) {
  const double lo = std::log(p.sigma_min), hi = std::log(p.sigma_max);
  return p.time_scale * (4.0 * edm_scalings(sigma, p.sigma_data).c_noise - lo) / (hi - lo);
}

double edm_sigma_of_network_time(double t_net, const ObjectiveParams& p) {
  const double lo = std::log(p.sigma_min), hi = std::log(p.sigma_max);
  return std::exp(lo + t_net / p.time_scale * (hi - lo));
}

// ---- Flow matching ----------------------------------------------------------------------

double flow_shift_time(double t, double shift) { return shift * t / (1.0 + (shift - 1.0) * t); }

std::vector<double> flow_time_grid(int steps, double shift) {
  if (steps < 1) throw std::invalid_argument("flow_time_grid: steps must be >= 1");
  std::vector<double> t;
  for (int i = 0; i <= steps; ++i)
    t.push_back(flow_shift_time(1.0 - static_cast<double>(i) / steps, shift));
  t.front() = 1.0;  // exact ends whatever the rounding of the shift
  t.back() = 0.0;
  return t;
}

// ---- Training draws ---------------------------------------------------------------------

namespace {

// (B) -> (B, 1, ...) to broadcast against x.
at::Tensor per_example(const at::Tensor& v, const at::Tensor& x) {
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = v.size(0);
  return to_device(v, x.device(), torch::kFloat32).reshape(shape);
}

// floor(t_net) clamped to [0, T − 1], as int64 on the CPU.
at::Tensor levels(const at::Tensor& net_time, int time_scale) {
  return net_time.detach()
      .to(torch::kCPU)
      .floor()
      .clamp(0.0, static_cast<double>(time_scale - 1))
      .to(torch::kLong);
}

}  // namespace

at::Tensor edm_sigmas(const DiffusionConfig& d, const at::Tensor& u) {
  return (d.edm_p_mean + d.edm_p_std * u.to(torch::kFloat64)).exp();
}

ObjectiveBatch edm_training_batch(const DiffusionConfig& d, const at::Tensor& x0,
                                  const at::Tensor& eps, const at::Tensor& sigma) {
  const double sd = d.edm_sigma_data;
  const auto s64 = sigma.to(torch::kCPU, torch::kFloat64);
  const auto s2 = s64 * s64;
  const auto c_skip = sd * sd / (s2 + sd * sd);
  const auto c_out = s64 * sd / (s2 + sd * sd).sqrt();
  const auto c_in = 1.0 / (s2 + sd * sd).sqrt();
  const auto lambda = (s2 + sd * sd) / (s64 * sd).pow(2);
  const ObjectiveParams params = ObjectiveParams::from(d);
  const double lo = std::log(params.sigma_min), hi = std::log(params.sigma_max);
  // t_net = T (ln σ − ln σ_min)/(ln σ_max − ln σ_min) = T (4 c_noise − ln σ_min)/(…).
  const auto net_time = params.time_scale * (s64.log() - lo) / (hi - lo);

  const auto x = x0 + per_example(s64, x0) * eps;
  ObjectiveBatch b;
  b.input = per_example(c_in, x0) * x;
  b.target = (x0 - per_example(c_skip, x0) * x) / per_example(c_out, x0);
  b.weight = to_device(lambda * c_out * c_out, x0.device(), torch::kFloat32);
  b.net_time = to_device(net_time, x0.device(), torch::kFloat32);
  b.level = levels(net_time, params.time_scale);
  return b;
}

at::Tensor edm_denoised(const at::Tensor& x, const at::Tensor& sigma, const at::Tensor& F,
                        double sigma_data) {
  const auto s64 = sigma.to(torch::kCPU, torch::kFloat64);
  const auto s2 = s64 * s64;
  const double d2 = sigma_data * sigma_data;
  return per_example(d2 / (s2 + d2), x) * x +
         per_example(s64 * sigma_data / (s2 + d2).sqrt(), x) * F;
}

at::Tensor flow_times(const DiffusionConfig& d, int64_t batch, at::Generator& gen) {
  if (d.flow_t_sampling == FlowTimeSampling::LogitNormal)
    return torch::sigmoid(d.flow_logit_mean +
                          d.flow_logit_std * torch::randn({batch}, gen, torch::kFloat32));
  return torch::rand({batch}, gen, torch::kFloat32);
}

ObjectiveBatch flow_training_batch(const DiffusionConfig& d, const at::Tensor& x0,
                                   const at::Tensor& eps, const at::Tensor& t) {
  const auto tc = t.to(torch::kCPU, torch::kFloat32);
  const auto tx = per_example(tc, x0);
  ObjectiveBatch b;
  b.input = (1.0 - tx) * x0 + tx * eps;
  b.target = eps - x0;
  if (d.loss_weighting == LossWeighting::MinSnr) {
    // min(SNR, γ) t² with SNR = ((1 − t)/t)² (header comment); t = 0 has weight 0·... = 0
    // in the limit only, so it is kept away from 0 (a uniform draw of exactly 0 is possible).
    const auto tt = tc.to(torch::kFloat64).clamp_min(1e-6);
    const auto snr = ((1.0 - tt) / tt).pow(2);
    b.weight = to_device(snr.clamp_max(d.min_snr_gamma) * tt * tt, x0.device(), torch::kFloat32);
  } else {
    b.weight = torch::ones({x0.size(0)}, x0.options().dtype(torch::kFloat32));
  }
  const auto net_time = tc * static_cast<float>(d.timesteps);
  b.net_time = to_device(net_time, x0.device());
  b.level = levels(net_time, d.timesteps);
  return b;
}

at::Tensor flow_x0(const at::Tensor& xt, const at::Tensor& t, const at::Tensor& v) {
  return xt - t * v;
}

at::Tensor flow_eps(const at::Tensor& xt, const at::Tensor& t, const at::Tensor& v) {
  return xt + (1.0 - t) * v;
}

}  // namespace difflab

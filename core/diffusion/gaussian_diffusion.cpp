#include "core/diffusion/gaussian_diffusion.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace difflab {
namespace {

constexpr double kLn2 = 0.693147180559945309417;
constexpr double kSqrtHalf = 0.707106781186547524401;  // 1/√2
// Half the width of one 8-bit pixel's bin on [−1, 1] (x = 2k/255 − 1): 1/255.
constexpr double kHalfBin = 1.0 / 255.0;
// |x| beyond this is an edge pixel (0 or 255), whose bin reaches to ∓∞ (improved-diffusion).
constexpr double kEdgePixel = 0.999;
// Smallest probability a bin may get (improved-diffusion's 1e-12): a confident, wrong
// decoder costs at most −log2(1e-12) ≈ 39.9 bits per dimension instead of infinity.
constexpr double kMinBinProbability = 1e-12;

// Mean over all but the batch dimension.
at::Tensor mean_flat(const at::Tensor& x) { return x.flatten(1).mean(1); }

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
  // log β_t, and the "fixed large" variance β_t with β̃_1 at t = 0 (improved-diffusion).
  std::vector<double> log_betas(s.betas()), log_large(s.betas());
  for (double& v : log_betas) v = std::log(v);
  if (s.size() > 1) log_large[0] = s.posterior_variance()[1];
  for (double& v : log_large) v = std::log(v);
  m_log_betas = to_device(log_betas, device);
  m_log_var_large = to_device(log_large, device);
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

// ---------------------------------------------------------------------------------------
// Learned variance and the variational bound (Nichol & Dhariwal 2021; Ho et al. 2020, §3)
// ---------------------------------------------------------------------------------------

ModelOutput split_model_output(const at::Tensor& out, bool learned_variance) {
  if (!learned_variance) return {out, at::Tensor()};
  if (out.dim() < 2 || out.size(1) % 2 != 0)
    throw std::invalid_argument("a learned-variance output needs 2·C channels, got shape " +
                                std::to_string(out.dim() >= 2 ? out.size(1) : -1) +
                                " channels");
  const int64_t c = out.size(1) / 2;
  return {out.narrow(1, 0, c), out.narrow(1, c, c)};
}

at::Tensor normal_kl(const at::Tensor& mean1, const at::Tensor& logvar1, const at::Tensor& mean2,
                     const at::Tensor& logvar2) {
  const auto d = logvar1 - logvar2;
  return 0.5 * (torch::expm1(d) - d + (mean1 - mean2).pow(2) * torch::exp(-logvar2));
}

at::Tensor standard_normal_cdf(const at::Tensor& x) { return 0.5 * torch::erfc(-kSqrtHalf * x); }

at::Tensor discretized_gaussian_log_likelihood(const at::Tensor& x, const at::Tensor& mean,
                                               const at::Tensor& log_scale) {
  const auto xd = x.to(torch::kFloat64);
  const auto centered = xd - mean.to(torch::kFloat64);
  const auto inv_std = torch::exp(-log_scale.to(torch::kFloat64));
  const auto hi = inv_std * (centered + kHalfBin);  // standardised upper bin edge
  const auto lo = inv_std * (centered - kHalfBin);  // and lower
  // Φ(hi) − Φ(lo), written with the tail on the bin's side of the mean so neither form
  // subtracts two numbers close to 1: ½(erfc(−hi/√2) − erfc(−lo/√2)) below the mean,
  // ½(erfc(lo/√2) − erfc(hi/√2)) above it.
  const auto below = 0.5 * (torch::erfc(-kSqrtHalf * hi) - torch::erfc(-kSqrtHalf * lo));
  const auto above = 0.5 * (torch::erfc(kSqrtHalf * lo) - torch::erfc(kSqrtHalf * hi));
  const auto bin = torch::where(centered > 0, above, below);
  const auto log_cdf_hi = torch::log(standard_normal_cdf(hi).clamp_min(kMinBinProbability));
  const auto log_sf_lo = torch::log((0.5 * torch::erfc(kSqrtHalf * lo)).clamp_min(kMinBinProbability));
  const auto log_bin = torch::log(bin.clamp_min(kMinBinProbability));
  const auto out =
      torch::where(xd < -kEdgePixel, log_cdf_hi, torch::where(xd > kEdgePixel, log_sf_lo, log_bin));
  return out.to(x.scalar_type());
}

at::Tensor GaussianDiffusion::learned_range_log_variance(const at::Tensor& v,
                                                         const at::Tensor& t) const {
  const auto n = v.dim();
  const auto frac = (v + 1.0) / 2.0;
  return frac * extract(m_log_betas, t, n) + (1.0 - frac) * extract(m_post_logvar, t, n);
}

at::Tensor GaussianDiffusion::fixed_log_variance(VarianceKind kind, const at::Tensor& t,
                                                 int64_t ndim) const {
  switch (kind) {
    case VarianceKind::FixedSmall: return extract(m_post_logvar, t, ndim);
    case VarianceKind::FixedLarge: return extract(m_log_var_large, t, ndim);
    case VarianceKind::Learned:
    case VarianceKind::Count: break;
  }
  throw std::invalid_argument("fixed_log_variance: needs fixed_small or fixed_large");
}

MeanVariance GaussianDiffusion::p_mean_variance(const ModelOutput& out, const at::Tensor& xt,
                                                const at::Tensor& t, VarianceKind kind,
                                                bool clip) const {
  MeanVariance p;
  std::tie(p.eps, p.x0) = interpret(out.prediction, xt, t, clip);
  p.mean = q_posterior(p.x0, xt, t).mean;
  if (kind == VarianceKind::Learned) {
    if (!out.variance.defined())
      throw std::invalid_argument(
          "variance 'learned' needs a model trained with diffusion.learn_sigma = true (this "
          "model outputs no variance channels); use fixed_small or fixed_large");
    p.log_variance = learned_range_log_variance(out.variance, t);
  } else {
    p.log_variance = fixed_log_variance(kind, t, xt.dim());
  }
  return p;
}

at::Tensor GaussianDiffusion::vlb_terms_bpd(const MeanVariance& p, const at::Tensor& x0,
                                            const at::Tensor& xt, const at::Tensor& t) const {
  // In float64: near T the two Gaussians differ by little and the KL is tiny.
  const auto f64 = [](const at::Tensor& v) { return v.to(torch::kFloat64); };
  const auto q = q_posterior(x0, xt, t);
  const auto kl = mean_flat(normal_kl(f64(q.mean), f64(q.log_variance), f64(p.mean),
                                      f64(p.log_variance).expand_as(p.mean))) /
                  kLn2;
  const auto decoder =
      -mean_flat(discretized_gaussian_log_likelihood(f64(x0), f64(p.mean),
                                                     0.5 * f64(p.log_variance))) /
      kLn2;
  return torch::where(t.to(kl.device()) == 0, decoder, kl).to(x0.scalar_type());
}

at::Tensor GaussianDiffusion::prior_bpd(const at::Tensor& x0) const {
  const int last = num_steps() - 1;
  const auto mean = x0.to(torch::kFloat64) * m_schedule.sqrt_alphas_cumprod()[last];
  const auto log_var = torch::full_like(mean, m_schedule.log_one_minus_alphas_cumprod()[last]);
  const auto zero = torch::zeros_like(mean);
  return (mean_flat(normal_kl(mean, log_var, zero, zero)) / kLn2).to(x0.scalar_type());
}

std::vector<int> nll_strata(int num_steps, int samples) {
  if (samples < 1 || samples > num_steps - 1)
    throw std::invalid_argument("nll_strata: samples must be in [1, T − 1 = " +
                                std::to_string(num_steps - 1) + "], got " +
                                std::to_string(samples));
  std::vector<int> b = {1};
  for (int k = 1; k <= samples; ++k) {
    const int target = static_cast<int>(
        std::lround(std::pow(static_cast<double>(num_steps), static_cast<double>(k) / samples)));
    // At least one row per stratum, and room left for the strata still to come.
    b.push_back(std::clamp(target, b.back() + 1, num_steps - (samples - k)));
  }
  return b;
}

NllBound GaussianDiffusion::nll_bits_per_dim(const ModelFn& model, const at::Tensor& x0,
                                             VarianceKind kind, bool clip, at::Generator& gen,
                                             int t_samples,
                                             const std::function<void(int, int)>& progress) const {
  if (t_samples < 0)
    throw std::invalid_argument("nll_bits_per_dim: t_samples must be >= 0, got " +
                                std::to_string(t_samples));
  torch::NoGradGuard no_grad;
  const int steps = num_steps();
  const int64_t b = x0.size(0);
  NllBound r;
  // (row, weight): L_0 always; then every t ≥ 1, or one random row per stratum.
  std::vector<std::pair<int, double>> rows = {{0, 1.0}};
  if (t_samples == 0 || t_samples >= steps - 1) {
    for (int t = 1; t < steps; ++t) rows.emplace_back(t, 1.0);
  } else {
    const auto bounds = nll_strata(steps, t_samples);
    for (size_t k = 1; k < bounds.size(); ++k) {
      const int start = bounds[k - 1], len = bounds[k] - bounds[k - 1];
      const int64_t offset =
          len == 1 ? 0 : torch::randint(0, len, {1}, gen, torch::kLong).item<int64_t>();
      rows.emplace_back(start + static_cast<int>(offset), static_cast<double>(len));
      if (len > 1) r.estimate = true;
    }
  }
  const auto opts = x0.options().dtype(torch::kFloat32);
  r.terms = torch::zeros({b, steps}, opts);
  r.kl_sum = torch::zeros({b}, opts);
  int done = 0;
  for (const auto& [row, weight] : rows) {
    const auto t = torch::full({b}, row, x0.options().dtype(torch::kLong));
    const auto noise = torch::randn(x0.sizes(), gen, torch::kFloat32).to(x0.device());
    const auto xt = q_sample(x0, t, noise);
    const auto term =
        vlb_terms_bpd(p_mean_variance(model(xt, t), xt, t, kind, clip), x0, xt, t).to(torch::kFloat32);
    r.terms.select(1, row).copy_(term);
    if (row == 0)
      r.decoder = term;
    else
      r.kl_sum += weight * term;
    if (progress) progress(++done, static_cast<int>(rows.size()));
  }
  r.prior = prior_bpd(x0).to(torch::kFloat32);
  r.total = r.prior + r.kl_sum + r.decoder;
  return r;
}

}  // namespace difflab

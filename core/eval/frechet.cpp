#include "core/eval/frechet.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace difflab {
namespace {

// Eigen-decomposition of a symmetric matrix (symmetrised first against round-off), with
// eigenvalues clamped at 0: covariances are positive semi-definite, so a negative
// eigenvalue can only be round-off.
std::pair<at::Tensor, at::Tensor> psd_eigh(const at::Tensor& a) {
  auto sym = 0.5 * (a + a.transpose(0, 1));
  auto [values, vectors] = at::linalg_eigh(sym, "L");
  return {values.clamp_min(0.0), vectors};
}

}  // namespace

FeatureStats feature_stats(const at::Tensor& features) {
  if (features.dim() != 2 || features.size(0) < 2)
    throw std::invalid_argument("feature_stats: need a (N, D) matrix with N >= 2");
  auto f = features.detach().to(torch::kCPU, torch::kFloat64);
  FeatureStats s;
  s.n = f.size(0);
  s.mean = f.mean(0);
  auto centred = f - s.mean;
  s.cov = centred.transpose(0, 1).matmul(centred) / static_cast<double>(s.n - 1);
  return s;
}

double frechet_distance(const at::Tensor& mu1, const at::Tensor& cov1, const at::Tensor& mu2,
                        const at::Tensor& cov2) {
  const auto d = mu1.numel();
  if (mu2.numel() != d || cov1.sizes() != at::IntArrayRef{d, d} ||
      cov2.sizes() != at::IntArrayRef{d, d})
    throw std::invalid_argument("frechet_distance: means and covariances disagree in size");
  auto m1 = mu1.to(torch::kCPU, torch::kFloat64), m2 = mu2.to(torch::kCPU, torch::kFloat64);
  auto s1 = cov1.to(torch::kCPU, torch::kFloat64), s2 = cov2.to(torch::kCPU, torch::kFloat64);
  // Σ₁^½ = V diag(√λ) Vᵀ; then tr √(Σ₁^½ Σ₂ Σ₁^½) = Σ √eig (the product is symmetric PSD).
  auto [l1, v1] = psd_eigh(s1);
  auto root1 = v1.matmul(torch::diag(l1.sqrt())).matmul(v1.transpose(0, 1));
  auto [lm, vm] = psd_eigh(root1.matmul(s2).matmul(root1));
  const double tr_cross = lm.sqrt().sum().item<double>();
  const double mean_term = (m1 - m2).pow(2).sum().item<double>();
  const double fd = mean_term + s1.trace().item<double>() + s2.trace().item<double>() -
                    2.0 * tr_cross;
  // Round-off can leave −1e−12 for identical inputs.
  return std::max(fd, 0.0);
}

double frechet_distance(const FeatureStats& a, const FeatureStats& b) {
  return frechet_distance(a.mean, a.cov, b.mean, b.cov);
}

double classification_accuracy(const at::Tensor& logits, const at::Tensor& labels) {
  if (logits.dim() != 2 || labels.dim() != 1 || logits.size(0) != labels.size(0))
    throw std::invalid_argument("classification_accuracy: need logits (N, K) and labels (N)");
  auto y = labels.to(torch::kCPU, torch::kLong);
  auto pred = logits.detach().argmax(1).to(torch::kCPU);
  auto known = y >= 0;
  const int64_t n = known.sum().item<int64_t>();
  if (n == 0) return std::numeric_limits<double>::quiet_NaN();
  const int64_t right = (pred.eq(y) & known).sum().item<int64_t>();
  return static_cast<double>(right) / static_cast<double>(n);
}

}  // namespace difflab

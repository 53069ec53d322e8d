// Feature statistics and the Fréchet distance between two Gaussians fitted to them
// (Dowson & Landau 1982; as the FID of Heusel et al. 2017, on our own classifier's
// features), plus the accuracy of a classifier against requested labels.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace difflab {

// Mean and covariance of a set of feature vectors, in double.
struct FeatureStats {
  at::Tensor mean;  // (D) float64
  at::Tensor cov;   // (D, D) float64, unbiased (divides by n − 1)
  int64_t n = 0;
};

// Statistics of features (N, D), N >= 2; any floating dtype, any device (computed on the CPU).
FeatureStats feature_stats(const at::Tensor& features);

// d² = |μ₁ − μ₂|² + tr Σ₁ + tr Σ₂ − 2 tr √(Σ₁^½ Σ₂ Σ₁^½), the squared 2-Wasserstein
// distance between N(μ₁, Σ₁) and N(μ₂, Σ₂). The matrix square roots come from symmetric
// eigendecompositions with round-off negative eigenvalues clamped to zero.
double frechet_distance(const at::Tensor& mu1, const at::Tensor& cov1, const at::Tensor& mu2,
                        const at::Tensor& cov2);
double frechet_distance(const FeatureStats& a, const FeatureStats& b);

// Share of rows whose argmax of `logits` (N, K) equals `labels` (N); rows with a label < 0
// (unconditional samples) are left out. NaN when no row has a label.
double classification_accuracy(const at::Tensor& logits, const at::Tensor& labels);

}  // namespace difflab

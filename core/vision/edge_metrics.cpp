#include "core/vision/edge_metrics.h"

#include <torch/torch.h>

#include <stdexcept>
#include <string>

namespace difflab {
namespace {

at::Tensor as_mask(const at::Tensor& t, const char* what) {
  if (!t.defined() || (t.dim() != 3 && !(t.dim() == 4 && t.size(1) == 1)))
    throw std::invalid_argument(std::string("edge_f1: ") + what +
                                " must be (B, 1, H, W) or (B, H, W)");
  return (t.dim() == 3 ? t.unsqueeze(1) : t).gt(0.5).to(torch::kFloat32);
}

// Pixels within `tolerance` (Chebyshev) of a set pixel.
at::Tensor near(const at::Tensor& mask, int tolerance) {
  if (tolerance == 0) return mask;
  return torch::max_pool2d(mask, {2 * tolerance + 1, 2 * tolerance + 1}, {1, 1},
                           {tolerance, tolerance});
}

}  // namespace

EdgeScores edge_f1(const at::Tensor& predicted, const at::Tensor& reference, int tolerance) {
  if (tolerance < 0) throw std::invalid_argument("edge_f1: tolerance must be >= 0");
  const auto pred = as_mask(predicted, "predicted");
  const auto ref = as_mask(reference, "reference").to(pred.device());
  if (pred.sizes() != ref.sizes())
    throw std::invalid_argument("edge_f1: predicted and reference differ in shape");
  const auto n_pred = pred.sum({1, 2, 3});
  const auto n_ref = ref.sum({1, 2, 3});
  const auto pred_hit = (pred * near(ref, tolerance)).sum({1, 2, 3});
  const auto ref_hit = (ref * near(pred, tolerance)).sum({1, 2, 3});
  auto precision = pred_hit / n_pred.clamp_min(1.0);
  auto recall = ref_hit / n_ref.clamp_min(1.0);
  auto f1 = 2.0 * precision * recall / (precision + recall).clamp_min(1e-12);
  // Empty maps: both → perfect agreement, one → none (the formulas above give 0 already for
  // the side that is empty; make the other side 0 as well).
  const auto pred_empty = n_pred == 0, ref_empty = n_ref == 0;
  const auto both = pred_empty.logical_and(ref_empty);
  const auto one = pred_empty.logical_xor(ref_empty);
  const auto one_f = torch::ones_like(f1), zero_f = torch::zeros_like(f1);
  precision = torch::where(both, one_f, torch::where(one, zero_f, precision));
  recall = torch::where(both, one_f, torch::where(one, zero_f, recall));
  f1 = torch::where(both, one_f, torch::where(one, zero_f, f1));
  return {precision, recall, f1};
}

}  // namespace difflab

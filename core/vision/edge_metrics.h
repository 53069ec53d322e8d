// Agreement between two edge maps: precision, recall and F1 with a pixel tolerance, as the
// boundary F-measure of Martin et al. (2004, BSDS) with a square window instead of a bipartite
// matching. Used to check that samples follow their hints (issue 5).
#pragma once

#include <ATen/core/Tensor.h>

namespace difflab {

struct EdgeScores {
  at::Tensor precision, recall, f1;  // each (B) float32
};

// predicted, reference: (B, 1, H, W) or (B, H, W), edge where > 0.5, any device.
// precision = share of predicted edge pixels within `tolerance` px (Chebyshev: a (2t+1)² window)
// of a reference edge pixel; recall = share of reference edge pixels within `tolerance` px of a
// predicted one; F1 = 2PR / (P + R) (0 when P + R = 0). Both maps empty: P = R = F1 = 1; exactly
// one empty: P = R = F1 = 0.
EdgeScores edge_f1(const at::Tensor& predicted, const at::Tensor& reference, int tolerance = 1);

}  // namespace difflab

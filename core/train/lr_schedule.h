// The learning rate at a step: a linear warm-up from 0, then held or decayed to lr_min.
//
// Warm-up: step s (0-based) of the first `warmup` runs at lr (s + 1) / warmup. After it,
// with p = (s − warmup) / (total − warmup) in [0, 1]:
//   constant  lr
//   cosine    lr_min + (lr − lr_min) (1 + cos π p) / 2   (SGDR without restarts,
//                                                          Loshchilov & Hutter 2017)
//   linear    lr − (lr − lr_min) p
// so the first step after warm-up runs at lr, the run's last step (total − 1) just above
// lr_min (as PyTorch's CosineAnnealingLR with T_max = the steps after warm-up: a last
// step at lr_min = 0 would be wasted) and any step at or past `total` at lr_min (every
// step after warm-up, when total ≤ warmup). A decayed rate ends a run on settled weights
// rather than on a point of a large-step walk.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/config/enums.h"

namespace difflab {

struct LrSchedule {
  double lr = 1e-3;
  int64_t warmup = 0;
  LrScheduleKind kind = LrScheduleKind::Constant;
  double lr_min = 0.0;
  int64_t total = 0;  // the run's steps: the decay ends here

  double at(int64_t step) const {
    if (warmup > 0 && step < warmup)
      return lr * static_cast<double>(step + 1) / static_cast<double>(warmup);
    if (kind == LrScheduleKind::Constant) return lr;
    // A run that ends within its warm-up has nothing to decay over: lr_min after it.
    const double p = total <= warmup ? 1.0
                                     : std::clamp(static_cast<double>(step - warmup) /
                                                      static_cast<double>(total - warmup),
                                                  0.0, 1.0);
    if (kind == LrScheduleKind::Linear) return lr - (lr - lr_min) * p;
    return lr_min + (lr - lr_min) * 0.5 * (1.0 + std::cos(M_PI * p));
  }
};

}  // namespace difflab

// Timestep embeddings and the activation switch shared by the networks.
#pragma once

#include <ATen/core/Tensor.h>

#include "core/config/enums.h"

namespace difflab {

// Sinusoidal embedding of (possibly fractional) timesteps (Vaswani et al. 2017, §3.5;
// as in Ho et al. 2020): [cos(t·f_i), sin(t·f_i)], f_i = max_period^(−i/half).
at::Tensor timestep_embedding(const at::Tensor& t, int dim, double max_period = 10000.0);

at::Tensor activate(const at::Tensor& x, Activation act);
// The same on a temporary the caller no longer needs: in place when no gradient is being
// recorded (sampling), which saves an allocation and a pass over memory per layer.
at::Tensor activate_temporary(at::Tensor x, Activation act);

}  // namespace difflab

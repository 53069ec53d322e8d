// Factories of the concrete samplers, one file each (ddpm.cpp, ddim.cpp). Internal to
// core/sampling: callers use make_sampler().
#pragma once

#include <memory>

#include "core/sampling/sampler.h"

namespace difflab {

std::unique_ptr<Sampler> make_ddpm_sampler(VarianceKind variance);
std::unique_ptr<Sampler> make_ddim_sampler(double eta);

// Standard normal noise shaped like `like`, drawn on the CPU from `gen` (so a seed gives
// the same images on every device) and moved to like's device.
at::Tensor noise_like(const at::Tensor& like, at::Generator& gen);

}  // namespace difflab

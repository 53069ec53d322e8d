// Factories of the concrete samplers, one file each (ddpm.cpp, ddim.cpp, euler.cpp, ...).
// Internal to core/sampling: callers use make_sampler().
#pragma once

#include <memory>

#include "core/sampling/sampler.h"

namespace difflab {

std::unique_ptr<Sampler> make_ddpm_sampler(VarianceKind variance);
std::unique_ptr<Sampler> make_ddim_sampler(double eta);
// σ-space samplers (see sigmas.h), one file each.
std::unique_ptr<Sampler> make_euler_sampler(SigmaSpacing spacing, double rho);
std::unique_ptr<Sampler> make_euler_ancestral_sampler(SigmaSpacing spacing, double rho);
std::unique_ptr<Sampler> make_heun_sampler(SigmaSpacing spacing, double rho);
std::unique_ptr<Sampler> make_dpmpp_2m_sampler(SigmaSpacing spacing, double rho);

// Standard normal noise shaped like `like`, drawn on the CPU from `gen` (so a seed gives
// the same images on every device) and moved to like's device.
at::Tensor noise_like(const at::Tensor& like, at::Generator& gen);

}  // namespace difflab

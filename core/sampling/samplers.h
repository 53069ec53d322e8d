// What the sampler files share. Internal to core/sampling: callers use make_sampler(), and
// each file's make_*_sampler(const SampleConfig&) factory is listed in sampler_registry.cpp.
#pragma once

#include <memory>

#include "core/sampling/sampler.h"

namespace difflab {

// Standard normal noise shaped like `like`, drawn on the CPU from `gen` (so a seed gives
// the same images on every device) and moved to like's device.
at::Tensor noise_like(const at::Tensor& like, at::Generator& gen);

}  // namespace difflab

// What the sampler files share. Internal to core/sampling: callers use make_sampler(), and
// each file's make_*_sampler(const SampleConfig&) factory is listed in sampler_registry.cpp.
#pragma once

#include <memory>

#include "core/sampling/sampler.h"

// The sampling options shared by the commands that sample from a checkpoint (sample, eval):
// sampler, steps, eta, variance, sigmas, rho, guidance, class, seed, classifier.
#pragma once

#include <string>
#include <vector>

#include "app/cli/args.h"
#include "core/config/config.h"

namespace difflab::cli {

// --sampler --steps --eta --variance --sigmas --rho --guidance --class --seed --classifier
// --classifier-scale
std::vector<OptionSpec> sampling_options();
// `base` (a checkpoint's sample section) with the options given applied; choosing
// --sampler ddpm without --steps takes all `timesteps` steps, as `sample` does.
SampleConfig apply_sampling_options(const Args& args, SampleConfig base, int timesteps);
// The checkpoint named by --checkpoint, else the newest one of --run (default runs/mnist).
std::string checkpoint_from_args(const Args& args);

}  // namespace difflab::cli

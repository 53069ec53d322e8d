// UNet denoiser for images (Ho et al. 2020; improved-diffusion's layout): residual
// blocks with timestep (+ class) embedding, self-attention at chosen resolutions,
// down-sampling by strided convs, up-sampling by nearest + conv to the skip's size, so
// odd sizes (28 -> 14 -> 7 -> 4 and back) work.
#pragma once

#include "core/model/denoiser_net.h"

namespace difflab {

// `learn_sigma`: 2·C output channels (prediction, then the variance interpolation v).
DenoiserNet make_unet(const ModelConfig& config, const DataShape& shape, bool learn_sigma = false);

}  // namespace difflab

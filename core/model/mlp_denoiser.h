// Small MLP denoiser for 2-D point data: [x, emb(t) (+ emb(y))] -> residual MLP -> 2.
#pragma once

#include "core/model/denoiser_net.h"

namespace difflab {

// `learn_sigma`: 4 outputs (the point's prediction, then the variance interpolation v).
DenoiserNet make_mlp_denoiser(const ModelConfig& config, const DataShape& shape,
                              bool learn_sigma = false);

}  // namespace difflab

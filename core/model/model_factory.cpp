#include <torch/torch.h>

#include <stdexcept>

#include "core/model/denoiser_net.h"
#include "core/model/mlp_denoiser.h"
#include "core/model/unet.h"

namespace difflab {

DenoiserNet make_model(const ModelConfig& config, const DataShape& shape, bool learn_sigma) {
  switch (config.kind) {
    case ModelKind::UNet:
      if (shape.points)
        throw std::invalid_argument("model.kind unet needs image data; use model.kind mlp for 2-D points");
      return make_unet(config, shape, learn_sigma);
    case ModelKind::Mlp:
      if (!shape.points)
        throw std::invalid_argument("model.kind mlp is for 2-D point data; use model.kind unet for images");
      return make_mlp_denoiser(config, shape, learn_sigma);
    case ModelKind::Count:
      break;
  }
  throw std::invalid_argument("bad model kind");
}

DenoiserNet make_model(const Config& config, const DataShape& shape) {
  return make_model(config.model, shape, config.diffusion.learn_sigma);
}

int64_t count_parameters(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

void copy_weights(const torch::nn::Module& from, torch::nn::Module& to) {
  torch::NoGradGuard no_grad;
  auto src = from.named_parameters();
  for (auto& item : to.named_parameters()) item.value().copy_(src[item.key()]);
  auto src_buf = from.named_buffers();
  for (auto& item : to.named_buffers()) item.value().copy_(src_buf[item.key()]);
}

}  // namespace difflab

#include "core/model/embedding.h"

#include <torch/torch.h>

#include <cmath>

namespace difflab {

at::Tensor timestep_embedding(const at::Tensor& t, int dim, double max_period) {
  const int half = dim / 2;
  auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(t.device());
  auto freqs = torch::exp(-std::log(max_period) * torch::arange(half, opts) / half);
  auto args = t.to(torch::kFloat32).unsqueeze(1) * freqs.unsqueeze(0);
  auto emb = torch::cat({torch::cos(args), torch::sin(args)}, 1);
  if (dim % 2 == 1) emb = torch::cat({emb, torch::zeros({emb.size(0), 1}, opts)}, 1);
  return emb;
}

at::Tensor activate(const at::Tensor& x, Activation act) {
  switch (act) {
    case Activation::SiLU: return torch::silu(x);
    case Activation::ReLU: return torch::relu(x);
    case Activation::GELU: return torch::gelu(x);
    case Activation::Mish: return torch::mish(x);
    case Activation::Count: break;
  }
  return x;
}

at::Tensor activate_temporary(at::Tensor x, Activation act) {
  if (torch::GradMode::is_enabled()) return activate(x, act);
  switch (act) {
    case Activation::SiLU: return torch::silu_(x);
    case Activation::ReLU: return torch::relu_(x);
    case Activation::Mish: return torch::mish_(x);
    default: return activate(x, act);
  }
}

}  // namespace difflab

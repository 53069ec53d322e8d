// The network interface every denoiser implements: (x_t, t, y) -> model output.
//
// The output has the data's C channels for ε, x₀ or v prediction, or 2·C when the net
// learns its variance (diffusion.learn_sigma; the second half is the interpolation value v
// of Nichol & Dhariwal 2021, eq. 15). Which prediction it is lives in the Denoiser wrapper
// (core/sampling), not here, so samplers stay agnostic of the parameterisation.
#pragma once

#include <torch/nn/module.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <vector>

#include "core/config/config.h"

namespace difflab {

// What the data looks like to a model.
struct DataShape {
  int channels = 1;   // images: 1 or 3; 2-D points: 2
  int height = 28;    // 0 for points
  int width = 28;
  bool points = false;  // 2-D toy data, shape (B, 2)
  int num_classes = 0;  // 0 = unlabeled
};

class DenoiserNetImpl : public torch::nn::Module {
 public:
  // x: (B, C, H, W) or (B, 2); t: (B) float or int64 timesteps on the model's scale
  // (0..T-1); y: (B) int64 class labels where num_classes() is the "null" label, or an
  // undefined tensor for an unconditional model.
  virtual torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t,
                                const torch::Tensor& y) = 0;
  // The same with ControlNet residuals (Zhang et al. 2023) added to the net's skip
  // connections and middle block: one per skip, then the middle (see core/model/controlnet.h).
  // Only the UNet has them.
  virtual torch::Tensor forward_controlled(const torch::Tensor& x, const torch::Tensor& t,
                                           const torch::Tensor& y,
                                           const std::vector<torch::Tensor>& control) {
    if (control.empty()) return forward(x, t, y);
    throw std::invalid_argument("this network has no skip connections for a ControlNet");
  }
  // Number of real classes; labels equal to it mean "no class" (classifier-free guidance).
  virtual int num_classes() const = 0;
  // True when the output carries the learned-variance half (2·C channels).
  virtual bool learns_variance() const { return false; }
};

using DenoiserNet = std::shared_ptr<DenoiserNetImpl>;

// Puts a network in eval mode for a scope and restores the caller's mode on every exit,
// exceptions included (sampling, evaluation).
class EvalModeGuard {
 public:
  explicit EvalModeGuard(std::shared_ptr<torch::nn::Module> net)
      : m_net(std::move(net)), m_was_training(m_net->is_training()) {
    m_net->eval();
  }
  ~EvalModeGuard() { m_net->train(m_was_training); }
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;

 private:
  std::shared_ptr<torch::nn::Module> m_net;
  bool m_was_training;
};

// Builds the network the config asks for (UNet for images, MLP for 2-D points), with
// 2·C output channels when `learn_sigma`.
DenoiserNet make_model(const ModelConfig& config, const DataShape& shape, bool learn_sigma = false);
// The same from a whole config: model section plus diffusion.learn_sigma. Prefer this one.
DenoiserNet make_model(const Config& config, const DataShape& shape);
int64_t count_parameters(const torch::nn::Module& module);
// Copies every parameter and buffer of `from` into `to` (same architecture).
void copy_weights(const torch::nn::Module& from, torch::nn::Module& to);

}  // namespace difflab

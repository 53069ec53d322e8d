// ControlNet (Zhang et al. 2023): a trainable copy of a trained UNet's encoder and middle
// block that reads a hint image and steers the frozen base model through zero-initialised
// 1×1 convolutions added to the base's skip connections and middle block output.
//
//   residual_i = Z_i(F_copy(x_t + hint features)_i),  base decoder reads skip_i + s·residual_i
//
// While every Z_i is zero the base model's output is unchanged, exactly, so training starts
// from the base model and the hint's influence grows from nothing.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include <memory>
#include <vector>

#include "core/model/denoiser_net.h"
#include "core/model/hint_planes.h"

namespace difflab {


// The hint encoder's first convolution (kHintChannels inputs), which a checkpoint with
// fewer hint planes widens on loading (core/model/hint_planes.h).
constexpr const char* kHintInputWeight = "hint_encoder.0.weight";

class ControlNetImpl : public torch::nn::Module {
 public:
  // x_t, model timesteps and labels as for the base net; hint (B, kHintChannels, H, W).
  // Returns one residual per base skip connection, then one for the middle block.
  virtual std::vector<torch::Tensor> forward(const torch::Tensor& x, const torch::Tensor& t,
                                             const torch::Tensor& y,
                                             const torch::Tensor& hint) = 0;
  // Copies the base's encoder, middle block and embeddings into the trainable copy
  // (the hint encoder and zero convolutions keep their own initialisation). Throws
  // std::invalid_argument when `base` is not a UNet of the same architecture.
  virtual void copy_encoder_from(const DenoiserNetImpl& base) = 0;
  // The zero convolutions (hint encoder's last layer included): what makes a fresh
  // ControlNet a no-op.
  virtual std::vector<torch::Tensor> zero_conv_parameters() = 0;
};
using ControlNet = std::shared_ptr<ControlNetImpl>;

// A ControlNet for the UNet that `config` and `shape` build.
ControlNet make_controlnet(const ModelConfig& config, const DataShape& shape);

// The base net steered by a ControlNet with a fixed hint and conditioning scale: a
// DenoiserNet, so every sampler, guidance and the trajectory recorder work unchanged. The
// hint's batch is 1 (shared), B, or divides B (it is repeated: classifier-free guidance
// runs [conditional; unconditional] as one batch of 2B and both halves see the hint).
class ControlledNetImpl : public DenoiserNetImpl {
 public:
  ControlledNetImpl(DenoiserNet base, ControlNet control, torch::Tensor hint, double scale);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t,
                        const torch::Tensor& y) override;
  int num_classes() const override { return m_base->num_classes(); }
  bool learns_variance() const override { return m_base->learns_variance(); }

 private:
  DenoiserNet m_base;
  ControlNet m_control;
  torch::Tensor m_hint;
  double m_scale;
};

// `hint` with its batch brought to `batch` as ControlledNetImpl describes; throws
// std::invalid_argument when it cannot be.
torch::Tensor match_hint_batch(const torch::Tensor& hint, int64_t batch);

}  // namespace difflab

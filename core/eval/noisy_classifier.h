// Classifier guidance (Dhariwal & Nichol 2021, §4): a classifier p(y | x_t) trained on
// noisy images at every timestep, whose gradient ∇ₓ log p(y | x_t) steers any sampler.
//
// The network is a small UNet encoder: residual blocks that add a timestep embedding, two
// stride-2 downsamplings, global average pooling and a linear head.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <torch/nn/module.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/config/config.h"
#include "core/data/dataset.h"
#include "core/model/denoiser_net.h"
#include "core/sampling/sampler.h"
#include "core/train/checkpoint.h"  // CheckpointError

namespace difflab {

class NoisyClassifierImpl : public torch::nn::Module {
 public:
  // x: (B, C, H, W) noisy images; t: (B) timesteps on the model's scale (0..T−1).
  // Returns logits (B, num_classes()).
  virtual torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t) = 0;
  virtual int num_classes() const = 0;
};
using NoisyClassifier = std::shared_ptr<NoisyClassifierImpl>;

NoisyClassifier make_noisy_classifier(const DataShape& shape, int base_channels);

struct ClassifierTrainOptions {
  int64_t steps = 2000;
  int batch_size = 64;
  double lr = 1e-3;        // AdamW
  int base_channels = 32;  // widths base, 2·base
  uint64_t seed = 0;
};

struct ClassifierStep {
  int64_t step = 0;
  double loss = 0;      // cross-entropy of this batch
  double accuracy = 0;  // on this batch of noisy images
  NoisyClassifier net;  // the network being trained (for periodic checkpoints)
};

// Trains on data.train: x_t = q_sample(x₀, t, ε) at t uniform over the diffusion's
// timesteps (config.diffusion), cross-entropy against the labels. The callback sees every
// step and returns false to stop early.
NoisyClassifier train_noisy_classifier(const Config& config, const DatasetSplits& data,
                                       const ClassifierTrainOptions& options, c10::Device device,
                                       const std::function<bool(const ClassifierStep&)>& callback);

// Accuracy on up to `max_images` test images, noised at t evenly spread over [0, T).
double noisy_classifier_accuracy(const NoisyClassifier& classifier, const Config& config,
                                 const DatasetSplits& data, c10::Device device,
                                 int64_t max_images = 1000);

// Atomic write: the network, its base width, the data shape, the resolved config (its
// diffusion section defines the timesteps) and the step count.
void save_noisy_classifier(const NoisyClassifier& classifier, const Config& config,
                           const DataShape& shape, int base_channels, int64_t step,
                           const std::string& path);
struct NoisyClassifierInfo {
  Config config;
  DataShape shape;
  int base_channels = 0;
  int64_t step = 0;
};
// Throws CheckpointError naming the file and the problem.
NoisyClassifier load_noisy_classifier(const std::string& path, c10::Device device,
                                      NoisyClassifierInfo* info = nullptr);

// ∇ₓ log p(y | x_t) of `classifier` as a guidance function, scaled by `scale`. The gradient
// is taken with autograd even when the caller runs under InferenceMode (run_sampling does).
ClassifierGuidance make_classifier_guidance(NoisyClassifier classifier, double scale);
// The guidance `sample` asks for (sample.classifier, sample.classifier_scale), or an empty
// one when it asks for none, for SampleRequest::classifier: every caller of run_sampling
// resolves it here (core/sampling opens no files). Checks that the classifier was trained
// for the model's timesteps. Load it outside inference mode (its gradient needs autograd).
ClassifierGuidance load_classifier_guidance(const SampleConfig& sample, const SamplingModel& model,
                                            c10::Device device);

}  // namespace difflab

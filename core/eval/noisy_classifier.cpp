#include "core/eval/noisy_classifier.h"

#include <torch/torch.h>

#include <cmath>

#include "core/diffusion/gaussian_diffusion.h"
#include "core/eval/frechet.h"
#include "core/model/embedding.h"
#include "core/train/checkpoint_io.h"

namespace difflab {
namespace {

// GroupNorm groups (Wu & He 2018), as in the denoiser's UNet.
constexpr int kNormGroups = 8;

// GroupNorm → SiLU → conv, plus a projection of the timestep embedding added to the first
// conv's output (the ResBlock of Ho et al. 2020 without dropout).
class TimeResBlockImpl : public torch::nn::Module {
 public:
  TimeResBlockImpl(int in, int out, int emb_dim)
      : norm1(torch::nn::GroupNormOptions(kNormGroups, in)),
        conv1(torch::nn::Conv2dOptions(in, out, 3).padding(1)),
        emb(emb_dim, out),
        norm2(torch::nn::GroupNormOptions(kNormGroups, out)),
        conv2(torch::nn::Conv2dOptions(out, out, 3).padding(1)) {
    register_module("norm1", norm1);
    register_module("conv1", conv1);
    register_module("emb", emb);
    register_module("norm2", norm2);
    register_module("conv2", conv2);
    if (in != out) skip = register_module("skip", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1)));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& e) {
    auto h = conv1(torch::silu(norm1(x)));
    h = h + emb(torch::silu(e)).unsqueeze(-1).unsqueeze(-1);
    h = conv2(torch::silu(norm2(h)));
    return (skip ? skip(x) : x) + h;
  }
  torch::nn::GroupNorm norm1;
  torch::nn::Conv2d conv1;
  torch::nn::Linear emb;
  torch::nn::GroupNorm norm2;
  torch::nn::Conv2d conv2, skip{nullptr};
};
TORCH_MODULE(TimeResBlock);

class EncoderClassifier : public NoisyClassifierImpl {
 public:
  EncoderClassifier(const DataShape& shape, int base)
      : m_base(base),
        m_classes(shape.num_classes),
        time1(base, 4 * base),
        time2(4 * base, 4 * base),
        conv_in(torch::nn::Conv2dOptions(shape.channels, base, 3).padding(1)),
        block1(base, base, 4 * base),
        down1(torch::nn::Conv2dOptions(base, base, 3).stride(2).padding(1)),
        block2(base, 2 * base, 4 * base),
        down2(torch::nn::Conv2dOptions(2 * base, 2 * base, 3).stride(2).padding(1)),
        block3(2 * base, 2 * base, 4 * base),
        norm_out(torch::nn::GroupNormOptions(kNormGroups, 2 * base)),
        head(2 * base, shape.num_classes) {
    register_module("time1", time1);
    register_module("time2", time2);
    register_module("conv_in", conv_in);
    register_module("block1", block1);
    register_module("down1", down1);
    register_module("block2", block2);
    register_module("down2", down2);
    register_module("block3", block3);
    register_module("norm_out", norm_out);
    register_module("head", head);
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t) override {
    auto e = time2(torch::silu(time1(timestep_embedding(t.to(torch::kFloat32), m_base))));
    auto h = block1(conv_in(x), e);
    h = block2(down1(h), e);
    h = block3(down2(h), e);
    return head(torch::silu(norm_out(h)).mean({2, 3}));
  }
  int num_classes() const override { return m_classes; }

 private:
  int m_base, m_classes;
  torch::nn::Linear time1, time2;
  torch::nn::Conv2d conv_in;
  TimeResBlock block1;
  torch::nn::Conv2d down1;
  TimeResBlock block2;
  torch::nn::Conv2d down2;
  TimeResBlock block3;
  torch::nn::GroupNorm norm_out;
  torch::nn::Linear head;
};

GaussianDiffusion diffusion_of(const Config& config, c10::Device device) {
  return GaussianDiffusion(
      NoiseSchedule::named(config.diffusion.schedule, config.diffusion.timesteps),
      config.diffusion.prediction, device);
}

}  // namespace

NoisyClassifier make_noisy_classifier(const DataShape& shape, int base_channels) {
  if (shape.points) throw std::invalid_argument("the noisy classifier needs image data");
  if (shape.num_classes < 2)
    throw std::invalid_argument("the noisy classifier needs labelled data (>= 2 classes)");
  if (base_channels < kNormGroups || base_channels % kNormGroups != 0)
    throw std::invalid_argument("classifier base channels must be a multiple of " +
                                std::to_string(kNormGroups) + ", got " +
                                std::to_string(base_channels));
  return std::make_shared<EncoderClassifier>(shape, base_channels);
}

NoisyClassifier train_noisy_classifier(const Config& config, const DatasetSplits& data,
                                       const ClassifierTrainOptions& options, c10::Device device,
                                       const std::function<bool(const ClassifierStep&)>& callback) {
  torch::manual_seed(options.seed);
  auto net = make_noisy_classifier(data.shape, options.base_channels);
  net->to(device);
  net->train();
  const auto diffusion = diffusion_of(config, device);
  torch::optim::AdamW opt(net->parameters(), torch::optim::AdamWOptions(options.lr));
  BatchSampler batches(data.train.size(), options.batch_size, options.seed);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(options.seed + 1);
  for (int64_t step = 1; step <= options.steps; ++step) {
    auto index = batches.next();
    auto x0 = gather_batch(data.train, index).to(device);
    auto y = data.train.labels.index_select(0, index).to(device);
    auto t = torch::randint(diffusion.num_steps(), {x0.size(0)}, gen, torch::kLong).to(device);
    auto noise = torch::randn(x0.sizes(), gen, torch::kFloat32).to(device);
    auto logits = net->forward(diffusion.q_sample(x0, t, noise), diffusion.model_timesteps(t));
    auto loss = torch::cross_entropy_loss(logits, y);
    opt.zero_grad();
    loss.backward();
    opt.step();
    if (callback) {
      ClassifierStep s{step, loss.item<double>(), classification_accuracy(logits, y), net};
      if (!callback(s)) break;
    }
  }
  net->eval();
  return net;
}

double noisy_classifier_accuracy(const NoisyClassifier& classifier, const Config& config,
                                 const DatasetSplits& data, c10::Device device,
                                 int64_t max_images) {
  torch::NoGradGuard no_grad;
  classifier->eval();
  const auto diffusion = diffusion_of(config, device);
  const int64_t n = std::min(max_images, data.test.size());
  auto x0 = gather_batch(data.test, torch::arange(n, torch::kLong)).to(device);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  auto t = torch::div(torch::arange(n, torch::kLong) * diffusion.num_steps(), n, "floor").to(device);
  auto noise = torch::randn(x0.sizes(), gen, torch::kFloat32).to(device);
  auto logits = classifier->forward(diffusion.q_sample(x0, t, noise), diffusion.model_timesteps(t));
  return classification_accuracy(logits, data.test.labels.narrow(0, 0, n));
}

void save_noisy_classifier(const NoisyClassifier& classifier, const Config& config,
                           const DataShape& shape, int base_channels, int64_t step,
                           const std::string& path) {
  torch::serialize::OutputArchive archive;
  write_checkpoint_kind(archive, CheckpointKind::Classifier);
  archive.write("config", c10::IValue(config_to_yaml(config)));
  archive.write("base_channels", c10::IValue(static_cast<int64_t>(base_channels)));
  archive.write("step", c10::IValue(step));
  write_shape(archive, shape);
  write_module_weights(archive, "model", *classifier);
  save_archive_atomic(archive, path);
}

NoisyClassifier load_noisy_classifier(const std::string& path, c10::Device device,
                                      NoisyClassifierInfo* info_out) {
  const std::string what = "noise classifier checkpoint " + path + ": ";
  torch::serialize::InputArchive archive;
  open_checkpoint(path, archive, CheckpointKind::Classifier);
  NoisyClassifierInfo info;
  try {
    info.config = config_from_yaml(read_string(archive, "config", path), path + " (embedded config)");
  } catch (const ConfigError& e) {
    throw CheckpointError(what + "bad embedded config: " + e.what());
  }
  info.base_channels = static_cast<int>(read_int(archive, "base_channels", path));
  info.step = read_int(archive, "step", path);
  info.shape = read_shape(archive, path);
  NoisyClassifier net;
  try {
    net = make_noisy_classifier(info.shape, info.base_channels);
  } catch (const std::invalid_argument& e) {
    throw CheckpointError(what + e.what());
  }
  load_module(archive, "model", *net, path);
  net->to(device);
  net->eval();
  if (info_out) *info_out = info;
  return net;
}

ClassifierGuidance make_classifier_guidance(NoisyClassifier classifier, double scale) {
  classifier->eval();
  // Only the input's gradient is wanted; frozen weights keep autograd from tracking them.
  for (auto& p : classifier->parameters()) p.set_requires_grad(false);
  ClassifierGuidance g;
  g.scale = scale;
  g.num_classes = classifier->num_classes();
  g.gradient = [classifier](const at::Tensor& xt, const at::Tensor& model_t,
                            const at::Tensor& y) {
    // run_sampling holds an InferenceMode guard: tensors made under it cannot take part in
    // autograd. Leave it for this scope, switch gradients on, and differentiate with
    // respect to a fresh leaf copy of x_t (clones made here are ordinary tensors).
    c10::InferenceMode no_inference(false);
    torch::AutoGradMode grad_mode(true);
    auto x = xt.detach().clone().requires_grad_(true);
    auto logits = classifier->forward(x, model_t.clone());
    auto log_p = torch::log_softmax(logits, 1).gather(1, y.clone().to(torch::kLong).unsqueeze(1));
    auto grad = torch::autograd::grad({log_p.sum()}, {x})[0];
    return grad.detach();
  };
  return g;
}

ClassifierGuidance load_classifier_guidance(const SampleConfig& sample, const SamplingModel& model,
                                            c10::Device device) {
  if (sample.classifier.empty() || sample.classifier_scale == 0.0) return {};
  NoisyClassifierInfo info;
  auto net = load_noisy_classifier(sample.classifier, device, &info);
  const int timesteps = model.schedule.size();
  if (info.config.diffusion.timesteps != timesteps)
    throw CheckpointError("noise classifier checkpoint " + sample.classifier + ": trained for " +
                          std::to_string(info.config.diffusion.timesteps) +
                          " timesteps but the model uses " + std::to_string(timesteps));
  return make_classifier_guidance(net, sample.classifier_scale);
}

}  // namespace difflab

// The CUDA path (ctest -L gpu): the MNIST preset's UNet, the Trainer, the samplers and
// checkpoints on a CUDA device, each against the same code on the CPU. Every test skips
// itself where LibTorch sees no GPU (Debian's CPU LibTorch, a machine without one), and
// fails instead when DIFFLAB_EXPECT_CUDA=1, so a GPU run cannot pass by skipping.
//
// Tolerances: cuDNN runs float32 convolutions in TF32 by default on Ampere and later
// (10-bit mantissa), so CPU and CUDA agree to about 1e-3 relative per network call, not
// to float32 rounding; each test prints the difference it measured.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/config/config.h"
#include "core/data/dataset.h"
#include "core/model/attention_kernel.h"
#include "core/model/denoiser_net.h"
#include "core/model/hashed_dropout.h"
#include "core/train/controlnet_trainer.h"
#include "core/train/trainer.h"
#include "core/util/device_copy.h"
#include "core/util/runtime.h"

using namespace difflab;
namespace fs = std::filesystem;

namespace {

const c10::Device kCuda(torch::kCUDA, 0);

bool cuda_expected() {
  const char* v = std::getenv("DIFFLAB_EXPECT_CUDA");
  return v && std::string(v) == "1";
}

class Cuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (torch::cuda::is_available()) return;
    if (cuda_expected())
      FAIL() << "DIFFLAB_EXPECT_CUDA=1, but LibTorch sees no CUDA GPU: a LibTorch without "
                "CUDA, libtorch_cuda not loaded, or no driver";
    GTEST_SKIP() << "no CUDA GPU visible to LibTorch (" << runtime_summary(torch::kCPU) << ")";
  }
};

std::string temp_dir(const std::string& name) {
  const fs::path dir = fs::path(DIFFLAB_TEST_TMP) / ("cuda_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.detach().to(torch::kCPU, torch::kDouble) - b.detach().to(torch::kCPU, torch::kDouble))
      .abs()
      .max()
      .item<double>();
}

// ||a − b|| / ||a|| over every tensor of two lists (gradients of the same network).
double relative_error(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto x = a[i].to(torch::kCPU, torch::kDouble), y = b[i].to(torch::kCPU, torch::kDouble);
    num += (x - y).pow(2).sum().item<double>();
    den += x.pow(2).sum().item<double>();
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

// The reference preset's DDPM twin (configs/mnist_ddpm.yaml: the DDPM samplers below
// apply to it), with its real UNet: attention at 7×7 (the custom attention kernel) and
// dropout 0.1 (hashed dropout).
Config mnist_preset() {
  Config c = load_config(std::string(DIFFLAB_SOURCE_DIR) + "/configs/mnist_ddpm.yaml");
  c.train.batch_size = 16;
  c.sample.n = 8;
  c.sample.steps = 10;
  return c;
}

// The same preset with every output layer initialised (not zeroed) and no dropout, so
// that outputs depend on the weights and both devices compute the same function.
Config comparable_preset() {
  Config c = mnist_preset();
  c.model.zero_init_last = false;
  c.model.dropout = 0.0;
  return c;
}

// Random 28×28 grey digits-to-be with 10 labels: MNIST's shape without the files.
std::shared_ptr<DatasetSplits> mnist_shaped(int64_t n = 256) {
  auto data = std::make_shared<DatasetSplits>();
  auto make = [](int64_t count, uint64_t seed) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    TensorDataset s;
    s.data = torch::randint(0, 256, {count, 1, 28, 28}, gen, torch::kUInt8);
    s.labels = torch::randint(0, 10, {count}, gen, torch::kLong);
    return s;
  };
  data->train = make(n, 1);
  data->test = make(64, 2);
  data->shape = DataShape{1, 28, 28, false, 10};
  for (int k = 0; k < 10; ++k) data->class_names.push_back(std::to_string(k));
  return data;
}

}  // namespace

TEST_F(Cuda, DeviceChoiceFindsTheGpu) {
  EXPECT_TRUE(choose_device("auto").is_cuda());
  EXPECT_TRUE(choose_device("cuda").is_cuda());
  EXPECT_TRUE(choose_device("cpu").is_cpu());
  std::printf("%s, %d GPU(s)\n", runtime_summary(kCuda).c_str(),
              static_cast<int>(torch::cuda::device_count()));
}

TEST_F(Cuda, MnistUNetForwardAndBackwardMatchTheCpu) {
  const Config c = comparable_preset();
  const DataShape shape{1, 28, 28, false, 10};
  torch::manual_seed(0);
  auto cpu = make_model(c, shape);
  auto gpu = make_model(c, shape);
  copy_weights(*cpu, *gpu);
  gpu->to(kCuda);
  cpu->eval();
  gpu->eval();  // no dropout: the same function on both devices

  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  const auto x = torch::randn({8, 1, 28, 28}, gen, torch::kFloat32);
  const auto t = torch::randint(0, 1000, {8}, gen, torch::kLong).to(torch::kFloat32);
  const auto y = torch::randint(0, 11, {8}, gen, torch::kLong);  // 10 = the null label
  const auto out_cpu = cpu->forward(x, t, y);
  const auto out_gpu = gpu->forward(x.to(kCuda), t.to(kCuda), y.to(kCuda));
  ASSERT_TRUE(out_gpu.is_cuda());
  const double scale = std::max(1.0, out_cpu.abs().max().item<double>());
  const double diff = max_abs_diff(out_cpu, out_gpu);
  std::printf("forward: max |cpu - cuda| = %.3g (output scale %.3g)\n", diff, scale);
  EXPECT_LT(diff, 1e-2 * scale);

  out_cpu.pow(2).mean().backward();
  out_gpu.pow(2).mean().backward();
  std::vector<at::Tensor> g_cpu, g_gpu;
  for (const auto& p : cpu->parameters()) g_cpu.push_back(p.grad());
  for (const auto& p : gpu->parameters()) {
    ASSERT_TRUE(p.grad().defined());
    EXPECT_TRUE(p.grad().is_cuda());
    EXPECT_TRUE(torch::isfinite(p.grad()).all().item<bool>());
    g_gpu.push_back(p.grad());
  }
  const double rel = relative_error(g_cpu, g_gpu);
  std::printf("backward: |g_cpu - g_cuda| / |g_cpu| = %.3g\n", rel);
  EXPECT_LT(rel, 1e-2);

  // Training mode with the preset's dropout: the CUDA fallbacks run under autograd.
  auto trained = make_model(mnist_preset(), shape);
  trained->to(kCuda);
  trained->train();
  const auto loss = trained->forward(x.to(kCuda), t.to(kCuda), y.to(kCuda)).pow(2).mean();
  loss.backward();
  for (const auto& p : trained->parameters()) ASSERT_TRUE(p.grad().defined());
}

TEST_F(Cuda, AttentionKernelFallsBackToTorchOpsOnCuda) {
  // (batch·heads, d, L) as the preset's 7×7 attention: 4 heads of 32 channels.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const auto q = torch::randn({16, 32, 49}, gen, torch::kFloat32).requires_grad_(true);
  const auto k = torch::randn({16, 32, 49}, gen, torch::kFloat32).requires_grad_(true);
  const auto v = torch::randn({16, 32, 49}, gen, torch::kFloat32).requires_grad_(true);
  const auto qg = q.detach().to(kCuda).requires_grad_(true);
  const auto kg = k.detach().to(kCuda).requires_grad_(true);
  const auto vg = v.detach().to(kCuda).requires_grad_(true);
  const double scale = 1.0 / std::sqrt(32.0);
  const auto out_cpu = multihead_attention(q, k, v, scale);  // the BLAS kernel
  const auto out_gpu = multihead_attention(qg, kg, vg, scale);
  ASSERT_TRUE(out_gpu.is_cuda());
  EXPECT_LT(max_abs_diff(out_cpu, out_gpu), 1e-3);
  out_cpu.sum().backward();
  out_gpu.sum().backward();
  EXPECT_LT(max_abs_diff(q.grad(), qg.grad()), 1e-3);
  EXPECT_LT(max_abs_diff(k.grad(), kg.grad()), 1e-3);
  EXPECT_LT(max_abs_diff(v.grad(), vg.grad()), 1e-3);
  // Mixed inputs never reach the CPU kernel either: a CPU query with CUDA keys is an error
  // from torch's own device check, not a read of device memory through data_ptr.
  EXPECT_THROW(multihead_attention(q.detach(), kg.detach(), vg.detach(), scale), c10::Error);
}

TEST_F(Cuda, HashedDropoutFallsBackToTorchDropoutOnCuda) {
  const double p = 0.25;
  const auto x = torch::ones({64, 32, 14, 14}, torch::TensorOptions().device(kCuda));
  set_dropout_seed(7);
  const auto y = hashed_dropout(x, p);
  ASSERT_TRUE(y.is_cuda());
  const double dropped = (y == 0).to(torch::kDouble).mean().item<double>();
  EXPECT_NEAR(dropped, p, 0.01);
  const auto kept = y.masked_select(y != 0);
  EXPECT_NEAR(kept.min().item<double>(), 1.0 / (1.0 - p), 1e-6);
  EXPECT_NEAR(kept.max().item<double>(), 1.0 / (1.0 - p), 1e-6);
  EXPECT_TRUE(hashed_dropout(x, 0.0).is_same(x));
}

TEST_F(Cuda, TrainerStepsOnCudaAndTheFirstLossMatchesTheCpu) {
  auto data = mnist_shaped();
  // Batches, t and noise come from the run's CPU generator: the first step sees the same
  // inputs on both devices, so (without dropout) the same loss.
  const Config c = comparable_preset();
  Trainer cpu(c, data, torch::kCPU);
  Trainer gpu(c, data, kCuda);
  const StepResult rc = cpu.train_step();
  // On CUDA the losses wait on the device (train.loss_read_every auto = 16) until read.
  EXPECT_FALSE(gpu.train_step().measured);
  gpu.read_back();
  const StepResult rg = gpu.take_measured().at(0);
  std::printf("first loss: cpu %.6f, cuda %.6f\n", rc.loss, rg.loss);
  EXPECT_NEAR(rg.loss, rc.loss, 1e-2 * std::max(1.0, rc.loss));

  // The preset as it is (dropout 0.1, zero-initialised outputs) trains on CUDA.
  Trainer preset(mnist_preset(), data, kCuda);
  EXPECT_EQ(preset.loss_read_every(), 16);
  double first = 0.0, last = 0.0;
  for (int i = 0; i < 5; ++i) preset.train_step();
  preset.read_back();
  const auto results = preset.take_measured();
  ASSERT_EQ(results.size(), 5u);
  for (const StepResult& r : results) {
    ASSERT_TRUE(std::isfinite(r.loss)) << "step " << r.step;
    ASSERT_TRUE(std::isfinite(r.grad_norm)) << "step " << r.step;
    (r.step == 1 ? first : last) = r.loss;
  }
  std::printf("preset on cuda: loss %.4f -> %.4f in 5 steps\n", first, last);
  EXPECT_EQ(preset.step(), 5);
  for (const auto& p : preset.model()->parameters()) EXPECT_TRUE(p.is_cuda());
  for (const auto& p : preset.ema_model()->parameters()) EXPECT_TRUE(p.is_cuda());
  EXPECT_TRUE(std::isfinite(preset.evaluate(2)));
}

TEST_F(Cuda, ControlNetTrainsOnCudaReadingItsLossEvery16Steps) {
  const auto dir = temp_dir("controlnet");
  auto data = mnist_shaped();
  Config c = comparable_preset();
  Trainer base(c, data, torch::kCPU);
  base.train_step();
  c.controlnet.base_checkpoint = dir + "/base.pt";
  base.save_checkpoint(c.controlnet.base_checkpoint);
  c.controlnet.batch_size = 16;
  c.controlnet.hint = HintKind::Mixed;  // canny on the device, scribbles from the CPU generator
  ControlNetTrainer cpu(c, data, torch::kCPU);
  ControlNetTrainer gpu(c, data, kCuda);
  EXPECT_EQ(cpu.loss_read_every(), 1);
  EXPECT_EQ(gpu.loss_read_every(), 16);
  // A fresh ControlNet adds zeros: the first step's loss is the base's on the same batch,
  // t, noise and hints, on either device.
  const ControlNetStepResult rc = cpu.train_step();
  EXPECT_FALSE(gpu.train_step().measured);
  for (int i = 0; i < 4; ++i) gpu.train_step();
  gpu.read_back();
  const auto read = gpu.take_measured();
  ASSERT_EQ(read.size(), 5u);
  std::printf("ControlNet first loss: cpu %.6f, cuda %.6f\n", rc.loss, read[0].loss);
  EXPECT_NEAR(read[0].loss, rc.loss, 1e-2 * std::max(1.0, rc.loss));
  for (const ControlNetStepResult& r : read) {
    EXPECT_TRUE(std::isfinite(r.loss)) << "step " << r.step;
    EXPECT_TRUE(std::isfinite(r.grad_norm)) << "step " << r.step;
  }
  for (const auto& p : gpu.controlnet()->parameters()) EXPECT_TRUE(p.is_cuda());
  EXPECT_TRUE(std::isfinite(gpu.evaluate(1)));
  // Its checkpoint continues on the CPU.
  gpu.save(dir + "/controlnet.pt");
  ControlNetTrainer back(c, data, torch::kCPU);
  EXPECT_TRUE(back.resume(dir + "/controlnet.pt"));
  EXPECT_EQ(back.step(), 5);
  EXPECT_TRUE(std::isfinite(back.train_step().loss));
}

TEST_F(Cuda, CopiesToTheDeviceDoNotWaitAndKeepTheirValues) {
  // to_device queues the copy (pinned staging, non-blocking): the values are those of the
  // moment of the call, even when the CPU tensor changes right after, behind queued work.
  auto big = torch::randn({2048, 2048}, torch::TensorOptions().device(kCuda));
  for (int i = 0; i < 8; ++i) big = big.matmul(big).tanh_();  // work ahead of the copy
  auto cpu = torch::arange(1 << 20, torch::kFloat32);
  const auto expected = cpu.clone();
  const auto on_gpu = to_device(cpu, kCuda);
  cpu.fill_(-1.0f);
  EXPECT_TRUE(on_gpu.is_cuda());
  EXPECT_TRUE(torch::equal(on_gpu.to(torch::kCPU), expected));
  const auto as_half = to_device(expected, kCuda, torch::kHalf);
  EXPECT_EQ(as_half.scalar_type(), torch::kHalf);
  EXPECT_TRUE(as_half.is_cuda());
}

TEST_F(Cuda, ADeferredReadBackUndoesANonFiniteStepOnTheDevice) {
  // 2-D points with one NaN row (in the third batch): read each step, the run stops at step
  // 3; with CUDA's default read-back (every 16) the 16th call finds it and leaves the weights
  // of step 2, as the first did.
  auto data = std::make_shared<DatasetSplits>();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  data->train.data = torch::randn({64, 2}, gen, torch::kFloat32);
  BatchSampler order(64, 16, Config().train.seed);
  order.next();
  order.next();
  data->train.data[order.next()[5].item<int64_t>()].fill_(std::nanf(""));
  data->train.labels = torch::zeros({64}, torch::kLong);
  data->test = data->train;
  data->shape = DataShape{2, 0, 0, true, 1};
  Config c;
  c.model.kind = ModelKind::Mlp;
  c.model.class_conditional = false;
  c.model.zero_init_last = false;
  c.diffusion.timesteps = 50;
  c.train.batch_size = 16;
  c.train.loss_read_every = 1;
  Trainer each(c, data, kCuda);
  c.train.loss_read_every = 0;
  Trainer deferred(c, data, kCuda);
  std::string a, b;
  int calls = 0;
  try {
    for (int i = 0; i < 20; ++i) each.train_step();
  } catch (const TrainingError& e) {
    a = e.what();
  }
  try {
    for (; calls < 20; ++calls) deferred.train_step();
  } catch (const TrainingError& e) {
    b = e.what();
  }
  EXPECT_NE(a.find("at step 3;"), std::string::npos) << a;
  EXPECT_EQ(b, a);
  EXPECT_EQ(calls, 15);
  EXPECT_EQ(deferred.step(), 2);
  const auto pa = each.model()->parameters(), pb = deferred.model()->parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_LT(max_abs_diff(pa[i], pb[i]), 1e-6);
}

TEST_F(Cuda, ASeedGivesTheSameSamplesOnCpuAndCuda) {
  auto data = mnist_shaped();
  const Config c = comparable_preset();
  // Same train.seed: the same initial weights on both devices, no training needed.
  Trainer cpu(c, data, torch::kCPU);
  Trainer gpu(c, data, kCuda);
  struct Case {
    const char* name;
    SamplerKind kind;
    double eta;
  };
  // DDIM η = 0 draws noise once, DDPM and DDIM η = 1 every step, Euler ancestral in σ-space.
  for (const Case& k : {Case{"ddim", SamplerKind::Ddim, 0.0}, Case{"ddim eta=1", SamplerKind::Ddim, 1.0},
                        Case{"ddpm", SamplerKind::Ddpm, 0.0},
                        Case{"euler_ancestral", SamplerKind::EulerAncestral, 0.0}}) {
    SampleConfig sc = c.sample;
    sc.sampler = k.kind;
    sc.eta = k.eta;
    sc.seed = 1234;
    const auto a = cpu.sample(sc).images;
    const auto b = gpu.sample(sc).images;
    ASSERT_TRUE(b.device().is_cpu());  // results always come back as CPU tensors
    ASSERT_EQ(a.sizes(), b.sizes());
    const double max_diff = max_abs_diff(a, b);
    const double mean_diff = (a - b).abs().mean().item<double>();
    std::printf("%-16s max |cpu - cuda| = %.3g, mean %.3g\n", k.name, max_diff, mean_diff);
    EXPECT_LT(max_diff, 5e-2) << k.name;
    EXPECT_LT(mean_diff, 5e-3) << k.name;
    // Another seed gives other images (the comparison above is not vacuous).
    sc.seed = 99;
    EXPECT_GT(max_abs_diff(a, gpu.sample(sc).images), 1e-2) << k.name;
  }
}

TEST_F(Cuda, CheckpointSavedOnCudaLoadsOnTheCpu) {
  const auto dir = temp_dir("to_cpu");
  auto data = mnist_shaped();
  const Config c = mnist_preset();
  Trainer gpu(c, data, kCuda);
  for (int i = 0; i < 3; ++i) gpu.train_step();
  const std::string path = dir + "/step_3.pt";
  gpu.save_checkpoint(path);

  // The sampling loader: EMA weights, bit for bit, on the CPU.
  auto net = load_checkpoint_model(path, /*use_ema=*/true, torch::kCPU);
  const auto ours = net->parameters(), theirs = gpu.ema_model()->parameters();
  ASSERT_EQ(ours.size(), theirs.size());
  for (size_t i = 0; i < ours.size(); ++i) {
    ASSERT_TRUE(ours[i].is_cpu());
    ASSERT_TRUE(torch::equal(ours[i], theirs[i].to(torch::kCPU)));
  }
  // A CPU trainer resumes the run and trains on.
  Trainer cpu(c, data, torch::kCPU);
  cpu.load_checkpoint(path);
  EXPECT_EQ(cpu.step(), 3);
  EXPECT_TRUE(std::isfinite(cpu.train_step().loss));
}

TEST_F(Cuda, CheckpointSavedOnTheCpuResumesOnCuda) {
  const auto dir = temp_dir("to_cuda");
  auto data = mnist_shaped();
  const Config c = mnist_preset();
  Trainer cpu(c, data, torch::kCPU);
  for (int i = 0; i < 3; ++i) cpu.train_step();
  const std::string path = dir + "/step_3.pt";
  cpu.save_checkpoint(path);

  Trainer gpu(c, data, kCuda);
  gpu.load_checkpoint(path);
  EXPECT_EQ(gpu.step(), 3);
  for (const auto& p : gpu.model()->parameters()) EXPECT_TRUE(p.is_cuda());
  // AdamW's moments come back from the file as CPU tensors; they must follow the
  // parameters to the device before the next step.
  try {
    gpu.train_step();
    gpu.read_back();  // CUDA reads the losses every 16 steps unless asked
    const auto read = gpu.take_measured();
    ASSERT_EQ(read.size(), 1u);
    EXPECT_TRUE(std::isfinite(read[0].loss));
  } catch (const c10::Error& e) {
    ADD_FAILURE() << "the first step after resuming on CUDA failed (optimizer state left on "
                     "the CPU by Trainer::load_checkpoint?): "
                  << e.what_without_backtrace();
  }
}

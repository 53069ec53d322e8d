// ControlNet: a fresh one (zero convolutions still zero) leaves the base model's output
// exactly unchanged, in the network and through a whole sampler run with CFG; the copy
// starts as the base's encoder; gradients reach only the ControlNet; hints batch as CFG
// needs; the trainer learns, saves, and its checkpoints load only with their own base;
// exported copies (the starter models) of a base and its ControlNet load, sample, train on
// and move together.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>

#include "core/data/dataset.h"
#include "core/engine/engine.h"
#include "core/eval/control_eval.h"
#include "core/model/controlnet.h"
#include "core/model/unet.h"
#include "core/sampling/sampler.h"
#include "core/train/checkpoint_io.h"
#include "core/train/controlnet_trainer.h"
#include "core/train/lr_schedule.h"
#include "core/train/export.h"
#include "core/train/trainer.h"
#include "core/vision/canny.h"

using namespace difflab;
namespace fs = std::filesystem;

namespace {

std::string temp_dir(const std::string& name) {
  const fs::path dir = fs::path(DIFFLAB_TEST_TMP) / ("controlnet_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

ModelConfig tiny_model() {
  ModelConfig c;
  c.base_channels = 8;
  c.channel_mult = {1, 2};
  c.num_res_blocks = 1;
  c.attention_resolutions = {6};
  c.num_heads = 2;
  c.norm_groups = 4;
  c.dropout = 0.0;
  c.zero_init_last = false;  // a base whose output is not zero, so equality means something
  c.class_conditional = true;
  c.num_classes = 3;
  return c;
}

const DataShape kShape{1, 12, 12, false, 3};

torch::Tensor random_hint(int64_t b, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return (torch::rand({b, kHintChannels, 12, 12}, gen, torch::kFloat32) < 0.2).to(torch::kFloat32);
}

// Makes every zero convolution non-zero (as after training).
void perturb_zero_convs(ControlNet& net) {
  torch::NoGradGuard no_grad;
  for (auto& p : net->zero_conv_parameters()) p.normal_(0.0, 0.1);
}

}  // namespace

TEST(ControlNet, FreshControlNetGivesExactlyTheBaseOutput) {
  torch::manual_seed(0);
  auto base = make_unet(tiny_model(), kShape);
  base->eval();
  auto control = make_controlnet(tiny_model(), kShape);
  control->copy_encoder_from(*base);
  auto x = torch::randn({4, 1, 12, 12});
  auto t = torch::tensor({1.0f, 10.0f, 100.0f, 999.0f});
  auto y = torch::tensor({0, 1, 2, 3}, torch::kLong);  // 3 = the null label
  torch::NoGradGuard no_grad;
  const auto expected = base->forward(x, t, y);
  ASSERT_GT(expected.abs().max().item<float>(), 1e-3f);
  auto controlled = std::make_shared<ControlledNetImpl>(base, control, random_hint(4, 1), 1.0);
  controlled->eval();
  EXPECT_TRUE(torch::equal(controlled->forward(x, t, y), expected));
  // Every residual is exactly zero, one per skip plus the middle block.
  const auto residuals = control->forward(x, t, y, random_hint(4, 1));
  EXPECT_EQ(residuals.size(), 1u + 2u + 1u + 1u);  // input conv, 1 res + 1 down, 1 res; middle
  for (const auto& r : residuals) EXPECT_EQ(r.abs().max().item<float>(), 0.0f);
}

TEST(ControlNet, TrainedControlNetChangesTheOutputAndScaleZeroRestoresTheBase) {
  torch::manual_seed(1);
  auto base = make_unet(tiny_model(), kShape);
  base->eval();
  auto control = make_controlnet(tiny_model(), kShape);
  control->copy_encoder_from(*base);
  perturb_zero_convs(control);
  auto x = torch::randn({2, 1, 12, 12});
  auto t = torch::tensor({5.0f, 500.0f});
  auto y = torch::tensor({0, 2}, torch::kLong);
  torch::NoGradGuard no_grad;
  const auto plain = base->forward(x, t, y);
  auto on = std::make_shared<ControlledNetImpl>(base, control, random_hint(2, 2), 1.0);
  auto off = std::make_shared<ControlledNetImpl>(base, control, random_hint(2, 2), 0.0);
  auto other_hint = std::make_shared<ControlledNetImpl>(base, control, random_hint(2, 3), 1.0);
  on->eval();
  const auto steered = on->forward(x, t, y);
  EXPECT_GT((steered - plain).abs().max().item<float>(), 1e-3f);
  EXPECT_TRUE(torch::equal(off->forward(x, t, y), plain));
  EXPECT_GT((other_hint->forward(x, t, y) - steered).abs().max().item<float>(), 1e-4f);
  // Half the scale: the residuals enter the decoder scaled, so the result lies between.
  auto half = std::make_shared<ControlledNetImpl>(base, control, random_hint(2, 2), 0.5);
  const auto mid = half->forward(x, t, y);
  EXPECT_FALSE(torch::equal(mid, plain));
  EXPECT_FALSE(torch::equal(mid, steered));
}

TEST(ControlNet, CopyStartsAsTheBaseEncoder) {
  torch::manual_seed(2);
  auto base = make_unet(tiny_model(), kShape);
  auto control = make_controlnet(tiny_model(), kShape);
  control->copy_encoder_from(*base);
  std::map<std::string, torch::Tensor> base_params;
  for (const auto& p : base->named_parameters()) base_params[p.key()] = p.value();
  int copied = 0;
  for (const auto& p : control->named_parameters()) {
    const std::string& name = p.key();
    if (name.rfind("copy.", 0) != 0) continue;
    const auto it = base_params.find(name.substr(5));
    ASSERT_NE(it, base_params.end()) << name;
    EXPECT_TRUE(torch::equal(it->second, p.value())) << name;
    ++copied;
  }
  EXPECT_GT(copied, 20);
  // Another architecture is refused, naming the problem.
  auto other = tiny_model();
  other.base_channels = 16;
  auto wide = make_unet(other, kShape);
  EXPECT_THROW(control->copy_encoder_from(*wide), std::invalid_argument);
}

TEST(ControlNet, GradientsReachOnlyTheControlNet) {
  torch::manual_seed(3);
  auto base = make_unet(tiny_model(), kShape);
  for (auto& p : base->parameters()) p.set_requires_grad(false);
  auto control = make_controlnet(tiny_model(), kShape);
  control->copy_encoder_from(*base);
  auto controlled = std::make_shared<ControlledNetImpl>(base, control, random_hint(2, 4), 1.0);
  auto x = torch::randn({2, 1, 12, 12});
  controlled->forward(x, torch::tensor({3.0f, 30.0f}), torch::tensor({1, 2}, torch::kLong))
      .pow(2)
      .mean()
      .backward();
  // At zero init only the zero convolutions get gradients (everything before them is
  // multiplied by their zero weights), as Zhang et al. 2023, §3.1 describe.
  double zero_grad = 0.0;
  for (auto& p : control->zero_conv_parameters())
    if (p.grad().defined()) zero_grad += p.grad().abs().sum().item<double>();
  EXPECT_GT(zero_grad, 0.0);
  for (const auto& p : base->parameters()) EXPECT_FALSE(p.grad().defined());
}

TEST(ControlNet, HintBatchFollowsTheImages) {
  auto hint = torch::arange(2 * kHintChannels * 4, torch::kFloat32).view({2, kHintChannels, 2, 2});
  EXPECT_TRUE(torch::equal(match_hint_batch(hint, 2), hint));
  // CFG: [conditional; unconditional] → both halves see the same hints in the same order.
  auto doubled = match_hint_batch(hint, 4);
  EXPECT_TRUE(torch::equal(doubled.narrow(0, 0, 2), hint));
  EXPECT_TRUE(torch::equal(doubled.narrow(0, 2, 2), hint));
  auto shared = match_hint_batch(hint.narrow(0, 1, 1), 3);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(torch::equal(shared[i], hint[1]));
  EXPECT_THROW(match_hint_batch(hint, 3), std::invalid_argument);
}

TEST(ControlNet, FreshControlNetSamplesExactlyLikeTheBaseWithGuidance) {
  torch::manual_seed(4);
  auto base = make_unet(tiny_model(), kShape);
  auto control = make_controlnet(tiny_model(), kShape);
  control->copy_encoder_from(*base);
  const SamplingModel model{
      base, NoiseSchedule::named(ScheduleKind::Linear, 100), Prediction::Eps, {1, 12, 12}, 3};
  SampleRequest request;
  request.config.steps = 5;
  request.config.n = 3;
  request.config.guidance = 3.0;
  const auto plain = run_sampling(model, request, torch::kCPU);
  request.control = {control, random_hint(3, 5), 1.0};
  for (auto sampler : {SamplerKind::Ddim, SamplerKind::Ddpm, SamplerKind::DpmppTwoM}) {
    request.config.sampler = sampler;
    request.control.net = nullptr;
    const auto a = run_sampling(model, request, torch::kCPU);
    request.control.net = control;
    const auto b = run_sampling(model, request, torch::kCPU);
    EXPECT_TRUE(torch::equal(a.images, b.images)) << to_string(sampler);
  }
  // Sampling leaves the caller's train/eval modes as they were.
  EXPECT_TRUE(base->is_training());
  EXPECT_TRUE(control->is_training());
  base->eval();
  control->eval();
  run_sampling(model, request, torch::kCPU);
  EXPECT_FALSE(base->is_training());
  EXPECT_FALSE(control->is_training());
  // Trained zero convs: the same request now gives other images, and a wrong hint count
  // is refused with a message.
  perturb_zero_convs(control);
  request.config.sampler = SamplerKind::Ddim;
  const auto steered = run_sampling(model, request, torch::kCPU);
  EXPECT_FALSE(torch::equal(steered.images, plain.images));
  request.control.hint = random_hint(2, 6);
  EXPECT_THROW(run_sampling(model, request, torch::kCPU), std::invalid_argument);
  // Autoguidance guides a base alone: beside a ControlNet it is refused, with the reason.
  request.control.hint = random_hint(3, 5);
  request.guide = make_unet(tiny_model(), kShape);
  try {
    run_sampling(model, request, torch::kCPU);
    ADD_FAILURE() << "a guide model beside a ControlNet was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("does not combine with a ControlNet"), std::string::npos)
        << e.what();
  }
}

namespace {

// 12×12 grey images of three classes: a bright bar at one of three places, so canny
// edges exist and differ per image.
std::shared_ptr<DatasetSplits> bar_images(int64_t n = 96) {
  auto data = std::make_shared<DatasetSplits>();
  auto make = [](int64_t count, uint64_t seed) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    TensorDataset s;
    s.labels = torch::randint(0, 3, {count}, gen, torch::kLong);
    s.data = torch::zeros({count, 1, 12, 12}, torch::kUInt8);
    for (int64_t i = 0; i < count; ++i) {
      const int64_t k = s.labels[i].item<int64_t>();
      s.data[i][0].narrow(1, 2 + 3 * k, 3).narrow(0, 2, 8).fill_(255);
    }
    return s;
  };
  data->train = make(n, 1);
  data->test = make(32, 2);
  data->shape = kShape;
  data->class_names = {"a", "b", "c"};
  return data;
}

// A base checkpoint trained for a few steps on bar_images, written by the real Trainer.
std::string train_base(const std::string& dir, std::shared_ptr<DatasetSplits> data,
                       int steps = 3, Objective objective = Objective::Ddpm) {
  Config c;
  c.data.image_size = 12;
  c.diffusion.objective = objective;
  if (objective != Objective::Ddpm) c.sample.sampler = SamplerKind::Euler;
  c.diffusion.timesteps = 50;
  c.model = tiny_model();
  c.model.zero_init_last = true;
  c.train.batch_size = 16;
  c.train.lr = 1e-3;
  c.train.warmup_steps = 1;
  c.train.ema_start = 1;
  c.sample.steps = 5;
  Trainer trainer(c, data, torch::kCPU);
  for (int i = 0; i < steps; ++i) trainer.train_step();
  const std::string path = dir + "/base.pt";
  trainer.save_checkpoint(path);
  return path;
}

// The controlnet section for training hints of `kind` (default thresholds).
ControlNetConfig hint_config(HintKind kind) {
  ControlNetConfig cn;
  cn.hint = kind;
  return cn;
}

Config controlnet_config(const std::string& base) {
  Config c;
  c.data.image_size = 12;
  c.controlnet.base_checkpoint = base;
  c.controlnet.batch_size = 16;
  c.controlnet.lr = 2e-3;
  c.controlnet.warmup_steps = 1;
  c.controlnet.hint = HintKind::Mixed;
  return c;
}

}  // namespace

TEST(ControlNetTrainer, LearnsSavesAndLoadsOnlyWithItsBase) {
  const std::string dir = temp_dir("trainer");
  auto data = bar_images();
  const std::string base = train_base(dir, data);
  ControlNetTrainer trainer(controlnet_config(base), data, torch::kCPU);
  EXPECT_EQ(trainer.config().diffusion.timesteps, 50);  // the base's settings
  // Before any step the ControlNet is a no-op: the same loss as the base alone.
  EXPECT_DOUBLE_EQ(trainer.evaluate(2, 1.0), trainer.evaluate(2, 0.0));
  double first = 0, last = 0;
  for (int i = 0; i < 40; ++i) {
    const auto r = trainer.train_step();
    ASSERT_TRUE(std::isfinite(r.loss));
    if (i < 5) first += r.loss / 5;
    if (i >= 35) last += r.loss / 5;
  }
  EXPECT_EQ(trainer.step(), 40);
  // The base is barely trained, so the ControlNet (a trainable copy of its encoder that
  // also sees where the bar is) must beat it on held-out images.
  const double with = trainer.evaluate(2, 1.0), without = trainer.evaluate(2, 0.0);
  EXPECT_LT(with, without);
  EXPECT_LT(last, first);
  // The base's weights did not move.
  CheckpointInfo info;
  auto fresh_base = load_checkpoint_model(base, true, torch::kCPU, &info);
  EXPECT_DOUBLE_EQ(weights_fingerprint(*fresh_base), weights_fingerprint(*trainer.base()));

  const std::string path = dir + "/controlnet.pt";
  trainer.save(path);
  auto loaded = load_controlnet(path, torch::kCPU);
  EXPECT_EQ(loaded.step, 40);
  EXPECT_EQ(loaded.base_path, base);
  EXPECT_EQ(loaded.config.controlnet.hint, HintKind::Mixed);
  // Same residuals as the trainer's network.
  {
    torch::NoGradGuard no_grad;
    trainer.controlnet()->eval();
    auto x = torch::randn({2, 1, 12, 12});
    auto t = torch::tensor({4.0f, 40.0f});
    auto y = torch::tensor({0, 1}, torch::kLong);
    const auto a = trainer.controlnet()->forward(x, t, y, random_hint(2, 7));
    const auto b = loaded.net->forward(x, t, y, random_hint(2, 7));
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::allclose(a[i], b[i])) << i;
  }

  // Another base (the same run one step further): refused, naming it.
  const std::string other_dir = dir + "/other";
  fs::create_directories(other_dir);
  const std::string other = train_base(other_dir, data, 4);
  try {
    load_controlnet(path, torch::kCPU, other);
    FAIL() << "loaded a ControlNet onto another base";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("other base weights"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(other), std::string::npos) << e.what();
  }
  // A missing base, a base checkpoint passed as a ControlNet, a truncated file.
  EXPECT_THROW(load_controlnet(path, torch::kCPU, dir + "/missing.pt"), CheckpointError);
  try {
    load_controlnet(base, torch::kCPU);
    FAIL();
  } catch (const CheckpointError& e) {
    EXPECT_NE(
        std::string(e.what()).find(base + " is a model checkpoint, not a ControlNet checkpoint"),
        std::string::npos)
        << e.what();
  }
  {
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream out(dir + "/truncated.pt", std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  EXPECT_THROW(load_controlnet(dir + "/truncated.pt", torch::kCPU), CheckpointError);
}

namespace {

// Copies of a ControlNet's weights, compared bit for bit.
std::vector<at::Tensor> weights_of(const ControlNet& net) {
  std::vector<at::Tensor> out;
  for (const auto& p : net->parameters()) out.push_back(p.detach().clone());
  return out;
}

bool same_weights(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!torch::equal(a[i], b[i])) return false;
  return true;
}

}  // namespace

TEST(ControlNetTrainer, DeferredReadBackTrainsExactlyAsReadingEachStep) {
  // CUDA's default (the loss and gradient norm read every N steps, the NaN check with them)
  // forced on the CPU: the same steps bit for bit, the same values once read.
  const std::string dir = temp_dir("deferred");
  auto data = bar_images();
  const std::string base = train_base(dir, data);
  Config c = controlnet_config(base);
  c.controlnet.loss_read_every = 0;  // auto: every step on the CPU
  ControlNetTrainer each(c, data, torch::kCPU);
  c.controlnet.loss_read_every = 4;
  ControlNetTrainer deferred(c, data, torch::kCPU);
  EXPECT_EQ(each.loss_read_every(), 1);
  EXPECT_EQ(deferred.loss_read_every(), 4);
  for (int i = 1; i <= 10; ++i) {
    const ControlNetStepResult a = each.train_step();
    const ControlNetStepResult b = deferred.train_step();
    EXPECT_TRUE(a.measured);
    EXPECT_EQ(b.step, i);
    EXPECT_EQ(b.lr, a.lr);
    EXPECT_EQ(b.measured, i % 4 == 0) << "step " << i;
    if (b.measured) EXPECT_EQ(b.loss, a.loss) << "step " << i;
    else EXPECT_TRUE(std::isnan(b.loss) && std::isnan(b.grad_norm));
  }
  const auto from_each = each.take_measured();
  auto from_deferred = deferred.take_measured();
  EXPECT_EQ(from_deferred.size(), 8u);  // read at steps 4 and 8
  // A checkpoint reads the last two first: it holds checked steps only.
  deferred.save(dir + "/deferred.pt");
  for (const auto& r : deferred.take_measured()) from_deferred.push_back(r);
  ASSERT_EQ(from_each.size(), 10u);
  ASSERT_EQ(from_deferred.size(), 10u);
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_EQ(from_deferred[i].step, static_cast<int64_t>(i + 1));
    EXPECT_EQ(from_deferred[i].loss, from_each[i].loss) << "step " << i + 1;
    EXPECT_EQ(from_deferred[i].grad_norm, from_each[i].grad_norm) << "step " << i + 1;
    EXPECT_TRUE(std::isfinite(from_each[i].loss) && from_each[i].grad_norm > 0.0);
  }
  EXPECT_TRUE(same_weights(weights_of(each.controlnet()), weights_of(deferred.controlnet())));
  deferred.read_back();
  EXPECT_TRUE(deferred.take_measured().empty());
  // What was saved resumes as the run it came from: the next step is each's next step.
  ControlNetTrainer resumed(c, data, torch::kCPU);
  ASSERT_TRUE(resumed.resume(dir + "/deferred.pt"));
  EXPECT_EQ(resumed.step(), 10);
  resumed.train_step();
  each.train_step();
  resumed.read_back();
  EXPECT_EQ(resumed.take_measured().back().loss, each.take_measured().back().loss);
}

TEST(ControlNetTrainer, ANonFiniteStepLeavesTheRunAsAfterTheStepBeforeIt) {
  // One image of the third batch is NaN (float pixels; the base trained on the clean
  // bytes). Reading every step stops at step 3; reading every 7 finds it at the 7th call
  // and must leave the same run: weights, AdamW state, step count, generator and batch
  // position as after step 2, and the same message.
  const std::string dir = temp_dir("nonfinite");
  auto clean = bar_images();
  const std::string base = train_base(dir, clean);
  Config c = controlnet_config(base);
  c.controlnet.hint = HintKind::Canny;
  BatchSampler order(clean->train.size(), c.controlnet.batch_size, c.controlnet.seed);
  order.next();
  order.next();
  const int64_t row = order.next()[5].item<int64_t>();
  auto data = std::make_shared<DatasetSplits>(*clean);
  data->train.data = clean->train.data.to(torch::kFloat32).div(127.5).sub(1.0);
  data->train.data[row].fill_(std::nanf(""));

  c.controlnet.loss_read_every = 1;
  ControlNetTrainer each(c, data, torch::kCPU);
  c.controlnet.loss_read_every = 7;
  ControlNetTrainer deferred(c, data, torch::kCPU);
  std::string each_error, deferred_error;
  int deferred_calls = 0;
  try {
    for (int i = 0; i < 7; ++i) each.train_step();
  } catch (const TrainingError& e) {
    each_error = e.what();
  }
  try {
    for (int i = 0; i < 7; ++i, ++deferred_calls) deferred.train_step();
  } catch (const TrainingError& e) {
    deferred_error = e.what();
  }
  EXPECT_NE(each_error.find("ControlNet loss is nan at step 3; the weights were left as they "
                            "were after step 2"),
            std::string::npos)
      << each_error;
  EXPECT_EQ(deferred_error, each_error);
  EXPECT_EQ(deferred_calls, 6);  // the 7th call read the steps and threw
  EXPECT_EQ(each.step(), 2);
  EXPECT_EQ(deferred.step(), 2);
  EXPECT_TRUE(same_weights(weights_of(each.controlnet()), weights_of(deferred.controlnet())));
  const auto good = deferred.take_measured();
  ASSERT_EQ(good.size(), 2u);  // steps 1 and 2, read before the bad one
  EXPECT_EQ(good.back().step, 2);
  EXPECT_EQ(good.back().loss, each.take_measured().back().loss);
  // Both stand before the bad batch again: the same step fails the same way, and both
  // checkpoints hold the run of two good steps: the weights, and the generator and batch
  // position of a run that did steps 1 and 2 on clean data and nothing more.
  EXPECT_THROW(each.train_step(), TrainingError);
  each.save(dir + "/each.pt");
  deferred.save(dir + "/deferred.pt");
  ControlNetTrainer reference(c, clean, torch::kCPU);
  reference.train_step();
  reference.train_step();
  reference.save(dir + "/reference.pt");
  const auto host_state = [](const std::string& path) {
    torch::serialize::InputArchive archive;
    open_checkpoint(path, archive, CheckpointKind::ControlNet);
    at::Tensor rng;
    archive.read("rng", rng);
    return std::make_tuple(rng, read_int(archive, "epoch", path), read_int(archive, "position", path));
  };
  const auto [rng_ref, epoch_ref, position_ref] = host_state(dir + "/reference.pt");
  for (const std::string name : {"each", "deferred"}) {
    const auto [rng, epoch, position] = host_state(dir + "/" + name + ".pt");
    EXPECT_TRUE(torch::equal(rng, rng_ref)) << name;
    EXPECT_EQ(epoch, epoch_ref) << name;
    EXPECT_EQ(position, position_ref) << name;
  }
  ControlNetTrainer a(c, data, torch::kCPU), b(c, data, torch::kCPU);
  ASSERT_TRUE(a.resume(dir + "/each.pt"));
  ASSERT_TRUE(b.resume(dir + "/deferred.pt"));
  EXPECT_EQ(a.step(), 2);
  EXPECT_EQ(b.step(), 2);
  EXPECT_TRUE(same_weights(weights_of(a.controlnet()), weights_of(b.controlnet())));
}

TEST(ControlNetTrainer, StepsAtItsOwnScheduledLearningRate) {
  const std::string dir = temp_dir("schedule");
  auto data = bar_images();
  Config c = controlnet_config(train_base(dir, data));
  c.controlnet.steps = 6;
  c.controlnet.lr_schedule = LrScheduleKind::Linear;
  c.controlnet.lr_min = 2e-4;
  c.train.lr_schedule = LrScheduleKind::Cosine;  // the base's section: not the ControlNet's
  ControlNetTrainer trainer(c, data, torch::kCPU);
  const LrSchedule want{2e-3, 1, LrScheduleKind::Linear, 2e-4, 6};
  for (int64_t i = 0; i < 6; ++i) EXPECT_DOUBLE_EQ(trainer.train_step().lr, want.at(i)) << i;
  EXPECT_LT(want.at(5), want.at(1));
}

TEST(ControlNetTrainer, RefusesAMissingBase) {
  auto data = bar_images(32);
  Config c = controlnet_config("");
  EXPECT_THROW(ControlNetTrainer(c, data, torch::kCPU), TrainingError);
  c.controlnet.base_checkpoint = temp_dir("missing") + "/nothing.pt";
  EXPECT_THROW(ControlNetTrainer(c, data, torch::kCPU), CheckpointError);
}

TEST(ControlNetHints, TrainingHintsPutEachKindInItsChannel) {
  auto data = bar_images(8);
  auto images = gather_batch(data->train, torch::arange(8));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const auto canny_hint = make_training_hints(images, hint_config(HintKind::Canny), gen);
  ASSERT_EQ(canny_hint.sizes(), (std::vector<int64_t>{8, kHintChannels, 12, 12}));
  EXPECT_GT(canny_hint.select(1, hint_plane(HintKind::Canny)).sum().item<double>(), 8 * 10);
  EXPECT_EQ(canny_hint.select(1, hint_plane(HintKind::Scribble)).sum().item<double>(), 0.0);
  const auto scribble_hint = make_training_hints(images, hint_config(HintKind::Scribble), gen);
  EXPECT_EQ(scribble_hint.select(1, hint_plane(HintKind::Canny)).sum().item<double>(), 0.0);
  EXPECT_GT(scribble_hint.select(1, hint_plane(HintKind::Scribble)).sum().item<double>(), 0.0);
  // Mixed: every image gets exactly one kind.
  const auto mixed = make_training_hints(images, hint_config(HintKind::Mixed), gen);
  const auto has_canny = mixed.select(1, hint_plane(HintKind::Canny)).sum({1, 2}) > 0;
  const auto has_scribble = mixed.select(1, hint_plane(HintKind::Scribble)).sum({1, 2}) > 0;
  EXPECT_FALSE((has_canny & has_scribble).any().item<bool>());
  // Scribbles of the bars lie on the bars (within the jitter).
  const auto strokes = scribble_hint.select(1, hint_plane(HintKind::Scribble));
  const auto near_bar = torch::max_pool2d((images > 0).to(torch::kFloat32), 5, 1, 2).squeeze(1);
  EXPECT_GT((strokes * near_bar).sum().item<double>(), 0.9 * strokes.sum().item<double>());
}

TEST(ControlNetHints, HoughMaskAndDistanceHintsOfBarsInTheirPlanes) {
  auto data = bar_images(8);
  auto images = gather_batch(data->train, torch::arange(8));
  const auto bars = (images > 0).to(torch::kFloat32);  // 3 × 8 px, one per image
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  auto others_zero = [](const at::Tensor& hint, HintKind kind) {
    return (hint.sum({0, 2, 3}) != 0).nonzero().flatten().equal(torch::tensor({int64_t{hint_plane(kind)}}));
  };
  // Mask: the bar itself.
  const auto mask = make_training_hints(images, hint_config(HintKind::Mask), gen);
  ASSERT_EQ(mask.sizes(), (std::vector<int64_t>{8, kHintChannels, 12, 12}));
  EXPECT_TRUE(others_zero(mask, HintKind::Mask));
  EXPECT_TRUE(torch::equal(mask.narrow(1, hint_plane(HintKind::Mask), 1), bars));
  // Distance: 2 px from the outside on the bar's centre line (rows 3-8), 1 px on its rim;
  // divided by the peak: 6 pixels of 1 and 18 of 0.5, nothing outside the bar.
  const auto distance = make_training_hints(images, hint_config(HintKind::Distance), gen);
  EXPECT_TRUE(others_zero(distance, HintKind::Distance));
  const auto d = distance.narrow(1, hint_plane(HintKind::Distance), 1);
  EXPECT_TRUE(torch::allclose(d.sum({1, 2, 3}), torch::full({8}, 15.0f)));
  EXPECT_EQ((d * (1 - bars)).abs().sum().item<double>(), 0.0);
  EXPECT_TRUE(torch::allclose(d.amax({1, 2, 3}), torch::ones({8})));
  // Hough: a straight segment along a bar's long side, on its canny edges.
  const auto hough = make_training_hints(images, hint_config(HintKind::Hough), gen);
  EXPECT_TRUE(others_zero(hough, HintKind::Hough));
  const auto lines = hough.narrow(1, hint_plane(HintKind::Hough), 1);
  // Canny outlines a bar with 8 pixels on one long side and 6 on the other: with the
  // default 8 votes a line needs, the 8-pixel side alone is a segment.
  EXPECT_TRUE(torch::equal(lines.sum({1, 2, 3}), torch::full({8}, 8.0f)));
  const auto edges = canny(((images + 1) * 0.5).clamp(0, 1));
  EXPECT_EQ((lines * (1 - edges)).sum().item<double>(), 0.0);
}

TEST(HintScores, EdgeF1IouAndMeanAbsoluteDifferenceInClosedForm) {
  auto maps = torch::zeros({3, 1, 4, 4});
  auto ref = torch::zeros({3, 1, 4, 4});
  ref[0].narrow(1, 0, 2).fill_(1);       // 8 px
  maps[0].narrow(1, 1, 2).fill_(1);      // 8 px, 4 shared: IoU 4 / 12
  ref[1].fill_(1);                       // disjoint from an empty map: IoU 0
  const auto iou = hint_scores(maps, ref, HintKind::Mask);  // image 2: both empty → 1
  EXPECT_TRUE(torch::allclose(iou, torch::tensor({1.0f / 3.0f, 0.0f, 1.0f})));
  // Distance: mean |a − b| over the 16 pixels.
  auto a = torch::zeros({1, 1, 4, 4}), b = torch::zeros({1, 1, 4, 4});
  a[0][0][1][1] = 1.0f;
  b[0][0][1][1] = 0.5f;
  b[0][0][2][2] = 0.25f;
  EXPECT_NEAR(hint_scores(a, b, HintKind::Distance).item<double>(), 0.75 / 16.0, 1e-7);
  // Line kinds: the edge F1 (identical maps: 1; one empty: 0).
  for (HintKind kind : {HintKind::Canny, HintKind::Scribble, HintKind::Hough}) {
    EXPECT_TRUE(torch::equal(hint_scores(ref, ref, kind), torch::ones({3})));
    EXPECT_EQ(hint_scores(maps, ref, kind)[1].item<double>(), 0.0);
  }
  EXPECT_FALSE(hint_metric(HintKind::Distance).higher_is_better);
  EXPECT_STREQ(hint_metric(HintKind::Mask).key, "iou");
  EXPECT_STREQ(hint_metric(HintKind::Mixed).name, "edge F1");
  EXPECT_THROW(hint_scores(maps, ref.narrow(0, 0, 2), HintKind::Mask), std::invalid_argument);
}

TEST(HintCurve, MaskAndDistanceCurvesScoreTheirOwnMaps) {
  auto data = bar_images();
  HintCurveOptions options;
  options.n = 4;
  for (HintKind kind : {HintKind::Hough, HintKind::Mask, HintKind::Distance}) {
    const HintCurve curve = make_hint_curve(*data, hint_config(kind), options);
    EXPECT_EQ(curve.kind, kind);
    EXPECT_TRUE(torch::equal(curve.hints.narrow(1, hint_plane(kind), 1), curve.reference));
    EXPECT_EQ(curve.hints.sum().item<double>(), curve.reference.sum().item<double>());
    EXPECT_GT(curve.reference.sum().item<double>(), 4 * 5);
  }
}

// ControlNets written before the Hough, mask and distance planes have a 2-plane hint
// encoder (the shipped starter ControlNets among them): they load with zero weights on the
// new planes, so they steer exactly as before, and continue training with a fresh optimizer.
TEST(ControlNetCheckpoint, TwoPlaneFilesLoadWithZeroWeightsForTheNewPlanes) {
  const std::string dir = temp_dir("legacy");
  auto data = bar_images();
  const std::string base = train_base(dir, data);
  ControlNetTrainer trainer(controlnet_config(base), data, torch::kCPU);
  trainer.train_step();
  trainer.train_step();
  trainer.save(dir + "/now.pt");
  // The same file as the old code wrote it: the hint encoder's first weight with 2 planes.
  torch::serialize::InputArchive in;
  open_checkpoint(dir + "/now.pt", in, CheckpointKind::ControlNet);
  torch::serialize::OutputArchive out;
  at::Tensor original;
  for (const std::string& key : in.keys()) {
    if (key == "controlnet_tensors") continue;
    c10::IValue value;
    if (in.try_read(key, value)) out.write(key, value);
  }
  c10::IValue names, tensors;
  ASSERT_TRUE(in.try_read("controlnet_names", names) && in.try_read("controlnet_tensors", tensors));
  auto list = tensors.toTensorVector();
  std::istringstream lines(names.toStringRef());
  size_t i = 0;
  for (std::string name; std::getline(lines, name); ++i)
    if (name == kHintInputWeight) {
      original = list[i].clone();
      list[i] = list[i].narrow(1, 0, kLegacyHintChannels).clone();
    }
  ASSERT_TRUE(original.defined());
  ASSERT_EQ(original.size(1), kHintChannels);
  out.write("controlnet_tensors", c10::List<at::Tensor>(list));
  save_archive_atomic(out, dir + "/legacy.pt");

  const auto loaded = load_controlnet(dir + "/legacy.pt", torch::kCPU);
  at::Tensor weight;
  for (const auto& p : loaded.net->named_parameters())
    if (p.key() == kHintInputWeight) weight = p.value();
  ASSERT_EQ(weight.size(1), kHintChannels);
  EXPECT_TRUE(torch::equal(weight.narrow(1, 0, kLegacyHintChannels), original.narrow(1, 0, kLegacyHintChannels)));
  EXPECT_EQ(weight.narrow(1, kLegacyHintChannels, kHintChannels - kLegacyHintChannels).abs().sum().item<double>(), 0.0);
  ControlNetTrainer again(controlnet_config(base), data, torch::kCPU);
  EXPECT_FALSE(again.resume(dir + "/legacy.pt"));  // weights only: its optimizer was for 2 planes
  EXPECT_EQ(again.step(), 2);
  EXPECT_TRUE(std::isfinite(again.train_step().loss));
  EXPECT_TRUE(again.resume(dir + "/now.pt"));
}

TEST(ControlNetEngine, LoadsAndSamplesThroughCommandsAsThePanelDoes) {
  const std::string dir = temp_dir("engine");
  auto data = bar_images();
  const std::string base = train_base(dir, data);
  ControlNetTrainer trainer(controlnet_config(base), data, torch::kCPU);
  for (int i = 0; i < 3; ++i) trainer.train_step();
  const std::string path = dir + "/controlnet.pt";
  trainer.save(path);

  EngineOptions options;
  options.threads = 1;
  Engine engine(Config{}, options);
  // Sampling with the ControlNet before one is loaded: an error, and the worker lives on.
  cmd::Sample early;
  early.config.steps = 3;
  early.config.n = 2;
  early.controlnet = true;
  early.hint.assign(kHintChannels * 12 * 12, 0.0f);
  engine.send(early);
  ASSERT_TRUE(engine.wait_idle(30));
  EXPECT_NE(engine.snapshot()->error.find("no ControlNet loaded"), std::string::npos);
  // A missing file: the error names it, nothing is loaded.
  engine.send(cmd::LoadControlNet{dir + "/nothing.pt", ""});
  ASSERT_TRUE(engine.wait_idle(30));
  EXPECT_NE(engine.snapshot()->error.find("nothing.pt"), std::string::npos);
  EXPECT_FALSE(engine.snapshot()->controlnet.ready);

  engine.send(cmd::LoadControlNet{path, ""});
  ASSERT_TRUE(engine.wait_idle(30));
  auto snap = engine.snapshot();
  ASSERT_TRUE(snap->controlnet.ready) << snap->error;
  EXPECT_EQ(snap->controlnet.step, 3);
  EXPECT_EQ(snap->controlnet.height, 12);
  EXPECT_EQ(snap->controlnet.num_classes, 3);
  EXPECT_EQ(snap->controlnet.base_path, base);
  // A hint of the wrong size is refused with the sizes in the message.
  cmd::Sample bad = early;
  bad.hint.assign(10, 1.0f);
  engine.send(bad);
  ASSERT_TRUE(engine.wait_idle(30));
  EXPECT_NE(engine.snapshot()->error.find("hint has 10 values"), std::string::npos);

  cmd::Sample sample = early;
  sample.config.guidance = 2.0;
  sample.config.n = 3;
  for (int y = 2; y < 10; ++y) sample.hint[hint_plane(HintKind::Scribble) * 144 + y * 12 + 5] = 1.0f;
  sample.control_scale = 0.7;
  engine.send(sample);
  ASSERT_TRUE(engine.wait_idle(60));
  snap = engine.snapshot();
  ASSERT_TRUE(snap->samples) << snap->error;
  EXPECT_EQ(snap->samples->final_images.n, 3);
  EXPECT_EQ(snap->samples->x_t.size(), 3u);  // the scrubber's frames
  EXPECT_EQ(snap->samples->hint.c, kHintChannels);
  EXPECT_EQ(snap->samples->hint.data, sample.hint);
  EXPECT_DOUBLE_EQ(snap->samples->control_scale, 0.7);
  // The same request through run_sampling gives the same images: the engine adds nothing.
  auto loaded = load_controlnet(path, torch::kCPU);
  SampleRequest request;
  request.config = sample.config;
  request.control = {loaded.net, torch::tensor(sample.hint).view({1, kHintChannels, 12, 12}), 0.7};
  const SamplingModel model = sampling_model(loaded);
  EXPECT_EQ(model.num_classes, 3);
  EXPECT_EQ(model.shape, (std::vector<int64_t>{1, 12, 12}));
  EXPECT_EQ(model.schedule.size(), 50);
  const auto direct = run_sampling(model, request, torch::kCPU);
  const auto& f = snap->samples->final_images;
  EXPECT_TRUE(torch::allclose(torch::tensor(f.data).view({3, 1, 12, 12}), direct.images, 1e-5, 1e-6));
}

TEST(ControlNetTrainer, ResumesExactly) {
  const std::string dir = temp_dir("resume");
  auto data = bar_images();
  const std::string base = train_base(dir, data);
  ControlNetTrainer straight(controlnet_config(base), data, torch::kCPU);
  std::vector<double> losses;
  for (int i = 0; i < 4; ++i) losses.push_back(straight.train_step().loss);

  ControlNetTrainer first(controlnet_config(base), data, torch::kCPU);
  first.train_step();
  first.train_step();
  first.save(dir + "/half.pt");
  ControlNetTrainer second(controlnet_config(base), data, torch::kCPU);
  second.resume(dir + "/half.pt");
  EXPECT_EQ(second.step(), 2);
  EXPECT_DOUBLE_EQ(second.train_step().loss, losses[2]);
  EXPECT_DOUBLE_EQ(second.train_step().loss, losses[3]);
  // A file that is not a resumable ControlNet leaves the trainer as it was.
  EXPECT_THROW(second.resume(base), CheckpointError);
  EXPECT_EQ(second.step(), 4);
}

TEST(HintCurve, HintsOfTheTrainedKindInTheirChannel) {
  auto data = bar_images();
  ControlNetConfig cn;
  HintCurveOptions options;
  options.n = 4;
  cn.hint = HintKind::Scribble;
  const HintCurve scribble = make_hint_curve(*data, cn, options);
  EXPECT_EQ(scribble.kind, HintKind::Scribble);
  ASSERT_EQ(scribble.hints.sizes(), (std::vector<int64_t>{4, kHintChannels, 12, 12}));
  EXPECT_EQ(scribble.hints.select(1, hint_plane(HintKind::Canny)).sum().item<double>(), 0.0);
  EXPECT_TRUE(torch::equal(scribble.hints.select(1, hint_plane(HintKind::Scribble)), scribble.reference.squeeze(1)));
  // Strokes are the bars' centre lines: thinner than the 3-px bars, and there.
  const double stroke_pixels = scribble.reference.sum().item<double>();
  EXPECT_GT(stroke_pixels, 4 * 4);
  EXPECT_LT(stroke_pixels, 4 * 8 * 3);
  for (HintKind kind : {HintKind::Canny, HintKind::Mixed}) {
    cn.hint = kind;
    const HintCurve canny = make_hint_curve(*data, cn, options);
    EXPECT_EQ(canny.kind, HintKind::Canny);  // mixed ControlNets are scored on canny hints
    EXPECT_EQ(canny.hints.select(1, hint_plane(HintKind::Scribble)).sum().item<double>(), 0.0);
    EXPECT_TRUE(torch::equal(canny.hints.select(1, hint_plane(HintKind::Canny)), canny.reference.squeeze(1)));
    EXPECT_GT(canny.reference.sum().item<double>(), 4 * 8);
  }
}

TEST(HintCurve, ScoresTheControlledSamplesWithFixedSeeds) {
  const std::string dir = temp_dir("curve");
  auto data = bar_images();
  const std::string base_path = train_base(dir, data);
  CheckpointInfo info;
  const SamplingModel base = load_sampling_model(base_path, true, torch::kCPU, &info);
  ControlNetConfig cn;
  cn.hint = HintKind::Canny;
  HintCurveOptions options;
  options.n = 4;
  options.steps = 3;
  const HintCurve curve = make_hint_curve(*data, cn, options);
  const double without = hint_curve_score(curve, base, ControlNet{}, 0.0, torch::kCPU);
  EXPECT_GE(without, 0.0);
  EXPECT_LE(without, 1.0);
  EXPECT_EQ(hint_curve_score(curve, base, ControlNet{}, 0.0, torch::kCPU), without);  // fixed seeds
  // A fresh ControlNet adds exactly nothing; a changed one steers the samples, unless at scale 0.
  ControlNet net = make_controlnet(info.config.model, info.shape);
  net->copy_encoder_from(*base.net);
  net->eval();
  EXPECT_EQ(hint_curve_score(curve, base, net, 1.0, torch::kCPU), without);
  {
    torch::NoGradGuard no_grad;
    torch::manual_seed(5);
    for (auto& p : net->zero_conv_parameters()) p.normal_(0.0, 1.0);  // well past what 3 steps of noise hide
  }
  EXPECT_EQ(hint_curve_score(curve, base, net, 0.0, torch::kCPU), without);
  const double with = hint_curve_score(curve, base, net, 1.0, torch::kCPU);
  EXPECT_NE(with, without);
  EXPECT_GE(with, 0.0);
  EXPECT_LE(with, 1.0);
  // A cancelled run gives no point.
  EXPECT_TRUE(std::isnan(hint_curve_score(curve, base, net, 1.0, torch::kCPU, [](const StepInfo&) { return false; })));
}

namespace {

std::vector<torch::Tensor> weights(const torch::nn::Module& m) {
  std::vector<torch::Tensor> out;
  for (const auto& p : m.parameters()) out.push_back(p.detach().clone());
  return out;
}

int64_t size_of(const std::string& path) { return static_cast<int64_t>(fs::file_size(path)); }

}  // namespace

TEST(Export, AModelAndItsControlNetTravelAsHalfPrecisionCopies) {
  const std::string dir = temp_dir("export");
  auto data = bar_images();
  // A flow-matching base, as the starter models are.
  const std::string base = train_base(dir, data, 4, Objective::FlowMatching);
  const std::string starter = dir + "/starter/model.pt";
  ExportOptions half;
  const ExportSummary s = export_checkpoint(base, starter, half);
  EXPECT_EQ(s.kind, CheckpointKind::Model);
  EXPECT_EQ(s.step, 4);
  EXPECT_EQ(exported_precision(starter), "fp16");
  EXPECT_EQ(exported_precision(base), "");
  // EMA weights alone in 2 bytes, against raw + EMA + two AdamW moments in 4.
  EXPECT_LT(size_of(starter) * 5, size_of(base)) << size_of(starter) << " vs " << size_of(base);

  // The copy is the original's EMA rounded to half precision, whichever weights are asked for.
  auto ema = load_checkpoint_model(base, /*use_ema=*/true, torch::kCPU);
  for (bool use_ema : {true, false}) {
    CheckpointInfo info;
    auto copy = load_checkpoint_model(starter, use_ema, torch::kCPU, &info);
    EXPECT_EQ(info.step, 4);
    const auto a = weights(*ema), b = weights(*copy);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i)
      EXPECT_TRUE(torch::equal(a[i].to(torch::kHalf).to(torch::kFloat), b[i])) << i;
  }
  // Its samples are the original's to half-precision rounding (same seeds).
  {
    SampleRequest request;
    request.config.sampler = SamplerKind::Euler;
    request.config.n = 4;
    request.config.steps = 5;
    request.config.guidance = 2.0;
    request.config.seed = 3;
    const auto original = run_sampling(load_sampling_model(base, true, torch::kCPU), request, torch::kCPU);
    const auto copied = run_sampling(load_sampling_model(starter, true, torch::kCPU), request, torch::kCPU);
    const double diff = (original.images - copied.images).abs().max().item<double>();
    EXPECT_LT(diff, 0.02);
    EXPECT_GT(original.images.abs().max().item<double>(), 0.1);
  }
  // A trainer takes it: the weights as model and EMA, a fresh optimizer, and it trains on.
  {
    Config c = read_checkpoint_info(starter).config;
    Trainer t(c, data, torch::kCPU);
    t.load_checkpoint(starter);
    EXPECT_EQ(t.step(), 4);
    const auto w = weights(*load_checkpoint_model(starter, true, torch::kCPU));
    const auto m = weights(*t.model()), e = weights(*t.ema_model());
    for (size_t i = 0; i < w.size(); ++i) {
      EXPECT_TRUE(torch::equal(w[i], m[i])) << i;
      EXPECT_TRUE(torch::equal(w[i], e[i])) << i;
    }
    EXPECT_TRUE(std::isfinite(t.train_step().loss));
    EXPECT_EQ(t.step(), 5);
  }

  // A ControlNet trained on the exported base, exported beside it.
  Config cc = controlnet_config(starter);
  ControlNetTrainer cn(cc, data, torch::kCPU);
  for (int i = 0; i < 3; ++i) cn.train_step();
  const std::string full = dir + "/controlnet_full.pt";
  cn.save(full);
  const std::string cn_copy = dir + "/starter/controlnets/mixed/controlnet.pt";
  ExportOptions with_base;
  with_base.base = starter;
  const ExportSummary cs = export_checkpoint(full, cn_copy, with_base);
  EXPECT_EQ(cs.kind, CheckpointKind::ControlNet);
  EXPECT_EQ(cs.base, "../../model.pt");
  EXPECT_EQ(exported_precision(cn_copy), "fp16");
  // The pair moves together: the base is found relative to the ControlNet.
  fs::rename(dir + "/starter", dir + "/moved");
  const auto loaded = load_controlnet(dir + "/moved/controlnets/mixed/controlnet.pt", torch::kCPU);
  EXPECT_EQ(loaded.step, 3);
  EXPECT_EQ(fs::path(loaded.base_path), fs::path(dir + "/moved/model.pt").lexically_normal());
  const auto cw = weights(*cn.controlnet()), lw = weights(*loaded.net);
  ASSERT_EQ(cw.size(), lw.size());
  for (size_t i = 0; i < cw.size(); ++i)
    EXPECT_TRUE(torch::equal(cw[i].to(torch::kHalf).to(torch::kFloat), lw[i])) << i;
  // The full-precision base is another base: the ControlNet does not belong to it.
  try {
    export_checkpoint(full, dir + "/wrong.pt", ExportOptions{ExportPrecision::Fp16, base});
    FAIL() << "exported a ControlNet with a base it was not trained on";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("other base weights"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir + "/wrong.pt"));
  // Not a model or ControlNet; the file itself; a base named for a model.
  std::ofstream(dir + "/junk.pt") << "not a checkpoint";
  try {
    export_checkpoint(dir + "/junk.pt", dir + "/junk_copy.pt", half);
    FAIL();
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find(dir + "/junk.pt"), std::string::npos) << e.what();
  }
  EXPECT_THROW(export_checkpoint(base, base, half), CheckpointError);
  EXPECT_THROW(export_checkpoint(base, dir + "/x.pt", ExportOptions{ExportPrecision::Fp16, base}),
               CheckpointError);
  EXPECT_FALSE(fs::exists(dir + "/junk_copy.pt"));
  EXPECT_FALSE(fs::exists(dir + "/x.pt"));
  EXPECT_EQ(parse_export_precision("bf16"), ExportPrecision::Bf16);
  EXPECT_THROW(parse_export_precision("fp8"), std::invalid_argument);
}

// The ControlNet learns to steer a base of any objective, on that base's own training
// draws: flow matching and EDM as DDPM.
TEST(ControlNetTrainer, LearnsOnFlowMatchingAndEdmBases) {
  auto data = bar_images();
  for (Objective objective : {Objective::FlowMatching, Objective::Edm}) {
    const std::string dir = temp_dir(std::string("objective_") + std::string(to_string(objective)));
    const std::string base = train_base(dir, data, 3, objective);
    ControlNetTrainer trainer(controlnet_config(base), data, torch::kCPU);
    EXPECT_EQ(trainer.config().diffusion.objective, objective);
    EXPECT_DOUBLE_EQ(trainer.evaluate(2, 1.0), trainer.evaluate(2, 0.0));
    // The ControlNet's batches are the base's own kind: the base alone scores on them as
    // on its trainer's test batches (DDPM batches would give a flow-matching base about
    // half its loss: ε against ε − x₀).
    {
      Trainer own(read_checkpoint_info(base).config, data, torch::kCPU);
      own.load_checkpoint(base);
      const double ratio = trainer.evaluate(4, 0.0) / own.evaluate(4);
      EXPECT_GT(ratio, 0.75) << to_string(objective);
      EXPECT_LT(ratio, 1.33) << to_string(objective);
    }
    for (int i = 0; i < 40; ++i) ASSERT_TRUE(std::isfinite(trainer.train_step().loss));
    EXPECT_LT(trainer.evaluate(2, 1.0), trainer.evaluate(2, 0.0)) << to_string(objective);
    // It samples through the objective's own sampler with the hint.
    trainer.save(dir + "/controlnet.pt");
    const auto loaded = load_controlnet(dir + "/controlnet.pt", torch::kCPU);
    SampleRequest request;
    request.config.sampler = SamplerKind::Euler;
    request.config.steps = 4;
    request.config.n = 2;
    request.control = {loaded.net, random_hint(2, 9), 1.0};
    const auto out = run_sampling(sampling_model(loaded), request, torch::kCPU);
    EXPECT_TRUE(torch::isfinite(out.images).all().item<bool>());
  }
}

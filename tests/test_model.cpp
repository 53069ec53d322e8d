// UNet and MLP shapes for every supported size, conditioning, init options.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/model/denoiser_net.h"
#include "core/model/attention_kernel.h"
#include "core/model/flops.h"
#include "core/model/hashed_dropout.h"

using namespace difflab;

namespace {

ModelConfig small_unet() {
  ModelConfig c;
  c.base_channels = 16;
  c.channel_mult = {1, 2, 2};
  c.num_res_blocks = 1;
  c.attention_resolutions = {7, 8};
  c.num_heads = 2;
  c.norm_groups = 8;
  c.num_classes = 10;
  return c;
}

torch::Tensor run(const DenoiserNet& net, int b, int c, int h, int w, bool labels = true) {
  torch::NoGradGuard ng;
  auto x = torch::randn({b, c, h, w});
  auto t = torch::randint(0, 1000, {b}, torch::kLong);
  auto y = labels ? torch::randint(0, 10, {b}, torch::kLong) : torch::Tensor();
  return net->forward(x, t, y);
}

}  // namespace

struct SizeCase {
  int channels, size;
  std::vector<int> mult;
};

class UNetSizes : public ::testing::TestWithParam<SizeCase> {};

TEST_P(UNetSizes, OutputMatchesInputShape) {
  const auto p = GetParam();
  ModelConfig c = small_unet();
  c.channel_mult = p.mult;
  c.zero_init_last = false;
  auto net = make_model(c, DataShape{p.channels, p.size, p.size, false, 10});
  auto out = run(net, 2, p.channels, p.size, p.size);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, p.channels, p.size, p.size}));
  EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
  EXPECT_GT(count_parameters(*net), 10000);
}

INSTANTIATE_TEST_SUITE_P(AllSizes, UNetSizes,
                         ::testing::Values(SizeCase{1, 28, {1, 2, 2}},     // 28 → 14 → 7
                                           SizeCase{1, 28, {1, 2, 2, 2}},  // … → 4 (odd 7 → 4 → 7)
                                           SizeCase{3, 32, {1, 2, 2}},
                                           SizeCase{1, 32, {1, 2, 2, 2}},
                                           SizeCase{3, 64, {1, 1, 2, 2}},
                                           SizeCase{3, 28, {1, 2}}));

TEST(UNet, ZeroInitOutputIsZeroAndTrainable) {
  auto net = make_model(small_unet(), DataShape{1, 28, 28, false, 10});
  auto out = run(net, 2, 1, 28, 28);
  EXPECT_EQ(out.abs().max().item<float>(), 0.0f);
  // Gradients still reach the zeroed output conv.
  auto x = torch::randn({2, 1, 28, 28});
  auto loss = net->forward(x, torch::tensor({3, 500}), torch::tensor({1, 2})).pow(2).sum() +
              (net->forward(x, torch::tensor({3, 500}), torch::tensor({1, 2})) - x).pow(2).sum();
  loss.backward();
  double grad = 0;
  for (auto& p : net->parameters())
    if (p.grad().defined()) grad += p.grad().abs().sum().item<double>();
  EXPECT_GT(grad, 0.0);
}

TEST(UNet, ClassLabelAndTimestepChangeTheOutput) {
  ModelConfig c = small_unet();
  c.zero_init_last = false;
  auto net = make_model(c, DataShape{1, 28, 28, false, 10});
  net->eval();
  torch::NoGradGuard ng;
  auto x = torch::randn({1, 1, 28, 28});
  auto a = net->forward(x, torch::tensor({10.0}), torch::tensor({1}));
  auto b = net->forward(x, torch::tensor({10.0}), torch::tensor({2}));
  auto null = net->forward(x, torch::tensor({10.0}), torch::Tensor());
  auto null2 = net->forward(x, torch::tensor({10.0}), torch::tensor({10}));
  auto later = net->forward(x, torch::tensor({900.0}), torch::tensor({1}));
  EXPECT_GT((a - b).abs().max().item<float>(), 1e-6);
  EXPECT_GT((a - later).abs().max().item<float>(), 1e-6);
  EXPECT_TRUE(torch::equal(null, null2));  // undefined labels = the null class
  EXPECT_EQ(net->num_classes(), 10);
}

TEST(UNet, EveryActivationAndInitBuildsAndRuns) {
  for (auto act : {Activation::SiLU, Activation::ReLU, Activation::GELU, Activation::Mish})
    for (auto init : {WeightInit::Default, WeightInit::Xavier, WeightInit::He}) {
      ModelConfig c = small_unet();
      c.activation = act;
      c.init = init;
      c.zero_init_last = false;
      c.class_conditional = false;
      auto net = make_model(c, DataShape{1, 28, 28, false, 0});
      auto out = run(net, 1, 1, 28, 28, false);
      EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
      EXPECT_GT(out.abs().sum().item<float>(), 0.0f);
      EXPECT_EQ(net->num_classes(), 0);
    }
}

TEST(UNet, ParameterCountOfTheDefaultMnistModel) {
  // The benchmark model: channels 32/64/128 at 28/14/7, 2 res-blocks a level,
  // attention at 7×7, time embedding 128, 10 classes + null.
  ModelConfig c;
  auto net = make_model(c, DataShape{1, 28, 28, false, 10});
  const auto n = count_parameters(*net);
  EXPECT_GT(n, 1'500'000);
  EXPECT_LT(n, 4'000'000);
}

TEST(UNet, FlopCounterCountsOnlyWhenActive) {
  auto net = make_model(small_unet(), DataShape{1, 28, 28, false, 10});
  int64_t flops = 0;
  {
    FlopCounter counter;
    run(net, 2, 1, 28, 28);
    flops = counter.flops();
  }
  // The first 3×3 conv alone: 2 · 16 · 1 · 9 · 28 · 28 · 2 images.
  EXPECT_GT(flops, 2LL * 16 * 9 * 28 * 28 * 2);
  EXPECT_FALSE(FlopCounter::active());
}

TEST(Models, MlpForPointsAndMismatchedKindsThrow) {
  ModelConfig c;
  c.kind = ModelKind::Mlp;
  c.num_classes = 8;
  c.zero_init_last = false;
  auto mlp = make_model(c, DataShape{2, 0, 0, true, 8});
  torch::NoGradGuard ng;
  auto out = mlp->forward(torch::randn({5, 2}), torch::randint(0, 100, {5}), torch::randint(0, 8, {5}));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{5, 2}));
  EXPECT_THROW(make_model(c, DataShape{1, 28, 28, false, 10}), std::invalid_argument);
  c.kind = ModelKind::UNet;
  EXPECT_THROW(make_model(c, DataShape{2, 0, 0, true, 8}), std::invalid_argument);
}

TEST(Models, CopyWeightsMakesIdenticalOutputs) {
  ModelConfig c = small_unet();
  c.zero_init_last = false;
  auto a = make_model(c, DataShape{1, 28, 28, false, 10});
  auto b = make_model(c, DataShape{1, 28, 28, false, 10});
  a->eval();
  b->eval();
  torch::NoGradGuard ng;
  auto x = torch::randn({2, 1, 28, 28});
  auto t = torch::tensor({5.0, 50.0});
  auto y = torch::tensor({1, 2});
  EXPECT_FALSE(torch::equal(a->forward(x, t, y), b->forward(x, t, y)));
  copy_weights(*a, *b);
  EXPECT_TRUE(torch::equal(a->forward(x, t, y), b->forward(x, t, y)));
}

TEST(Kernels, AttentionMatchesBmmReferenceForwardAndBackward) {
  for (int64_t l : {49, 16, 1}) {
    auto q = torch::randn({6, 8, l}, torch::requires_grad());
    auto k = torch::randn({6, 8, l}, torch::requires_grad());
    auto v = torch::randn({6, 8, l}, torch::requires_grad());
    auto g = torch::randn({6, 8, l});
    auto out = multihead_attention(q, k, v, 0.35);
    (out * g).sum().backward();
    auto dq = q.grad().clone(), dk = k.grad().clone(), dv = v.grad().clone();
    q.mutable_grad().reset();
    k.mutable_grad().reset();
    v.mutable_grad().reset();
    auto ref = multihead_attention_reference(q, k, v, 0.35);
    (ref * g).sum().backward();
    EXPECT_TRUE(torch::allclose(out, ref, 1e-5, 1e-5)) << (out - ref).abs().max();
    EXPECT_TRUE(torch::allclose(dq, q.grad(), 1e-4, 1e-5)) << (dq - q.grad()).abs().max();
    EXPECT_TRUE(torch::allclose(dk, k.grad(), 1e-4, 1e-5)) << (dk - k.grad()).abs().max();
    EXPECT_TRUE(torch::allclose(dv, v.grad(), 1e-4, 1e-5)) << (dv - v.grad()).abs().max();
  }
}

TEST(Kernels, AttentionAcceptsStridedChunksOfOneTensor) {
  // The UNet passes three chunks of one qkv tensor (non-contiguous views).
  auto qkv = torch::randn({4, 3 * 8, 49});
  auto parts = qkv.chunk(3, 1);
  auto out = multihead_attention(parts[0], parts[1], parts[2], 0.2);
  auto ref = multihead_attention_reference(parts[0], parts[1], parts[2], 0.2);
  EXPECT_TRUE(torch::allclose(out, ref, 1e-5, 1e-5));
}

TEST(Kernels, HashedDropoutKeepsOneMinusPAndScales) {
  const double p = 0.1;
  auto mask = hashed_dropout_mask({1 << 20}, p, 123, 0);
  const double kept = (mask > 0).to(torch::kFloat64).mean().item<double>();
  EXPECT_NEAR(kept, 1 - p, 0.002);  // 1M draws: σ ≈ 3e-4
  EXPECT_FLOAT_EQ(mask.max().item<float>(), static_cast<float>(1 / (1 - p)));
  // Same seed and call: same mask; another call or seed: another mask.
  EXPECT_TRUE(torch::equal(mask, hashed_dropout_mask({1 << 20}, p, 123, 0)));
  auto other_call = hashed_dropout_mask({1 << 20}, p, 123, 1);
  auto other_seed = hashed_dropout_mask({1 << 20}, p, 124, 0);
  EXPECT_LT((mask == other_call).to(torch::kFloat64).mean().item<double>(), 0.9);
  EXPECT_LT((mask == other_seed).to(torch::kFloat64).mean().item<double>(), 0.9);
  // No visible pattern: neighbouring elements are independent (drop-drop rate ≈ p²).
  auto dropped = (mask == 0).to(torch::kFloat64);
  const double both = (dropped.narrow(0, 0, (1 << 20) - 1) * dropped.narrow(0, 1, (1 << 20) - 1))
                          .mean()
                          .item<double>();
  EXPECT_NEAR(both, p * p, 0.001);
}

TEST(Kernels, HashedDropoutIsReproducibleFromItsSeedAndKeepsGradients) {
  auto x = torch::ones({64, 32}, torch::requires_grad());
  set_dropout_seed(9);
  auto a = hashed_dropout(x, 0.5);
  auto b = hashed_dropout(x, 0.5);
  set_dropout_seed(9);
  auto a2 = hashed_dropout(x, 0.5);
  EXPECT_TRUE(torch::equal(a, a2));
  EXPECT_FALSE(torch::equal(a, b));
  a.sum().backward();
  EXPECT_TRUE(torch::equal(x.grad(), a.detach()));  // d/dx of x·mask is the mask
  EXPECT_TRUE(torch::equal(hashed_dropout(x, 0.0), x));
}

TEST(UNet, InferenceModeGivesTheSameOutputAsGradMode) {
  // Sampling runs activations in place (activate_temporary); results must not change.
  for (auto act : {Activation::SiLU, Activation::ReLU, Activation::GELU, Activation::Mish}) {
    ModelConfig c = small_unet();
    c.zero_init_last = false;
    c.activation = act;
    auto net = make_model(c, DataShape{1, 28, 28, false, 10});
    net->eval();
    auto x = torch::randn({2, 1, 28, 28});
    auto t = torch::tensor({3.0, 700.0});
    auto y = torch::tensor({1, 4});
    auto with_grad = net->forward(x, t, y).detach();
    c10::InferenceMode inference;
    EXPECT_TRUE(torch::equal(with_grad, net->forward(x, t, y))) << to_string(act);
  }
}

// diffusion.learn_sigma doubles the output channels (prediction, then variance value v);
// the zero-initialised output starts at v = 0, halfway between log β̃_t and log β_t.
TEST(Models, LearnSigmaDoublesTheOutputChannels) {
  Config config;
  config.model = small_unet();
  config.diffusion.learn_sigma = true;
  config.diffusion.loss = LossKind::Hybrid;
  auto net = make_model(config, DataShape{3, 16, 16, false, 10});
  EXPECT_TRUE(net->learns_variance());
  auto out = run(net, 2, 3, 16, 16);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, 6, 16, 16}));
  EXPECT_EQ(out.abs().max().item<float>(), 0.0f);
  config.diffusion.learn_sigma = false;
  auto plain = make_model(config, DataShape{3, 16, 16, false, 10});
  EXPECT_FALSE(plain->learns_variance());
  EXPECT_EQ(run(plain, 2, 3, 16, 16).size(1), 3);

  ModelConfig m;
  m.kind = ModelKind::Mlp;
  m.num_classes = 8;
  auto mlp = make_model(m, DataShape{2, 0, 0, true, 8}, /*learn_sigma=*/true);
  EXPECT_TRUE(mlp->learns_variance());
  torch::NoGradGuard ng;
  auto points = mlp->forward(torch::randn({5, 2}), torch::randint(0, 100, {5}), torch::randint(0, 8, {5}));
  EXPECT_EQ(points.sizes(), (std::vector<int64_t>{5, 4}));
}

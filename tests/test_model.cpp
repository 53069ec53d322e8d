// UNet and MLP shapes for every supported size, conditioning, init options.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <torch/version.h>

#include "core/model/denoiser_net.h"
#include "core/model/attention_kernel.h"
#include "core/model/conv_grad.h"
#include "core/model/flops.h"
#include "core/model/hashed_dropout.h"
#include "core/model/norm_act.h"
#include "core/model/precision.h"
#include "core/util/runtime.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace difflab;

namespace {

ModelConfig small_unet() {
  ModelConfig c;
  c.base_channels = 16;
  c.channel_mult = {1, 2, 2};
  c.num_res_blocks = 1;
  c.attention_resolutions = {7};
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

// For the precision and conv-stall tests: a fresh folder for their caches and a pinned
// answer to "has this CPU bf16 instructions" (DIFFLAB_CPU_BF16), both undone when the
// test ends, a failed ASSERT included.
class PrecisionSandbox {
 public:
  PrecisionSandbox(const std::string& name, const char* cpu_bf16)
      : m_dir(std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(m_dir);
    std::filesystem::create_directories(m_dir);
    setenv("DIFFLAB_CACHE_DIR", m_dir.c_str(), 1);
    setenv("DIFFLAB_CPU_BF16", cpu_bf16, 1);
  }
  ~PrecisionSandbox() {
    unsetenv("DIFFLAB_CPU_BF16");
    unsetenv("DIFFLAB_CACHE_DIR");
    std::filesystem::remove_all(m_dir);
  }
  PrecisionSandbox(const PrecisionSandbox&) = delete;
  PrecisionSandbox& operator=(const PrecisionSandbox&) = delete;
  const std::filesystem::path& dir() const { return m_dir; }

 private:
  std::filesystem::path m_dir;
};

// A training probe at batch 4 of single-channel images of `side` x `side`, 10 classes.
PrecisionProbe training_probe(int side) {
  PrecisionProbe probe;
  probe.training = true;
  probe.batch = 4;
  probe.shape = DataShape{1, side, side, false, 10};
  return probe;
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
  c.attention_resolutions = {(p.size + 1) / 2};  // the second level, present in every case
  c.zero_init_last = false;
  auto net = make_model(c, DataShape{p.channels, p.size, p.size, false, 10});
  auto out = run(net, 2, p.channels, p.size, p.size);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, p.channels, p.size, p.size}));
  EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
  EXPECT_GT(count_parameters(*net), 10000);
}

TEST(UNet, AttentionResolutionMatchingNoLevelIsAnError) {
  ModelConfig c = small_unet();
  c.attention_resolutions = {7, 5};
  try {
    make_model(c, DataShape{1, 28, 28, false, 10});
    FAIL() << "attention at 5x5 on a 28/14/7 UNet was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("model.attention_resolutions: 5 matches no level of this "
                                         "UNet (its levels are 28, 14, 7 pixels"),
              std::string::npos)
        << e.what();
  }
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

TEST(Kernels, ChannelsLastAttentionMatchesTheChunkedForm) {
  // Sampling's form reads q, k, v straight from the 1x1 convolution's channels-last output
  // and writes channels-last: the same numbers as reshape + chunk + the (N, d, L) kernel.
  torch::manual_seed(7);
  const int64_t b = 3, heads = 4, c = 32, h = 7, w = 5;
  const auto qkv = torch::randn({b, 3 * c, h, w});
  const auto parts = qkv.reshape({b * heads, 3 * c / heads, h * w}).chunk(3, 1);
  const auto want = multihead_attention_reference(parts[0], parts[1], parts[2], 0.3).reshape({b, c, h, w});
  const auto qkv_cl = qkv.contiguous(at::MemoryFormat::ChannelsLast);
  ASSERT_TRUE(attention_nhwc_applies(qkv_cl));
  EXPECT_FALSE(attention_nhwc_applies(qkv)) << "NCHW memory";
  const auto got = multihead_attention_nhwc(qkv_cl, heads, 0.3);
  EXPECT_TRUE(got.is_contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_TRUE(torch::allclose(got, want, 1e-5, 1e-5)) << (got - want).abs().max();
  EXPECT_THROW(multihead_attention_nhwc(qkv_cl, 5, 0.3), c10::Error) << "32 channels in 5 heads";
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

TEST(Kernels, HashedDropoutTensorOpsGiveTheKernelsMask) {
  // What CUDA tensors use (the hash as tensor ops), run here on CPU tensors: the kernel's
  // mask exactly, also across the 2³² element boundary and for a rank's row offset.
  for (const double p : {0.1, 0.5}) {
    for (const int64_t first : {int64_t{0}, int64_t{12345}, (int64_t{1} << 32) - 1000}) {
      const auto like = torch::empty({40, 50});
      const auto kernel = hashed_dropout_mask({40, 50}, p, 0xabcdef, 3, first);
      const auto ops = hashed_dropout_mask_on_device(like, p, 0xabcdef, 3, first);
      EXPECT_TRUE(torch::equal(kernel, ops)) << "p " << p << ", first " << first;
    }
  }
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
  // Beyond rounding: without gradients the network keeps channels-last activations (the
  // Winograd convolutions, winograd_conv.h), whose GroupNorm sums in another order, so the
  // two agree to float32 rounding, not bit for bit; an in-place activation that overwrote
  // something still needed would differ by far more.
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
    const auto without = net->forward(x, t, y);
    EXPECT_LT((with_grad - without).abs().max().item<double>(),
              1e-5 * std::max(1.0, with_grad.abs().max().item<double>()))
        << to_string(act);
  }
}

// diffusion.learn_sigma doubles the output channels (prediction, then variance value v);
// the zero-initialised output starts at v = 0, halfway between log β̃_t and log β_t.
TEST(Models, LearnSigmaDoublesTheOutputChannels) {
  Config config;
  config.model = small_unet();
  config.model.attention_resolutions = {8};  // 16 -> 8 -> 4
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

// ---- Mixed precision (core/model/precision.h) ----

TEST(Precision, DecisionNeedsBothSpeedAndAccuracy) {
  // 2x faster and close: bf16.
  auto c = decide_precision(100.0, 50.0, 1e-4, kBf16GradientTolerance);
  EXPECT_EQ(c.chosen, Precision::Bf16);
  EXPECT_TRUE(c.measured);
  EXPECT_NE(c.reason.find("bf16"), std::string::npos) << c.reason;
  // Faster but beyond the tolerance, or within the timing margin, or slower: fp32.
  EXPECT_EQ(decide_precision(100.0, 50.0, 0.5, kBf16GradientTolerance).chosen, Precision::Fp32);
  EXPECT_EQ(decide_precision(100.0, 100.0 / (kBf16MinSpeedup - 0.05), 0.0, 1.0).chosen,
            Precision::Fp32);
  EXPECT_EQ(decide_precision(50.0, 100.0, 0.0, 1.0).chosen, Precision::Fp32);
  EXPECT_EQ(decide_precision(100.0, 50.0, std::nan(""), 1.0).chosen, Precision::Fp32);
  EXPECT_NE(decide_precision(50.0, 100.0, 0.0, 1.0).reason.find("not faster"), std::string::npos);
}

TEST(Precision, ScopeRunsConvolutionsInBf16AndRestores) {
  auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(4, 4, 3).padding(1));
  auto x = torch::randn({2, 4, 8, 8});
  torch::Tensor low, full;
  {
    PrecisionScope scope(true, torch::kCPU);
    low = conv(x);
    // Not under a bf16 scope: nothing changes.
    PrecisionScope inner(false, torch::kCPU);
  }
  full = conv(x);
  EXPECT_EQ(low.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(full.scalar_type(), torch::kFloat32);
  // bf16 keeps 8 bits of mantissa: about 2-3 significant digits.
  EXPECT_LT((low.to(torch::kFloat32) - full).abs().max().item<double>(),
            0.05 * full.abs().max().item<double>());
}

TEST(Precision, UNetInBf16StaysCloseToFp32) {
  auto net = make_model(small_unet(), DataShape{1, 28, 28, false, 10});
  // Non-zero last layers, so the output is not trivially 0 in both.
  {
    torch::NoGradGuard ng;
    for (auto& p : net->parameters()) p.add_(0.02 * torch::randn(p.sizes()));
  }
  net->eval();
  torch::NoGradGuard ng;
  auto x = torch::randn({4, 1, 28, 28});
  auto t = torch::randint(0, 1000, {4}, torch::kLong);
  auto y = torch::randint(0, 10, {4}, torch::kLong);
  const auto full = net->forward(x, t, y);
  torch::Tensor low;
  {
    PrecisionScope scope(true, torch::kCPU);
    low = net->forward(x, t, y).to(torch::kFloat32);
  }
  const double rel = ((low - full).norm() / full.norm()).item<double>();
  std::printf("UNet bf16 relative error: %.2e\n", rel);
  EXPECT_GT(rel, 0.0) << "bf16 must actually have run";
  EXPECT_LT(rel, 0.05);
}

TEST(Runtime, InstructionSetTagFromTheFlagsLine) {
  // An AVX2-only AMD EPYC (family 23) seen here, trimmed; Zen 4 and Sapphire Rapids add
  // AVX-512 with BF16; a Skylake Xeon has AVX-512 without; Neoverse V1 lists bf16.
  const std::string zen2 = "fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 sha_ni clzero";
  EXPECT_EQ(cpu_isa_tag_from_flags(zen2), "avx2");
  EXPECT_EQ(cpu_isa_tag_from_flags(zen2 + " avx512f avx512dq avx512bw avx512vl avx512_bf16 avx512_vnni"),
            "avx512_bf16");
  EXPECT_EQ(cpu_isa_tag_from_flags(zen2 + " avx512f avx512_bf16 amx_bf16 amx_tile amx_int8"), "amx_bf16");
  EXPECT_EQ(cpu_isa_tag_from_flags(zen2 + " avx512f avx512dq avx512bw avx512vl avx512_vnni"), "avx512");
  EXPECT_EQ(cpu_isa_tag_from_flags("fpu sse sse2"), "sse");
  EXPECT_EQ(cpu_isa_tag_from_flags(" fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics bf16 i8mm"), "bf16");
  EXPECT_EQ(cpu_isa_tag_from_flags(" fp asimd evtstrm aes"), "neon");
  EXPECT_EQ(cpu_isa_tag_from_flags(""), "");
  // "avx512_bf16" is a flag of its own: a flag that merely contains "bf16" is not it.
  EXPECT_EQ(cpu_isa_tag_from_flags("sse2 avx2 xbf16x"), "avx2");
  EXPECT_EQ(cpu_bf16_from_tag("avx512_bf16"), CpuBf16::Native);
  EXPECT_EQ(cpu_bf16_from_tag("amx_bf16"), CpuBf16::Native);
  EXPECT_EQ(cpu_bf16_from_tag("bf16"), CpuBf16::Native);
  EXPECT_EQ(cpu_bf16_from_tag("avx512"), CpuBf16::Emulated);
  EXPECT_EQ(cpu_bf16_from_tag("avx2"), CpuBf16::Emulated);
  EXPECT_EQ(cpu_bf16_from_tag("neon"), CpuBf16::Emulated);
  EXPECT_EQ(cpu_bf16_from_tag(""), CpuBf16::Unknown);
  setenv("DIFFLAB_CPU_BF16", "emulated", 1);
  EXPECT_EQ(cpu_bf16(), CpuBf16::Emulated);
  setenv("DIFFLAB_CPU_BF16", "native", 1);
  EXPECT_EQ(cpu_bf16(), CpuBf16::Native);
  unsetenv("DIFFLAB_CPU_BF16");
  EXPECT_EQ(cpu_bf16(), cpu_bf16_from_tag(cpu_isa_tag()));
  std::printf("this CPU: %s [%s]\n", cpu_model_name().c_str(), cpu_isa_tag().c_str());
}

TEST(Precision, WithoutBf16InstructionsAutoIsFloat32Untimed) {
  const PrecisionSandbox sandbox("difflab_precision_emulated", "emulated");
  const auto& dir = sandbox.dir();
  auto net = make_model(small_unet(), DataShape{1, 28, 28, false, 10});
  PrecisionProbe probe = training_probe(28);
  for (const bool training : {true, false}) {
    probe.training = training;
    const auto a = resolve_precision(Precision::Auto, net, probe, torch::kCPU);
    EXPECT_EQ(a.chosen, Precision::Fp32);
    EXPECT_FALSE(a.measured);
    EXPECT_EQ(a.bf16_ms, 0.0);
    EXPECT_NE(a.reason.find("no bf16 instructions"), std::string::npos) << a.reason;
    EXPECT_NE(a.reason.find("not timed"), std::string::npos) << a.reason;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "precision.tsv")) << "nothing measured, nothing cached";
  // Asked for explicitly, bf16 is what the user gets, with a warning.
  const auto b = resolve_precision(Precision::Bf16, net, probe, torch::kCPU);
  EXPECT_EQ(b.chosen, Precision::Bf16);
  EXPECT_NE(b.reason.find("warning"), std::string::npos) << b.reason;
  EXPECT_EQ(resolve_precision(Precision::Fp32, net, probe, torch::kCPU).reason.find("warning"),
            std::string::npos);
  // Its weight gradients are all taken in float32, untimed, at any number of threads.
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  probe.training = true;
  const auto stalls = protect_stalling_convs(net, probe, torch::kCPU);
  EXPECT_TRUE(stalls.measured);
  EXPECT_GT(stalls.shapes, 0);
  EXPECT_EQ(stalls.flagged, stalls.shapes);
  EXPECT_NE(stalls.reason.find("no bf16 instructions"), std::string::npos) << stalls.reason;
  EXPECT_FALSE(std::filesystem::exists(dir / "conv_stalls.tsv"));
  std::vector<ConvShape> shapes;
  {
    ConvShapeRecorder recorder;
    run(net, 4, 1, 28, 28);
    shapes = recorder.shapes();
  }
  for (const auto& s : shapes) EXPECT_TRUE(float32_weight_grad(s)) << s.key();
  set_float32_weight_grad(shapes, false);
  EXPECT_FALSE(conv_grad_hooks_active());
  at::set_num_threads(threads);
}

TEST(Precision, AutoMeasuresOnceAndCachesPerNetwork) {
  // Timed whatever the CPU has (without bf16 instructions auto would not time at all).
  const PrecisionSandbox sandbox("difflab_precision", "native");
  const auto& dir = sandbox.dir();
  auto net = make_model(small_unet(), DataShape{1, 28, 28, false, 10});
  PrecisionProbe probe = training_probe(28);
  const auto explicit_fp32 = resolve_precision(Precision::Fp32, net, probe, torch::kCPU);
  EXPECT_EQ(explicit_fp32.chosen, Precision::Fp32);
  EXPECT_FALSE(explicit_fp32.measured);
  const bool was_training = net->is_training();
  const auto first = resolve_precision(Precision::Auto, net, probe, torch::kCPU);
  EXPECT_TRUE(first.measured);
  EXPECT_FALSE(first.cached);
  EXPECT_GT(first.fp32_ms, 0.0);
  EXPECT_GT(first.bf16_ms, 0.0);
  EXPECT_LT(first.error, 0.05) << first.reason;
  EXPECT_NE(first.chosen, Precision::Auto);
  EXPECT_EQ(net->is_training(), was_training);
  for (const auto& p : net->parameters()) EXPECT_FALSE(p.grad().defined()) << "the probe left a gradient";
  const auto again = resolve_precision(Precision::Auto, net, probe, torch::kCPU);
  EXPECT_TRUE(again.cached);
  EXPECT_EQ(again.chosen, first.chosen);
  EXPECT_NE(again.reason.find("measured earlier"), std::string::npos) << again.reason;
  // Sampling is a separate entry. A fresh net outputs zeros (its last layers start at 0):
  // nothing to compare, so the answer is not cached...
  probe.training = false;
  const auto fresh = resolve_precision(Precision::Auto, net, probe, torch::kCPU);
  EXPECT_NE(fresh.reason.find("not checked"), std::string::npos) << fresh.reason;
  EXPECT_FALSE(resolve_precision(Precision::Auto, net, probe, torch::kCPU).cached);
  // ... until the net computes something; then bf16's images are compared with fp32's.
  {
    torch::NoGradGuard ng;
    for (auto& p : net->parameters()) p.add_(0.02 * torch::randn(p.sizes()));
  }
  const auto sampling = resolve_precision(Precision::Auto, net, probe, torch::kCPU);
  EXPECT_FALSE(sampling.cached);
  EXPECT_GT(sampling.error, 0.0) << sampling.reason;
  EXPECT_LT(sampling.error, kBf16SampleTolerance) << sampling.reason;
  EXPECT_TRUE(resolve_precision(Precision::Auto, net, probe, torch::kCPU).cached);
  std::ifstream in(dir / "precision.tsv");
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) ++lines;
  EXPECT_EQ(lines, 2);
}

// ---- bf16 weight gradients in float32 where oneDNN's kernel stalls (core/model/conv_grad.h) ----

TEST(ConvGrad, Float32WeightGradientHasTheBf16ForwardAndTheFloat32Gradients) {
  torch::manual_seed(3);
  for (const int64_t stride : {1, 2}) {
    auto x = torch::randn({3, 8, 9, 9}).requires_grad_(true);
    auto w = (0.2 * torch::randn({4, 8, 3, 3})).requires_grad_(true);
    auto b = torch::randn({4}).requires_grad_(true);
    torch::Tensor ours, theirs;
    {
      PrecisionScope scope(true, torch::kCPU);
      ours = conv2d_float32_weight_grad(x, w, b, stride, 1);
      theirs = torch::conv2d(x, w, b, stride, 1);  // what autocast runs
    }
    ASSERT_EQ(ours.scalar_type(), torch::kBFloat16);
    EXPECT_TRUE(torch::equal(ours, theirs)) << "the forward is autocast's bf16 convolution";
    const auto g = torch::randn(ours.sizes());
    const auto grads = torch::autograd::grad({(ours.to(torch::kFloat32) * g).sum()}, {x, w, b});
    const auto auto_grads = torch::autograd::grad({(theirs.to(torch::kFloat32) * g).sum()}, {x, w, b});
    for (const auto& gr : grads) EXPECT_EQ(gr.scalar_type(), torch::kFloat32);
    // The input gradient is bf16's kernel, as autocast's; weight and bias gradients are the
    // float32 ones of the same bf16 operands.
    EXPECT_TRUE(torch::allclose(grads[0], auto_grads[0], 1e-2, 1e-2));
    const auto xb = x.detach().to(torch::kBFloat16).to(torch::kFloat32);
    const auto wb = w.detach().to(torch::kBFloat16).to(torch::kFloat32);
    const auto gb = g.to(torch::kBFloat16).to(torch::kFloat32);
    const auto ref = at::convolution_backward(gb, xb, wb, c10::nullopt, {stride, stride}, {1, 1}, {1, 1},
                                              false, {0, 0}, 1, {false, true, false});
    EXPECT_TRUE(torch::allclose(grads[1], std::get<1>(ref), 1e-4, 1e-4))
        << (grads[1] - std::get<1>(ref)).abs().max().item<double>();
    EXPECT_TRUE(torch::allclose(grads[2], gb.sum({0, 2, 3}), 1e-4, 1e-4));
    // bf16's own weight gradient rounds to 8 bits: close to it, and not the same numbers.
    EXPECT_TRUE(torch::allclose(grads[1], auto_grads[1], 0.05, 0.05 * auto_grads[1].abs().max().item<double>()));
  }
}

TEST(ConvGrad, UNetRecordsItsShapesAndTakesFlaggedOnesInFloat32) {
  torch::manual_seed(4);
  auto net = make_model(small_unet(), DataShape{1, 28, 28, false, 10});
  {
    torch::NoGradGuard ng;
    for (auto& p : net->parameters()) p.add_(0.02 * torch::randn(p.sizes()));
  }
  net->eval();  // no dropout: the same function every call
  auto x = torch::randn({4, 1, 28, 28});
  auto t = torch::randint(0, 1000, {4}, torch::kLong);
  auto y = torch::randint(0, 10, {4}, torch::kLong);
  std::vector<ConvShape> shapes;
  EXPECT_FALSE(conv_grad_hooks_active());
  {
    ConvShapeRecorder recorder;
    EXPECT_TRUE(conv_grad_hooks_active());
    torch::NoGradGuard ng;
    net->forward(x, t, y);
    shapes = recorder.shapes();
  }
  EXPECT_FALSE(conv_grad_hooks_active());
  ASSERT_GE(shapes.size(), 8u);
  const auto down = std::find_if(shapes.begin(), shapes.end(), [](const ConvShape& s) { return s.stride == 2; });
  ASSERT_NE(down, shapes.end()) << "the down-sampler is a stride-2 convolution";
  EXPECT_EQ(down->batch, 4);
  EXPECT_EQ(down->kernel, 3);
  EXPECT_EQ(down->padding, 1);
  EXPECT_EQ(shapes.front().key(), "b4_i1_o16_28x28_k3_s1_p1");  // the input convolution

  auto weight_grads = [&] {
    torch::Tensor out;
    {
      PrecisionScope scope(true, torch::kCPU);
      out = net->forward(x, t, y);
    }
    const auto loss = out.to(torch::kFloat32).pow(2).mean();
    std::vector<torch::Tensor> flat;
    for (auto& g : torch::autograd::grad({loss}, net->parameters(), {}, false, false, true))
      if (g.defined()) flat.push_back(g.reshape(-1));
    return torch::cat(flat);
  };
  const auto plain = weight_grads();
  set_float32_weight_grad(shapes, true);
  EXPECT_TRUE(float32_weight_grad(*down));
  const auto flagged = weight_grads();
  set_float32_weight_grad(shapes, false);
  EXPECT_FALSE(float32_weight_grad(*down));
  EXPECT_FALSE(conv_grad_hooks_active());
  const double cosine = (plain.dot(flagged) / (plain.norm() * flagged.norm())).item<double>();
  EXPECT_GT(cosine, 1.0 - kBf16GradientTolerance) << "the same gradient, rounded differently";
  EXPECT_FALSE(torch::equal(plain, flagged)) << "the float32 path must have run";
  // Without autocast (fp32 training) a flagged shape changes nothing.
  set_float32_weight_grad({*down}, true);
  const auto loss32 = [&] { return net->forward(x, t, y).pow(2).mean(); };
  const auto g1 = torch::autograd::grad({loss32()}, net->parameters(), {}, false, false, true);
  set_float32_weight_grad({*down}, false);
  const auto g2 = torch::autograd::grad({loss32()}, net->parameters(), {}, false, false, true);
  for (size_t i = 0; i < g1.size(); ++i)
    if (g1[i].defined()) EXPECT_TRUE(torch::equal(g1[i], g2[i]));
}

TEST(ConvGrad, StallRuleNeedsBothTheRatioAndTheExtraTime) {
  EXPECT_TRUE(conv_stalls(2.0, 1000.0));   // the stride-2 down-sampler, seen: 500x
  EXPECT_TRUE(conv_stalls(25.0, 275.0));   // 11x, +250 ms
  EXPECT_FALSE(conv_stalls(0.4, 15.0));    // 37x but +15 ms: a barrier or two
  EXPECT_TRUE(conv_stalls(40.0, 128.0));   // 3.2x, +88 ms: a stall the probe half saw
  EXPECT_FALSE(conv_stalls(10.0, 25.0));   // 2.5x: noise on busy cores
  EXPECT_FALSE(conv_stalls(20.0, 12.0));   // bf16 faster, as it is when nothing stalls
}

TEST(ConvGrad, ProtectReadsTheCacheAndFlagsWhatItSays) {
  const PrecisionSandbox sandbox("difflab_convgrad", "native");  // the timed path, on any CPU
  const auto& dir = sandbox.dir();
  const int threads = at::get_num_threads();
  at::set_num_threads(2);
  ModelConfig tiny = small_unet();  // few shapes: the measuring part below times each one
  tiny.base_channels = 8;
  tiny.channel_mult = {1, 2};
  tiny.attention_resolutions = {};
  auto net = make_model(tiny, DataShape{1, 12, 12, false, 10});
  PrecisionProbe probe = training_probe(12);
  std::vector<ConvShape> shapes;
  {
    ConvShapeRecorder recorder;
    run(net, 4, 1, 12, 12);
    shapes = recorder.shapes();
  }
  ASSERT_GE(shapes.size(), 2u);
  // Every shape answered by the cache: the second one stalls, the others do not.
  const std::string prefix = cpu_model_name() + " [" + cpu_isa_tag() + "]|" + TORCH_VERSION + "|2|";
  {
    std::ofstream out(dir / "conv_stalls.tsv");
    out << "a line that is not a cache entry\n";
    for (size_t i = 0; i < shapes.size(); ++i)
      out << prefix << shapes[i].key() << '\t' << (i == 1 ? 1 : 0) << '\t' << 2.5 << '\t'
          << (i == 1 ? 500.0 : 3.0) << '\n';
  }
  const auto report = protect_stalling_convs(net, probe, torch::kCPU);
  EXPECT_TRUE(report.measured);
  EXPECT_TRUE(report.cached);
  EXPECT_EQ(report.shapes, static_cast<int>(shapes.size()));
  EXPECT_EQ(report.flagged, 1);
  EXPECT_DOUBLE_EQ(report.bf16_ms, 500.0);
  EXPECT_DOUBLE_EQ(report.float32_ms, 2.5);
  EXPECT_NE(report.reason.find("1 of " + std::to_string(shapes.size())), std::string::npos) << report.reason;
  EXPECT_NE(report.reason.find("measured earlier"), std::string::npos) << report.reason;
  EXPECT_TRUE(float32_weight_grad(shapes[1]));
  EXPECT_FALSE(float32_weight_grad(shapes[0]));
  set_float32_weight_grad({shapes[1]}, false);
  // Without the cache it measures every shape (beside busy threads) and writes one line each.
  std::filesystem::remove(dir / "conv_stalls.tsv");
  const auto measured = protect_stalling_convs(net, probe, torch::kCPU);
  std::printf("%s\n", measured.reason.c_str());
  EXPECT_TRUE(measured.measured);
  EXPECT_FALSE(measured.cached);
  EXPECT_NE(measured.reason.find("measured now"), std::string::npos) << measured.reason;
  std::ifstream in(dir / "conv_stalls.tsv");
  std::string line;
  size_t lines = 0;
  int stalling = 0;
  while (std::getline(in, line)) {
    ++lines;
    EXPECT_EQ(line.rfind(prefix, 0), 0u) << line;
    stalling += line.find("\t1\t") != std::string::npos;
  }
  EXPECT_EQ(lines, shapes.size());
  EXPECT_EQ(measured.flagged, stalling);
  std::vector<ConvShape> flagged;
  for (const auto& s : shapes)
    if (float32_weight_grad(s)) flagged.push_back(s);
  EXPECT_EQ(static_cast<int>(flagged.size()), stalling);
  set_float32_weight_grad(flagged, false);
  // Not applicable: one thread, or a sampling probe.
  at::set_num_threads(1);
  EXPECT_FALSE(protect_stalling_convs(net, probe, torch::kCPU).measured);
  at::set_num_threads(2);
  probe.training = false;
  EXPECT_FALSE(protect_stalling_convs(net, probe, torch::kCPU).measured);
  at::set_num_threads(threads);
}

// ---- Fused GroupNorm + SiLU (core/model/norm_act.h) against LibTorch's ops ----

TEST(Kernels, GroupNormSiluMatchesTheUnfusedOpsForwardAndBackward) {
  struct Case {
    int64_t n, c, h, w, groups;
    bool silu;
  };
  // Odd spatial sizes leave a tail after the 16-lane loops; 1 group and C groups are the ends.
  for (const Case k : {Case{2, 8, 5, 7, 4, true}, Case{3, 16, 28, 28, 8, true}, Case{1, 6, 3, 3, 1, true},
                       Case{2, 4, 7, 7, 4, false}, Case{2, 32, 1, 1, 8, true}}) {
    auto x = (torch::randn({k.n, k.c, k.h, k.w}) * 3 + 1).requires_grad_(true);
    auto w = (torch::rand({k.c}) + 0.5).requires_grad_(true);
    auto b = torch::randn({k.c}).requires_grad_(true);
    auto x2 = x.detach().clone().requires_grad_(true);
    auto w2 = w.detach().clone().requires_grad_(true);
    auto b2 = b.detach().clone().requires_grad_(true);
    const auto fused = group_norm_act(x, k.groups, w, b, 1e-5, Activation::SiLU, k.silu);
    auto ref = torch::group_norm(x2, k.groups, w2, b2, 1e-5);
    if (k.silu) ref = torch::silu(ref);
    EXPECT_TRUE(torch::allclose(fused, ref, 1e-4, 1e-5))
        << "forward " << k.c << "x" << k.h << "x" << k.w << ": " << (fused - ref).abs().max().item<double>();
    const auto g = torch::randn_like(ref);
    (fused * g).sum().backward();
    (ref * g).sum().backward();
    EXPECT_TRUE(torch::allclose(x.grad(), x2.grad(), 1e-3, 1e-4))
        << "dx: " << (x.grad() - x2.grad()).abs().max().item<double>();
    EXPECT_TRUE(torch::allclose(w.grad(), w2.grad(), 1e-3, 1e-3))
        << "dweight: " << (w.grad() - w2.grad()).abs().max().item<double>();
    EXPECT_TRUE(torch::allclose(b.grad(), b2.grad(), 1e-3, 1e-3))
        << "dbias: " << (b.grad() - b2.grad()).abs().max().item<double>();
  }
}

TEST(Kernels, GroupNormSiluInBf16KeepsTheTypeAndFloat32Statistics) {
  // A large offset: statistics in bf16 would lose the variance entirely.
  auto x = (torch::randn({2, 8, 9, 9}) + 100.0).to(torch::kBFloat16).requires_grad_(true);
  auto w = torch::rand({8}) + 0.5, b = torch::randn({8});
  const auto out = group_norm_act(x, 4, w, b, 1e-5, Activation::SiLU, true);
  EXPECT_EQ(out.scalar_type(), torch::kBFloat16);
  const auto ref = torch::silu(torch::group_norm(x.detach().to(torch::kFloat32), 4, w, b, 1e-5));
  // bf16 output: 8 bits of mantissa, so ~0.4 % of the value.
  EXPECT_TRUE(torch::allclose(out.to(torch::kFloat32), ref, 1e-2, 1e-2))
      << (out.to(torch::kFloat32) - ref).abs().max().item<double>();
  out.to(torch::kFloat32).sum().backward();
  EXPECT_EQ(x.grad().scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::isfinite(x.grad().to(torch::kFloat32)).all().item<bool>());
  // The fallback (other activations, here ReLU) gives the same type.
  const auto relu = group_norm_act(x.detach(), 4, w, b, 1e-5, Activation::ReLU, true);
  EXPECT_EQ(relu.scalar_type(), torch::kBFloat16);
  // A NaN stays a NaN (the training loop's guard must see it).
  auto bad = torch::ones({1, 4, 2, 2});
  bad[0][1][0][0] = std::nan("");
  EXPECT_TRUE(torch::isnan(group_norm_act(bad, 2, torch::ones({4}), torch::zeros({4}), 1e-5,
                                          Activation::SiLU, true)[0][0])
                  .all()
                  .item<bool>());
}

// GaussianDiffusion: q_sample statistics, posterior, ε/x₀/v conversions.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/diffusion/gaussian_diffusion.h"

using namespace difflab;

namespace {
GaussianDiffusion make(Prediction p = Prediction::Eps, ScheduleKind k = ScheduleKind::Linear) {
  return GaussianDiffusion(NoiseSchedule::named(k, 1000), p, torch::kCPU);
}
}  // namespace

TEST(Diffusion, QSampleHasTheClosedFormMeanAndVariance) {
  auto d = make(Prediction::Eps, ScheduleKind::Cosine);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  const int64_t n = 200000;
  for (int step : {0, 250, 600, 999}) {
    auto x0 = torch::full({n, 1}, 0.8);
    auto t = torch::full({n}, step, torch::kLong);
    auto xt = d.q_sample(x0, t, torch::randn({n, 1}, gen));
    const double ab = d.schedule().alphas_cumprod()[step];
    // Sample mean/variance of 2e5 draws: standard errors ≈ 2.2e-3·σ and 3.2e-3·σ².
    EXPECT_NEAR(xt.mean().item<double>(), std::sqrt(ab) * 0.8, 0.01 * std::sqrt(1 - ab) + 1e-6);
    EXPECT_NEAR(xt.var().item<double>(), 1 - ab, 0.02 * (1 - ab) + 1e-9);
  }
}

TEST(Diffusion, ExtractBroadcastsPerExample) {
  auto d = make();
  auto t = torch::tensor({0, 10, 999});
  auto v = d.extract(d.alphas_cumprod(), t, 4);
  EXPECT_EQ(v.sizes(), (std::vector<int64_t>{3, 1, 1, 1}));
  EXPECT_NEAR(v[2].item<double>(), d.schedule().alphas_cumprod()[999], 1e-9);
}

TEST(Diffusion, EpsX0AndVConversionsInvertEachOther) {
  auto d = make();
  auto x0 = torch::rand({4, 1, 3, 3}) * 2 - 1;
  auto eps = torch::randn({4, 1, 3, 3});
  auto t = torch::tensor({0, 100, 500, 999});
  auto xt = d.q_sample(x0, t, eps);
  EXPECT_TRUE(torch::allclose(d.x0_from_eps(xt, t, eps), x0, 1e-3, 1e-3));
  EXPECT_TRUE(torch::allclose(d.eps_from_x0(xt, t, x0), eps, 1e-3, 1e-3));
  auto v = d.v_target(x0, t, eps);
  EXPECT_TRUE(torch::allclose(d.x0_from_v(xt, t, v), x0, 1e-4, 1e-4));
  // v by hand at t = 500.
  const double ab = d.schedule().alphas_cumprod()[500];
  auto v_hand = std::sqrt(ab) * eps[2] - std::sqrt(1 - ab) * x0[2];
  EXPECT_TRUE(torch::allclose(v[2], v_hand, 1e-5, 1e-5));
}

TEST(Diffusion, InterpretEveryPredictionGivesTheSameX0) {
  auto x0 = torch::rand({3, 2}) * 1.6 - 0.8;
  auto eps = torch::randn({3, 2});
  auto t = torch::tensor({5, 300, 800});
  for (auto p : {Prediction::Eps, Prediction::X0, Prediction::V}) {
    auto d = make(p);
    auto xt = d.q_sample(x0, t, eps);
    auto target = d.training_target(x0, t, eps);
    auto [e, x] = d.interpret(target, xt, t, false);
    EXPECT_TRUE(torch::allclose(x, x0, 2e-3, 2e-3)) << to_string(p);
    EXPECT_TRUE(torch::allclose(e, eps, 2e-2, 2e-2)) << to_string(p);
  }
  // Clipping keeps x̂₀ in [−1, 1] and ε̂ consistent with it.
  auto d = make();
  auto xt = torch::full({1, 2}, 3.0);
  auto [e, x] = d.interpret(torch::zeros({1, 2}), xt, torch::tensor({10}), true);
  EXPECT_LE(x.abs().max().item<float>(), 1.0f);
  EXPECT_TRUE(torch::allclose(d.x0_from_eps(xt, torch::tensor({10}), e), x, 1e-4, 1e-4));
}

TEST(Diffusion, PosteriorMatchesHandComputation) {
  auto d = make();
  const int step = 400;
  const auto& s = d.schedule();
  auto x0 = torch::tensor({{0.5}});
  auto xt = torch::tensor({{-0.2}});
  auto p = d.q_posterior(x0, xt, torch::tensor({step}));
  const double b = s.betas()[step], ab = s.alphas_cumprod()[step], abp = s.alphas_cumprod_prev()[step];
  const double mean = b * std::sqrt(abp) / (1 - ab) * 0.5 + (1 - abp) * std::sqrt(1 - b) / (1 - ab) * -0.2;
  EXPECT_NEAR(p.mean.item<double>(), mean, 1e-6);
  EXPECT_NEAR(p.variance.item<double>(), b * (1 - abp) / (1 - ab), 1e-9);
  EXPECT_NEAR(p.log_variance.item<double>(), std::log(b * (1 - abp) / (1 - ab)), 1e-5);
}

TEST(Diffusion, RespacedDiffusionFeedsOriginalTimesteps) {
  GaussianDiffusion d(NoiseSchedule::named(ScheduleKind::Linear, 1000).respaced(10), Prediction::Eps,
                      torch::kCPU);
  auto ts = d.model_timesteps(torch::arange(10, torch::kLong));
  EXPECT_EQ(ts[0].item<float>(), 0.0f);
  EXPECT_EQ(ts[9].item<float>(), 999.0f);
  EXPECT_EQ(ts.scalar_type(), torch::kFloat32);
}

TEST(Diffusion, SimpleLossIsPerExampleMse) {
  auto d = make();
  auto out = torch::zeros({2, 1, 2, 2});
  auto target = torch::tensor({1.0, 1.0, 1.0, 1.0, 2.0, 0.0, 0.0, 0.0}).view({2, 1, 2, 2});
  auto l = d.simple_loss(out, target);
  EXPECT_NEAR(l[0].item<double>(), 1.0, 1e-7);
  EXPECT_NEAR(l[1].item<double>(), 1.0, 1e-7);
}

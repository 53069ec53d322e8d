// GaussianDiffusion: q_sample statistics, posterior, ε/x₀/v conversions, learned variance,
// VLB terms, NLL bound; the timestep samplers.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/diffusion/gaussian_diffusion.h"
#include "core/diffusion/timestep_sampler.h"

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

// ---- Improved DDPM: learned variance, VLB terms, NLL bound (Nichol & Dhariwal 2021) ------

namespace {
constexpr double kLn2 = 0.693147180559945309417;
// Φ(x) by hand from the C library.
double phi(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }
double kl_by_hand(double m1, double lv1, double m2, double lv2) {
  return 0.5 * (-1.0 + lv2 - lv1 + std::exp(lv1 - lv2) + (m1 - m2) * (m1 - m2) * std::exp(-lv2));
}
// log P(bin of pixel value k) under N(mean, s²), bins of width 2/255, end bins to ∓∞.
// Above the mean by the reflection Φ(hi) − Φ(lo) = Φ(−lo) − Φ(−hi), which keeps the digits
// of far upper-tail bins (where both Φ are ≈ 1).
double bin_log_prob(int k, double mean, double s) {
  const double x = 2.0 * k / 255.0 - 1.0;
  const double hi = k == 255 ? INFINITY : (x + 1.0 / 255.0 - mean) / s;
  const double lo = k == 0 ? -INFINITY : (x - 1.0 / 255.0 - mean) / s;
  const double p = x > mean ? phi(-lo) - phi(-hi) : phi(hi) - phi(lo);
  return std::log(std::max(p, 1e-12));
}
}  // namespace

TEST(Diffusion, LearnedRangeVarianceInterpolatesLogBetaAndLogBetaTilde) {
  auto d = make();
  const auto& s = d.schedule();
  for (int step : {0, 1, 500, 999}) {
    const double lo = std::log(s.posterior_variance()[step == 0 ? 1 : step]);  // β̃, clipped at 0
    const double hi = std::log(s.betas()[step]);
    auto v = torch::tensor({-1.0f, 0.0f, 0.3f, 1.0f}).view({1, 4});
    auto lv = d.learned_range_log_variance(v, torch::tensor({step}));
    for (int i = 0; i < 4; ++i) {
      const double f = (v[0][i].item<double>() + 1.0) / 2.0;
      EXPECT_NEAR(lv[0][i].item<double>(), f * hi + (1 - f) * lo, 1e-5) << step << " " << i;
    }
  }
  // Fixed variances: β̃_t and β_t, both β̃_1 at t = 0.
  auto t = torch::tensor({0, 7});
  auto small = d.fixed_log_variance(VarianceKind::FixedSmall, t, 2);
  auto large = d.fixed_log_variance(VarianceKind::FixedLarge, t, 2);
  EXPECT_EQ(small.sizes(), (std::vector<int64_t>{2, 1}));
  EXPECT_NEAR(small[0][0].item<double>(), std::log(s.posterior_variance()[1]), 1e-5);
  EXPECT_NEAR(large[0][0].item<double>(), std::log(s.posterior_variance()[1]), 1e-5);
  EXPECT_NEAR(small[1][0].item<double>(), std::log(s.posterior_variance()[7]), 1e-5);
  EXPECT_NEAR(large[1][0].item<double>(), std::log(s.betas()[7]), 1e-5);
  EXPECT_THROW(d.fixed_log_variance(VarianceKind::Learned, t, 2), std::invalid_argument);
}

TEST(Diffusion, SplitModelOutputTakesTheHalves) {
  auto out = torch::arange(2 * 6 * 2, torch::kFloat32).view({2, 6, 2});
  auto parts = split_model_output(out, true);
  EXPECT_TRUE(torch::equal(parts.prediction, out.narrow(1, 0, 3)));
  EXPECT_TRUE(torch::equal(parts.variance, out.narrow(1, 3, 3)));
  auto plain = split_model_output(out, false);
  EXPECT_TRUE(torch::equal(plain.prediction, out));
  EXPECT_FALSE(plain.variance.defined());
  EXPECT_THROW(split_model_output(torch::zeros({2, 3}), true), std::invalid_argument);
}

TEST(Diffusion, NormalKlMatchesTheClosedForm) {
  const double cases[][4] = {{0.0, 0.0, 0.0, 0.0},  {1.0, 0.0, 0.0, 0.0},  {0.3, -2.0, -0.1, 0.5},
                             {-1.2, 1.5, 0.7, -3.0}, {0.0, -9.2, 0.01, -9.0}};
  for (const auto& c : cases) {
    auto kl = normal_kl(torch::tensor(c[0], torch::kFloat64), torch::tensor(c[1], torch::kFloat64),
                        torch::tensor(c[2], torch::kFloat64), torch::tensor(c[3], torch::kFloat64));
    EXPECT_NEAR(kl.item<double>(), kl_by_hand(c[0], c[1], c[2], c[3]), 1e-12) << c[0] << " " << c[1];
  }
  // Nearly equal variances: KL = ½(e^d − 1 − d) ≈ d²/4 keeps its digits even in float32.
  const float d = 1e-3f;
  auto kl = normal_kl(torch::zeros({1}), torch::full({1}, d), torch::zeros({1}), torch::zeros({1}));
  EXPECT_NEAR(kl.item<double>(), 0.5 * (std::expm1(1e-3) - 1e-3), 1e-10);
}

TEST(Diffusion, StandardNormalCdfMatchesErfc) {
  for (double x : {-30.0, -6.0, -1.0, 0.0, 0.4, 2.5, 8.0}) {
    auto v = standard_normal_cdf(torch::tensor(x, torch::kFloat64)).item<double>();
    EXPECT_NEAR(v, phi(x), 1e-15 + 1e-12 * phi(x)) << x;
  }
}

TEST(Diffusion, DiscretizedLogLikelihoodMatchesBinsAndSumsToOne) {
  // Every pixel value of one mean and scale: hand values, and the 256 bins sum to 1.
  for (const auto& [mean, s] : {std::pair{0.1, 0.05}, std::pair{-0.98, 0.01}, std::pair{0.7, 0.3}}) {
    auto k = torch::arange(256, torch::kFloat64);
    auto x = k * (2.0 / 255.0) - 1.0;
    auto ll = discretized_gaussian_log_likelihood(x, torch::full_like(x, mean),
                                                  torch::full_like(x, std::log(s)));
    double total = 0.0;
    for (int i = 0; i < 256; ++i) {
      const double got = ll[i].item<double>();
      EXPECT_NEAR(got, bin_log_prob(i, mean, s), 1e-9 + 1e-9 * std::fabs(got)) << mean << " " << i;
      total += std::exp(got);
    }
    EXPECT_NEAR(total, 1.0, 1e-9) << mean;
  }
  // A bin far in the upper tail keeps its digits (both Φ ≈ 1): Φ(hi) − Φ(lo) via erfc.
  const double mean = 0.0, s = 0.1, x = 2.0 * 200 / 255.0 - 1.0;  // z ≈ 5.7
  auto ll = discretized_gaussian_log_likelihood(torch::tensor(x, torch::kFloat64),
                                                torch::tensor(mean, torch::kFloat64),
                                                torch::tensor(std::log(s), torch::kFloat64));
  const double lo = (x - 1.0 / 255.0) / s, hi = (x + 1.0 / 255.0) / s;
  const double exact = std::log(0.5 * (std::erfc(lo / std::sqrt(2.0)) - std::erfc(hi / std::sqrt(2.0))));
  EXPECT_NEAR(ll.item<double>(), exact, 1e-9);
  // Floored at 1e-12, so a wrong, confident decoder gives a large but finite value.
  auto floor = discretized_gaussian_log_likelihood(torch::tensor(0.0), torch::tensor(0.9),
                                                   torch::tensor(std::log(1e-3)));
  EXPECT_NEAR(floor.item<double>(), std::log(1e-12), 1e-3);
  // float32 in, float32 out.
  EXPECT_EQ(floor.scalar_type(), torch::kFloat32);
}

TEST(Diffusion, VlbTermsMatchHandComputation) {
  auto d = make(Prediction::Eps);
  const auto& s = d.schedule();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  // Three values per image so the mean over dimensions matters.
  auto x0 = torch::tensor({-1.0, 2.0 * 130 / 255.0 - 1.0, 1.0}, torch::kFloat32).view({1, 3});
  auto eps = torch::randn({1, 3}, gen);
  auto eps_hat = eps + 0.3;  // a prediction that is off
  auto v = torch::tensor({0.2f, -0.5f, 0.9f}).view({1, 3});
  for (int step : {0, 300}) {
    auto t = torch::tensor({step});
    auto xt = d.q_sample(x0, t, eps);
    auto p = d.p_mean_variance({eps_hat, v}, xt, t, VarianceKind::Learned, false);
    const double term = d.vlb_terms_bpd(p, x0, xt, t).item<double>();

    const double b = s.betas()[step], ab = s.alphas_cumprod()[step], abp = s.alphas_cumprod_prev()[step];
    const double c1 = b * std::sqrt(abp) / (1 - ab), c2 = (1 - abp) * std::sqrt(1 - b) / (1 - ab);
    const double lo = std::log(s.posterior_variance()[step == 0 ? 1 : step]), hi = std::log(b);
    double by_hand = 0.0;
    for (int i = 0; i < 3; ++i) {
      const double x = x0[0][i].item<double>(), xti = xt[0][i].item<double>();
      const double x0_hat = (xti - std::sqrt(1 - ab) * eps_hat[0][i].item<double>()) / std::sqrt(ab);
      const double model_mean = c1 * x0_hat + c2 * xti;
      const double f = (v[0][i].item<double>() + 1) / 2;
      const double model_lv = f * hi + (1 - f) * lo;
      if (step == 0) {
        const int k = static_cast<int>(std::lround((x + 1) * 127.5));
        by_hand += -bin_log_prob(k, model_mean, std::exp(0.5 * model_lv));
      } else {
        by_hand += kl_by_hand(c1 * x + c2 * xti, lo, model_mean, model_lv);
      }
    }
    by_hand /= 3 * kLn2;
    EXPECT_NEAR(term, by_hand, 1e-3 * by_hand + 1e-7) << "t = " << step;
    EXPECT_GT(term, 0.0);
  }
}

TEST(Diffusion, PriorTermMatchesTheClosedForm) {
  for (auto kind : {ScheduleKind::Linear, ScheduleKind::Cosine}) {
    auto d = make(Prediction::Eps, kind);
    auto x0 = torch::tensor({{-1.0f, 0.0f, 0.5f, 1.0f}});
    const double ab = d.schedule().alphas_cumprod()[999];
    double by_hand = 0.0;
    for (double x : {-1.0, 0.0, 0.5, 1.0})
      by_hand += kl_by_hand(std::sqrt(ab) * x, std::log(1 - ab), 0.0, 0.0);
    by_hand /= 4 * kLn2;
    EXPECT_NEAR(d.prior_bpd(x0).item<double>(), by_hand, 1e-9 + 1e-6 * by_hand);
    EXPECT_LT(by_hand, 1e-3);  // both schedules end close to N(0, I)
  }
}

// A model that always predicts the one training image x* (x₀ prediction): the optimal
// denoiser of a one-image data set. With the fixed-small variance every KL term is exactly
// 0, so the bound is L_T + L_0 with the decoder N(x*, β̃_1) of the hand computation.
TEST(Diffusion, NllBoundOfAPerfectModelIsPriorPlusDecoder) {
  GaussianDiffusion d(NoiseSchedule::named(ScheduleKind::Linear, 100), Prediction::X0, torch::kCPU);
  const int pixels[] = {0, 40, 128, 255};
  auto x_star = torch::empty({1, 1, 2, 2});
  for (int i = 0; i < 4; ++i) x_star.view({4})[i] = 2.0 * pixels[i] / 255.0 - 1.0;
  auto x0 = x_star.expand({3, 1, 2, 2}).contiguous();
  int calls = 0;
  ModelFn perfect = [&](const at::Tensor& xt, const at::Tensor&) {
    ++calls;
    return ModelOutput{x_star.expand_as(xt).clone(), at::Tensor()};
  };
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  auto r = d.nll_bits_per_dim(perfect, x0, VarianceKind::FixedSmall, true, gen);
  EXPECT_EQ(calls, 100);
  EXPECT_FALSE(r.estimate);
  const double s = std::sqrt(d.schedule().posterior_variance()[1]);
  double decoder = 0.0;
  for (int k : pixels) decoder -= bin_log_prob(k, 2.0 * k / 255.0 - 1.0, s);
  decoder /= 4 * kLn2;
  const double prior = d.prior_bpd(x_star).item<double>();
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(r.kl_sum[i].item<double>(), 0.0, 1e-6);
    EXPECT_NEAR(r.decoder[i].item<double>(), decoder, 1e-5);
    EXPECT_NEAR(r.prior[i].item<double>(), prior, 1e-7);
    EXPECT_NEAR(r.total[i].item<double>(), prior + decoder, 1e-5);
  }
  EXPECT_EQ(r.terms.sizes(), (std::vector<int64_t>{3, 100}));

  // A model that knows nothing (predicts x₀ = 0) has a much larger bound, and the
  // stratified estimate calls the network once per stratum plus once for L_0.
  ModelFn blank = [&](const at::Tensor& xt, const at::Tensor&) {
    ++calls;
    return ModelOutput{torch::zeros_like(xt), at::Tensor()};
  };
  calls = 0;
  auto exact = d.nll_bits_per_dim(blank, x0, VarianceKind::FixedSmall, true, gen);
  EXPECT_GT(exact.total.mean().item<double>(), r.total.mean().item<double>() + 1.0);
  EXPECT_TRUE(torch::isfinite(exact.total).all().item<bool>());
  calls = 0;
  auto est = d.nll_bits_per_dim(blank, x0, VarianceKind::FixedSmall, true, gen, 10);
  EXPECT_EQ(calls, 1 + 10);
  EXPECT_TRUE(est.estimate);
  // For this model every L_t is the same for any noise (the mean is off by c1·x₀), so the
  // estimate must be L_T + L_0 + Σ over strata of (stratum size) × L_pick, with exactly one
  // pick in each stratum. Strata for T = 100, K = 10: b_k = round(100^{k/10}).
  const std::vector<int> bounds = {1, 2, 3, 4, 6, 10, 16, 25, 40, 63, 100};
  EXPECT_EQ(nll_strata(100, 10), bounds);
  double expected = 0.0;
  for (size_t k = 1; k < bounds.size(); ++k) {
    int picks = 0;
    for (int t = bounds[k - 1]; t < bounds[k]; ++t) {
      if (est.terms[0][t].item<double>() == 0.0) continue;
      ++picks;
      EXPECT_NEAR(est.terms[0][t].item<double>(), exact.terms[0][t].item<double>(),
                  1e-5 * exact.terms[0][t].item<double>());
      expected += (bounds[k] - bounds[k - 1]) * exact.terms[0][t].item<double>();
    }
    EXPECT_EQ(picks, 1) << "stratum from " << bounds[k - 1];
  }
  EXPECT_NEAR(est.kl_sum[0].item<double>(), expected, 1e-5 * expected);
  EXPECT_NEAR(est.total[0].item<double>(),
              expected + exact.prior[0].item<double>() + exact.decoder[0].item<double>(),
              1e-5 * expected);
  // K >= T − 1 is exact.
  calls = 0;
  EXPECT_FALSE(d.nll_bits_per_dim(blank, x0, VarianceKind::FixedSmall, true, gen, 99).estimate);
  EXPECT_EQ(calls, 100);
  EXPECT_THROW(d.nll_bits_per_dim(perfect, x0, VarianceKind::Learned, true, gen),
               std::invalid_argument);
}

TEST(Diffusion, NllStrataAreGeometricWithAtLeastOneRowEach) {
  EXPECT_EQ(nll_strata(20, 5), (std::vector<int>{1, 2, 3, 6, 11, 20}));  // round(20^{k/5})
  EXPECT_EQ(nll_strata(6, 5), (std::vector<int>{1, 2, 3, 4, 5, 6}));     // one row each
  EXPECT_EQ(nll_strata(1000, 1), (std::vector<int>{1, 1000}));
  // Many strata: the first ones would round to the same row and are pushed apart.
  const auto b = nll_strata(1000, 30);
  ASSERT_EQ(b.size(), 31u);
  EXPECT_EQ(b.front(), 1);
  EXPECT_EQ(b.back(), 1000);
  for (size_t k = 1; k < b.size(); ++k) EXPECT_GT(b[k], b[k - 1]);
  EXPECT_EQ(b[1], 2);
  EXPECT_THROW(nll_strata(100, 0), std::invalid_argument);
  EXPECT_THROW(nll_strata(100, 100), std::invalid_argument);
}

TEST(TimestepSampler, UniformUntilEveryTHasItsHistoryThenSecondMoment) {
  const int steps = 4;
  const double mix = 0.1;
  TimestepSampler s(TimestepSamplerKind::LossAware, steps, mix);
  auto feed = [&](int t, double loss, int times) {
    for (int i = 0; i < times; ++i) s.update(torch::tensor({t}), torch::tensor({loss}));
  };
  feed(0, 100.0, 5);  // pushed out again by the ten below: only the last 10 count
  feed(0, 1.0, 10);
  feed(1, 2.0, 10);
  for (int i = 0; i < 5; ++i) {
    feed(2, 3.0, 1);
    feed(2, 4.0, 1);
  }
  feed(3, 0.5, 9);
  EXPECT_FALSE(s.warmed_up());
  for (double p : s.probabilities()) EXPECT_DOUBLE_EQ(p, 0.25);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  auto early = s.sample(64, gen);
  EXPECT_TRUE(torch::all(early.weights == 1.0f).item<bool>());
  // Before warm-up the draws are torch::randint's, as for the uniform sampler.
  auto g1 = at::make_generator<at::CPUGeneratorImpl>(9);
  auto g2 = at::make_generator<at::CPUGeneratorImpl>(9);
  EXPECT_TRUE(torch::equal(s.sample(16, g1).t, torch::randint(0, steps, {16}, g2, torch::kLong)));

  feed(3, 0.5, 1);
  ASSERT_TRUE(s.warmed_up());
  const double w[] = {1.0, 2.0, std::sqrt(12.5), 0.5};  // √(mean L²) per t
  const double sum = w[0] + w[1] + w[2] + w[3];
  const auto p = s.probabilities();
  for (int t = 0; t < steps; ++t)
    EXPECT_NEAR(p[t], (1 - mix) * w[t] / sum + mix / steps, 1e-12) << t;

  const int64_t n = 40000;
  auto draw = s.sample(n, gen);
  auto counts = torch::bincount(draw.t, {}, steps);
  for (int t = 0; t < steps; ++t) {
    const double sd = std::sqrt(n * p[t] * (1 - p[t]));
    EXPECT_NEAR(counts[t].item<double>(), n * p[t], 5 * sd) << t;
    auto wt = draw.weights.index({draw.t == t});
    EXPECT_NEAR(wt.min().item<double>(), 1.0 / (steps * p[t]), 1e-5);
    EXPECT_NEAR(wt.max().item<double>(), 1.0 / (steps * p[t]), 1e-5);
  }
  // Σ_t p_t · 1/(T p_t) = 1: the weighted loss estimates the uniform-t loss.
  EXPECT_NEAR(draw.weights.to(torch::kFloat64).mean().item<double>(), 1.0, 0.02);

  // State round trip: same probabilities and the same draws from the same generator.
  TimestepSampler copy(TimestepSamplerKind::LossAware, steps, mix);
  copy.set_state(s.history(), s.counts());
  EXPECT_EQ(copy.probabilities(), s.probabilities());
  auto ga = at::make_generator<at::CPUGeneratorImpl>(4);
  auto gb = at::make_generator<at::CPUGeneratorImpl>(4);
  EXPECT_TRUE(torch::equal(copy.sample(32, ga).t, s.sample(32, gb).t));
  TimestepSampler other(TimestepSamplerKind::LossAware, 5, mix);
  EXPECT_THROW(other.set_state(s.history(), s.counts()), std::invalid_argument);
  EXPECT_THROW(s.update(torch::tensor({4}), torch::tensor({1.0})), std::invalid_argument);
}

TEST(TimestepSampler, UniformKindIgnoresLossesAndWeighsOne) {
  TimestepSampler s(TimestepSamplerKind::Uniform, 10, 0.001);
  for (int t = 0; t < 10; ++t)
    for (int i = 0; i < 10; ++i) s.update(torch::tensor({t}), torch::tensor({double(t + 1)}));
  for (double p : s.probabilities()) EXPECT_DOUBLE_EQ(p, 0.1);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  auto d = s.sample(8, gen);
  EXPECT_TRUE(torch::all(d.weights == 1.0f).item<bool>());
  EXPECT_THROW(TimestepSampler(TimestepSamplerKind::LossAware, 10, 1.5), std::invalid_argument);
}

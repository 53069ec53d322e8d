// Noise schedules against their closed forms (relative error ≤ 1e-6), and respacing.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "core/schedule/forward_process.h"
#include "core/schedule/noise_schedule.h"
#include "core/train/lr_schedule.h"

using difflab::LrSchedule;
using difflab::LrScheduleKind;
using difflab::NoiseSchedule;
using difflab::ScheduleKind;
using difflab::ddpm_forward_point;
using difflab::edm_forward_point;
using difflab::flow_forward_point;
using difflab::forward_mix;
using difflab::forward_noise;

namespace {

void expect_rel(double got, double want, double tol = 1e-6) {
  EXPECT_LE(std::abs(got - want), tol * std::max(std::abs(want), 1e-300))
      << "got " << got << " want " << want;
}

// ᾱ for the cosine schedule before β is capped: telescoping product of f(t+1)/f(t).
double cosine_f(double t, int T) {
  const double x = (t / T + 0.008) / 1.008 * M_PI / 2;
  return std::cos(x) * std::cos(x);
}

}  // namespace

TEST(Schedule, LinearBetasAndCumulativeProduct) {
  for (int T : {50, 100, 1000}) {
    auto s = NoiseSchedule::named(ScheduleKind::Linear, T);
    ASSERT_EQ(s.size(), T);
    const double b0 = 1e-4 * 1000.0 / T, b1 = 0.02 * 1000.0 / T;
    double prod = 1.0;
    for (int t = 0; t < T; ++t) {
      const double beta = b0 + (b1 - b0) * t / (T - 1);
      expect_rel(s.betas()[t], beta);
      expect_rel(s.alphas_cumprod_prev()[t], prod);
      prod *= 1.0 - beta;
      expect_rel(s.alphas_cumprod()[t], prod);
    }
  }
}

TEST(Schedule, CosineMatchesClosedFormAlphaBar) {
  const int T = 1000;
  auto s = NoiseSchedule::named(ScheduleKind::Cosine, T);
  for (int t = 0; t < T; ++t) {
    const double beta = 1.0 - cosine_f(t + 1, T) / cosine_f(t, T);
    if (beta >= 0.999) {
      EXPECT_DOUBLE_EQ(s.betas()[t], 0.999);  // capped (Nichol & Dhariwal 2021)
      continue;
    }
    expect_rel(s.betas()[t], beta);
    // No cap before t, so the product telescopes to f(t+1) / f(0).
    if (t < T - 2) expect_rel(s.alphas_cumprod()[t], cosine_f(t + 1, T) / cosine_f(0, T), 1e-6);
  }
  // The cap applies only at the very end.
  EXPECT_LT(s.betas()[T - 3], 0.999);
}

TEST(Schedule, QuadraticAndSigmoidEndsAndMonotone) {
  const int T = 1000;
  auto q = NoiseSchedule::named(ScheduleKind::Quadratic, T);
  auto g = NoiseSchedule::named(ScheduleKind::Sigmoid, T);
  expect_rel(q.betas().front(), 1e-4);
  expect_rel(q.betas().back(), 0.02);
  expect_rel(q.betas()[T / 2], std::pow(std::sqrt(1e-4) + (std::sqrt(0.02) - std::sqrt(1e-4)) * (T / 2) / (T - 1.0), 2));
  const double x = -6.0 + 12.0 * 500 / 999.0;
  expect_rel(g.betas()[500], 1e-4 + (0.02 - 1e-4) / (1 + std::exp(-x)));
  for (int t = 1; t < T; ++t) {
    EXPECT_GT(q.betas()[t], q.betas()[t - 1]);
    EXPECT_GT(g.betas()[t], g.betas()[t - 1]);
  }
}

TEST(Schedule, DerivedTablesMatchFormulas) {
  for (auto kind : {ScheduleKind::Linear, ScheduleKind::Cosine, ScheduleKind::Quadratic,
                    ScheduleKind::Sigmoid}) {
    auto s = NoiseSchedule::named(kind, 200);
    for (int t = 0; t < s.size(); ++t) {
      const double b = s.betas()[t], ab = s.alphas_cumprod()[t], abp = s.alphas_cumprod_prev()[t];
      expect_rel(s.alphas()[t], 1.0 - b);
      expect_rel(s.sqrt_alphas_cumprod()[t], std::sqrt(ab));
      expect_rel(s.sqrt_one_minus_alphas_cumprod()[t], std::sqrt(1.0 - ab));
      expect_rel(s.log_one_minus_alphas_cumprod()[t], std::log(1.0 - ab));
      expect_rel(s.sqrt_recip_alphas_cumprod()[t], 1.0 / std::sqrt(ab));
      expect_rel(s.sqrt_recipm1_alphas_cumprod()[t], std::sqrt(1.0 / ab - 1.0));
      expect_rel(s.posterior_mean_coef1()[t], b * std::sqrt(abp) / (1.0 - ab));
      expect_rel(s.posterior_mean_coef2()[t], (1.0 - abp) * std::sqrt(1.0 - b) / (1.0 - ab));
      expect_rel(s.snr()[t], ab / (1.0 - ab));
      expect_rel(s.log_snr()[t], std::log(ab / (1.0 - ab)));
      if (t > 0) {
        const double var = b * (1.0 - abp) / (1.0 - ab);
        expect_rel(s.posterior_variance()[t], var);
        expect_rel(s.posterior_log_variance_clipped()[t], std::log(var));
        expect_rel(s.alphas_cumprod_next()[t - 1], ab);
      }
    }
    // β̃_0 = 0; its log is clipped to log β̃_1.
    EXPECT_EQ(s.posterior_variance()[0], 0.0);
    expect_rel(s.posterior_log_variance_clipped()[0], std::log(s.posterior_variance()[1]));
    EXPECT_EQ(s.alphas_cumprod_next().back(), 0.0);
  }
}

TEST(Schedule, PosteriorMeanCoefficientsReproduceTheTruePosterior) {
  // For x_t = √ᾱ_t x0 (no noise), the posterior mean must equal √ᾱ_{t−1} x0.
  auto s = NoiseSchedule::named(ScheduleKind::Cosine, 100);
  for (int t = 1; t < 100; ++t) {
    const double x0 = 0.7;
    const double xt = s.sqrt_alphas_cumprod()[t] * x0;
    const double mean = s.posterior_mean_coef1()[t] * x0 + s.posterior_mean_coef2()[t] * xt;
    // coef1 + coef2·√ᾱ_t = √ᾱ_{t−1}  (algebraic identity of eq. 7)
    expect_rel(mean, std::sqrt(s.alphas_cumprod_prev()[t]) * x0, 1e-9);
  }
}

TEST(Schedule, SpaceTimestepsKeepsEndsAndIsEven) {
  auto k = NoiseSchedule::space_timesteps(1000, 50);
  ASSERT_EQ(k.size(), 50u);
  EXPECT_EQ(k.front(), 0);
  EXPECT_EQ(k.back(), 999);
  for (size_t i = 1; i < k.size(); ++i) {
    EXPECT_GT(k[i], k[i - 1]);
    EXPECT_NEAR(k[i] - k[i - 1], 999.0 / 49.0, 1.0);
  }
  auto all = NoiseSchedule::space_timesteps(10, 10);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(all[i], i);
  EXPECT_THROW(NoiseSchedule::space_timesteps(10, 11), std::invalid_argument);
  EXPECT_THROW(NoiseSchedule::space_timesteps(10, 0), std::invalid_argument);
}

TEST(Schedule, RespacingPreservesAlphaBarAtKeptSteps) {
  for (auto kind : {ScheduleKind::Linear, ScheduleKind::Cosine}) {
    auto full = NoiseSchedule::named(kind, 1000);
    auto r = full.respaced(25);
    auto keep = NoiseSchedule::space_timesteps(1000, 25);
    ASSERT_EQ(r.size(), 25);
    double last = 1.0;
    for (int i = 0; i < 25; ++i) {
      EXPECT_EQ(r.model_timestep(i), keep[i]);
      expect_rel(r.alphas_cumprod()[i], full.alphas_cumprod()[keep[i]], 1e-9);
      expect_rel(r.betas()[i], 1.0 - full.alphas_cumprod()[keep[i]] / last, 1e-9);
      last = full.alphas_cumprod()[keep[i]];
    }
    // Respacing twice composes: the map goes back to the original timesteps.
    auto rr = r.respaced(5);
    for (int i = 0; i < 5; ++i)
      expect_rel(rr.alphas_cumprod()[i], full.alphas_cumprod()[rr.model_timestep(i)], 1e-9);
  }
}

TEST(Schedule, CsvHasNamedColumnsAndOneRowPerStep) {
  auto s = NoiseSchedule::named(ScheduleKind::Cosine, 1000).respaced(50);
  std::ostringstream out;
  s.write_csv(out);
  std::istringstream in(out.str());
  std::string header;
  std::getline(in, header);
  EXPECT_EQ(header.rfind("t,timestep,betas,alphas,alphas_cumprod,", 0), 0u) << header;
  EXPECT_NE(header.find("posterior_log_variance_clipped"), std::string::npos);
  EXPECT_NE(header.find("posterior_mean_coef1"), std::string::npos);
  int rows = 0;
  std::string line, last;
  while (std::getline(in, line)) {
    ++rows;
    last = line;
  }
  EXPECT_EQ(rows, 50);
  EXPECT_EQ(last.rfind("49,999,", 0), 0u) << last;
  // Full precision: the first row's beta is printed with 17 significant digits.
  std::istringstream first(out.str().substr(out.str().find('\n') + 1));
  std::string cell;
  std::getline(first, cell, ',');
  std::getline(first, cell, ',');
  std::getline(first, cell, ',');
  EXPECT_DOUBLE_EQ(std::stod(cell), s.betas()[0]);
}

TEST(Schedule, RejectsBadInput) {
  EXPECT_THROW(NoiseSchedule::named(ScheduleKind::Linear, 1), std::invalid_argument);
  EXPECT_THROW(NoiseSchedule::from_betas({0.1, 1.0}), std::invalid_argument);
  EXPECT_THROW(NoiseSchedule::from_betas({0.1, 0.2}, {0}), std::invalid_argument);
  EXPECT_THROW(NoiseSchedule::named(ScheduleKind::Linear, 10).table("nope"), std::invalid_argument);
}

TEST(ForwardProcess, EachObjectivesPointIsItsClosedForm) {
  // DDPM: the schedule's √ᾱ_t and √(1 − ᾱ_t), the same x_t as forward_noise.
  const auto schedule = NoiseSchedule::named(ScheduleKind::Linear, 1000);
  const auto d = ddpm_forward_point(schedule, 250);
  EXPECT_NEAR(d.a * d.a + d.b * d.b, 1.0, 1e-12);
  EXPECT_NEAR(d.snr(), schedule.snr()[250], 1e-9 * schedule.snr()[250]);
  const std::vector<float> x0 = {1.0f, -0.5f, 0.25f}, eps = {0.3f, 2.0f, -1.0f};
  const auto mixed = forward_mix(x0, eps, d), reference = forward_noise(x0, eps, schedule, 250);
  for (size_t i = 0; i < x0.size(); ++i) EXPECT_FLOAT_EQ(mixed[i], reference[i]);
  // Flow matching: x_t = (1 − t) x₀ + t ε, t = pos / (positions − 1); SNR ((1 − t)/t)².
  const auto f = flow_forward_point(250, 1001);
  EXPECT_DOUBLE_EQ(f.level, 0.25);
  EXPECT_DOUBLE_EQ(f.a, 0.75);
  EXPECT_DOUBLE_EQ(f.b, 0.25);
  EXPECT_DOUBLE_EQ(f.snr(), 9.0);
  EXPECT_EQ(flow_forward_point(0, 1001).b, 0.0);
  EXPECT_EQ(flow_forward_point(1000, 1001).a, 0.0);
  EXPECT_FLOAT_EQ(forward_mix(x0, eps, f)[1], 0.75f * -0.5f + 0.25f * 2.0f);
  // EDM: σ evenly in log σ from σ_min to σ_max; x₀ + σ ε divided by √(1 + σ²); SNR 1/σ².
  const auto lo = edm_forward_point(0, 1001, 0.002, 80.0), hi = edm_forward_point(1000, 1001, 0.002, 80.0);
  EXPECT_NEAR(lo.level, 0.002, 1e-12);
  EXPECT_NEAR(hi.level, 80.0, 1e-9);
  const auto mid = edm_forward_point(500, 1001, 0.002, 80.0);
  EXPECT_NEAR(mid.level, std::sqrt(0.002 * 80.0), 1e-9);  // the geometric mean
  EXPECT_NEAR(mid.a, 1.0 / std::sqrt(1.0 + 0.16), 1e-9);
  EXPECT_NEAR(mid.b / mid.a, mid.level, 1e-9);
  EXPECT_NEAR(mid.snr(), 1.0 / 0.16, 1e-9);
  EXPECT_THROW(flow_forward_point(5, 1), std::invalid_argument);
  EXPECT_THROW(edm_forward_point(0, 10, 1.0, 0.5), std::invalid_argument);
  EXPECT_THROW(forward_mix(x0, {1.0f}, f), std::invalid_argument);
}

// The learning rate after warm-up, against the formulas written out by hand.
TEST(LrSchedule, WarmUpThenConstantCosineOrLinearToTheFinalRate) {
  LrSchedule s{1e-3, 4, LrScheduleKind::Constant, 1e-4, 24};
  // Warm-up: (s + 1) / 4 of lr, whatever the kind.
  for (auto kind : {LrScheduleKind::Constant, LrScheduleKind::Cosine, LrScheduleKind::Linear}) {
    s.kind = kind;
    EXPECT_DOUBLE_EQ(s.at(0), 0.25e-3);
    EXPECT_DOUBLE_EQ(s.at(2), 0.75e-3);
    EXPECT_DOUBLE_EQ(s.at(4), 1e-3);  // the first step after warm-up runs at lr
  }
  s.kind = LrScheduleKind::Constant;
  EXPECT_DOUBLE_EQ(s.at(23), 1e-3);
  EXPECT_DOUBLE_EQ(s.at(1000), 1e-3);
  // Cosine over the 20 steps after warm-up: halfway (step 14) the mean of lr and lr_min;
  // a quarter in (step 9) lr_min + (lr − lr_min)(1 + cos π/4)/2.
  s.kind = LrScheduleKind::Cosine;
  EXPECT_NEAR(s.at(14), 0.55e-3, 1e-15);
  EXPECT_NEAR(s.at(9), 1e-4 + 0.9e-3 * (1.0 + std::sqrt(0.5)) / 2.0, 1e-15);
  EXPECT_DOUBLE_EQ(s.at(24), 1e-4);
  EXPECT_DOUBLE_EQ(s.at(500), 1e-4);  // past the end: held at lr_min
  for (int64_t i = 4; i < 24; ++i) EXPECT_LT(s.at(i + 1), s.at(i)) << i;
  // Linear: a straight line from lr at step 4 to lr_min at step 24.
  s.kind = LrScheduleKind::Linear;
  EXPECT_NEAR(s.at(9), 1e-3 - 0.9e-3 * 0.25, 1e-15);
  EXPECT_NEAR(s.at(19), 1e-3 - 0.9e-3 * 0.75, 1e-15);
  EXPECT_DOUBLE_EQ(s.at(24), 1e-4);
  // No warm-up; a run no longer than its warm-up goes to lr_min after it (no division by 0).
  EXPECT_DOUBLE_EQ((LrSchedule{2e-3, 0, LrScheduleKind::Cosine, 0.0, 10}.at(0)), 2e-3);
  EXPECT_NEAR((LrSchedule{2e-3, 0, LrScheduleKind::Cosine, 0.0, 10}.at(5)), 1e-3, 1e-15);
  const LrSchedule short_run{2e-3, 10, LrScheduleKind::Linear, 5e-4, 5};
  EXPECT_DOUBLE_EQ(short_run.at(9), 2e-3);
  EXPECT_DOUBLE_EQ(short_run.at(10), 5e-4);
}

// Every sampler against a model whose ε is known in closed form: data x₀ ~ N(μ, diag s²).
// Under q, x_t ~ N(√ᾱ μ, ᾱ s² + 1 − ᾱ) per dimension and the exact ε-prediction is
//   E[ε | x_t] = √(1 − ᾱ) (x_t − √ᾱ μ) / (ᾱ s² + 1 − ᾱ),
// so a sampler that follows the reverse process must give back mean μ and variance s².
// Also: the σ-space helpers (tables, Karras spacing, ancestral split), DDIM determinism and
// inversion, callbacks (count, cancel, scale), guidance and Euler ≡ DDIM(η = 0).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "core/sampling/sampler.h"
#include "core/sampling/sampler_registry.h"
#include "core/sampling/sigmas.h"

using namespace difflab;

namespace {

constexpr int kTimesteps = 1000;

const NoiseSchedule& schedule() {
  static const NoiseSchedule s = NoiseSchedule::named(ScheduleKind::Linear, kTimesteps);
  return s;
}

// ᾱ at a fractional model timestep of schedule(): log σ interpolated linearly between the
// neighbouring rows (the convention of SigmaTable, written out again here).
double alpha_bar_at(double t) {
  const auto& ab = schedule().alphas_cumprod();
  const int k = std::min(static_cast<int>(std::floor(t)), kTimesteps - 2);
  const double w = t - k;
  auto log_sigma = [&](int i) { return 0.5 * std::log((1.0 - ab[i]) / ab[i]); };
  const double sigma = std::exp((1.0 - w) * log_sigma(k) + w * log_sigma(k + 1));
  return 1.0 / (1.0 + sigma * sigma);
}

// The exact denoiser of N(μ, diag s²) data, as ε, x₀ or v, for (B, D) inputs.
class GaussianNet : public DenoiserNetImpl {
 public:
  GaussianNet(std::vector<double> mu, std::vector<double> s, Prediction out = Prediction::Eps)
      : m_mu(torch::tensor(mu, torch::kFloat64)),
        m_var(torch::tensor(s, torch::kFloat64).pow(2)),
        m_out(out) {}
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t,
                        const torch::Tensor&) override {
    ++calls;
    // The samplers feed one timestep per call; fractional ones between rows.
    EXPECT_TRUE(torch::all(t == t[0]).item<bool>());
    const double ab = alpha_bar_at(t[0].item<double>());
    const double a = std::sqrt(ab), b = std::sqrt(1.0 - ab);
    // ε = k (x_t − √ᾱ μ) with k = √(1−ᾱ) / (ᾱ s² + 1 − ᾱ), per dimension (in double).
    auto k = b / (ab * m_var + 1.0 - ab);
    auto eps = k.to(torch::kFloat32) * x - (k * a * m_mu).to(torch::kFloat32);
    if (m_out == Prediction::Eps) return eps;
    auto x0 = (x - b * eps) / a;
    return m_out == Prediction::X0 ? x0 : a * eps - b * x0;
  }
  int num_classes() const override { return 0; }
  int calls = 0;

 private:
  torch::Tensor m_mu, m_var;
  Prediction m_out;
};

const std::vector<double> kMu = {0.5, -1.0, 0.0, 2.0};
const std::vector<double> kStd = {0.5, 1.0, 0.2, 1.5};

struct Case {
  SamplerKind kind;
  int steps;
  VarianceKind variance = VarianceKind::FixedSmall;
  double eta = 0.0;
  SigmaSpacing sigmas = SigmaSpacing::Model;
};

std::string name(const Case& c) {
  std::string n = std::string(to_string(c.kind)) + " " + std::to_string(c.steps) + " steps";
  if (c.kind == SamplerKind::Ddpm) n += " " + std::string(to_string(c.variance));
  if (c.kind == SamplerKind::Ddim) n += " eta " + std::to_string(c.eta);
  if (is_sigma_space(c.kind)) n += " " + std::string(to_string(c.sigmas));
  return n;
}

SampleRequest request(const Case& c, int n, uint64_t seed = 7) {
  SampleRequest r;
  r.config.sampler = c.kind;
  r.config.steps = c.steps;
  r.config.variance = c.variance;
  r.config.eta = c.eta;
  r.config.sigmas = c.sigmas;
  r.config.n = n;
  r.config.seed = seed;
  r.config.guidance = 1.0;
  r.config.clip_denoised = false;
  return r;
}

// `net` (predicting `p` on schedule()) sampling points of kMu's dimension.
SamplingModel model(DenoiserNet net, Prediction p = Prediction::Eps) {
  return {net, schedule(), p, {static_cast<int64_t>(kMu.size())}, net->num_classes()};
}

// The σ-space samplers of the registry, in table order.
std::vector<SamplerKind> sigma_kinds() {
  std::vector<SamplerKind> kinds;
  for (int i = 0; i < static_cast<int>(SamplerKind::Count); ++i)
    if (is_sigma_space(static_cast<SamplerKind>(i))) kinds.push_back(static_cast<SamplerKind>(i));
  return kinds;
}

// Every sampler, with the model's σ's and with Karras spacing for the σ-space ones.
std::vector<Case> all_cases(int steps) {
  std::vector<Case> cases = {
      {SamplerKind::Ddpm, steps, VarianceKind::FixedSmall},
      {SamplerKind::Ddpm, steps, VarianceKind::FixedLarge},
      {SamplerKind::Ddim, steps, VarianceKind::FixedSmall, 0.0},
      {SamplerKind::Ddim, steps, VarianceKind::FixedSmall, 1.0},
  };
  for (auto kind : sigma_kinds())
    for (auto sigmas : {SigmaSpacing::Model, SigmaSpacing::Karras})
      cases.push_back({kind, steps, VarianceKind::FixedSmall, 0.0, sigmas});
  return cases;
}

SampleResult run(const Case& c, int n, DenoiserNet net = nullptr, uint64_t seed = 7,
                 const StepCallback& callback = {}) {
  if (!net) net = std::make_shared<GaussianNet>(kMu, kStd);
  return run_sampling(model(net), request(c, n, seed), torch::kCPU, callback);
}

}  // namespace

// ---- σ-space helpers ---------------------------------------------------------------------

TEST(Sigmas, TableMapsRowsToTheirSigmaAndRoundTrips) {
  const SigmaTable table(schedule());
  const auto& ab = schedule().alphas_cumprod();
  EXPECT_EQ(table.size(), kTimesteps);
  EXPECT_NEAR(table.sigma_min(), std::sqrt((1 - ab[0]) / ab[0]), 1e-15);
  EXPECT_NEAR(table.sigma_max(), std::sqrt((1 - ab.back()) / ab.back()), 1e-9);
  for (int t : {0, 1, 17, 500, 998, 999}) {
    const double sigma = std::sqrt((1 - ab[t]) / ab[t]);
    EXPECT_NEAR(table.sigma_at(t), sigma, 1e-12 * sigma) << t;
    EXPECT_NEAR(table.timestep(sigma), t, 1e-9) << t;
  }
  for (double t : {0.25, 3.5, 123.456, 998.9}) {
    EXPECT_NEAR(table.timestep(table.sigma_at(t)), t, 1e-9) << t;
    EXPECT_NEAR(table.sigma_at(t), sigma_from_alpha_bar(alpha_bar_at(t)), 1e-12) << t;
  }
  // Outside the table: clamped to the ends.
  EXPECT_EQ(table.timestep(table.sigma_min() / 2), 0.0);
  EXPECT_EQ(table.timestep(table.sigma_max() * 2), kTimesteps - 1);
  // A respaced table keeps the original timesteps of its rows.
  const SigmaTable respaced(schedule().respaced(10));
  EXPECT_NEAR(respaced.timestep(respaced.sigma_max()), 999.0, 1e-9);
  EXPECT_NEAR(respaced.sigma_max(), table.sigma_max(), 1e-9 * table.sigma_max());
}

TEST(Sigmas, KarrasSpacingFollowsEquationFive) {
  const double lo = 0.02, hi = 80.0, rho = 7.0;
  const auto s = karras_sigmas(5, lo, hi, rho);
  ASSERT_EQ(s.size(), 6u);
  EXPECT_NEAR(s[0], hi, 1e-12);
  EXPECT_NEAR(s[4], lo, 1e-15);
  EXPECT_EQ(s[5], 0.0);
  // i = 2 of 5: halfway in σ^(1/ρ).
  const double mid = std::pow(0.5 * (std::pow(hi, 1 / rho) + std::pow(lo, 1 / rho)), rho);
  EXPECT_NEAR(s[2], mid, 1e-12);
  for (size_t i = 1; i < s.size(); ++i) EXPECT_LT(s[i], s[i - 1]);
  // ρ = 1 is even spacing in σ.
  const auto even = karras_sigmas(3, 1.0, 3.0, 1.0);
  EXPECT_NEAR(even[1], 2.0, 1e-12);
  const auto one = karras_sigmas(1, lo, hi, rho);
  ASSERT_EQ(one.size(), 2u);
  EXPECT_NEAR(one[0], hi, 1e-12);
  EXPECT_THROW(karras_sigmas(0, lo, hi, rho), std::invalid_argument);
  EXPECT_THROW(karras_sigmas(3, 0.0, hi, rho), std::invalid_argument);
}

TEST(Sigmas, AncestralStepSplitsTheVariance) {
  for (auto [from, to] : {std::pair{10.0, 5.0}, {1.0, 0.3}, {0.2, 0.19}}) {
    const auto s = ancestral_step(from, to);
    EXPECT_NEAR(s.sigma_down * s.sigma_down + s.sigma_up * s.sigma_up, to * to, 1e-12);
    // η = 1: σ_down = σ_to² / σ_from, σ_up² = σ_to² (σ_from² − σ_to²) / σ_from².
    EXPECT_NEAR(s.sigma_down, to * to / from, 1e-12);
    const auto ode = ancestral_step(from, to, 0.0);
    EXPECT_EQ(ode.sigma_up, 0.0);
    EXPECT_EQ(ode.sigma_down, to);
    const auto half = ancestral_step(from, to, 0.5);
    EXPECT_NEAR(half.sigma_up, 0.5 * s.sigma_up, 1e-12);
  }
  const auto last = ancestral_step(0.1, 0.0);
  EXPECT_EQ(last.sigma_up, 0.0);
  EXPECT_EQ(last.sigma_down, 0.0);
}

TEST(Sigmas, ScheduleOfModelSigmasWalksTheRespacedRows) {
  const auto r = schedule().respaced(20);
  const auto m = make_sigma_schedule(SigmaSpacing::Model, r, schedule(), 7.0);
  ASSERT_EQ(m.steps(), 20);
  ASSERT_EQ(m.sigmas.size(), 21u);
  EXPECT_EQ(m.sigmas.back(), 0.0);
  for (int i = 0; i < 20; ++i) {
    const int row = 19 - i;
    EXPECT_EQ(m.timesteps[i], r.model_timestep(row));
    const double ab = schedule().alphas_cumprod()[r.model_timestep(row)];
    EXPECT_NEAR(m.sigmas[i], std::sqrt((1 - ab) / ab), 1e-9 * m.sigmas[i]);
  }
  const auto k = make_sigma_schedule(SigmaSpacing::Karras, r, schedule(), 7.0);
  ASSERT_EQ(k.steps(), 20);
  const SigmaTable table(schedule());
  EXPECT_NEAR(k.timesteps.front(), 999.0, 1e-6);
  EXPECT_NEAR(k.timesteps.back(), 0.0, 1e-6);
  for (int i = 0; i < 20; ++i) {
    EXPECT_NEAR(table.sigma_at(k.timesteps[i]), k.sigmas[i], 1e-9 * k.sigmas[i]);
    if (i > 0) EXPECT_LT(k.timesteps[i], k.timesteps[i - 1]);
  }
}

// ---- the true distribution ----------------------------------------------------------------

// N = 16384 samples: the sample mean has standard error s/128 and the sample variance
// s²·√(2/N) = 1.1 % of s². A run passes with 4 standard errors plus two known biases:
// - the prior: sampling starts from N(0, I), not q(x_T) = N(√ᾱ_T μ, …); the ODE maps that
//   to a mean off by μ s / √(s² + σ_max²) (≤ 0.02 here);
// - discretisation, which shrinks with the steps: each case's allowance is about 1.2× what
//   it measured with N = 262144. Fixed-small variances (DDPM, DDIM η = 1, and Euler-
//   ancestral, which is the same chain in σ-space) under-disperse most, by the missing
//   Var[x₀ | x_t] term (Bao et al. 2022, Analytic-DPM), worst for the narrow s = 0.2.
// A wrong step (a sign, a missing √ᾱ, noise of the wrong size) misses by far more.
namespace {

struct Expect {
  Case c;
  double var_allowance;  // relative
};

void expect_gaussian(const std::vector<Expect>& expects) {
  constexpr int kN = 16384;
  const double sigma_max = SigmaTable(schedule()).sigma_max();
  for (const Expect& e : expects) {
    auto out = run(e.c, kN).images.to(torch::kFloat64);
    auto mean = out.mean(0), var = out.var(0);
    for (size_t d = 0; d < kMu.size(); ++d) {
      const double s = kStd[d], m = mean[d].item<double>(), v = var[d].item<double>();
      const double mean_tol = 4 * s / std::sqrt(kN) + std::abs(kMu[d]) * s / sigma_max;
      const double var_tol = 4 * std::sqrt(2.0 / kN) + e.var_allowance;
      EXPECT_NEAR(m, kMu[d], mean_tol) << name(e.c) << " dim " << d;
      EXPECT_NEAR(v / (s * s), 1.0, var_tol) << name(e.c) << " dim " << d;
    }
  }
}

const auto kKarras = SigmaSpacing::Karras;
const auto kSmall = VarianceKind::FixedSmall;

}  // namespace

TEST(Samplers, EveryStochasticOneReproducesTheGaussian) {
  expect_gaussian({
      {{SamplerKind::Ddpm, 250, kSmall}, 0.16},
      {{SamplerKind::Ddpm, 250, VarianceKind::FixedLarge}, 0.05},
      {{SamplerKind::Ddim, 250, kSmall, 1.0}, 0.16},
      {{SamplerKind::EulerAncestral, 250}, 0.16},
      {{SamplerKind::EulerAncestral, 250, kSmall, 0.0, kKarras}, 0.09},
  });
}

TEST(Samplers, EveryDeterministicOneReproducesTheGaussian) {
  expect_gaussian({
      {{SamplerKind::Ddim, 250, kSmall, 0.0}, 0.07},
      {{SamplerKind::Euler, 250}, 0.07},
      {{SamplerKind::Euler, 250, kSmall, 0.0, kKarras}, 0.05},
      {{SamplerKind::Heun, 50}, 0.03},
      {{SamplerKind::Heun, 50, kSmall, 0.0, kKarras}, 0.04},
      {{SamplerKind::DpmppTwoM, 250}, 0.03},
      {{SamplerKind::DpmppTwoM, 50, kSmall, 0.0, kKarras}, 0.04},
  });
}

// The deterministic samplers integrate the probability-flow ODE, whose solution for this
// data is known: x̄ − μ ∝ √(s² + σ²), so x₀ = μ + (x̄_T − μ) s / √(s² + σ_max²) with
// x̄_T = x_T √(1 + σ_max²). It carries N(0, I) to (almost exactly) N(μ, s²). Euler/DDIM are
// first order (error ∝ 1/steps), Heun and DPM-Solver++(2M) on Karras σ's second order.
TEST(Samplers, OdeSamplersConvergeToTheExactFlowAtTheirOrder) {
  constexpr int kN = 1024;
  const double sigma_max = SigmaTable(schedule()).sigma_max();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  auto x_T = torch::randn({kN, 4}, gen, torch::kFloat32).to(torch::kFloat64);
  auto mu = torch::tensor(kMu, torch::kFloat64), s = torch::tensor(kStd, torch::kFloat64);
  auto exact = mu + (x_T * std::sqrt(1 + sigma_max * sigma_max) - mu) * s /
                        torch::sqrt(s * s + sigma_max * sigma_max);
  auto error = [&](const Case& c) {  // max over samples and dims of |x₀ − exact| / s
    auto x = run(c, kN, nullptr, 5).images.to(torch::kFloat64);
    return ((x - exact) / s).abs().max().item<double>();
  };
  const auto K = SigmaSpacing::Karras, M = SigmaSpacing::Model;
  const auto small = VarianceKind::FixedSmall;
  struct Order {
    Case coarse, fine;  // fine has 4× the steps
    double min_ratio, max_fine_error;
  };
  const std::vector<Order> orders = {
      {{SamplerKind::Ddim, 25}, {SamplerKind::Ddim, 100}, 3.0, 0.25},
      {{SamplerKind::Euler, 25, small, 0, M}, {SamplerKind::Euler, 100, small, 0, M}, 3.0, 0.25},
      {{SamplerKind::Euler, 25, small, 0, K}, {SamplerKind::Euler, 100, small, 0, K}, 3.0, 0.15},
      {{SamplerKind::Heun, 25, small, 0, K}, {SamplerKind::Heun, 100, small, 0, K}, 8.0, 0.01},
      {{SamplerKind::DpmppTwoM, 25, small, 0, K},
       {SamplerKind::DpmppTwoM, 100, small, 0, K},
       8.0,
       0.01},
  };
  for (const Order& o : orders) {
    const double coarse = error(o.coarse), fine = error(o.fine);
    std::printf("%-32s error %.3e, at 4x the steps %.3e (ratio %.1f)\n", name(o.coarse).c_str(),
                coarse, fine, coarse / fine);
    EXPECT_GT(coarse / fine, o.min_ratio) << name(o.coarse);
    EXPECT_LT(fine, o.max_fine_error) << name(o.fine);
  }
}

// ---- DDIM ---------------------------------------------------------------------------------

TEST(Samplers, DdimEtaZeroIsDeterministicAndInvertible) {
  const Case c{SamplerKind::Ddim, 50};
  auto a = run(c, 256).images;
  auto b = run(c, 256).images;
  EXPECT_TRUE(torch::equal(a, b));

  auto net = std::make_shared<GaussianNet>(kMu, kStd);
  GaussianDiffusion diffusion(schedule().respaced(50), Prediction::Eps, torch::kCPU);
  Denoiser denoiser(net, diffusion, {}, 1.0, false, &schedule());
  c10::InferenceMode inference;
  // Data from the true distribution, encoded to x_T and decoded again.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  auto x0 = torch::randn({512, 4}, gen) * torch::tensor(kStd).to(torch::kFloat32) +
            torch::tensor(kMu).to(torch::kFloat32);
  auto decode = [&](const at::Tensor& x_T) {
    auto g = at::make_generator<at::CPUGeneratorImpl>(0);
    return make_sampler(request(c, 1).config)->sample(denoiser, x_T, g, {});
  };
  // Plain inversion takes ε̂ one row early, a first-order error per step; three
  // fixed-point iterations make each step the decoder's exact inverse.
  auto plain = ddim_encode(denoiser, x0, 0);
  auto x_T = ddim_encode(denoiser, x0, 3);
  const double plain_err = (decode(plain) - x0).abs().max().item<double>();
  const double err = (decode(x_T) - x0).abs().max().item<double>();
  std::printf("max reconstruction error: plain %.2e, refined %.2e\n", plain_err, err);
  EXPECT_LT(plain_err, 0.5);
  EXPECT_LT(err, 1e-3);
  EXPECT_LT(err, plain_err / 100);
  // x_T looks like the prior: mean 0 (standard error 0.022) and variance about 1 — up to
  // 25 % more, because 50 DDIM steps shrink the variance by up to 20 % (see the test
  // above) and this x_T is what the 50-step decoder maps back onto the data exactly.
  EXPECT_NEAR(x_T.mean().item<double>(), 0.0, 0.09);
  EXPECT_NEAR(x_T.var().item<double>(), 1.1, 0.2);
}

// ---- callbacks, cancel, guidance ----------------------------------------------------------

TEST(Samplers, EveryOneCallsBackOncePerStepInTheVpScale) {
  constexpr int kSteps = 7;
  for (const Case& c : all_cases(kSteps)) {
    auto net = std::make_shared<GaussianNet>(kMu, kStd);
    std::vector<int> indices, timesteps;
    at::Tensor first_x;
    auto out = run(c, 8, net, 11, [&](const StepInfo& s) {
      EXPECT_EQ(s.total, kSteps);
      indices.push_back(s.index);
      timesteps.push_back(s.timestep);
      if (!first_x.defined()) first_x = s.x_t.clone();
      // x̂₀ and ε̂ agree with x_t at this step's ᾱ: x_t = √ᾱ x̂₀ + √(1−ᾱ) ε̂.
      const double ab = alpha_bar_at(s.timestep);
      auto recon = std::sqrt(ab) * s.x0 + std::sqrt(1 - ab) * s.eps;
      if (c.sigmas == SigmaSpacing::Model)  // Karras timesteps are rounded in StepInfo
        EXPECT_TRUE(torch::allclose(recon, s.x_t, 1e-4, 1e-4)) << name(c);
      return true;
    });
    ASSERT_EQ(indices.size(), static_cast<size_t>(kSteps)) << name(c);
    for (int i = 0; i < kSteps; ++i) EXPECT_EQ(indices[i], i) << name(c);
    EXPECT_EQ(timesteps.front(), kTimesteps - 1) << name(c);
    EXPECT_EQ(timesteps.back(), 0) << name(c);
    // The first frame is the starting noise x_T itself (VP scale, not σ-space).
    auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
    auto x_T = torch::randn({8, 4}, gen, torch::kFloat32);
    EXPECT_TRUE(torch::allclose(first_x, x_T, 1e-5, 1e-5)) << name(c);
    // Heun: 2 evaluations a step but 1 for the last; the others 1 a step.
    EXPECT_EQ(net->calls, c.kind == SamplerKind::Heun ? 2 * kSteps - 1 : kSteps) << name(c);
    EXPECT_FALSE(out.cancelled);
  }
}

TEST(Samplers, CancelStopsBeforeTheNextNetworkCall) {
  constexpr int kStop = 3;
  for (const Case& c : all_cases(20)) {
    auto net = std::make_shared<GaussianNet>(kMu, kStd);
    int seen = 0;
    auto out = run(c, 4, net, 1, [&](const StepInfo&) { return ++seen < kStop; });
    EXPECT_TRUE(out.cancelled) << name(c);
    EXPECT_FALSE(out.images.defined()) << name(c);
    EXPECT_EQ(seen, kStop) << name(c);
    EXPECT_EQ(net->calls, c.kind == SamplerKind::Heun ? 2 * kStop - 1 : kStop) << name(c);
  }
}

namespace {

// ε̂ = 1 for a real class and 0 for the null class.
class LabelNet : public DenoiserNetImpl {
 public:
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor&,
                        const torch::Tensor& y) override {
    last_batch = x.size(0);
    auto real = (y != 10).to(torch::kFloat32);
    return real.view({-1, 1}).expand_as(x).clone();
  }
  int num_classes() const override { return 10; }
  int64_t last_batch = 0;
};

}  // namespace

TEST(Samplers, SigmaSamplersUseOneBatchedGuidedForward) {
  for (auto kind : sigma_kinds()) {
    auto net = std::make_shared<LabelNet>();
    auto req = request({kind, 5, VarianceKind::FixedSmall, 0.0, SigmaSpacing::Karras}, 3);
    req.config.class_label = 2;
    req.config.guidance = 3.0;
    req.record_trajectory = true;
    auto out = run_sampling(model(net), req, torch::kCPU, [&](const StepInfo& s) {
      // ε_u = 0, ε_c = 1: guided ε = 0 + 3·(1 − 0) = 3.
      EXPECT_NEAR(s.eps.mean().item<double>(), 3.0, 1e-5);
      return true;
    });
    EXPECT_EQ(net->last_batch, 6) << to_string(kind);
    EXPECT_EQ(out.trajectory.x_t.size(), 5u);
    EXPECT_EQ(out.trajectory.timesteps.front(), kTimesteps - 1);
  }
}

// ---- Euler is DDIM(η = 0) in σ-space ------------------------------------------------------

TEST(Samplers, OnTheModelSigmasEulerIsDdimAndEulerAncestralIsDdpm) {
  const Case ddim{SamplerKind::Ddim, 20};
  const Case euler{SamplerKind::Euler, 20};
  auto a = run(ddim, 512).images, b = run(euler, 512).images;
  EXPECT_TRUE(torch::allclose(a, b, 1e-4, 1e-4)) << (a - b).abs().max();
  // The ancestral split with η = 1 is the DDPM posterior (fixed-small variance) written in
  // σ-space: x̂₀ + (σ'/σ)² (x − x̂₀) plus noise σ' √(1 − (σ'/σ)²); with the same seed the
  // noise is drawn in the same order, so the samples agree one by one.
  auto ddpm = run({SamplerKind::Ddpm, 20}, 512).images;
  auto ancestral = run({SamplerKind::EulerAncestral, 20}, 512).images;
  EXPECT_TRUE(torch::allclose(ddpm, ancestral, 1e-4, 1e-4)) << (ddpm - ancestral).abs().max();
}

TEST(Samplers, SigmaSamplersAgreeAcrossParameterisations) {
  const Case c{SamplerKind::DpmppTwoM, 15, VarianceKind::FixedSmall, 0.0, SigmaSpacing::Karras};
  auto eps = run(c, 64).images;
  for (auto p : {Prediction::X0, Prediction::V}) {
    auto net = std::make_shared<GaussianNet>(kMu, kStd, p);
    auto out = run_sampling(model(net, p), request(c, 64), torch::kCPU);
    EXPECT_TRUE(torch::allclose(out.images, eps, 1e-3, 1e-3))
        << to_string(p) << " " << (out.images - eps).abs().max();
  }
}

// ---- The sampler table (core/sampling/sampler_registry.h) -----------------------------------

TEST(SamplerRegistry, EveryKindHasARowWhoseNameRoundTrips) {
  for (int i = 0; i < static_cast<int>(SamplerKind::Count); ++i) {
    const auto kind = static_cast<SamplerKind>(i);
    const SamplerInfo& row = sampler_info(kind);
    EXPECT_EQ(row.kind, kind);
    EXPECT_EQ(row.name, to_string(kind));
    EXPECT_EQ(parse_enum<SamplerKind>(row.name), kind) << row.name;
    EXPECT_FALSE(row.paper.empty()) << row.name;
    EXPECT_FALSE(row.help.empty()) << row.name;
    EXPECT_NE(sampler_help().find(std::string(row.name) + ": "), std::string::npos) << row.name;
    SampleConfig config;
    config.sampler = kind;
    EXPECT_NE(make_sampler(config), nullptr) << row.name;
  }
  EXPECT_THROW(sampler_info(SamplerKind::Count), std::invalid_argument);
}

TEST(SamplerRegistry, FamiliesAreRight) {
  // The samplers that exist today, by name (YAML files use these spellings).
  for (auto name : {"ddpm", "ddim"})
    EXPECT_EQ(sampler_info(*parse_enum<SamplerKind>(name)).family, SamplerFamily::Discrete);
  for (auto name : {"euler", "euler_ancestral", "heun", "dpmpp_2m"})
    EXPECT_EQ(sampler_info(*parse_enum<SamplerKind>(name)).family, SamplerFamily::Sigma);
  // Every row's family is what the sampler does: only σ-space samplers read sample.sigmas.
  std::string discrete, sigma;
  for (int i = 0; i < static_cast<int>(SamplerKind::Count); ++i) {
    const auto kind = static_cast<SamplerKind>(i);
    const auto own = run({kind, 8, VarianceKind::FixedSmall, 0.0, SigmaSpacing::Model}, 16).images;
    const auto karras =
        run({kind, 8, VarianceKind::FixedSmall, 0.0, SigmaSpacing::Karras}, 16).images;
    EXPECT_EQ(!torch::equal(own, karras), is_sigma_space(kind)) << to_string(kind);
    auto& names = is_sigma_space(kind) ? sigma : discrete;
    names += (names.empty() ? "" : ", ") + std::string(to_string(kind));
  }
  EXPECT_EQ(sampler_names(SamplerFamily::Discrete), discrete);
  EXPECT_EQ(sampler_names(SamplerFamily::Sigma), sigma);
}

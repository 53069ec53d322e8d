// Samplers on networks whose output is known: DDPM/DDIM steps against hand-computed
// values, determinism by seed, cancellation, classifier-free guidance, trajectories.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/sampling/sampler.h"

using namespace difflab;

namespace {

// ε̂ = k·x, or, when `label_signal`, 1 for a real class and 0 for the null class.
class FakeNet : public DenoiserNetImpl {
 public:
  FakeNet(double k, int classes, bool label_signal = false)
      : m_k(k), m_classes(classes), m_label_signal(label_signal) {}
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t,
                        const torch::Tensor& y) override {
    ++calls;
    last_batch = x.size(0);
    last_t = t.clone();
    if (m_label_signal) {
      auto real = (y != m_classes).to(torch::kFloat32);
      return real.view({-1, 1, 1, 1}).expand_as(x).clone();
    }
    return m_k * x;
  }
  int num_classes() const override { return m_classes; }
  int calls = 0;
  int64_t last_batch = 0;
  torch::Tensor last_t;

 private:
  double m_k;
  int m_classes;
  bool m_label_signal;
};

SampleRequest request(SamplerKind kind, int steps, int n = 3, double eta = 0.0) {
  SampleRequest r;
  r.config.sampler = kind;
  r.config.steps = steps;
  r.config.eta = eta;
  r.config.n = n;
  r.config.seed = 42;
  r.config.guidance = 1.0;
  r.config.clip_denoised = false;
  return r;
}

const NoiseSchedule& schedule() {
  static const NoiseSchedule s = NoiseSchedule::named(ScheduleKind::Linear, 1000);
  return s;
}

// `net` (ε-prediction on schedule()) sampling 1×2×2 images.
SamplingModel model(DenoiserNet net) {
  return {net, schedule(), Prediction::Eps, {1, 2, 2}, net->num_classes()};
}

}  // namespace

TEST(Sampling, DdimStepsMatchHandComputation) {
  auto net = std::make_shared<FakeNet>(0.3, 0);
  auto req = request(SamplerKind::Ddim, 4);
  auto out = run_sampling(model(net), req, torch::kCPU);

  // By hand, in double, on the respaced schedule.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(42);
  auto x = torch::randn({3, 1, 2, 2}, gen, torch::kFloat32).to(torch::kFloat64);
  const auto r = schedule().respaced(4);
  for (int i = 3; i >= 0; --i) {
    const double ab = r.alphas_cumprod()[i], abp = r.alphas_cumprod_prev()[i];
    auto eps = 0.3 * x;
    auto x0 = (x - std::sqrt(1 - ab) * eps) / std::sqrt(ab);
    x = std::sqrt(abp) * x0 + std::sqrt(1 - abp) * eps;
  }
  EXPECT_TRUE(torch::allclose(out.images.to(torch::kFloat64), x, 1e-4, 1e-5))
      << (out.images - x).abs().max();
  EXPECT_EQ(net->calls, 4);
  // The last call saw the original timestep 0, the first 999.
  EXPECT_EQ(net->last_t[0].item<float>(), 0.0f);
}

TEST(Sampling, DdpmStepsMatchHandComputation) {
  for (auto variance : {VarianceKind::FixedSmall, VarianceKind::FixedLarge}) {
    auto net = std::make_shared<FakeNet>(0.5, 0);
    auto req = request(SamplerKind::Ddpm, 5);
    req.config.variance = variance;
    auto out = run_sampling(model(net), req, torch::kCPU);

    auto gen = at::make_generator<at::CPUGeneratorImpl>(42);
    auto x = torch::randn({3, 1, 2, 2}, gen, torch::kFloat32).to(torch::kFloat64);
    const auto r = schedule().respaced(5);
    for (int i = 4; i >= 0; --i) {
      const double ab = r.alphas_cumprod()[i], b = r.betas()[i];
      auto eps = 0.5 * x;
      auto x0 = (x - std::sqrt(1 - ab) * eps) / std::sqrt(ab);
      auto mean = r.posterior_mean_coef1()[i] * x0 + r.posterior_mean_coef2()[i] * x;
      if (i > 0) {
        const double var = variance == VarianceKind::FixedSmall ? r.posterior_variance()[i] : b;
        auto z = torch::randn({3, 1, 2, 2}, gen, torch::kFloat32).to(torch::kFloat64);
        x = mean + std::sqrt(var) * z;
      } else {
        x = mean;
      }
    }
    EXPECT_TRUE(torch::allclose(out.images.to(torch::kFloat64), x, 1e-4, 1e-5))
        << to_string(variance) << " " << (out.images - x).abs().max();
  }
}

TEST(Sampling, DdimWithEtaOneAddsNoiseAndEtaZeroIsDeterministic) {
  auto net = std::make_shared<FakeNet>(0.2, 0);
  auto a = run_sampling(model(net), request(SamplerKind::Ddim, 10), torch::kCPU);
  auto req = request(SamplerKind::Ddim, 10);
  req.config.seed = 43;
  auto b = run_sampling(model(net), req, torch::kCPU);
  EXPECT_FALSE(torch::equal(a.images, b.images));  // different seed, different x_T
  auto c = run_sampling(model(net), request(SamplerKind::Ddim, 10, 3, 1.0), torch::kCPU);
  EXPECT_FALSE(torch::allclose(a.images, c.images));
}

TEST(Sampling, SameSeedSameImages) {
  for (auto kind : {SamplerKind::Ddpm, SamplerKind::Ddim}) {
    auto net = std::make_shared<FakeNet>(0.4, 0);
    auto req = request(kind, 20, 4, 0.5);
    auto a = run_sampling(model(net), req, torch::kCPU);
    auto b = run_sampling(model(net), req, torch::kCPU);
    EXPECT_TRUE(torch::equal(a.images, b.images)) << to_string(kind);
  }
}

TEST(Sampling, CallbackCancelsBeforeTheNextNetworkCall) {
  auto net = std::make_shared<FakeNet>(0.4, 0);
  int seen = 0;
  auto out =
      run_sampling(model(net), request(SamplerKind::Ddpm, 50), torch::kCPU, [&](const StepInfo& s) {
        EXPECT_EQ(s.index, seen);
        EXPECT_EQ(s.total, 50);
        return ++seen < 3;
      });
  EXPECT_TRUE(out.cancelled);
  EXPECT_FALSE(out.images.defined());
  EXPECT_EQ(net->calls, 3);
}

TEST(Sampling, ClassifierFreeGuidanceIsOneBatchedForward) {
  auto net = std::make_shared<FakeNet>(0.0, 10, /*label_signal=*/true);
  auto req = request(SamplerKind::Ddim, 3, 4);
  req.config.guidance = 3.0;
  req.config.class_label = 7;
  std::vector<float> eps_seen;
  auto out = run_sampling(model(net), req, torch::kCPU, [&](const StepInfo& s) {
    eps_seen.push_back(s.eps.mean().item<float>());
    return true;
  });
  EXPECT_EQ(net->calls, 3);       // one forward per step…
  EXPECT_EQ(net->last_batch, 8);  // …over 2B inputs
  // ε_u = 0, ε_c = 1: guided ε = 0 + 3·(1 − 0) = 3.
  for (float e : eps_seen) EXPECT_NEAR(e, 3.0f, 1e-5);
  EXPECT_TRUE(torch::equal(out.labels, torch::full({4}, 7, torch::kLong)));

  // Guidance 1 is plain conditional sampling: a single B-sized forward.
  req.config.guidance = 1.0;
  run_sampling(model(net), req, torch::kCPU);
  EXPECT_EQ(net->last_batch, 4);
  // Guidance 0 is the unconditional model alone: a single B-sized forward with the null class.
  req.config.guidance = 0.0;
  eps_seen.clear();
  run_sampling(model(net), req, torch::kCPU, [&](const StepInfo& s) {
    eps_seen.push_back(s.eps.mean().item<float>());
    return true;
  });
  EXPECT_EQ(net->last_batch, 4);
  for (float e : eps_seen) EXPECT_NEAR(e, 0.0f, 1e-5);  // ε_u = 0
  req.config.guidance = 1.0;
  // Cycling labels when no class is asked for; out-of-range classes are refused.
  req.config.class_label = -1;
  auto cyc = run_sampling(model(net), req, torch::kCPU);
  EXPECT_TRUE(torch::equal(cyc.labels, torch::tensor({0, 1, 2, 3}, torch::kLong)));
  req.config.class_label = 10;
  EXPECT_THROW(run_sampling(model(net), req, torch::kCPU), std::invalid_argument);
}

TEST(Sampling, TrajectoryRecordsEveryStepCompactly) {
  auto net = std::make_shared<FakeNet>(0.1, 0);
  auto req = request(SamplerKind::Ddim, 6, 2);
  req.record_trajectory = true;
  auto out = run_sampling(model(net), req, torch::kCPU);
  const auto& tr = out.trajectory;
  ASSERT_EQ(tr.x_t.size(), 6u);
  ASSERT_EQ(tr.x0.size(), 6u);
  ASSERT_EQ(tr.eps.size(), 6u);
  EXPECT_EQ(tr.timesteps.front(), 999);
  EXPECT_EQ(tr.timesteps.back(), 0);
  EXPECT_EQ(tr.x_t[0].sizes(), (std::vector<int64_t>{2, 1, 2, 2}));
  EXPECT_EQ(tr.x_t[0].scalar_type(), torch::kHalf);
  // The first recorded x_t is the starting noise.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(42);
  auto x_T = torch::randn({2, 1, 2, 2}, gen, torch::kFloat32);
  EXPECT_TRUE(torch::allclose(tr.x_t[0].to(torch::kFloat32), x_T, 1e-2, 1e-3));
}

TEST(Sampling, RejectsStepsOutsideTheSchedule) {
  auto net = std::make_shared<FakeNet>(0.1, 0);
  EXPECT_THROW(run_sampling(model(net), request(SamplerKind::Ddim, 1001), torch::kCPU),
               std::invalid_argument);
  EXPECT_THROW(run_sampling(model(net), request(SamplerKind::Ddim, 0), torch::kCPU),
               std::invalid_argument);
}

namespace {

// A learned-variance net: ε̂ = k·x (or the label signal), then v = 0.4 for a real class
// and −0.6 for the null class (or for an unconditional net) in the second half.
class FakeSigmaNet : public DenoiserNetImpl {
 public:
  FakeSigmaNet(double k, int classes) : m_k(k), m_classes(classes) {}
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor&,
                        const torch::Tensor& y) override {
    ++calls;
    at::Tensor eps = m_k * x, v = torch::full_like(x, -0.6);
    if (m_classes > 0) {
      auto real = (y != m_classes).to(torch::kFloat32).view({-1, 1, 1, 1}).expand_as(x);
      eps = real.clone();
      v = torch::where(real > 0, torch::full_like(x, 0.4), v);
    }
    return torch::cat({eps, v}, 1);
  }
  int num_classes() const override { return m_classes; }
  bool learns_variance() const override { return true; }
  int calls = 0;

 private:
  double m_k;
  int m_classes;
};

}  // namespace

TEST(Sampling, DdpmWithLearnedVarianceMatchesHandComputation) {
  auto net = std::make_shared<FakeSigmaNet>(0.5, 0);
  auto req = request(SamplerKind::Ddpm, 5);
  req.config.variance = VarianceKind::Learned;
  auto out = run_sampling(model(net), req, torch::kCPU);

  auto gen = at::make_generator<at::CPUGeneratorImpl>(42);
  auto x = torch::randn({3, 1, 2, 2}, gen, torch::kFloat32).to(torch::kFloat64);
  const auto r = schedule().respaced(5);  // learned range uses the respaced β and β̃
  for (int i = 4; i >= 0; --i) {
    const double ab = r.alphas_cumprod()[i];
    auto eps = 0.5 * x;
    auto x0 = (x - std::sqrt(1 - ab) * eps) / std::sqrt(ab);
    auto mean = r.posterior_mean_coef1()[i] * x0 + r.posterior_mean_coef2()[i] * x;
    if (i > 0) {
      const double f = (-0.6 + 1) / 2;
      const double log_var = f * std::log(r.betas()[i]) + (1 - f) * r.posterior_log_variance_clipped()[i];
      auto z = torch::randn({3, 1, 2, 2}, gen, torch::kFloat32).to(torch::kFloat64);
      x = mean + std::exp(0.5 * log_var) * z;
    } else {
      x = mean;
    }
  }
  EXPECT_TRUE(torch::allclose(out.images.to(torch::kFloat64), x, 1e-4, 1e-5))
      << (out.images - x).abs().max();
  EXPECT_EQ(net->calls, 5);

  // DDIM and the fixed variances ignore the variance half; `learned` on a net without one
  // is refused with a message that says why.
  auto ddim = run_sampling(model(net), request(SamplerKind::Ddim, 4), torch::kCPU);
  EXPECT_EQ(ddim.images.sizes(), (std::vector<int64_t>{3, 1, 2, 2}));
  req.config.variance = VarianceKind::FixedSmall;
  EXPECT_NO_THROW(run_sampling(model(net), req, torch::kCPU));
  req.config.variance = VarianceKind::Learned;
  auto plain = std::make_shared<FakeNet>(0.5, 0);
  try {
    run_sampling(model(plain), req, torch::kCPU);
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("learn_sigma"), std::string::npos) << e.what();
  }
}

TEST(Sampling, GuidanceAppliesToTheEpsHalfAndKeepsTheConditionalVariance) {
  auto net = std::make_shared<FakeSigmaNet>(0.0, 10);
  GaussianDiffusion diffusion(schedule().respaced(10), Prediction::Eps, torch::kCPU);
  Denoiser denoiser(net, diffusion, torch::full({2}, 3, torch::kLong), 4.0, false);
  auto x = torch::zeros({2, 1, 2, 2});
  auto t = torch::tensor({6, 6});
  auto out = denoiser.predict(x, t);
  EXPECT_EQ(net->calls, 1);
  // ε_u = 0, ε_c = 1: guided ε = 4; the variance is the conditional half (v = 0.4).
  EXPECT_TRUE(torch::allclose(out.eps, torch::full({2, 1, 2, 2}, 4.0f)));
  EXPECT_TRUE(torch::allclose(out.log_variance, diffusion.learned_range_log_variance(
                                                     torch::full({2, 1, 2, 2}, 0.4f), t)));
  EXPECT_TRUE(denoiser.learns_variance());
  // operator() gives the same ε̂ and x̂₀ from the first C channels.
  auto [eps, x0] = denoiser(x, t);
  EXPECT_TRUE(torch::equal(eps, out.eps));
  EXPECT_TRUE(torch::equal(x0, out.x0));
  EXPECT_EQ(x0.size(1), 1);
  // A fixed-variance net has no log variance.
  Denoiser plain(std::make_shared<FakeNet>(0.5, 0), diffusion, at::Tensor(), 1.0, false);
  EXPECT_FALSE(plain.predict(x, t).log_variance.defined());
}

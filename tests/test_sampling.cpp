// Samplers on networks whose output is known: DDPM/DDIM steps against hand-computed
// values, determinism by seed, cancellation, classifier-free guidance, trajectories.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/diffusion/objectives.h"
#include "core/sampling/field.h"
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
    last_y = y.defined() ? y.clone() : y;
    if (m_label_signal) {
      auto real = (y != m_classes).to(torch::kFloat32);
      return real.view({-1, 1, 1, 1}).expand_as(x).clone();
    }
    return m_k * x;
  }
  int num_classes() const override { return m_classes; }
  int calls = 0;
  int64_t last_batch = 0;
  torch::Tensor last_t, last_y;

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

  // By hand, in double, on the respaced schedule, from each image's own noise stream.
  NoiseStreams noise(42, 0, 3);
  auto x = noise.draw({1, 2, 2}).to(torch::kFloat64);
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

    NoiseStreams noise(42, 0, 3);
    auto x = noise.draw({1, 2, 2}).to(torch::kFloat64);
    const auto r = schedule().respaced(5);
    for (int i = 4; i >= 0; --i) {
      const double ab = r.alphas_cumprod()[i], b = r.betas()[i];
      auto eps = 0.5 * x;
      auto x0 = (x - std::sqrt(1 - ab) * eps) / std::sqrt(ab);
      auto mean = r.posterior_mean_coef1()[i] * x0 + r.posterior_mean_coef2()[i] * x;
      if (i > 0) {
        const double var = variance == VarianceKind::FixedSmall ? r.posterior_variance()[i] : b;
        auto z = noise.draw({1, 2, 2}).to(torch::kFloat64);
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
  auto x_T = NoiseStreams(42, 0, 2).draw({1, 2, 2});
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

  NoiseStreams noise(42, 0, 3);
  auto x = noise.draw({1, 2, 2}).to(torch::kFloat64);
  const auto r = schedule().respaced(5);  // learned range uses the respaced β and β̃
  for (int i = 4; i >= 0; --i) {
    const double ab = r.alphas_cumprod()[i];
    auto eps = 0.5 * x;
    auto x0 = (x - std::sqrt(1 - ab) * eps) / std::sqrt(ab);
    auto mean = r.posterior_mean_coef1()[i] * x0 + r.posterior_mean_coef2()[i] * x;
    if (i > 0) {
      const double f = (-0.6 + 1) / 2;
      const double log_var = f * std::log(r.betas()[i]) + (1 - f) * r.posterior_log_variance_clipped()[i];
      auto z = noise.draw({1, 2, 2}).to(torch::kFloat64);
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

// Guidance in a limited interval (Kynkäänniemi et al. 2024): ε_c = 1 and ε_u = 0 (the
// label-signal net), so a guided row reads w and an unguided one 1 (the conditional model,
// one forward instead of two).
TEST(Sampling, GuidanceIntervalGuidesOnlyInsideItsNoiseLevels) {
  auto net = std::make_shared<FakeNet>(0.0, 10, /*label_signal=*/true);
  const auto r = schedule().respaced(10);
  GaussianDiffusion diffusion(r, Prediction::Eps, torch::kCPU);
  Denoiser denoiser(net, diffusion, torch::full({2}, 3, torch::kLong), 4.0, false);
  auto sigma = [&](int row) {
    const double ab = r.alphas_cumprod()[static_cast<size_t>(row)];
    return std::sqrt((1 - ab) / ab);
  };
  auto eps_at = [&](std::vector<int64_t> rows) {
    return denoiser.predict(torch::zeros({2, 1, 2, 2}), torch::tensor(rows)).eps;
  };
  auto full = [](double a, double b) {
    return torch::stack({torch::full({1, 2, 2}, a), torch::full({1, 2, 2}, b)}).to(torch::kFloat32);
  };
  // No interval: guided everywhere.
  EXPECT_TRUE(torch::allclose(eps_at({2, 2}), full(4, 4)));
  EXPECT_EQ(net->last_batch, 4);
  // (σ₂, σ₆]: row 6 (its upper end) is guided, row 2 (its open lower end) is not, with one
  // forward of 2 images; a batch with both rows gets both answers.
  denoiser.set_guidance_interval(sigma(2), sigma(6));
  EXPECT_TRUE(torch::allclose(eps_at({6, 6}), full(4, 4)));
  EXPECT_TRUE(torch::allclose(eps_at({2, 2}), full(1, 1)));
  EXPECT_EQ(net->last_batch, 2);
  EXPECT_TRUE(torch::allclose(eps_at({8, 4}), full(1, 4)));
  // A row the caller names on the host gives the same answers (the samplers' form: no
  // read of t from the device).
  for (int row : {2, 6, 8}) {
    const auto t = torch::full({2}, row, torch::kLong);
    const auto x = torch::zeros({2, 1, 2, 2});
    EXPECT_TRUE(torch::equal(denoiser.predict(x, t, true, row).eps, denoiser.predict(x, t).eps))
        << "row " << row;
    EXPECT_TRUE(torch::equal(denoiser(x, t, row).first, denoiser(x, t).first)) << "row " << row;
  }
  EXPECT_EQ(denoiser.guidance_at(sigma(6)), 4.0);
  EXPECT_EQ(denoiser.guidance_at(sigma(6) * 1.0001), 1.0);
  // Open above, open below.
  denoiser.set_guidance_interval(sigma(5), 0.0);
  EXPECT_TRUE(torch::allclose(eps_at({9, 5}), full(4, 1)));
  denoiser.set_guidance_interval(0.0, sigma(5));
  EXPECT_TRUE(torch::allclose(eps_at({9, 5}), full(1, 4)));
  EXPECT_EQ(denoiser.guidance_at(1e-9), 4.0);

  // Flow matching asks at t, whose σ is t / (1 − t): t = 0.5 is σ = 1, t = 0.8 is σ = 4,
  // and t = 1 (pure noise) is σ = ∞, above any upper limit.
  ObjectiveParams flow;
  flow.objective = Objective::FlowMatching;
  denoiser.set_objective(flow);
  denoiser.set_guidance_interval(0.5, 2.0);
  auto x = torch::zeros({2, 1, 2, 2});
  EXPECT_TRUE(torch::allclose(denoiser.at_flow_time(x, 0.5).velocity, full(4, 4)));
  EXPECT_TRUE(torch::allclose(denoiser.at_flow_time(x, 0.8).velocity, full(1, 1)));
  EXPECT_TRUE(torch::allclose(denoiser.at_flow_time(x, 1.0).velocity, full(1, 1)));
  EXPECT_TRUE(torch::allclose(denoiser.at_flow_time(x, 0.25).velocity, full(1, 1)));  // σ 1/3
  // EDM asks at its σ; x̂₀ = c_skip x + c_out F follows the guided F.
  ObjectiveParams edm;
  edm.objective = Objective::Edm;
  denoiser.set_objective(edm);
  const EdmScalings c = edm_scalings(1.5, edm.sigma_data);
  EXPECT_TRUE(torch::allclose(denoiser.at_sigma(x, 1.5).second, c.c_out * full(4, 4)));
  EXPECT_TRUE(torch::allclose(denoiser.at_sigma(x, 3.0).second,
                              edm_scalings(3.0, edm.sigma_data).c_out * full(1, 1)));
}

// Autoguidance (Karras et al. 2024): D_weak + w (D − D_weak), both at the image's class,
// one forward of each net with the plain batch (no null labels, no doubled batch). With
// linear nets k₁ x and k₀ x it is the net (k₀ + w (k₁ − k₀)) x: a whole sampling run
// must then match that net's run.
TEST(Sampling, AutoguidanceMixesTheModelAndItsWeakerVersion) {
  auto good = std::make_shared<FakeNet>(0.5, 10);
  auto weak = std::make_shared<FakeNet>(0.2, 10);
  const auto r = schedule().respaced(10);
  GaussianDiffusion diffusion(r, Prediction::Eps, torch::kCPU);
  const auto labels = torch::tensor({3, 7}, torch::kLong);
  Denoiser denoiser(good, diffusion, labels, 3.0, false);
  denoiser.set_guide(weak);
  EXPECT_TRUE(denoiser.autoguided());
  const auto x = torch::randn({2, 1, 2, 2});
  const auto t = torch::full({2}, 6, torch::kLong);
  EXPECT_TRUE(torch::allclose(denoiser.predict(x, t).eps, 1.1 * x, 1e-5, 1e-6));  // 0.2 + 3 (0.3)
  EXPECT_EQ(good->last_batch, 2);
  EXPECT_EQ(weak->last_batch, 2);
  EXPECT_EQ(good->calls, 1);
  EXPECT_EQ(weak->calls, 1);
  // Both at the images' own classes (no null label: that would be classifier-free guidance).
  ASSERT_TRUE(good->last_y.defined() && weak->last_y.defined());
  EXPECT_TRUE(torch::equal(good->last_y, labels));
  EXPECT_TRUE(torch::equal(weak->last_y, labels));
  // Outside a guidance interval: the model alone.
  auto sigma = [&](int row) {
    const double ab = r.alphas_cumprod()[static_cast<size_t>(row)];
    return std::sqrt((1 - ab) / ab);
  };
  denoiser.set_guidance_interval(0.0, sigma(4));
  EXPECT_TRUE(torch::allclose(denoiser.predict(x, t).eps, 0.5 * x));
  EXPECT_EQ(weak->calls, 1);
  EXPECT_TRUE(torch::allclose(denoiser.predict(x, torch::full({2}, 3, torch::kLong), true, 3).eps,
                              1.1 * x, 1e-5, 1e-6));
  // An unconditional model is guided too (classifier-free guidance would need labels).
  Denoiser unconditional(good, diffusion, at::Tensor(), 3.0, false);
  unconditional.set_guide(weak);
  EXPECT_TRUE(torch::allclose(unconditional(x, t).first, 1.1 * x, 1e-5, 1e-6));
  EXPECT_FALSE(weak->last_y.defined());
  // Flow matching's velocity mixes the same way.
  ObjectiveParams flow;
  flow.objective = Objective::FlowMatching;
  denoiser.set_objective(flow);
  denoiser.set_guidance_interval(0.0, 0.0);
  EXPECT_TRUE(torch::allclose(denoiser.at_flow_time(x, 0.5).velocity, 1.1 * x, 1e-5, 1e-6));

  // A whole DDIM run (conditional, every step guided) equals the mixed net's run.
  for (const auto& labels_given : {true, false}) {
    auto req = request(SamplerKind::Ddim, 6, 3);
    req.config.guidance = 3.0;
    auto good10 = std::make_shared<FakeNet>(0.5, labels_given ? 10 : 0);
    auto weak10 = std::make_shared<FakeNet>(0.2, labels_given ? 10 : 0);
    auto mixed = std::make_shared<FakeNet>(1.1, labels_given ? 10 : 0);
    req.guide = weak10;
    const auto autoguided = run_sampling(model(good10), req, torch::kCPU).images;
    req.guide = nullptr;
    req.config.guidance = 1.0;  // the mixed net alone
    const auto reference = run_sampling(model(mixed), req, torch::kCPU).images;
    EXPECT_TRUE(torch::allclose(autoguided, reference, 1e-4, 1e-5)) << "labels " << labels_given;
  }
  // Refused: a guide with other classes, and a guide beside a ControlNet.
  auto req = request(SamplerKind::Ddim, 2, 2);
  req.config.guidance = 2.0;
  req.guide = std::make_shared<FakeNet>(0.2, 4);
  EXPECT_THROW(run_sampling(model(std::make_shared<FakeNet>(0.5, 10)), req, torch::kCPU),
               std::invalid_argument);
}

// The 2-D toy view's field follows the same interval as the sampler it explains.
TEST(Sampling, TheFieldOfAPointModelKeepsTheGuidanceInterval) {
  struct PointNet : DenoiserNetImpl {  // ε_c = 1, ε_u = 0 on (G, 2) points
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor&,
                          const torch::Tensor& y) override {
      return (y != 10).to(torch::kFloat32).view({-1, 1}).expand_as(x).clone();
    }
    int num_classes() const override { return 10; }
  };
  SamplingModel m{std::make_shared<PointNet>(), schedule(), Prediction::Eps, {2}, 10};
  m.objective.objective = Objective::FlowMatching;
  const auto points = torch::zeros({3, 2});
  // t = 0.5 (σ = 1) is inside (0.5, 2], t = 0.8 (σ = 4) above it: −v̂ = −w or −1.
  EXPECT_TRUE(torch::allclose(sampling_field(m, points, 500, 4, 3.0, torch::kCPU, 0.5, 2.0),
                              torch::full({3, 2}, -3.0f)));
  EXPECT_TRUE(torch::allclose(sampling_field(m, points, 800, 4, 3.0, torch::kCPU, 0.5, 2.0),
                              torch::full({3, 2}, -1.0f)));
  EXPECT_TRUE(torch::allclose(sampling_field(m, points, 800, 4, 3.0, torch::kCPU),
                              torch::full({3, 2}, -3.0f)));
}

// A whole DDIM run with sample.guidance_sigma_{min,max}: ε = w at the steps inside the
// interval, 1 outside, by hand.
TEST(Sampling, DdimWithAGuidanceIntervalMatchesHandComputation) {
  auto net = std::make_shared<FakeNet>(0.0, 10, /*label_signal=*/true);
  auto req = request(SamplerKind::Ddim, 8);
  req.config.guidance = 2.5;
  req.config.guidance_sigma_min = 0.5;
  req.config.guidance_sigma_max = 3.0;
  SamplingModel m = model(net);
  auto out = run_sampling(m, req, torch::kCPU);

  NoiseStreams noise(42, 0, 3);
  auto x = noise.draw({1, 2, 2}).to(torch::kFloat64);
  const auto r = schedule().respaced(8);
  int guided = 0;
  for (int i = 7; i >= 0; --i) {
    const double ab = r.alphas_cumprod()[i], abp = r.alphas_cumprod_prev()[i];
    const double sigma = std::sqrt((1 - ab) / ab);
    const bool inside = sigma > 0.5 && sigma <= 3.0;
    guided += inside;
    const double eps = inside ? 2.5 : 1.0;
    auto x0 = (x - std::sqrt(1 - ab) * eps) / std::sqrt(ab);
    x = std::sqrt(abp) * x0 + std::sqrt(1 - abp) * eps;
  }
  ASSERT_GT(guided, 0);
  ASSERT_LT(guided, 8) << "the test needs steps on both sides of the interval";
  EXPECT_TRUE(torch::allclose(out.images.to(torch::kFloat64), x, 1e-4, 1e-5))
      << (out.images.to(torch::kFloat64) - x).abs().max();
}

// Image i of a run depends on (seed, i) alone: not on the chunk size nor on how many
// images the run has, for deterministic and stochastic samplers alike.
TEST(Sampling, ChunkingDoesNotChangeTheImages) {
  for (auto kind : {SamplerKind::Ddim, SamplerKind::Ddpm, SamplerKind::EulerAncestral}) {
    auto net = std::make_shared<FakeNet>(0.4, 0);
    auto req = request(kind, 12, 7, 0.7);
    req.config.chunk = 7;
    const auto whole = run_sampling(model(net), req, torch::kCPU);
    for (int chunk : {1, 2, 3, 5}) {
      req.config.chunk = chunk;
      const auto parts = run_sampling(model(net), req, torch::kCPU);
      ASSERT_EQ(parts.images.sizes(), whole.images.sizes());
      EXPECT_TRUE(torch::allclose(parts.images, whole.images, 1e-5, 1e-6))
          << to_string(kind) << " chunk " << chunk << ": "
          << (parts.images - whole.images).abs().max().item<double>();
      EXPECT_EQ(net->last_batch, 7 % chunk == 0 ? chunk : 7 % chunk) << "the last chunk's size";
    }
    auto first3 = request(kind, 12, 3, 0.7);
    const auto small = run_sampling(model(net), first3, torch::kCPU);
    EXPECT_TRUE(torch::allclose(small.images, whole.images.narrow(0, 0, 3), 1e-5, 1e-6))
        << to_string(kind) << ": the first 3 of 7 images are the 3 images of a 3-image run";
  }
}

TEST(Sampling, ChunkedRunsReportStepsOverTheWholeRunAndJoinTrajectories) {
  auto net = std::make_shared<FakeNet>(0.4, 3);
  auto req = request(SamplerKind::Ddim, 5, 5);
  req.config.chunk = 2;  // 3 chunks: 2 + 2 + 1
  req.config.guidance = 3.0;
  req.record_trajectory = true;
  std::vector<int> indices;
  int total = 0;
  const auto out = run_sampling(model(net), req, torch::kCPU, [&](const StepInfo& s) {
    indices.push_back(s.index);
    total = s.total;
    return true;
  });
  EXPECT_EQ(total, 15);
  ASSERT_EQ(indices.size(), 15u);
  for (int i = 0; i < 15; ++i) EXPECT_EQ(indices[static_cast<size_t>(i)], i);
  ASSERT_EQ(out.trajectory.x_t.size(), 5u);
  EXPECT_EQ(out.trajectory.x_t[0].size(0), 5);
  EXPECT_EQ(out.trajectory.x0[4].size(0), 5);
  // Each chunk's labels: images cycle through the 3 classes whatever the chunking.
  EXPECT_TRUE(torch::equal(out.labels, torch::tensor({0, 1, 2, 0, 1}, torch::kLong)));
  // The last forward saw the last chunk (1 image) twice: conditional and null label.
  EXPECT_EQ(net->last_batch, 2);
  // Cancelling in the second chunk stops the run.
  int calls = 0;
  const auto cancelled = run_sampling(model(net), req, torch::kCPU, [&](const StepInfo&) {
    return ++calls < 7;
  });
  EXPECT_TRUE(cancelled.cancelled);
  EXPECT_EQ(calls, 7);
}

TEST(Sampling, AutoChunkSizeFollowsGuidancePrecisionImageSizeAndDevice) {
  SampleConfig c;
  c.chunk = 0;
  c.n = 5000;
  c.guidance = 1.0;
  const std::vector<int64_t> mnist = {1, 28, 28}, big = {3, 56, 56}, points = {2};
  EXPECT_EQ(sample_chunk_size(c, torch::kCPU, Precision::Fp32, mnist), kCpuSampleForwardBatchFp32);
  EXPECT_EQ(sample_chunk_size(c, torch::kCPU, Precision::Bf16, mnist), kCpuSampleForwardBatchBf16);
  EXPECT_EQ(sample_chunk_size(c, torch::kCPU, Precision::Bf16, big), kCpuSampleForwardBatchBf16 / 4);
  EXPECT_EQ(sample_chunk_size(c, torch::kCPU, Precision::Fp32, points), 5000);
  c.guidance = 3.0;  // two network images per image
  EXPECT_EQ(sample_chunk_size(c, torch::kCPU, Precision::Fp32, mnist), kCpuSampleForwardBatchFp32 / 2);
  c.chunk = 5;
  EXPECT_EQ(sample_chunk_size(c, torch::kCPU, Precision::Bf16, mnist), 5);
}

TEST(Sampling, NoiseStreamsAreIndependentOfTheirNeighbours) {
  NoiseStreams a(7, 0, 4), b(7, 2, 2);
  const auto da = a.draw({3}), db = b.draw({3});
  EXPECT_TRUE(torch::equal(da.narrow(0, 2, 2), db));
  EXPECT_FALSE(torch::equal(da[0], da[1]));
  EXPECT_NE(NoiseStreams::image_seed(7, 0), NoiseStreams::image_seed(8, 0));
  EXPECT_NE(NoiseStreams::image_seed(7, 0), NoiseStreams::image_seed(7, 1));
  EXPECT_THROW(a.like(torch::zeros({3, 3})), std::logic_error);
}

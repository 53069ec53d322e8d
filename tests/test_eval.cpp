// The evaluator and classifier guidance: Fréchet distance against closed forms, accuracy,
// classifier-free guidance against separate forwards, classifier guidance (both forms)
// against an analytic classifier, evaluator training + cache, the noisy classifier.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/eval/evaluator.h"
#include "core/eval/frechet.h"
#include "core/eval/noisy_classifier.h"
#include "core/sampling/sampler.h"
#include "core/train/trainer.h"

using namespace difflab;
namespace fs = std::filesystem;

namespace {

torch::Tensor dbl(std::initializer_list<double> v) {
  return torch::tensor(std::vector<double>(v), torch::kFloat64);
}

std::string tmp_file(const std::string& name) {
  fs::create_directories(DIFFLAB_TEST_TMP);
  return (fs::path(DIFFLAB_TEST_TMP) / name).string();
}

// Two classes of 1×8×8 images: class 0 bright on the left half, class 1 on the right,
// plus noise. Easy to learn in a few hundred steps.
DatasetSplits synthetic_data(int64_t train = 256, int64_t test = 128, uint64_t seed = 1) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto make = [&](int64_t n) {
    TensorDataset set;
    set.labels = torch::randint(2, {n}, gen, torch::kLong);
    auto x = torch::rand({n, 1, 8, 8}, gen, torch::kFloat32) * 80.0;
    auto col = torch::arange(8, torch::kFloat32).view({1, 1, 1, 8});
    auto left = (col < 4).to(torch::kFloat32);
    auto side = torch::where(set.labels.view({-1, 1, 1, 1}) == 0, left, 1.0 - left);
    set.data = (x + 170.0 * side).clamp(0, 255).to(torch::kUInt8);
    return set;
  };
  DatasetSplits d;
  d.train = make(train);
  d.test = make(test);
  d.shape = DataShape{1, 8, 8, false, 2};
  d.class_names = {"left", "right"};
  d.description = "synthetic halves 1x8x8";
  return d;
}

// ε̂ = a·x + b·(y + 1) + c·t, so conditional and unconditional outputs differ.
class AffineNet : public DenoiserNetImpl {
 public:
  explicit AffineNet(int classes) : m_classes(classes) {}
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t,
                        const torch::Tensor& y) override {
    ++calls;
    last_batch = x.size(0);
    auto shape = std::vector<int64_t>(x.dim(), 1);
    shape[0] = -1;
    auto out = 0.3 * x + 0.001 * t.to(torch::kFloat32).view(shape);
    if (y.defined()) out = out + 0.05 * (y.to(torch::kFloat32) + 1.0).view(shape);
    return out;
  }
  int num_classes() const override { return m_classes; }
  int calls = 0;
  int64_t last_batch = 0;

 private:
  int m_classes;
};

// Linear logits W·vec(x) + c·t: ∇ₓ log p(y | x) = W_y − Σ_k p_k W_k in closed form.
class LinearClassifier : public NoisyClassifierImpl {
 public:
  LinearClassifier(int64_t dim, int classes) : m_classes(classes) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
    weight = register_parameter("weight", torch::randn({classes, dim}, gen, torch::kFloat32));
    time = register_parameter("time", torch::linspace(-1e-3, 1e-3, classes));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t) override {
    return x.flatten(1).matmul(weight.t()) + t.to(torch::kFloat32).unsqueeze(1) * time;
  }
  int num_classes() const override { return m_classes; }
  // The closed-form gradient, computed without autograd.
  torch::Tensor expected_gradient(const torch::Tensor& x, const torch::Tensor& t,
                                  const torch::Tensor& y) {
    torch::NoGradGuard no_grad;
    auto p = torch::softmax(forward(x, t), 1);                  // (B, K)
    auto grad = weight.index_select(0, y) - p.matmul(weight);  // (B, D)
    return grad.view(x.sizes());
  }
  torch::Tensor weight, time;

 private:
  int m_classes;
};

GaussianDiffusion diffusion(int timesteps = 100) {
  return GaussianDiffusion(NoiseSchedule::named(ScheduleKind::Linear, timesteps), Prediction::Eps,
                           torch::kCPU);
}

}  // namespace

// ---- Fréchet distance -------------------------------------------------------------------

TEST(Frechet, DiagonalCovariancesMatchClosedForm) {
  auto mu1 = dbl({0.5, -1.0, 2.0}), mu2 = dbl({1.0, 0.0, 2.5});
  auto a = dbl({1.0, 4.0, 0.25}), b = dbl({9.0, 1.0, 0.25});
  // |Δμ|² + Σ (√a − √b)² = (0.25 + 1 + 0.25) + (4 + 1 + 0) = 6.5
  EXPECT_NEAR(frechet_distance(mu1, torch::diag(a), mu2, torch::diag(b)), 6.5, 1e-10);
}

TEST(Frechet, NonDiagonalAgainstHandComputedValues) {
  // Σ₁ = [[2, 1], [1, 2]] (eigenvalues 3, 1), Σ₂ = I: tr √(Σ₁^½ Σ₂ Σ₁^½) = tr Σ₁^½ = √3 + 1,
  // so FD = |Δμ|² + 4 + 2 − 2(√3 + 1) with |Δμ|² = 1.
  auto s1 = dbl({2, 1, 1, 2}).view({2, 2});
  auto s2 = torch::eye(2, torch::kFloat64);
  EXPECT_NEAR(frechet_distance(dbl({1, 0}), s1, dbl({0, 0}), s2),
              1.0 + 6.0 - 2.0 * (std::sqrt(3.0) + 1.0), 1e-10);
  // Σ₂ = c Σ₁: FD = (1 − √c)² tr Σ₁.
  auto s = dbl({4, 2, 0, 2, 3, 1, 0, 1, 2}).view({3, 3});
  EXPECT_NEAR(frechet_distance(dbl({0, 0, 0}), s, dbl({0, 0, 0}), 4.0 * s), 9.0, 1e-9);
  // Commuting covariances R diag(a) Rᵀ, R diag(b) Rᵀ (R a rotation): Σ (√a − √b)².
  const double c = std::cos(0.7), si = std::sin(0.7);
  auto r = dbl({c, -si, si, c}).view({2, 2});
  auto ca = r.matmul(torch::diag(dbl({4, 1}))).matmul(r.t());
  auto cb = r.matmul(torch::diag(dbl({1, 9}))).matmul(r.t());
  EXPECT_NEAR(frechet_distance(dbl({0, 0}), ca, dbl({0, 0}), cb), 1.0 + 4.0, 1e-9);
}

TEST(Frechet, SetAgainstItselfIsZeroAndStatsMatchHand) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  auto f = torch::randn({400, 16}, gen, torch::kFloat32) * 2.0 + 1.0;
  auto s = feature_stats(f);
  EXPECT_NEAR(frechet_distance(s, s), 0.0, 1e-8);
  // A shifted copy: only the mean term remains.
  auto shifted = feature_stats(f + 0.5);
  EXPECT_NEAR(frechet_distance(s, shifted), 16 * 0.25, 1e-6);
  auto tiny = feature_stats(torch::tensor({1.0f, 2.0f, 3.0f, 6.0f}).view({2, 2}));
  EXPECT_NEAR(tiny.mean[0].item<double>(), 2.0, 1e-12);
  EXPECT_NEAR(tiny.mean[1].item<double>(), 4.0, 1e-12);
  // Unbiased: rows (1, 2), (3, 6) → var 2 and 8, covariance 4.
  EXPECT_NEAR(tiny.cov[0][0].item<double>(), 2.0, 1e-12);
  EXPECT_NEAR(tiny.cov[1][1].item<double>(), 8.0, 1e-12);
  EXPECT_NEAR(tiny.cov[0][1].item<double>(), 4.0, 1e-12);
  EXPECT_THROW(feature_stats(torch::ones({1, 3})), std::invalid_argument);
}

TEST(Accuracy, CountsArgmaxAgainstKnownLabels) {
  auto logits = torch::tensor({0.9f, 0.1f, 0.2f, 0.8f, 0.6f, 0.4f, 0.3f, 0.7f}).view({4, 2});
  // predictions 0, 1, 0, 1; labels 0, 0, -1 (left out), 1 → 2 of 3.
  EXPECT_NEAR(classification_accuracy(logits, torch::tensor({0, 0, -1, 1}, torch::kLong)),
              2.0 / 3.0, 1e-12);
  EXPECT_TRUE(std::isnan(classification_accuracy(logits, torch::full({4}, -1, torch::kLong))));
}

// ---- Guidance -----------------------------------------------------------------------------

TEST(Guidance, ClassifierFreeEqualsSeparateForwards) {
  auto net = std::make_shared<AffineNet>(10);
  auto d = diffusion();
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  auto x = torch::randn({4, 1, 3, 3}, gen, torch::kFloat32);
  auto t = torch::tensor({0, 17, 50, 99}, torch::kLong);
  auto y = torch::tensor({1, 3, 5, 9}, torch::kLong);
  const double w = 2.5;
  Denoiser den(net, d, y, w, /*clip_denoised=*/false);
  auto [eps, x0] = den(x, t);
  EXPECT_EQ(net->calls, 1);  // one batched forward over 2B
  EXPECT_EQ(net->last_batch, 8);
  auto mt = d.model_timesteps(t);
  auto cond = net->forward(x, mt, y);
  auto uncond = net->forward(x, mt, torch::full_like(y, 10));
  EXPECT_TRUE(torch::allclose(eps, uncond + w * (cond - uncond), 1e-6, 1e-6));
  EXPECT_TRUE(torch::allclose(x0, d.x0_from_eps(x, t, eps), 1e-5, 1e-5));
  // w = 1 is the plain conditional forward.
  Denoiser plain(net, d, y, 1.0, false);
  EXPECT_TRUE(torch::allclose(plain(x, t).first, cond, 1e-6, 1e-6));
}

TEST(Guidance, ClassifierDdimFormShiftsEpsUnderInferenceMode) {
  auto net = std::make_shared<AffineNet>(0);  // unconditional network
  auto d = diffusion();
  auto clf = std::make_shared<LinearClassifier>(9, 3);
  const double s = 1.7;
  auto guide = make_classifier_guidance(clf, s);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(6);
  auto x = torch::randn({3, 1, 3, 3}, gen, torch::kFloat32);
  auto t = torch::tensor({5, 40, 90}, torch::kLong);
  auto y = torch::tensor({0, 2, 1}, torch::kLong);
  Denoiser plain(net, d, y, 1.0, false);
  Denoiser guided(net, d, y, 1.0, false, nullptr, guide);
  at::Tensor eps_plain, eps_guided, x0_guided, xi;
  {
    c10::InferenceMode inference;  // as in run_sampling
    xi = x.clone();
    eps_plain = plain(xi, t).first;
    std::tie(eps_guided, x0_guided) = guided(xi, t);
  }
  auto grad = clf->expected_gradient(x, d.model_timesteps(t), y);
  auto sigma = d.extract(d.sqrt_one_minus_alphas_cumprod(), t, 4);
  EXPECT_TRUE(torch::allclose(eps_guided, eps_plain - sigma * s * grad, 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(x0_guided, d.x0_from_eps(x, t, eps_guided), 1e-4, 1e-4));
  EXPECT_FALSE(torch::allclose(eps_guided, eps_plain, 1e-3, 1e-3));
}

// Through run_sampling: one DDIM step ends at x̂₀ of the shifted ε̂; one DDPM step adds
// s Σ ∇ₓ log p(y | x_T) to the mean (Alg. 1), the ε̂ left unshifted.
TEST(Guidance, ClassifierThroughRunSamplingBothForms) {
  auto net = std::make_shared<AffineNet>(0);
  auto clf = std::make_shared<LinearClassifier>(4, 2);
  const double s = 0.8;
  const auto schedule = NoiseSchedule::named(ScheduleKind::Linear, 100);
  SampleRequest r;
  r.config.steps = 1;
  r.config.n = 4;
  r.config.seed = 11;
  r.config.clip_denoised = false;
  r.config.class_label = -1;
  const SamplingModel model{net, schedule, Prediction::Eps, {1, 2, 2}, 0};
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  auto xT = torch::randn({4, 1, 2, 2}, gen, torch::kFloat32);
  auto y = torch::tensor({0, 1, 0, 1}, torch::kLong);  // labels cycle over the classifier's classes
  GaussianDiffusion d1(schedule.respaced(1), Prediction::Eps, torch::kCPU);
  auto t = torch::zeros({4}, torch::kLong);
  auto grad = clf->expected_gradient(xT, d1.model_timesteps(t), y);

  for (auto kind : {SamplerKind::Ddim, SamplerKind::Ddpm}) {
    r.config.sampler = kind;
    r.config.variance = VarianceKind::FixedLarge;
    r.classifier = {};
    auto plain = run_sampling(model, r, torch::kCPU);
    r.classifier = make_classifier_guidance(clf, s);
    auto guided = run_sampling(model, r, torch::kCPU);
    EXPECT_TRUE(torch::equal(guided.labels, y));
    if (kind == SamplerKind::Ddim) {
      // x̂₀' − x̂₀ = √(1−ᾱ)/√ᾱ · s ∇.
      const double ab = d1.schedule().alphas_cumprod()[0];
      EXPECT_TRUE(torch::allclose(guided.images - plain.images,
                                  std::sqrt((1 - ab) / ab) * s * grad, 1e-4, 1e-4));
    } else {
      auto var = d1.betas()[0].item<double>();  // fixed_large on a one-row schedule
      EXPECT_TRUE(torch::allclose(guided.images - plain.images, var * s * grad, 1e-5, 1e-5));
    }
  }
}

// ---- Evaluator ----------------------------------------------------------------------------

TEST(Evaluator, TrainsOnSyntheticDataAndCacheRoundTrips) {
  torch::set_num_threads(1);
  auto data = synthetic_data();
  EvaluatorOptions opt;
  opt.train_examples = 32 * 40;
  opt.batch_size = 32;
  opt.feature_dim = 16;
  auto e = Evaluator::train(data, opt, torch::kCPU);
  EXPECT_GT(e.info().test_accuracy, 0.95);
  const auto path = tmp_file("evaluator_roundtrip.pt");
  fs::remove(path);
  e.save(path);
  auto loaded = Evaluator::load(path, torch::kCPU);
  EXPECT_EQ(loaded.info().dataset_key, dataset_key(data));
  EXPECT_EQ(loaded.info().feature_dim, 16);
  EXPECT_DOUBLE_EQ(loaded.info().test_accuracy, e.info().test_accuracy);
  auto x = gather_batch(data.test, torch::arange(10, torch::kLong));
  EXPECT_TRUE(torch::allclose(loaded.features(x), e.features(x)));
  EXPECT_EQ(e.features(x).sizes(), (std::vector<int64_t>{10, 16}));

  // The cache is used for the same data and retrained (with a message) for other data.
  std::vector<std::string> messages;
  auto log = [&](const std::string& m) { messages.push_back(m); };
  load_or_train_evaluator(path, data, opt, torch::kCPU, log);
  EXPECT_TRUE(messages.empty());
  auto other = synthetic_data(256, 128, 2);
  EXPECT_NE(dataset_key(other), dataset_key(data));
  auto retrained = load_or_train_evaluator(path, other, opt, torch::kCPU, log);
  ASSERT_FALSE(messages.empty());
  EXPECT_NE(messages[0].find("another dataset"), std::string::npos) << messages[0];
  EXPECT_EQ(Evaluator::load(path, torch::kCPU).info().dataset_key, dataset_key(other));

  // Scores: real images as "samples" are accurate and about as close as the floor; a
  // constant image set is far.
  auto real = gather_batch(data.test, torch::arange(64, torch::kLong));
  auto r = evaluate_samples(e, real, data.test.labels.narrow(0, 0, 64), data);
  EXPECT_GT(r.accuracy, 0.95);
  EXPECT_EQ(r.n, 64);
  EXPECT_EQ(r.reference_size, 128);
  EXPECT_GE(r.fd_floor, 0.0);
  auto flat = evaluate_samples(e, torch::zeros({64, 1, 8, 8}), torch::zeros({64}, torch::kLong), data);
  EXPECT_GT(flat.fd, 5.0 * std::max(r.fd, r.fd_floor));
  EXPECT_THROW(evaluate_samples(e, torch::zeros({4, 1, 4, 4}), torch::zeros({4}, torch::kLong), data),
               EvaluatorError);
}

TEST(Evaluator, CorruptCacheNamesTheFileAndIsRetrained) {
  const auto path = tmp_file("evaluator_corrupt.pt");
  {
    std::ofstream out(path, std::ios::binary);
    out << "this is not a zip archive";
  }
  try {
    Evaluator::load(path, torch::kCPU);
    FAIL() << "no error for a corrupt cache";
  } catch (const EvaluatorError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_THROW(Evaluator::load(tmp_file("no_such_evaluator.pt"), torch::kCPU), EvaluatorError);
  std::vector<std::string> messages;
  EvaluatorOptions opt;
  opt.train_examples = 64;
  opt.feature_dim = 8;
  auto e = load_or_train_evaluator(path, synthetic_data(64, 32), opt, torch::kCPU,
                                   [&](const std::string& m) { messages.push_back(m); });
  ASSERT_FALSE(messages.empty());
  EXPECT_NE(messages[0].find(path), std::string::npos) << messages[0];
  EXPECT_NO_THROW(Evaluator::load(path, torch::kCPU));
}

TEST(Evaluator, CheckpointFolder) {
  EXPECT_EQ(checkpoint_folder("runs/mnist/checkpoints/step_00000400.pt"), "runs/mnist");
  EXPECT_EQ(checkpoint_folder("elsewhere/model.pt"), "elsewhere");
  EXPECT_EQ(evaluator_cache_path("runs/mnist"), "runs/mnist/evaluator.pt");
}

// ---- Noisy classifier ---------------------------------------------------------------------

TEST(NoisyClassifier, TrainsSavesLoadsAndGuidesFromAFile) {
  torch::set_num_threads(1);
  auto data = synthetic_data(128, 64);
  Config config;
  config.diffusion.timesteps = 50;
  config.data.channels = 1;
  config.data.image_size = 8;
  ClassifierTrainOptions opt;
  opt.steps = 4;
  opt.batch_size = 16;
  opt.base_channels = 8;
  int64_t seen = 0;
  auto clf = train_noisy_classifier(config, data, opt, torch::kCPU, [&](const ClassifierStep& s) {
    EXPECT_TRUE(std::isfinite(s.loss));
    seen = s.step;
    return true;
  });
  EXPECT_EQ(seen, 4);
  const auto path = tmp_file("noisy_classifier.pt");
  save_noisy_classifier(clf, config, data.shape, opt.base_channels, seen, path);
  NoisyClassifierInfo info;
  auto loaded = load_noisy_classifier(path, torch::kCPU, &info);
  EXPECT_EQ(info.step, 4);
  EXPECT_EQ(info.config.diffusion.timesteps, 50);
  EXPECT_EQ(loaded->num_classes(), 2);
  auto x = gather_batch(data.test, torch::arange(5, torch::kLong));
  auto t = torch::tensor({0.f, 10.f, 20.f, 30.f, 49.f});
  {
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::allclose(loaded->forward(x, t), clf->forward(x, t), 1e-5, 1e-5));
  }
  const double acc = noisy_classifier_accuracy(loaded, config, data, torch::kCPU);
  EXPECT_GE(acc, 0.0);
  EXPECT_LE(acc, 1.0);

  // load_classifier_guidance loads sample.classifier for the request; run_sampling takes
  // its gradient under inference mode.
  auto net = std::make_shared<AffineNet>(0);
  SampleRequest r;
  r.config.sampler = SamplerKind::Ddim;
  r.config.steps = 3;
  r.config.n = 4;
  r.config.classifier = path;
  r.config.classifier_scale = 2.0;
  const SamplingModel model{
      net, NoiseSchedule::named(ScheduleKind::Linear, 50), Prediction::Eps, {1, 8, 8}, 0};
  r.classifier = load_classifier_guidance(r.config, model, torch::kCPU);
  auto guided = run_sampling(model, r, torch::kCPU);
  r.config.classifier_scale = 0.0;
  r.classifier = load_classifier_guidance(r.config, model, torch::kCPU);
  EXPECT_FALSE(r.classifier.enabled());
  auto plain = run_sampling(model, r, torch::kCPU);
  EXPECT_FALSE(torch::allclose(guided.images, plain.images));
  EXPECT_EQ(guided.labels[1].item<int64_t>(), 1);
  // A request whose config asks for a classifier that nobody loaded is refused.
  r.config.classifier_scale = 2.0;
  EXPECT_THROW(run_sampling(model, r, torch::kCPU), std::invalid_argument);

  // Wrong timesteps and unreadable files are errors naming the file.
  r.config.classifier_scale = 1.0;
  SamplingModel model100 = model;
  model100.schedule = NoiseSchedule::named(ScheduleKind::Linear, 100);
  EXPECT_THROW(load_classifier_guidance(r.config, model100, torch::kCPU), CheckpointError);
  const auto bad = tmp_file("bad_classifier.pt");
  {
    std::ofstream out(bad, std::ios::binary);
    out << "garbage";
  }
  try {
    load_noisy_classifier(bad, torch::kCPU);
    FAIL() << "no error for a corrupt classifier";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
  // The classifier where a model or the evaluator cache belongs: the error says what it is.
  try {
    load_checkpoint_model(path, true, torch::kCPU);
    FAIL() << "no error for a classifier loaded as a model";
  } catch (const CheckpointError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(
                  path + " is a noise classifier checkpoint, not a model checkpoint", 0),
              0u)
        << e.what();
  }
  try {
    Evaluator::load(path, torch::kCPU);
    FAIL() << "no error for a classifier loaded as the evaluator";
  } catch (const EvaluatorError& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "is a noise classifier checkpoint, not a sample evaluator cache"),
              std::string::npos)
        << e.what();
  }
}

TEST(NoisyClassifier, ConfigKeysRoundTripAndValidate) {
  Config c;
  c.sample.classifier = "runs/x/classifier.pt";
  c.sample.classifier_scale = 2.5;
  auto back = config_from_yaml(config_to_yaml(c), "roundtrip");
  EXPECT_EQ(back.sample.classifier, "runs/x/classifier.pt");
  EXPECT_DOUBLE_EQ(back.sample.classifier_scale, 2.5);
  Config bad;
  bad.sample.classifier_scale = 1.0;
  try {
    validate(bad, "test.yaml");
    FAIL() << "a scale without a classifier must be an error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("sample.classifier_scale"), std::string::npos) << e.what();
  }
}

// The objectives beside DDPM (core/diffusion/objectives.h) and min-SNR-γ weighting:
// - each objective's training target and its inversion against numbers worked by hand;
// - min-SNR weights against the paper's formula, and against the x₀-space loss they stand for;
// - EDM's c_skip, c_out, c_in, λ(σ), and unit variance of c_in x at every σ on data of std σ_d;
// - samplers with the exact denoiser of Gaussian data N(μ, s²): flow-matching Euler and Heun
//   (closed-form velocity) and EDM's σ-space samplers give back μ and s;
// - which samplers apply to which objective, trajectories, config keys, short training runs
//   of every objective on a toy set, and checkpoints that keep the objective.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>

#include "core/data/dataset.h"
#include "core/diffusion/gaussian_diffusion.h"
#include "core/diffusion/objectives.h"
#include "core/sampling/field.h"
#include "core/sampling/sampler.h"
#include "core/sampling/sampler_registry.h"
#include "core/sampling/sigmas.h"
#include "core/train/checkpoint.h"
#include "core/train/trainer.h"
#include "core/train/training_run.h"

using namespace difflab;
namespace fs = std::filesystem;

namespace {

constexpr int kT = 1000;
constexpr int kN = 8000;  // samples of the sampler checks on Gaussian data

double value(const at::Tensor& t) { return t.item<double>(); }

// ---- Exact networks for N(μ, diag s²) data ----------------------------------------------

const std::vector<double> kMu = {0.5, -1.0, 0.0, 2.0};
const std::vector<double> kStd = {0.5, 1.0, 0.2, 1.5};

// Flow matching's exact velocity. With x_t = (1 − t) x₀ + t ε, x_t ~ N(m, V) per dimension
// with m = (1 − t) μ, V = (1 − t)² s² + t², Cov(ε, x_t) = t and Cov(x₀, x_t) = (1 − t) s², so
//   E[v | x_t] = E[ε | x_t] − E[x₀ | x_t] = (t − (1 − t) s²) (x_t − m) / V − μ.
// With `classes` > 0 it is class-conditional: class y has mean μ + kClassShift·(y + 1), the
// null class (y = classes) mean μ.
constexpr double kClassShift = 2.0;
at::Tensor class_means(const torch::Tensor& y, int classes, int64_t rows) {
  auto mu = torch::tensor(kMu, torch::kFloat64).unsqueeze(0).expand({rows, -1}).clone();
  if (classes == 0 || !y.defined()) return mu;
  auto shift = (y.to(torch::kFloat64) + 1.0) * kClassShift;
  shift = torch::where(y == classes, torch::zeros_like(shift), shift);
  return mu + shift.unsqueeze(1);
}

class GaussianFlowNet : public DenoiserNetImpl {
 public:
  explicit GaussianFlowNet(int classes = 0) : m_classes(classes) {}
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t_net,
                        const torch::Tensor& y) override {
    ++calls;
    EXPECT_TRUE(torch::all(t_net == t_net[0]).item<bool>());
    const double t = t_net[0].item<double>() / kT;
    auto mu = class_means(y, m_classes, x.size(0));
    auto s2 = torch::tensor(kStd, torch::kFloat64).pow(2);
    auto m = (1.0 - t) * mu;
    auto V = (1.0 - t) * (1.0 - t) * s2 + t * t;
    auto k = (t - (1.0 - t) * s2) / V;
    return (k * (x.to(torch::kFloat64) - m) - mu).to(torch::kFloat32);
  }
  int num_classes() const override { return m_classes; }
  int calls = 0;

 private:
  int m_classes;
};

// EDM's exact F: D(x; σ) = E[x₀ | x₀ + σ ε = x] = μ + s² (x − μ) / (s² + σ²), and the net
// returns F = (D − c_skip x) / c_out for its input c_in x at its time t_net(σ).
class GaussianEdmNet : public DenoiserNetImpl {
 public:
  explicit GaussianEdmNet(ObjectiveParams p, int classes = 0) : m_p(p), m_classes(classes) {}
  torch::Tensor forward(const torch::Tensor& input, const torch::Tensor& t_net,
                        const torch::Tensor& y) override {
    ++calls;
    const double sigma = edm_sigma_of_network_time(t_net[0].item<double>(), m_p);
    const auto c = edm_scalings(sigma, m_p.sigma_data);
    auto x = input.to(torch::kFloat64) / c.c_in;
    auto mu = class_means(y, m_classes, x.size(0));
    auto s2 = torch::tensor(kStd, torch::kFloat64).pow(2);
    auto D = mu + s2 / (s2 + sigma * sigma) * (x - mu);
    return ((D - c.c_skip * x) / c.c_out).to(torch::kFloat32);
  }
  int num_classes() const override { return m_classes; }
  int calls = 0;

 private:
  ObjectiveParams m_p;
  int m_classes;
};

SamplingModel gaussian_model(DenoiserNet net, Objective objective) {
  SamplingModel m;
  m.num_classes = net->num_classes();
  m.net = std::move(net);
  m.schedule = NoiseSchedule::named(ScheduleKind::Linear, kT);
  m.shape = {static_cast<int64_t>(kMu.size())};
  m.objective.objective = objective;
  m.objective.time_scale = kT;
  return m;
}

SampleRequest gaussian_request(SamplerKind kind, int steps, int n = kN) {
  SampleRequest r;
  r.config.sampler = kind;
  r.config.steps = steps;
  r.config.n = n;
  r.config.seed = 11;
  r.config.guidance = 1.0;
  r.config.clip_denoised = false;
  return r;
}

// Per-dimension mean and std of N samples against μ and s, within 4 standard errors (s/√N
// for the mean, √(1/2N) relative for the std) plus two known biases: EDM starts from
// σ_max ε rather than N(μ, s² + σ_max²), which the ODE carries to a mean off by
// ≈ |μ| s / σ_max; and discretisation, which shrinks with the steps (`allowance`, relative,
// about 1.3× the worst gap to the converged run that was measured with N = 8000: with
// 800 steps every sampler here lands within 4 standard errors). The narrow dimension
// (s = 0.2) is the stiff one. A wrong step (a sign, a missing factor) misses by far more.
void expect_gaussian(const at::Tensor& x, double allowance, const std::string& what) {
  ASSERT_TRUE(x.defined()) << what;
  ASSERT_EQ(x.size(0), kN);
  auto mean = x.mean(0), sd = x.std(0);
  for (size_t d = 0; d < kMu.size(); ++d) {
    const double s = kStd[d];
    EXPECT_NEAR(mean[d].item<double>(), kMu[d], 4 * s / std::sqrt(kN) + std::abs(kMu[d]) * s / 80)
        << what << " dim " << d;
    EXPECT_NEAR(sd[d].item<double>() / s, 1.0, 4 * std::sqrt(0.5 / kN) + allowance)
        << what << " dim " << d;
  }
}

}  // namespace

// ---- min-SNR-γ -------------------------------------------------------------------------

TEST(MinSnr, WeightsAreThePapersFormulaForEachPrediction) {
  // Hang et al. 2023: ε: min(SNR, γ)/SNR, x₀: min(SNR, γ), v: min(SNR, γ)/(SNR + 1).
  const double gamma = 5.0;
  EXPECT_DOUBLE_EQ(min_snr_weight(10.0, gamma, Prediction::Eps), 0.5);
  EXPECT_DOUBLE_EQ(min_snr_weight(10.0, gamma, Prediction::X0), 5.0);
  EXPECT_DOUBLE_EQ(min_snr_weight(10.0, gamma, Prediction::V), 5.0 / 11.0);
  EXPECT_DOUBLE_EQ(min_snr_weight(2.0, gamma, Prediction::Eps), 1.0);
  EXPECT_DOUBLE_EQ(min_snr_weight(2.0, gamma, Prediction::X0), 2.0);
  EXPECT_DOUBLE_EQ(min_snr_weight(2.0, gamma, Prediction::V), 2.0 / 3.0);
  // Flow velocity at t = 0.25: SNR = (0.75/0.25)² = 9, min(9, 5) t² = 0.3125.
  EXPECT_DOUBLE_EQ(flow_min_snr_weight(0.25, gamma), 0.3125);
  // t = 0.8: SNR = 1/16, weight SNR t² = (1 − t)² = 0.04.
  EXPECT_NEAR(flow_min_snr_weight(0.8, gamma), 0.04, 1e-12);
}

TEST(MinSnr, EveryPredictionGetsTheSameX0SpaceLoss) {
  // The weighted loss of each prediction equals min(SNR, γ) ‖x̂₀ − x₀‖² for the same x̂₀ error
  // (what the weights are for): checked through GaussianDiffusion's own conversions.
  GaussianDiffusion diff(NoiseSchedule::named(ScheduleKind::Linear, kT), Prediction::Eps,
                         torch::kCPU);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  auto x0 = torch::randn({1, 6}, gen);
  auto eps = torch::randn({1, 6}, gen);
  auto err = 0.1 * torch::randn({1, 6}, gen);  // an error in x̂₀
  const double gamma = 5.0;
  for (int row : {3, 40, 300, 900}) {
    auto t = torch::full({1}, row, torch::kLong);
    const double ab = NoiseSchedule::named(ScheduleKind::Linear, kT).alphas_cumprod()[row];
    const double snr = ab / (1.0 - ab);
    auto xt = diff.q_sample(x0, t, eps);
    auto x0_hat = x0 + err;
    const double x0_loss = value((x0_hat - x0).pow(2).mean()) * std::min(snr, gamma);
    auto eps_hat = diff.eps_from_x0(xt, t, x0_hat);
    const double eps_loss = value((eps_hat - eps).pow(2).mean());
    const double v_loss =
        value((diff.v_target(x0_hat, t, eps_hat) - diff.v_target(x0, t, eps)).pow(2).mean());
    const auto rows = min_snr_weights(diff.schedule(), Prediction::Eps, gamma);
    EXPECT_NEAR(rows[row] * eps_loss, x0_loss, 2e-3 * x0_loss) << "row " << row;
    EXPECT_NEAR(min_snr_weight(snr, gamma, Prediction::V) * v_loss, x0_loss, 2e-3 * x0_loss)
        << "row " << row;
  }
  // Flow matching: x̂₀ = x_t − t v̂, so ‖v̂ − v‖² t² = ‖x̂₀ − x₀‖².
  for (double t : {0.1, 0.5, 0.9}) {
    auto xt = (1.0 - t) * x0 + t * eps;
    auto v_hat = (xt - (x0 + err)) / t;
    const double v_loss = value((v_hat - (eps - x0)).pow(2).mean());
    const double snr = (1.0 - t) * (1.0 - t) / (t * t);
    const double x0_loss = value(err.pow(2).mean()) * std::min(snr, gamma);
    EXPECT_NEAR(flow_min_snr_weight(t, gamma) * v_loss, x0_loss, 1e-4 * x0_loss) << "t " << t;
  }
}

TEST(MinSnr, CurveForTheLossChart) {
  DiffusionConfig d;
  EXPECT_EQ(loss_weight_curve(d, 4), std::vector<double>(4, 1.0));  // uniform
  d.loss_weighting = LossWeighting::MinSnr;
  const auto eps = loss_weight_curve(d, 10);
  ASSERT_EQ(eps.size(), 10u);
  // Bucket k's centre is row 100 k + 50; row 50 has SNR ≈ 32 > γ: ε weight γ/SNR.
  const double ab50 = NoiseSchedule::named(ScheduleKind::Linear, kT).alphas_cumprod()[50];
  EXPECT_GT(ab50 / (1 - ab50), 5.0);
  EXPECT_DOUBLE_EQ(eps.front(), 5.0 / (ab50 / (1 - ab50)));
  EXPECT_DOUBLE_EQ(eps.back(), 1.0);  // high t: SNR < γ
  for (size_t i = 1; i < eps.size(); ++i) EXPECT_GE(eps[i], eps[i - 1]);
  d.prediction = Prediction::X0;
  const auto x0 = loss_weight_curve(d, 10);
  EXPECT_DOUBLE_EQ(x0.front(), 5.0);
  d.prediction = Prediction::Eps;
  d.objective = Objective::FlowMatching;
  const auto flow = loss_weight_curve(d, 4);  // centres t = 1/8, 3/8, 5/8, 7/8
  EXPECT_DOUBLE_EQ(flow[0], flow_min_snr_weight(0.125, 5.0));
  EXPECT_DOUBLE_EQ(flow[3], flow_min_snr_weight(0.875, 5.0));
}

// ---- DDPM (hand computation) -------------------------------------------------------------

TEST(DdpmObjective, VTargetAndInversionByHand) {
  GaussianDiffusion diff(NoiseSchedule::named(ScheduleKind::Linear, kT), Prediction::V,
                         torch::kCPU);
  const int row = 500;
  const double ab = diff.schedule().alphas_cumprod()[row];
  const double a = std::sqrt(ab), b = std::sqrt(1.0 - ab);
  auto t = torch::full({1}, row, torch::kLong);
  auto x0 = torch::tensor({{0.3f}}), eps = torch::tensor({{-1.2f}});
  EXPECT_NEAR(value(diff.training_target(x0, t, eps)), a * -1.2 - b * 0.3, 1e-5);
  auto xt = diff.q_sample(x0, t, eps);
  EXPECT_NEAR(value(xt), a * 0.3 + b * -1.2, 1e-5);
  EXPECT_NEAR(value(diff.x0_from_v(xt, t, diff.training_target(x0, t, eps))), 0.3, 1e-5);
}

// ---- EDM ---------------------------------------------------------------------------------

TEST(Edm, ScalingsAndLossWeightFormulas) {
  // σ = σ_d = 0.5: c_skip = ½, c_out = σ_d/√2, c_in = 1/(σ_d √2), c_noise = ¼ ln ½.
  auto c = edm_scalings(0.5, 0.5);
  EXPECT_DOUBLE_EQ(c.c_skip, 0.5);
  EXPECT_NEAR(c.c_out, 0.5 / std::sqrt(2.0), 1e-15);
  EXPECT_NEAR(c.c_in, 1.0 / (0.5 * std::sqrt(2.0)), 1e-15);
  EXPECT_NEAR(c.c_noise, 0.25 * std::log(0.5), 1e-15);
  // σ = 2: σ² + σ_d² = 4.25.
  c = edm_scalings(2.0, 0.5);
  EXPECT_NEAR(c.c_skip, 0.25 / 4.25, 1e-15);
  EXPECT_NEAR(c.c_out, 1.0 / std::sqrt(4.25), 1e-15);
  EXPECT_NEAR(c.c_in, 1.0 / std::sqrt(4.25), 1e-15);
  // λ(1) with σ_d = 0.5: (1 + 0.25) / 0.25 = 5; and λ = 1/c_out² at every σ (Karras §5).
  EXPECT_DOUBLE_EQ(edm_loss_weight(1.0, 0.5), 5.0);
  for (double s : {0.002, 0.1, 0.5, 3.0, 80.0}) {
    const auto k = edm_scalings(s, 0.5);
    EXPECT_NEAR(edm_loss_weight(s, 0.5) * k.c_out * k.c_out, 1.0, 1e-12) << s;
    EXPECT_NEAR(k.c_skip + k.c_out * k.c_out / (0.5 * 0.5), 1.0, 1e-12) << s;  // c_skip + σ²/(σ²+σ_d²)
  }
  ObjectiveParams p;
  EXPECT_NEAR(edm_network_time(p.sigma_min, p), 0.0, 1e-9);
  EXPECT_NEAR(edm_network_time(p.sigma_max, p), 1000.0, 1e-9);
  EXPECT_NEAR(edm_sigma_of_network_time(edm_network_time(0.7, p), p), 0.7, 1e-12);
}

TEST(Edm, TrainingTargetAndInversionByHand) {
  DiffusionConfig d;
  d.objective = Objective::Edm;
  auto x0 = torch::tensor({{0.3f}}), eps = torch::tensor({{-1.2f}});
  auto sigma = torch::tensor({2.0});
  const auto b = edm_training_batch(d, x0, eps, sigma);
  const double x = 0.3 + 2.0 * -1.2;  // −2.1
  const double c_skip = 0.25 / 4.25, c_out = 1.0 / std::sqrt(4.25), c_in = 1.0 / std::sqrt(4.25);
  EXPECT_NEAR(value(b.input), c_in * x, 1e-6);
  EXPECT_NEAR(value(b.target), (0.3 - c_skip * x) / c_out, 1e-5);
  EXPECT_NEAR(value(b.weight), 1.0, 1e-6);  // λ c_out²
  EXPECT_NEAR(value(b.net_time),
              1000.0 * (std::log(2.0) - std::log(0.002)) / (std::log(80.0) - std::log(0.002)), 1e-3);
  // The inversion: D = c_skip x + c_out F with F = the target gives x₀ back.
  EXPECT_NEAR(value(edm_denoised(torch::tensor({{static_cast<float>(x)}}), sigma, b.target, 0.5)),
              0.3, 1e-5);
  // ln σ ~ N(P_mean, P_std²).
  EXPECT_NEAR(value(edm_sigmas(d, torch::tensor({1.0}))), std::exp(-1.2 + 1.2), 1e-12);
}

TEST(Edm, PreconditionedInputAndTargetHaveUnitVarianceAtEverySigma) {
  // Data of std σ_d, deliberately not Gaussian (uniform): Var(c_in (x₀ + σ ε)) =
  // (σ_d² + σ²)/(σ² + σ_d²) = 1, and the F target (x₀ − c_skip x)/c_out has variance
  // (σ_d² σ⁴ + σ_d⁴ σ²)/(σ² + σ_d²)² / c_out² = 1 too (Karras et al. 2022, Appendix B.6).
  DiffusionConfig d;
  d.objective = Objective::Edm;
  const double sd = d.edm_sigma_data;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const int64_t n = 200000;
  auto x0 = (torch::rand({n, 1}, gen) * 2.0 - 1.0) * (sd * std::sqrt(3.0));  // std σ_d
  auto eps = torch::randn({n, 1}, gen);
  for (double s : {0.002, 0.05, 0.5, 2.0, 10.0, 80.0}) {
    const auto b = edm_training_batch(d, x0, eps, torch::full({n}, s, torch::kFloat64));
    EXPECT_NEAR(value(b.input.std()), 1.0, 0.01) << "σ = " << s;
    EXPECT_NEAR(value(b.target.std()), 1.0, 0.01) << "σ = " << s;
    // Without c_in the input's std would be √(σ_d² + σ²): far from 1 at the ends.
  }
}

TEST(Edm, SigmaSpaceSamplersWithTheExactDenoiserGiveTheData) {
  ObjectiveParams p;
  p.objective = Objective::Edm;
  struct Case {
    SamplerKind kind;
    int steps;
    double churn, allowance;
  };
  for (const Case& c : {Case{SamplerKind::Heun, 50, 0.0, 0.01}, Case{SamplerKind::Heun, 200, 10.0, 0.01},
                        Case{SamplerKind::Euler, 200, 0.0, 0.02}, Case{SamplerKind::DpmppTwoM, 50, 0.0, 0.01},
                        Case{SamplerKind::EulerAncestral, 800, 0.0, 0.01}}) {
    auto net = std::make_shared<GaussianEdmNet>(p);
    auto req = gaussian_request(c.kind, c.steps);
    req.config.s_churn = c.churn;
    const auto r = run_sampling(gaussian_model(net, Objective::Edm), req, torch::kCPU);
    const std::string what = std::string(to_string(c.kind)) + " " + std::to_string(c.steps) +
                             " steps, churn " + std::to_string(c.churn);
    expect_gaussian(r.images, c.allowance, what);
    if (c.kind == SamplerKind::Heun) EXPECT_EQ(net->calls, 2 * c.steps - 1) << what;
  }
}

// ---- Flow matching -------------------------------------------------------------------------

TEST(FlowMatching, TrainingTargetAndInversionByHand) {
  DiffusionConfig d;
  d.objective = Objective::FlowMatching;
  auto x0 = torch::tensor({{0.4f}}), eps = torch::tensor({{-1.0f}});
  auto t = torch::tensor({0.25f});
  const auto b = flow_training_batch(d, x0, eps, t);
  EXPECT_NEAR(value(b.input), 0.75 * 0.4 + 0.25 * -1.0, 1e-6);  // 0.05
  EXPECT_NEAR(value(b.target), -1.4, 1e-6);                      // ε − x₀
  EXPECT_NEAR(value(b.net_time), 250.0, 1e-4);
  EXPECT_EQ(b.level.item<int64_t>(), 250);
  EXPECT_NEAR(value(b.weight), 1.0, 0.0);
  auto tt = torch::tensor({{0.25f}});
  EXPECT_NEAR(value(flow_x0(b.input, tt, b.target)), 0.4, 1e-6);
  EXPECT_NEAR(value(flow_eps(b.input, tt, b.target)), -1.0, 1e-6);
  d.loss_weighting = LossWeighting::MinSnr;
  EXPECT_NEAR(value(flow_training_batch(d, x0, eps, t).weight), 0.3125, 1e-6);
}

TEST(FlowMatching, TimeGridShiftAndLogitNormalDraws) {
  EXPECT_EQ(flow_time_grid(4, 1.0), (std::vector<double>{1.0, 0.75, 0.5, 0.25, 0.0}));
  const auto shifted = flow_time_grid(2, 3.0);  // t = 0.5 -> 1.5 / 2
  EXPECT_DOUBLE_EQ(shifted[1], 0.75);
  EXPECT_DOUBLE_EQ(flow_shift_time(0.2, 3.0), 0.6 / 1.4);
  DiffusionConfig d;
  d.flow_t_sampling = FlowTimeSampling::LogitNormal;
  d.flow_logit_mean = 0.5;
  d.flow_logit_std = 0.8;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  auto t = flow_times(d, 100000, gen);
  auto logit = (t / (1 - t)).log();
  EXPECT_NEAR(value(logit.mean()), 0.5, 0.01);
  EXPECT_NEAR(value(logit.std()), 0.8, 0.01);
  d.flow_t_sampling = FlowTimeSampling::Uniform;
  auto u = flow_times(d, 100000, gen);
  EXPECT_NEAR(value(u.mean()), 0.5, 0.01);
  EXPECT_GE(value(u.min()), 0.0);
  EXPECT_LT(value(u.max()), 1.0);
}

TEST(FlowMatching, EulerAndHeunWithTheExactVelocityGiveTheData) {
  struct Case {
    SamplerKind kind;
    int steps;
    double shift, allowance;
  };
  // Shift 3 spends the steps at high noise, so the narrow dimension, decided near t = 0,
  // needs more of them.
  for (const Case& c : {Case{SamplerKind::Euler, 200, 1.0, 0.01}, Case{SamplerKind::Euler, 200, 3.0, 0.03},
                        Case{SamplerKind::Heun, 50, 1.0, 0.01}, Case{SamplerKind::Heun, 50, 3.0, 0.03}}) {
    auto net = std::make_shared<GaussianFlowNet>();
    auto req = gaussian_request(c.kind, c.steps);
    req.config.flow_shift = c.shift;
    const auto r = run_sampling(gaussian_model(net, Objective::FlowMatching), req, torch::kCPU);
    const std::string what = std::string(to_string(c.kind)) + " " + std::to_string(c.steps) +
                             " steps, shift " + std::to_string(c.shift);
    expect_gaussian(r.images, c.allowance, what);
    EXPECT_EQ(net->calls, c.kind == SamplerKind::Heun ? 2 * c.steps - 1 : c.steps) << what;
  }
  // Heun is second order: with 18 steps it is much closer than Euler to the converged
  // (800-step) answer from the same noise.
  auto stds = [](SamplerKind kind, int steps) {
    return run_sampling(gaussian_model(std::make_shared<GaussianFlowNet>(), Objective::FlowMatching),
                        gaussian_request(kind, steps), torch::kCPU)
        .images.std(0);
  };
  const auto converged = stds(SamplerKind::Heun, 800);
  const double heun_gap = value((stds(SamplerKind::Heun, 18) - converged).abs().max());
  const double euler_gap = value((stds(SamplerKind::Euler, 18) - converged).abs().max());
  EXPECT_LT(heun_gap, 0.2 * euler_gap) << heun_gap << " vs " << euler_gap;
  // A wrong field fails the same check: the velocity with its sign flipped.
  class Flipped : public GaussianFlowNet {
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t,
                          const torch::Tensor& y) override {
      return -GaussianFlowNet::forward(x, t, y);
    }
  };
  const auto bad = run_sampling(gaussian_model(std::make_shared<Flipped>(), Objective::FlowMatching),
                                gaussian_request(SamplerKind::Euler, 50), torch::kCPU);
  EXPECT_GT(value((bad.images.mean(0) - torch::tensor(kMu)).abs().max()), 0.5);
}

TEST(FlowMatching, TrajectoryRecordsXtX0AndTheVelocity) {
  auto net = std::make_shared<GaussianFlowNet>();
  auto req = gaussian_request(SamplerKind::Euler, 4, 8);
  req.record_trajectory = true;
  std::vector<int> timesteps;
  const auto r = run_sampling(gaussian_model(net, Objective::FlowMatching), req, torch::kCPU,
                              [&](const StepInfo& s) {
                                timesteps.push_back(s.timestep);
                                return true;
                              });
  const auto& tr = r.trajectory;
  EXPECT_TRUE(tr.velocity);
  ASSERT_EQ(tr.x_t.size(), 4u);
  EXPECT_EQ(tr.timesteps, (std::vector<int>{1000, 750, 500, 250}));
  EXPECT_EQ(timesteps, tr.timesteps);
  // The first x_t is the starting noise (t = 1), and every frame has x̂₀ = x_t − t v̂.
  NoiseStreams noise(req.config.seed, 0, 8);
  auto x1 = noise.draw({4});
  EXPECT_TRUE(torch::allclose(tr.x_t[0].to(torch::kFloat32), x1, 1e-2, 1e-2));
  const double ts[] = {1.0, 0.75, 0.5, 0.25};
  for (size_t i = 0; i < 4; ++i) {
    auto xt = tr.x_t[i].to(torch::kFloat32), v = tr.eps[i].to(torch::kFloat32);
    EXPECT_TRUE(torch::allclose(tr.x0[i].to(torch::kFloat32), xt - ts[i] * v, 2e-2, 2e-2)) << i;
  }
}

TEST(ObjectiveSamplers, ClassConditioningAndGuidanceWorkForEveryObjective) {
  // Class 1 of the conditional nets has mean μ + 4. Guidance w = 1 is the conditional model:
  // the samples have that mean. w = 2 extrapolates away from the unconditional mean μ
  // (ε_u + 2 (ε_c − ε_u)): the mean moves past μ + 4.
  ObjectiveParams p;
  p.objective = Objective::Edm;
  for (Objective objective : {Objective::Edm, Objective::FlowMatching}) {
    for (double w : {1.0, 2.0}) {
      DenoiserNet net = objective == Objective::Edm
                            ? DenoiserNet(std::make_shared<GaussianEdmNet>(p, 2))
                            : DenoiserNet(std::make_shared<GaussianFlowNet>(2));
      auto req = gaussian_request(SamplerKind::Heun, 20, 2000);
      req.config.guidance = w;
      req.config.class_label = 1;
      const auto r = run_sampling(gaussian_model(net, objective), req, torch::kCPU);
      ASSERT_TRUE(r.images.defined());
      const auto mean = r.images.mean(0);
      const std::string what = std::string(to_string(objective)) + " w " + std::to_string(w);
      for (size_t d = 0; d < kMu.size(); ++d) {
        const double target = kMu[d] + 2 * kClassShift;
        if (w == 1.0)
          EXPECT_NEAR(mean[d].item<double>(), target, 0.05 + 0.05 * kStd[d]) << what << " dim " << d;
        else
          EXPECT_GT(mean[d].item<double>(), target + 1.0) << what << " dim " << d;
      }
    }
  }
}

// ---- Registry ------------------------------------------------------------------------------

TEST(ObjectiveSamplers, TableSaysWhichApplyAndOthersAreClearErrors) {
  EXPECT_EQ(sampler_names(Objective::Ddpm), "ddpm, ddim, euler, euler_ancestral, heun, dpmpp_2m");
  EXPECT_EQ(sampler_names(Objective::Edm), "euler, euler_ancestral, heun, dpmpp_2m");
  EXPECT_EQ(sampler_names(Objective::FlowMatching), "euler, heun");
  for (int o = 0; o < static_cast<int>(Objective::Count); ++o)
    EXPECT_TRUE(sampler_applies(default_sampler(static_cast<Objective>(o)), static_cast<Objective>(o)));
  try {
    run_sampling(gaussian_model(std::make_shared<GaussianFlowNet>(), Objective::FlowMatching),
                 gaussian_request(SamplerKind::Ddim, 10, 4), torch::kCPU);
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("sample.sampler = ddim"), std::string::npos) << msg;
    EXPECT_NE(msg.find("flow_matching"), std::string::npos) << msg;
    EXPECT_NE(msg.find("euler, heun"), std::string::npos) << msg;
  }
  EXPECT_THROW(run_sampling(gaussian_model(std::make_shared<GaussianFlowNet>(),
                                           Objective::FlowMatching),
                            gaussian_request(SamplerKind::DpmppTwoM, 10, 4), torch::kCPU),
               std::invalid_argument);
}

// ---- Config ----------------------------------------------------------------------------------

TEST(ObjectiveConfig, KeysRoundTripThroughYaml) {
  Config c;
  c.diffusion.objective = Objective::FlowMatching;
  c.diffusion.loss_weighting = LossWeighting::MinSnr;
  c.diffusion.min_snr_gamma = 3.5;
  c.diffusion.edm_sigma_data = 0.25;
  c.diffusion.edm_p_mean = -1.0;
  c.diffusion.edm_p_std = 1.4;
  c.diffusion.edm_sigma_min = 0.01;
  c.diffusion.edm_sigma_max = 40.0;
  c.diffusion.flow_t_sampling = FlowTimeSampling::LogitNormal;
  c.diffusion.flow_logit_mean = 0.3;
  c.diffusion.flow_logit_std = 0.9;
  c.sample.sampler = SamplerKind::Heun;
  c.sample.s_churn = 20.0;
  c.sample.flow_shift = 3.0;
  const Config r = config_from_yaml(config_to_yaml(c), "round trip");
  EXPECT_EQ(r.diffusion.objective, Objective::FlowMatching);
  EXPECT_EQ(r.diffusion.loss_weighting, LossWeighting::MinSnr);
  EXPECT_EQ(r.diffusion.min_snr_gamma, 3.5);
  EXPECT_EQ(r.diffusion.edm_sigma_data, 0.25);
  EXPECT_EQ(r.diffusion.edm_p_mean, -1.0);
  EXPECT_EQ(r.diffusion.edm_p_std, 1.4);
  EXPECT_EQ(r.diffusion.edm_sigma_min, 0.01);
  EXPECT_EQ(r.diffusion.edm_sigma_max, 40.0);
  EXPECT_EQ(r.diffusion.flow_t_sampling, FlowTimeSampling::LogitNormal);
  EXPECT_EQ(r.diffusion.flow_logit_mean, 0.3);
  EXPECT_EQ(r.diffusion.flow_logit_std, 0.9);
  EXPECT_EQ(r.sample.s_churn, 20.0);
  EXPECT_EQ(r.sample.flow_shift, 3.0);
  // Defaults: ddpm, uniform, γ = 5 and the paper's EDM values.
  const Config d = config_from_yaml("", "empty");
  EXPECT_EQ(d.diffusion.objective, Objective::Ddpm);
  EXPECT_EQ(d.diffusion.loss_weighting, LossWeighting::Uniform);
  EXPECT_EQ(d.diffusion.min_snr_gamma, 5.0);
  EXPECT_EQ(d.diffusion.edm_sigma_data, 0.5);
  EXPECT_EQ(d.diffusion.edm_p_mean, -1.2);
  EXPECT_EQ(d.diffusion.edm_sigma_max, 80.0);
  // --set as the CLI does.
  const Config o = apply_overrides(Config{}, {"diffusion.objective=edm", "sample.sampler=heun"});
  EXPECT_EQ(o.diffusion.objective, Objective::Edm);
}

TEST(ObjectiveConfig, BadValuesNameTheirKey) {
  struct Bad {
    const char* yaml;
    const char* key;
  };
  for (const Bad& b : {
           Bad{"diffusion: {objective: edm, prediction: v}", "diffusion.prediction"},
           Bad{"diffusion: {objective: edm, loss_weighting: min_snr}", "diffusion.loss_weighting"},
           Bad{"diffusion: {objective: flow_matching, learn_sigma: true, loss: hybrid}",
               "diffusion.learn_sigma"},
           Bad{"diffusion: {min_snr_gamma: 0.0}", "diffusion.min_snr_gamma"},
           Bad{"diffusion: {edm_sigma_min: 1.0, edm_sigma_max: 0.5}", "diffusion.edm_sigma_max"},
           Bad{"diffusion: {edm_sigma_data: -1.0}", "diffusion.edm_sigma_data"},
           Bad{"diffusion: {flow_logit_std: 0.0}", "diffusion.flow_logit_std"},
           Bad{"diffusion: {objective: flow}", "diffusion.objective"},
           Bad{"diffusion: {objective: flow_matching}\ntrain: {timestep_sampler: loss_aware}",
               "train.timestep_sampler"},
           Bad{"sample: {s_churn: -1.0}", "sample.s_churn"},
           Bad{"sample: {flow_shift: 0.0}", "sample.flow_shift"},
       }) {
    try {
      config_from_yaml(b.yaml, "bad.yaml");
      ADD_FAILURE() << "no error for " << b.yaml;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(b.key), std::string::npos) << e.what();
    }
  }
}

// ---- Training ----------------------------------------------------------------------------------

namespace {

Config toy_config(Objective objective) {
  Config c;
  c.data.kind = DatasetKind::Toy2d;
  c.data.toy = Toy2dKind::EightGaussians;
  c.data.toy_points = 2000;
  c.data.toy_noise = 0.02;
  c.model.kind = ModelKind::Mlp;
  c.model.class_conditional = false;
  c.model.mlp_hidden = 64;
  c.model.mlp_layers = 3;
  c.model.dropout = 0.0;
  c.diffusion.objective = objective;
  c.diffusion.timesteps = 100;
  c.train.batch_size = 256;
  c.train.lr = 3e-3;
  c.train.warmup_steps = 5;
  c.train.ema_start = 1000;
  c.sample.steps = 10;
  c.sample.n = 64;
  return c;
}

std::shared_ptr<DatasetSplits> toy_data(const Config& c) {
  return std::make_shared<DatasetSplits>(load_dataset(c.data));
}

}  // namespace

TEST(ObjectiveTraining, EveryObjectiveHasAFiniteFallingLossAndSamples) {
  struct Case {
    Objective objective;
    LossWeighting weighting;
  };
  for (const Case& c : {Case{Objective::Ddpm, LossWeighting::Uniform},
                        Case{Objective::Ddpm, LossWeighting::MinSnr},
                        Case{Objective::Edm, LossWeighting::Uniform},
                        Case{Objective::FlowMatching, LossWeighting::Uniform},
                        Case{Objective::FlowMatching, LossWeighting::MinSnr}}) {
    Config config = toy_config(c.objective);
    config.diffusion.loss_weighting = c.weighting;
    const std::string what = std::string(to_string(c.objective)) + " " +
                             std::string(to_string(c.weighting));
    Trainer trainer(config, toy_data(config), torch::kCPU);
    // The preset's ddim does not apply to edm / flow matching: the trainer picks the default.
    EXPECT_TRUE(sampler_applies(trainer.config().sample.sampler, c.objective)) << what;
    double first = 0, last = 0;
    const int steps = 60;
    for (int i = 0; i < steps; ++i) {
      const auto r = trainer.train_step();
      ASSERT_TRUE(std::isfinite(r.loss)) << what << " step " << i;
      if (i < 10) first += r.loss / 10;
      if (i >= steps - 10) last += r.loss / 10;
    }
    EXPECT_LT(last, 0.9 * first) << what << ": " << first << " -> " << last;
    EXPECT_TRUE(std::isfinite(trainer.evaluate(2))) << what;
    const auto by_t = trainer.loss_by_timestep(4);
    for (double v : by_t) EXPECT_TRUE(std::isfinite(v)) << what;  // every quarter of t seen
    const auto points = trainer.sample(trainer.config().sample).images;
    ASSERT_TRUE(points.defined()) << what;
    EXPECT_EQ(points.sizes(), (std::vector<int64_t>{64, 2})) << what;
    EXPECT_TRUE(torch::isfinite(points).all().item<bool>()) << what;
  }
}

TEST(ObjectiveTraining, MinSnrWeightsChangeTheLossOnlyWhenTheyBite) {
  // ε-prediction: with γ above every SNR of the schedule the weights are all 1, so the loss
  // equals L_simple; with a small γ every weight is < 1.
  for (double gamma : {1e9, 1e-3}) {
    Config config = toy_config(Objective::Ddpm);
    config.diffusion.loss_weighting = LossWeighting::MinSnr;
    config.diffusion.min_snr_gamma = gamma;
    Trainer trainer(config, toy_data(config), torch::kCPU);
    const auto r = trainer.train_step();
    if (gamma > 1.0)
      EXPECT_NEAR(r.loss, r.loss_simple, 1e-6 * r.loss_simple);
    else
      EXPECT_LT(r.loss, 0.5 * r.loss_simple);
    EXPECT_EQ(trainer.loss_weight_by_timestep(5).size(), 5u);
  }
}

TEST(ObjectiveTraining, CheckpointKeepsTheObjectiveAndResumesExactly) {
  const fs::path dir = fs::path(DIFFLAB_TEST_TMP) / "objectives_checkpoint";
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (Objective objective : {Objective::Edm, Objective::FlowMatching}) {
    Config config = toy_config(objective);
    config.diffusion.flow_t_sampling = FlowTimeSampling::LogitNormal;
    const std::string name = std::string(to_string(objective));
    const std::string path = (dir / (name + ".pt")).string();
    auto data = toy_data(config);
    Trainer whole(config, data, torch::kCPU);
    double expected = 0;
    for (int i = 0; i < 4; ++i) expected = whole.train_step().loss;

    Trainer first(config, data, torch::kCPU);
    first.train_step();
    first.train_step();
    first.save_checkpoint(path);
    Trainer resumed(config, data, torch::kCPU);
    resumed.load_checkpoint(path);
    resumed.train_step();
    EXPECT_EQ(resumed.train_step().loss, expected) << name;

    CheckpointInfo info;
    const auto model = load_sampling_model(path, true, torch::kCPU, &info);
    EXPECT_EQ(info.config.diffusion.objective, objective) << name;
    EXPECT_EQ(info.config.diffusion.flow_t_sampling, FlowTimeSampling::LogitNormal) << name;
    EXPECT_EQ(model.objective.objective, objective) << name;
    EXPECT_TRUE(sampler_applies(info.config.sample.sampler, objective)) << name;
    SampleRequest req;
    req.config = info.config.sample;
    req.config.n = 16;
    const auto r = run_sampling(model, req, torch::kCPU);
    EXPECT_TRUE(torch::isfinite(r.images).all().item<bool>()) << name;

    // A ddpm run refuses it, naming the objective.
    Trainer ddpm(toy_config(Objective::Ddpm), data, torch::kCPU);
    try {
      ddpm.load_checkpoint(path);
      ADD_FAILURE() << "no error";
    } catch (const CheckpointError& e) {
      EXPECT_NE(std::string(e.what()).find("diffusion.objective = " + name), std::string::npos)
          << e.what();
    }
  }
}


TEST(ObjectiveTraining, RunPreviewsWorkForEveryObjective) {
  // A training run's quick previews use DDIM for ddpm, which does not apply to the others.
  for (Objective objective : {Objective::Ddpm, Objective::Edm, Objective::FlowMatching}) {
    const std::string name(to_string(objective));
    const fs::path dir = fs::path(DIFFLAB_TEST_TMP) / ("objectives_preview_" + name);
    fs::remove_all(dir);
    Config config = toy_config(objective);
    config.train.sample_every = 3;
    config.train.checkpoint_every = 0;
    config.train.autosave_minutes = 0;
    TrainingRun run(std::make_unique<Trainer>(config, toy_data(config), torch::kCPU),
                    RunOptions{(dir / "run").string()});
    int previews = 0;
    while (run.trainer().step() < 3) {
      const RunStepReport r = run.step();
      if (!r.previewed) continue;
      ++previews;
      ASSERT_TRUE(r.preview_images.defined()) << name;
      EXPECT_EQ(r.preview_images.size(0), kPreviewPoints) << name;
      EXPECT_TRUE(torch::isfinite(r.preview_images).all().item<bool>()) << name;
    }
    EXPECT_EQ(previews, 1) << name;
  }
}

// ---- The field the 2-D view draws (core/sampling/field.h) ---------------------------------

// With the exact networks of N(μ, s²) data the field is known in closed form: EDM's score of
// the recorded variance-preserving x (x_ve = a x, a = √(1 + σ²)): a · −(a x − μ) / (s² + σ²);
// flow matching's −E[v | x_t] (the GaussianFlowNet formula above).
TEST(Field, IsTheScoreOrVelocityOfGaussianDataInClosedForm) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const auto x = torch::randn({6, static_cast<int64_t>(kMu.size())}, gen, torch::kFloat32);
  const auto mu = torch::tensor(kMu, torch::kFloat64);
  const auto s2 = torch::tensor(kStd, torch::kFloat64).pow(2);
  const auto xd = x.to(torch::kFloat64);
  {
    ObjectiveParams p;
    p.objective = Objective::Edm;
    const SamplingModel model = gaussian_model(std::make_shared<GaussianEdmNet>(p), Objective::Edm);
    for (double sigma : {0.3, 1.3, 6.0}) {
      const int timestep = static_cast<int>(std::lround(edm_network_time(sigma, model.objective)));
      const double s = edm_sigma_of_network_time(timestep, model.objective);
      const double a = std::sqrt(1.0 + s * s);
      const auto expected = -a * (a * xd - mu) / (s2 + s * s);
      const auto field = sampling_field(model, x, timestep, -1, 1.0, torch::kCPU).to(torch::kFloat64);
      EXPECT_TRUE(torch::allclose(field, expected, 1e-4, 1e-4)) << "sigma " << s << "\n" << field << expected;
    }
  }
  {
    const SamplingModel model =
        gaussian_model(std::make_shared<GaussianFlowNet>(), Objective::FlowMatching);
    for (int timestep : {100, 400, 900}) {
      const double t = timestep / static_cast<double>(kT);
      const auto V = (1.0 - t) * (1.0 - t) * s2 + t * t;
      const auto expected = -((t - (1.0 - t) * s2) * (xd - (1.0 - t) * mu) / V - mu);
      const auto field = sampling_field(model, x, timestep, -1, 1.0, torch::kCPU).to(torch::kFloat64);
      EXPECT_TRUE(torch::allclose(field, expected, 1e-4, 1e-4)) << "t " << t;
    }
  }
  // Image models have no field.
  SamplingModel images = gaussian_model(std::make_shared<GaussianFlowNet>(), Objective::FlowMatching);
  images.shape = {1, 4, 4};
  EXPECT_THROW(sampling_field(images, x, 100, -1, 1.0, torch::kCPU), std::invalid_argument);
}

// Samplers share one shape: a Denoiser (network + parameterisation + guidance), the
// starting noise, a seeded generator, and a per-step callback that sees x_t, x̂₀ and ε̂
// (for progress, previews and trajectory recording) and returns false to cancel.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/Generator.h>

#include <functional>
#include <memory>
#include <vector>

#include "core/config/config.h"
#include "core/diffusion/gaussian_diffusion.h"
#include "core/model/controlnet.h"
#include "core/model/denoiser_net.h"
#include "core/schedule/noise_schedule.h"

namespace difflab {

// ε̂, x̂₀ and, from a net with a learned variance, log Σ_θ (undefined otherwise).
struct DenoiserOutput {
  at::Tensor eps, x0, log_variance;
};

// ∇ₓ log p(y | x_t) of a noisy classifier, for x_t (B, ...), timesteps on the model's
// scale (B, float) and labels y (B). core/eval/noisy_classifier.h makes one from a file.
using ClassifierGradient = std::function<at::Tensor(
    const at::Tensor& xt, const at::Tensor& model_t, const at::Tensor& y)>;

// Classifier guidance (Dhariwal & Nichol 2021) with scale s.
struct ClassifierGuidance {
  ClassifierGradient gradient;  // empty = off
  double scale = 0.0;           // s
  int num_classes = 0;          // of the classifier (labels for an unconditional model)
  bool enabled() const { return gradient && scale != 0.0; }
};

// Wraps the network: feeds it original-scale timesteps and applies classifier-free
// guidance, ε = ε_u + w (ε_c − ε_u), as one batched forward over 2B inputs, and
// classifier guidance in its DDIM form (Dhariwal & Nichol 2021, Alg. 2),
// ε̂' = ε̂ − √(1 − ᾱ_t) s ∇ₓ log p(y | x_t), so every sampler gets it. A net with a
// learned variance (2·C channels) is guided on its prediction half only and keeps the
// conditional variance half, as improved-diffusion does.
class Denoiser {
 public:
  // `model_schedule` is the network's full schedule when `diffusion` is respaced (it must
  // outlive the Denoiser); null means diffusion's own schedule.
  Denoiser(DenoiserNet net, const GaussianDiffusion& diffusion, at::Tensor labels,
           double guidance, bool clip_denoised, const NoiseSchedule* model_schedule = nullptr,
           ClassifierGuidance classifier = {});
  // ε̂ and x̂₀ for x_t at schedule rows t (int64, (B)), with every guidance applied.
  std::pair<at::Tensor, at::Tensor> operator()(const at::Tensor& xt, const at::Tensor& t) const;
  // The same plus the learned log variance (Nichol & Dhariwal 2021, eq. 15) when the net
  // has one. `classifier_eps` = false leaves the classifier's ε shift out, for samplers
  // that apply classifier guidance to their mean instead (DDPM, Alg. 1).
  DenoiserOutput predict(const at::Tensor& xt, const at::Tensor& t, bool classifier_eps = true) const;
  // ε̂ and x̂₀ for x_t at one (possibly fractional) model timestep whose ᾱ is `alpha_bar`:
  // for samplers whose noise levels are not schedule rows (Karras spacing).
  std::pair<at::Tensor, at::Tensor> at_timestep(const at::Tensor& xt, double model_t,
                                                double alpha_bar) const;
  bool learns_variance() const;
  bool classifier_enabled() const { return m_classifier.enabled() && m_labels.defined(); }
  // s ∇ₓ log p(y | x_t) at schedule rows t; undefined when classifier guidance is off.
  at::Tensor classifier_gradient(const at::Tensor& xt, const at::Tensor& t) const;
  const GaussianDiffusion& diffusion() const { return m_diffusion; }
  const NoiseSchedule& model_schedule() const {
    return m_model_schedule ? *m_model_schedule : m_diffusion.schedule();
  }

 private:
  // The network output for x_t at model timesteps (B), guided.
  ModelOutput forward(const at::Tensor& xt, const at::Tensor& model_t) const;

  DenoiserNet m_net;
  const GaussianDiffusion& m_diffusion;
  const NoiseSchedule* m_model_schedule;
  at::Tensor m_labels;  // undefined = unconditional
  double m_guidance;
  bool m_clip;
  ClassifierGuidance m_classifier;
};

struct StepInfo {
  int index = 0;      // 0-based step number in this run
  int total = 0;      // number of steps
  int timestep = 0;   // model timestep of this step (original scale)
  const at::Tensor& x_t;  // the input of this step
  const at::Tensor& x0;   // predicted x₀
  const at::Tensor& eps;  // predicted ε
};
// Return false to cancel; the sampler then stops before the next network call.
using StepCallback = std::function<bool(const StepInfo&)>;

class Sampler {
 public:
  virtual ~Sampler() = default;
  // Runs the reverse process from x_T over every row of denoiser.diffusion()'s schedule.
  // Returns x_0, or an undefined tensor if the callback cancelled.
  virtual at::Tensor sample(const Denoiser& denoiser, at::Tensor x, at::Generator& gen,
                            const StepCallback& callback) const = 0;
};

// The sampler config.sampler names, with its settings (see sampler_registry.h).
std::unique_ptr<Sampler> make_sampler(const SampleConfig& config);

// DDIM inversion (Song et al. 2021, §4.3; improved-diffusion's ddim_reverse_sample): the
// deterministic η = 0 update run backwards, x₀ → x_T, over denoiser.diffusion()'s rows, so
// that DDIM η = 0 sampling from the result gives x₀ back. Each step from row i−1 to row i
// uses ε̂ at the current point; `refine` fixed-point iterations then re-evaluate ε̂ at the
// new point, which turns the step into the exact inverse of the decoding step as they
// converge (one more network call per iteration).
at::Tensor ddim_encode(const Denoiser& denoiser, at::Tensor x0, int refine = 0);

// A ControlNet steering the run (Zhang et al. 2023): hints (1 or N, kHintChannels, H, W)
// and the conditioning scale (0 = the base model alone).
struct ControlInput {
  ControlNet net;
  at::Tensor hint;
  double scale = 1.0;
  bool enabled() const { return net && hint.defined(); }
};

// A trained network ready to sample from, with what every run needs to know about it.
// Made by sampling_model() below, by load_sampling_model() (core/train/checkpoint.h), or
// from a Trainer or a LoadedControlNet (sampling_model() in their headers).
struct SamplingModel {
  DenoiserNet net;         // ε, x₀ or v (and, when it learns one, the variance; see the net)
  NoiseSchedule schedule;  // the full schedule it was trained on; requests respace it
  Prediction prediction = Prediction::Eps;
  std::vector<int64_t> shape;  // per image: {C, H, W}, or {2} for 2-D points
  // Classes the net takes; 0 = unconditional (a conditional net then gets its null class).
  int num_classes = 0;
};
// `net` trained with `diffusion` on data of `shape`.
SamplingModel sampling_model(DenoiserNet net, const DiffusionConfig& diffusion,
                             const DataShape& shape);

// What one run asks of a SamplingModel.
struct SampleRequest {
  SampleConfig config;  // its classifier fields are read by the caller (see `classifier`)
  at::Tensor labels;    // (n) int64 class of each image; undefined = config.class_label
  bool record_trajectory = false;
  // Classifier guidance, ready to use: callers load config.classifier themselves
  // (load_classifier_guidance in core/eval/noisy_classifier.h); off when empty, which is
  // an error while config asks for a classifier.
  ClassifierGuidance classifier;
  ControlInput control;  // off unless set
};

// Compact CPU copies of every step: x_t, x̂₀ and ε̂ for all images.
struct Trajectory {
  std::vector<int> timesteps;
  std::vector<at::Tensor> x_t, x0, eps;  // each (N, ...) float16 on the CPU
};

struct SampleResult {
  at::Tensor images;   // (N, ...) float32 CPU in [-1, 1]-ish; undefined if cancelled
  at::Tensor labels;   // (N) int64 CPU, the requested classes (−1 for unconditional)
  Trajectory trajectory;
  bool cancelled = false;
};

// Builds the respaced diffusion, the labels (class_label, or cycling 0..K−1 over the net's
// classes, or the classifier's for an unconditional net), seeded noise, and runs the
// configured sampler under inference mode / eval on `device`.
SampleResult run_sampling(const SamplingModel& model, const SampleRequest& request,
                          c10::Device device, const StepCallback& callback = {});

}  // namespace difflab

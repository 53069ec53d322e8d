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
#include "core/diffusion/objectives.h"
#include "core/model/controlnet.h"
#include "core/model/denoiser_net.h"
#include "core/model/precision.h"
#include "core/schedule/noise_schedule.h"

namespace difflab {

// ε̂, x̂₀ and, from a net with a learned variance, log Σ_θ (undefined otherwise).
struct DenoiserOutput {
  at::Tensor eps, x0, log_variance;
};
// A flow-matching model's answer at (x_t, t): v̂ and the x̂₀, ε̂ it implies.
struct FlowOutput {
  at::Tensor velocity, x0, eps;
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
  // `row` >= 0 says every image is at that row (the caller knows it on the host): a
  // guidance interval then needs no read of t from the device (a wait for it on CUDA).
  std::pair<at::Tensor, at::Tensor> operator()(const at::Tensor& xt, const at::Tensor& t,
                                               int row = -1) const;
  // The same plus the learned log variance (Nichol & Dhariwal 2021, eq. 15) when the net
  // has one. `classifier_eps` = false leaves the classifier's ε shift out, for samplers
  // that apply classifier guidance to their mean instead (DDPM, Alg. 1).
  DenoiserOutput predict(const at::Tensor& xt, const at::Tensor& t, bool classifier_eps = true,
                         int row = -1) const;
  // ε̂ and x̂₀ for x_t at one (possibly fractional) model timestep whose ᾱ is `alpha_bar`:
  // for samplers whose noise levels are not schedule rows (Karras spacing).
  std::pair<at::Tensor, at::Tensor> at_timestep(const at::Tensor& xt, double model_t,
                                                double alpha_bar) const;
  // The objective the net was trained with (ddpm unless set): edm and flow_matching nets
  // are asked through at_sigma and at_flow_time, never through the DDPM rows above.
  void set_objective(const ObjectiveParams& objective) { m_objective = objective; }
  const ObjectiveParams& objective() const { return m_objective; }
  // EDM: {ε̂, x̂₀} for x = x₀ + σ ε (variance-exploding scale), x̂₀ = D(x; σ) = c_skip x +
  // c_out F(c_in x; t_net(σ)) (Karras et al. 2022, eq. 7; objectives.h), ε̂ = (x − x̂₀)/σ.
  std::pair<at::Tensor, at::Tensor> at_sigma(const at::Tensor& x, double sigma) const;
  // Flow matching: v̂ at x_t, t ∈ (0, 1] (network time T t), x̂₀ = x_t − t v̂, ε̂ = x_t + (1 − t) v̂.
  // With clip_denoised, x̂₀ is clipped and v̂, ε̂ recomputed from it (v̂ = (x_t − x̂₀)/t).
  FlowOutput at_flow_time(const at::Tensor& xt, double t) const;
  bool learns_variance() const;
  bool classifier_enabled() const { return m_classifier.enabled() && m_labels.defined(); }
  // s ∇ₓ log p(y | x_t) at schedule rows t; undefined when classifier guidance is off.
  at::Tensor classifier_gradient(const at::Tensor& xt, const at::Tensor& t) const;
  const GaussianDiffusion& diffusion() const { return m_diffusion; }
  const NoiseSchedule& model_schedule() const {
    return m_model_schedule ? *m_model_schedule : m_diffusion.schedule();
  }
  // Runs the network under bf16 autocast (core/model/precision.h); its output comes back
  // as float32, so everything after it is fp32 as before.
  void set_bf16(bool on) { m_bf16 = on; }
  // Classifier-free guidance only at noise levels σ in (lo, hi] (Kynkäänniemi et al. 2024,
  // "Applying guidance in a limited interval", arXiv 2404.07724); elsewhere the conditional
  // model alone (w = 1: one forward instead of two). σ is the noise-to-signal ratio, the
  // same measure for every objective: √((1 − ᾱ)/ᾱ) (ddpm), EDM's σ, t/(1 − t) (flow
  // matching). lo = 0 has no lower limit, hi = 0 no upper one: (0, 0) guides everywhere.
  // Classifier guidance is not limited by it.
  void set_guidance_interval(double lo, double hi) {
    m_interval_lo = lo;
    m_interval_hi = hi;
  }
  // The classifier-free guidance scale at noise level σ: w inside the interval, 1 outside.
  double guidance_at(double sigma) const;
  // Autoguidance (Karras et al. 2024, "Guiding a diffusion model with a bad version of
  // itself", arXiv 2406.02507): with a weaker model of the same data and objective (smaller
  // or trained for less), the guidance scale w mixes the two at the same class,
  // D_bad + w (D − D_bad), instead of the conditional and unconditional answers of one
  // model. It moves samples away from what the weaker model gets wrong rather than towards
  // what the class has most in common, so it sharpens without narrowing. Also for
  // unconditional models. The interval applies as to classifier-free guidance; null = off.
  void set_guide(DenoiserNet guide) { m_guide = std::move(guide); }
  bool autoguided() const { return static_cast<bool>(m_guide); }

 private:
  at::Tensor net_forward(const at::Tensor& x, const at::Tensor& t, const at::Tensor& y) const {
    return net_forward(m_net, x, t, y);
  }
  at::Tensor net_forward(const DenoiserNet& net, const at::Tensor& x, const at::Tensor& t,
                         const at::Tensor& y) const;
  // The network output for x_t at model timesteps (B), guided with scale w, or with
  // `w_rows` ((B) float, one scale per image) when defined.
  ModelOutput forward(const at::Tensor& xt, const at::Tensor& model_t, double w,
                      const at::Tensor& w_rows = {}) const;
  bool interval_set() const { return m_interval_lo > 0.0 || m_interval_hi > 0.0; }

  DenoiserNet m_net;
  const GaussianDiffusion& m_diffusion;
  const NoiseSchedule* m_model_schedule;
  at::Tensor m_labels;  // undefined = unconditional
  double m_guidance;
  bool m_clip;
  ClassifierGuidance m_classifier;
  bool m_bf16 = false;
  ObjectiveParams m_objective;
  double m_interval_lo = 0.0, m_interval_hi = 0.0;
  DenoiserNet m_guide;  // autoguidance's weaker model; null = classifier-free guidance
};

struct StepInfo {
  int index = 0;      // 0-based step number in this run
  int total = 0;      // number of steps
  int timestep = 0;   // model timestep of this step (original scale; T t for flow matching)
  const at::Tensor& x_t;  // the input of this step (VP scale for the σ-space samplers)
  const at::Tensor& x0;   // predicted x₀
  const at::Tensor& eps;  // predicted ε; for flow matching the predicted velocity v̂ = ε̂ − x̂₀
};
// Return false to cancel; the sampler then stops before the next network call.
using StepCallback = std::function<bool(const StepInfo&)>;

// The random numbers of a sampling run, one stream per image: image i of a run with seed s
// draws its starting noise x_T and every later step's noise from its own generator, seeded
// by image_seed(s, i). An image therefore depends on (seed, index, label, hint) only — not
// on how many images the run has or how it is cut into chunks. Drawn on the CPU, so a seed
// gives the same images on every device.
class NoiseStreams {
 public:
  // Streams for images first .. first + count − 1 of a run seeded `seed`.
  NoiseStreams(uint64_t seed, int64_t first, int64_t count);
  // (count, row_shape...) float32 on the CPU: the next draw of each stream, in order.
  at::Tensor draw(at::IntArrayRef row_shape);
  // Standard normal noise shaped like `like` (one row per stream), on like's device.
  at::Tensor like(const at::Tensor& like);
  int64_t size() const { return static_cast<int64_t>(m_gens.size()); }
  // The seed of image `index`'s stream: SplitMix64 of (seed, index), so neighbouring
  // seeds and images get unrelated streams.
  static uint64_t image_seed(uint64_t seed, int64_t index);

 private:
  std::vector<at::Generator> m_gens;
};

class Sampler {
 public:
  virtual ~Sampler() = default;
  // Runs the reverse process from x_T over every row of denoiser.diffusion()'s schedule.
  // Returns x_0, or an undefined tensor if the callback cancelled. Stochastic samplers draw
  // their per-step noise from `noise` (one stream per row of x).
  virtual at::Tensor sample(const Denoiser& denoiser, at::Tensor x, NoiseStreams& noise,
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
  ObjectiveParams objective;  // ddpm, edm or flow_matching, with what sampling needs of it
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
  // Autoguidance's weaker model (Denoiser::set_guide): callers load config.guide_model
  // themselves (load_guide_model in core/train/checkpoint.h); null = classifier-free
  // guidance. Not with a ControlNet.
  DenoiserNet guide;
};

// Compact CPU copies of every step: x_t, x̂₀ and ε̂ for all images.
struct Trajectory {
  std::vector<int> timesteps;
  std::vector<at::Tensor> x_t, x0, eps;  // each (N, ...) float16 on the CPU
  // True when `eps` holds the velocity v̂ (flow matching), as StepInfo::eps does.
  bool velocity = false;
};

struct SampleResult {
  at::Tensor images;   // (N, ...) float32 CPU in [-1, 1]-ish; undefined if cancelled
  at::Tensor labels;   // (N) int64 CPU, the requested classes (−1 for unconditional)
  Trajectory trajectory;
  bool cancelled = false;
  PrecisionChoice precision;  // what the run used, and why (auto: what it measured)
};

// Network images per forward when sampling 28x28 images on a CPU without sample.chunk: the
// batch that measured fastest per image on an AMD EPYC, 2 threads (README, "Speed"):
// float32 activations of a larger batch fall out of cache; bf16 ones are half the size.
// Other image sizes scale by pixels; 2-D points are never chunked (they cost nothing).
inline constexpr int kCpuSampleForwardBatchFp32 = 32;
inline constexpr int kCpuSampleForwardBatchBf16 = 128;
// Images a run samples at once: sample.chunk, or with 0 (auto) as many as make the batch
// above per forward in the precision the run uses (half as many images with
// classifier-free guidance, which runs two per image); on a GPU 2048 network images.
// `shape` is one image's: {C, H, W}, or {2} for points.
int64_t sample_chunk_size(const SampleConfig& config, c10::Device device, Precision precision,
                          const std::vector<int64_t>& shape);

// Builds the respaced diffusion, the labels (class_label, or cycling 0..K−1 over the net's
// classes, or the classifier's for an unconditional net), seeded noise, and runs the
// configured sampler under inference mode / eval on `device`, in chunks of
// sample_chunk_size() images, each image with its own noise stream (NoiseStreams).
SampleResult run_sampling(const SamplingModel& model, const SampleRequest& request,
                          c10::Device device, const StepCallback& callback = {});

}  // namespace difflab

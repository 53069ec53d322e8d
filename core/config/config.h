// The one config: YAML file <-> these structs <-> the GUI editors.
//
// Each YAML section maps to one struct with complete defaults. Unknown keys and bad
// values are ConfigErrors whose message names the file, the key and the value.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/config/enums.h"

namespace difflab {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct DataConfig {
  DatasetKind kind = DatasetKind::Mnist;
  // Folder (mnist, fashion_mnist, idx, cifar10, image_folder). Empty = the packaged default:
  // mnist -> <data dir>/mnist, fashion_mnist -> /usr/share/datasets/fashion-mnist.
  std::string path;
  int image_size = 28;       // image_folder: resize + centre-crop to this; others must match
  int channels = 1;          // image_folder: 1 (grey) or 3 (RGB)
  double test_fraction = 0.1;  // image_folder / toy2d: share held out as the test split
  int64_t max_train = 0;     // 0 = all training examples
  Toy2dKind toy = Toy2dKind::SwissRoll;
  int64_t toy_points = 20000;
  double toy_noise = 0.05;
  uint64_t seed = 0;         // for splits of image folders and toy sets
};

struct DiffusionConfig {
  // ddpm (the schedule, prediction, learn_sigma and loss below), edm or flow_matching
  // (their own keys further down; both ignore the DDPM schedule). README, "Objectives".
  Objective objective = Objective::Ddpm;
  ScheduleKind schedule = ScheduleKind::Linear;
  int timesteps = 1000;
  Prediction prediction = Prediction::Eps;
  // The network outputs 2·C channels: the prediction, then v ∈ [−1, 1] (nominally) that
  // sets log Σ = ((v+1)/2) log β_t + (1 − (v+1)/2) log β̃_t (Nichol & Dhariwal 2021, eq. 15).
  bool learn_sigma = false;
  LossKind loss = LossKind::Simple;  // hybrid needs learn_sigma (only the variance learns from L_vlb)
  // λ of L_hybrid = L_simple + λ L_vlb, with L_vlb = L_0 + ... + L_{T−1} in bits/dim (each
  // L_t a mean over dimensions / ln 2). Training draws one t per example and uses
  // L_simple(t) + λ·T·L_t, whose mean over t is L_simple + λ L_vlb; λ = 0.001 is the
  // paper's value and gives exactly improved-diffusion's per-t scaling by T/1000.
  double vlb_weight = 0.001;
  // min_snr: each example's loss weighted by min(SNR, γ) in x₀ terms (Hang et al. 2023),
  // i.e. min(SNR, γ)/SNR for ε, min(SNR, γ) for x₀, min(SNR, γ)/(SNR + 1) for v, and
  // min(SNR, γ) t² for the flow velocity. ddpm and flow_matching only (edm has λ(σ)).
  LossWeighting loss_weighting = LossWeighting::Uniform;
  double min_snr_gamma = 5.0;  // γ; 5 is the paper's choice
  // EDM (Karras et al. 2022, Table 1 and §5): σ_data, training draws ln σ ~ N(P_mean,
  // P_std²), and the σ range the samplers span (ρ of their spacing is sample.karras_rho).
  double edm_sigma_data = 0.5;
  double edm_p_mean = -1.2;
  double edm_p_std = 1.2;
  double edm_sigma_min = 0.002;
  double edm_sigma_max = 80.0;
  // Flow matching: how training draws t (logit_normal: t = sigmoid(u), u ~ N(mean, std²);
  // Esser et al. 2024 found (0, 1) best). The sampling grid's shift is sample.flow_shift.
  FlowTimeSampling flow_t_sampling = FlowTimeSampling::Uniform;
  double flow_logit_mean = 0.0;
  double flow_logit_std = 1.0;
};

struct ModelConfig {
  ModelKind kind = ModelKind::UNet;
  int base_channels = 32;
  std::vector<int> channel_mult = {1, 2, 4};
  int num_res_blocks = 2;
  std::vector<int> attention_resolutions = {7};  // feature-map sizes (e.g. 7 for 28x28 / 4)
  int num_heads = 4;
  double dropout = 0.1;
  Activation activation = Activation::SiLU;
  int norm_groups = 8;
  WeightInit init = WeightInit::Default;
  bool zero_init_last = true;  // zero the last conv of each block and of the output
  bool class_conditional = true;
  int num_classes = 10;        // used when class_conditional; the null class is num_classes
  int mlp_hidden = 128;        // kind = mlp (2-D toy data)
  int mlp_layers = 4;
};

struct TrainConfig {
  int batch_size = 64;
  int64_t steps = 6000;
  double lr = 2e-4;
  double weight_decay = 0.0;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  int64_t warmup_steps = 200;
  // After warm-up: constant, or cosine / linear decay from lr towards lr_min, reached as
  // the run ends (core/train/lr_schedule.h). The decay is laid over `steps`: raising steps to train
  // on raises the rate again.
  LrScheduleKind lr_schedule = LrScheduleKind::Constant;
  double lr_min = 0.0;
  double grad_clip = 1.0;     // 0 = off
  double ema_decay = 0.999;
  int64_t ema_start = 500;    // EMA copies the weights until this step, then averages
  double p_uncond = 0.1;      // label dropout for classifier-free guidance
  int64_t log_every = 50;
  int64_t eval_every = 1000;  // test loss
  int eval_batches = 8;
  int64_t sample_every = 2000;  // sample grid PNG; 0 = off
  int64_t checkpoint_every = 1000;
  // Also checkpoint after this many minutes of training wall time (0 = off): a crash
  // loses at most this much work.
  double autosave_minutes = 5.0;
  uint64_t seed = 0;
  // uniform, or loss_aware: p_t ∝ √(mean of the last 10 losses² at t), after every t has
  // 10; each example's loss is weighted by 1/(T p_t) (Nichol & Dhariwal 2021, §3.3).
  TimestepSamplerKind timestep_sampler = TimestepSamplerKind::Uniform;
  double timestep_uniform_mix = 0.001;  // loss_aware: share of p_t that stays uniform
  std::string out_dir = "runs/mnist";
  int threads = 0;            // 0 = all cores
  // fp32, bf16 (autocast: matrix work in bf16, the rest fp32) or auto (core/model/precision.h).
  // The presets in configs/ say auto; a config without the key trains in fp32.
  Precision precision = Precision::Fp32;
  // Steps whose loss and gradient norm wait on the device before one read-back (0 = auto:
  // 1 on the CPU, where reading is free; 16 on CUDA, where a read each step stalls the
  // queue). Above 1 the NaN check is deferred too: a non-finite step and every step after
  // it are undone on the device and reported at the read, with the weights, optimizer, EMA,
  // generator and batch position of the step before it. Data-parallel runs and the
  // loss-aware timestep sampler read every step.
  int loss_read_every = 0;
};

struct SampleConfig {
  SamplerKind sampler = SamplerKind::Ddim;
  int steps = 50;             // respaced steps; = timesteps for full DDPM
  double eta = 0.0;
  VarianceKind variance = VarianceKind::FixedSmall;
  SigmaSpacing sigmas = SigmaSpacing::Model;  // σ grid of the σ-space samplers (sampler_registry)
  double karras_rho = 7.0;    // ρ of Karras spacing (Karras et al. 2022, eq. 5 and Table 1)
  // S_churn of Karras et al. (2022, Alg. 2) for euler and heun in σ-space (ddpm, edm):
  // each step first raises σ_i to σ̂ = (1 + γ) σ_i, γ = min(S_churn / steps, √2 − 1), with
  // fresh noise. 0 = the deterministic ODE.
  double s_churn = 0.0;
  // Flow matching's time shift s (Esser et al. 2024, "resolution-dependent shifting"): the
  // grid's t ↦ s t / (1 + (s − 1) t); s > 1 spends more steps at high noise. 1 = uniform.
  double flow_shift = 1.0;
  double guidance = 3.0;      // classifier-free guidance scale w: eps_u + w (eps_c - eps_u)
  // Guidance only at noise levels σ in (min, max] (Kynkäänniemi et al. 2024); the
  // conditional model alone elsewhere. σ is the noise-to-signal ratio: √((1 − ᾱ)/ᾱ) for
  // ddpm, EDM's σ, t/(1 − t) for flow matching. 0 = no limit on that side.
  double guidance_sigma_min = 0.0;
  double guidance_sigma_max = 0.0;
  int n = 64;
  int class_label = -1;       // -1 = cycle through the classes
  uint64_t seed = 0;
  bool clip_denoised = true;
  bool use_ema = true;
  // Classifier guidance (Dhariwal & Nichol 2021): a checkpoint of `difflab-cli
  // train-classifier` and its scale s; "" or 0 = off.
  std::string classifier;
  double classifier_scale = 0.0;
  // Autoguidance (Karras et al. 2024, arXiv 2406.02507): a checkpoint (or run folder) of a
  // weaker model of the same data, objective and classes — smaller, or trained for less.
  // With one, `guidance` mixes the two models at the same class, D_weak + w (D − D_weak),
  // in place of classifier-free guidance's unconditional answer. "" = off.
  std::string guide_model;
  // Images sampled at once (0 = auto: sample_chunk_size in core/sampling/sampler.h). A seed
  // gives the same images whatever the chunk size.
  int chunk = 0;
  Precision precision = Precision::Fp32;  // as train.precision, for sampling
};

// ControlNet training and use (Zhang et al. 2023): a trainable copy of a trained base
// model's encoder steered by a hint image; the base stays frozen.
struct ControlNetConfig {
  std::string base_checkpoint;  // the trained base model (a `difflab-cli train` checkpoint)
  // What training hints are: canny, scribble, mixed (canny or scribble), hough, mask or
  // distance (core/config/enums.h).
  HintKind hint = HintKind::Mixed;
  double canny_low = 100.0;     // hysteresis thresholds on the 0-255 scale, as OpenCV
  double canny_high = 200.0;    // (canny, mixed and hough hints)
  // Brightness in [0, 1] above which a pixel belongs to the object, for mask and distance
  // hints: low enough that Fashion-MNIST's dark garments keep their whole silhouette.
  double mask_threshold = 0.2;
  int batch_size = 32;          // with lr 1e-3: the settings of the measured run (README)
  int64_t steps = 2000;
  double lr = 1e-3;             // AdamW, after a linear warm-up
  int64_t warmup_steps = 50;
  LrScheduleKind lr_schedule = LrScheduleKind::Constant;  // as train.lr_schedule
  double lr_min = 0.0;
  double grad_clip = 1.0;       // 0 = off
  double p_uncond = 0.1;        // label dropout, so CFG still works with a hint
  double scale = 1.0;           // conditioning scale at inference (0 = the base model alone)
  int64_t checkpoint_every = 500;
  uint64_t seed = 0;
  std::string out_dir = "runs/mnist_controlnet";
  // Steps between reads of the loss and gradient norm (and the NaN check), as
  // train.loss_read_every: 0 = auto (1 on the CPU, 16 on CUDA).
  int loss_read_every = 0;
};

struct Config {
  DataConfig data;
  DiffusionConfig diffusion;
  ModelConfig model;
  TrainConfig train;
  SampleConfig sample;
  ControlNetConfig controlnet;
};

// Parse YAML text. `source` names the file in error messages.
Config config_from_yaml(const std::string& text, const std::string& source);
Config load_config(const std::string& path);
std::string config_to_yaml(const Config& config);
// Writes atomically (temp file + rename).
void save_config(const Config& config, const std::string& path);
// True when `a` and `b` define the same trained model: network architecture and diffusion
// (objective, schedule, timesteps, prediction, learn_sigma, and the EDM σ's that set the
// preconditioning). num_classes is left out: a trainer takes it from the
// data. The engine discards a model, and the GUI asks first, exactly when this is false.
bool same_model(const Config& a, const Config& b);
// True when both name the same dataset, split and preprocessing.
bool same_data(const DataConfig& a, const DataConfig& b);
// Applies "section.key=value" overrides (values parsed as YAML) in order, as the
// command lines' --set does; errors name the override.
Config apply_overrides(const Config& config, const std::vector<std::string>& overrides);
// Throws ConfigError naming the key and the value; `source` names the file.
void validate(const Config& config, const std::string& source = "config");
// How and where guidance applies, for logs and evaluation records: "" for classifier-free
// guidance at every noise level, else "cfg at sigma 0.3..5", "cfg at sigma > 0.3" or "cfg
// at sigma <= 5"; with a guide model "autoguided by PATH" and the same interval text.
std::string guidance_interval_text(const SampleConfig& s);

}  // namespace difflab

// Named modes shared by the YAML config, the CLI and the GUI.
//
// Every enum ends in Count and has a name table, so the three faces of the config
// (file, structs, editors) use exactly the same spellings.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace difflab {

enum class DatasetKind { Mnist, FashionMnist, Idx, Cifar10, ImageFolder, Toy2d, Count };
enum class Toy2dKind { SwissRoll, TwoMoons, EightGaussians, Checkerboard, Count };
enum class ScheduleKind { Linear, Cosine, Quadratic, Sigmoid, Count };
enum class Prediction { Eps, X0, V, Count };
// What the network is trained on (README, "Objectives"): DDPM's discrete VP chain (Ho et al.
// 2020; its prediction is diffusion.prediction), EDM's preconditioned denoiser on
// x = x₀ + σ ε (Karras et al. 2022), or flow matching's velocity on the straight path
// x_t = (1 − t) x₀ + t ε (Lipman et al. 2022; Liu et al. 2022).
enum class Objective { Ddpm, Edm, FlowMatching, Count };
// Per-example weight of the training loss: 1, or min-SNR-γ (Hang et al. 2023, arXiv
// 2303.09556; core/diffusion/objectives.h).
enum class LossWeighting { Uniform, MinSnr, Count };
// How flow-matching training draws t ∈ (0, 1): uniformly, or t = sigmoid(u) with
// u ~ N(m, s²) (Esser et al. 2024, arXiv 2403.03206, "logit-normal sampling").
enum class FlowTimeSampling { Uniform, LogitNormal, Count };
enum class ModelKind { UNet, Mlp, Count };
enum class Activation { SiLU, ReLU, GELU, Mish, Count };
enum class WeightInit { Default, Xavier, He, Count };
// Each sampler also has one row in core/sampling/sampler_registry.cpp (checked at compile
// time against this enum and its names), which says everything else about it.
enum class SamplerKind { Ddpm, Ddim, Euler, EulerAncestral, Heun, DpmppTwoM, Count };
// Noise levels of the σ-space samplers (Euler, Heun, DPM-Solver++): the model's own
// (respaced) schedule rows, or Karras et al. (2022, eq. 5) spacing between its ends.
enum class SigmaSpacing { Model, Karras, Count };
// DDPM reverse-process variance: fixed β̃_t or β_t (Ho et al. 2020, §3.2), or the model's
// own learned-range interpolation (Nichol & Dhariwal 2021, eq. 15; needs diffusion.learn_sigma).
enum class VarianceKind { FixedSmall, FixedLarge, Learned, Count };
// Training loss: L_simple (Ho et al. 2020, eq. 14) or L_hybrid = L_simple + λ L_vlb
// (Nichol & Dhariwal 2021, eq. 16).
enum class LossKind { Simple, Hybrid, Count };
// How training draws t: uniformly, or by loss-aware importance sampling (Nichol & Dhariwal
// 2021, §3.3: p_t ∝ √E[L_t²]).
enum class TimestepSamplerKind { Uniform, LossAware, Count };
// The learning rate after warm-up (core/train/lr_schedule.h): held, or decayed towards
// lr_min, reached as the run ends, along a half cosine (Loshchilov & Hutter 2017) or a
// straight line.
enum class LrScheduleKind { Constant, Cosine, Linear, Count };
// What a ControlNet is conditioned on (Zhang et al. 2023): canny edges of the image,
// synthetic scribbles (thin, jittered, partly dropped centre lines) like hand-drawn strokes,
// or both (mixed: each training image gets one of the two); the straight segments a Hough
// transform finds in the canny edges; the filled silhouette (mask); or the distance map of
// the silhouette (a depth-like hint). Each kind has its own hint plane
// (core/model/hint_planes.h).
enum class HintKind { Canny, Scribble, Mixed, Hough, Mask, Distance, Count };
// Arithmetic of the network (core/model/precision.h): float32, bfloat16 autocast, or
// `auto`: measured once per CPU model and network, bf16 only when faster and close to fp32.
enum class Precision { Fp32, Bf16, Auto, Count };

// Name tables: index = enum value.
template <typename E> struct EnumNames;
#define DIFFLAB_ENUM_NAMES(E, ...)                                                 \
  template <> struct EnumNames<E> {                                                \
    static constexpr std::array<std::string_view, static_cast<size_t>(E::Count)> \
        names{__VA_ARGS__};                                                        \
  };
DIFFLAB_ENUM_NAMES(DatasetKind, "mnist", "fashion_mnist", "idx", "cifar10", "image_folder", "toy2d")
DIFFLAB_ENUM_NAMES(Toy2dKind, "swiss_roll", "two_moons", "eight_gaussians", "checkerboard")
DIFFLAB_ENUM_NAMES(ScheduleKind, "linear", "cosine", "quadratic", "sigmoid")
DIFFLAB_ENUM_NAMES(Prediction, "eps", "x0", "v")
DIFFLAB_ENUM_NAMES(Objective, "ddpm", "edm", "flow_matching")
DIFFLAB_ENUM_NAMES(LossWeighting, "uniform", "min_snr")
DIFFLAB_ENUM_NAMES(FlowTimeSampling, "uniform", "logit_normal")
DIFFLAB_ENUM_NAMES(ModelKind, "unet", "mlp")
DIFFLAB_ENUM_NAMES(Activation, "silu", "relu", "gelu", "mish")
DIFFLAB_ENUM_NAMES(WeightInit, "default", "xavier", "he")
DIFFLAB_ENUM_NAMES(SamplerKind, "ddpm", "ddim", "euler", "euler_ancestral", "heun", "dpmpp_2m")
DIFFLAB_ENUM_NAMES(SigmaSpacing, "model", "karras")
DIFFLAB_ENUM_NAMES(VarianceKind, "fixed_small", "fixed_large", "learned")
DIFFLAB_ENUM_NAMES(LossKind, "simple", "hybrid")
DIFFLAB_ENUM_NAMES(TimestepSamplerKind, "uniform", "loss_aware")
DIFFLAB_ENUM_NAMES(LrScheduleKind, "constant", "cosine", "linear")
DIFFLAB_ENUM_NAMES(HintKind, "canny", "scribble", "mixed", "hough", "mask", "distance")
DIFFLAB_ENUM_NAMES(Precision, "fp32", "bf16", "auto")
#undef DIFFLAB_ENUM_NAMES

template <typename E> constexpr std::string_view to_string(E e) {
  return EnumNames<E>::names[static_cast<size_t>(e)];
}

template <typename E> std::optional<E> parse_enum(std::string_view s) {
  const auto& names = EnumNames<E>::names;
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == s) return static_cast<E>(i);
  return std::nullopt;
}

// "a, b, c" — for error messages and --help.
template <typename E> std::string enum_choices() {
  std::string out;
  for (auto n : EnumNames<E>::names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

}  // namespace difflab

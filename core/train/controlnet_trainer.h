// Training and loading ControlNets (Zhang et al. 2023) for a trained base model.
//
// The trainer freezes the base model (its EMA weights, the ones sampling uses), copies its
// encoder into a fresh ControlNet and trains only the ControlNet on the base model's own
// objective, with hints computed on the fly from every batch's clean images. A ControlNet
// checkpoint holds only the ControlNet and names the base checkpoint it belongs to.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <memory>
#include <string>

#include "core/config/config.h"
#include "core/data/dataset.h"
#include "core/model/controlnet.h"
#include "core/train/trainer.h"
#include "core/vision/hints.h"

namespace difflab {

// The options of hint_map (core/vision/hints.h) for hints of `kind` under `cn`: its canny
// thresholds, and its mask threshold for mask and distance hints (scribbles keep 0.5).
HintMapOptions hint_map_options(const ControlNetConfig& cn, HintKind kind);

// Training hints for a batch of images in [−1, 1], (B, C, H, W) → (B, kHintChannels, H, W),
// each in its kind's plane (core/model/hint_planes.h): canny edges; synthetic scribbles
// (core/vision/scribble.h, drawn from `gen`); mixed gives each image one of those two at
// random (from `gen`); Hough segments of the canny edges; the filled silhouette; its
// distance map. Thresholds from `cn`.
at::Tensor make_training_hints(const at::Tensor& images, const ControlNetConfig& cn,
                               at::Generator& gen);
// A hint of `kind` from a (B, 1, H, W) map of that kind: the map in the kind's plane, the
// other planes zero (mixed: the canny plane).
at::Tensor make_hint(const at::Tensor& map, HintKind kind);

// A hint from a picture at the model's resolution, (B, 1, H, W) grey in [0, 1]: its hint
// map of `kind` (canny edges, its bright strokes thinned to centre lines, Hough segments,
// silhouette, distance map; mixed: canny), as the GUI makes it from a picture.
at::Tensor hint_from_picture(const at::Tensor& gray, HintKind kind, const HintMapOptions& options);

struct ControlNetStepResult {
  int64_t step = 0;
  double loss = 0.0;  // L_simple of the controlled prediction, this batch
  double lr = 0.0;
  double grad_norm = 0.0;
  // False while the step's loss and gradient norm still wait on the device
  // (controlnet.loss_read_every > 1): both are NaN then, and the values come later from
  // ControlNetTrainer::take_measured().
  bool measured = true;
};

class ControlNetTrainer {
 public:
  // `config.controlnet` says what to train; the base model (and the config it was
  // trained with: data shape, diffusion, model) comes from controlnet.base_checkpoint.
  ControlNetTrainer(const Config& config, std::shared_ptr<const DatasetSplits> data,
                    c10::Device device);
  ~ControlNetTrainer();
  ControlNetTrainer(const ControlNetTrainer&) = delete;
  ControlNetTrainer& operator=(const ControlNetTrainer&) = delete;

  // One AdamW step on the ControlNet. A non-finite loss or gradient throws TrainingError
  // before the weights change; the generator and batch position go back to before the
  // step, so the run is exactly as after the last good step. With a deferred read-back
  // (controlnet.loss_read_every > 1, the default on CUDA) the check happens when the values
  // are read, every loss_read_every steps: the run goes back to a copy taken before the
  // first unread step and redoes the good ones, with the same outcome (as Trainer).
  ControlNetStepResult train_step();
  // Reads the steps whose values still wait on the device now; throws TrainingError as
  // train_step would have. Nothing to do when none wait.
  void read_back();
  // The results read since the last call, in step order, each step once (train_step's own
  // when it read them at once). Keeps the newest 4096 when nobody takes them.
  std::vector<ControlNetStepResult> take_measured();
  // Steps between read-backs as this run does them (controlnet.loss_read_every resolved).
  int loss_read_every() const;
  // Mean L_simple on `batches` test batches with fixed t, noise and hints, with the
  // ControlNet at `scale` (0 = the base model alone: the loss a hint has to beat).
  double evaluate(int batches, double scale = 1.0);
  // Atomic write of the ControlNet, its config, step and the base's path and fingerprint,
  // plus the optimizer, RNG and batch position so that a run can continue (resume). Reads
  // back unread steps first (read_back: it may throw TrainingError, and then writes
  // nothing), so a checkpoint holds only checked steps.
  void save(const std::string& path);
  // Continues a run from a ControlNet checkpoint of this base: exactly (weights, optimizer,
  // RNG, batch position; returns true), or, from a file with the weights alone, with a
  // fresh optimizer and this run's RNG (returns false). Throws CheckpointError naming the
  // file and the problem; on failure the trainer keeps its state.
  bool resume(const std::string& path);

  int64_t step() const;
  const Config& config() const;  // the base's config with this run's controlnet section
  DenoiserNet base() const;
  ControlNet controlnet() const;
  int64_t parameter_count() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> m;
};

// A ControlNet checkpoint with its base model, ready for sampling.
struct LoadedControlNet {
  std::string path;      // the ControlNet checkpoint
  ControlNet net;
  DenoiserNet base;      // EMA weights of the base checkpoint
  Config config;         // the base's config with the ControlNet's controlnet section
  CheckpointInfo base_info;
  std::string base_path;
  int64_t step = 0;
};
// `base_override` replaces the base path stored in the checkpoint (a moved base file). The
// base's weights must match the fingerprint recorded at training time. Throws
// CheckpointError naming the file and the problem.
LoadedControlNet load_controlnet(const std::string& path, c10::Device device,
                                 const std::string& base_override = "");
// A ControlNet checkpoint onto a base already in memory (the GUI's current model: `base`
// holds its EMA weights, `base_info` its config, data shape and step; `base_label` names
// it in messages). Refused, with load_controlnet's message, when the ControlNet was
// trained for other weights. Throws CheckpointError naming the file and the problem.
LoadedControlNet load_controlnet_onto(const std::string& path, DenoiserNet base,
                                      const CheckpointInfo& base_info, const std::string& base_label,
                                      c10::Device device);
// The base model of `control` as run_sampling takes it; the ControlNet itself comes in per
// request, with its hint (SampleRequest::control).
SamplingModel sampling_model(const LoadedControlNet& control);
// A checksum of a network's weights (a fixed weighted sum of every parameter, in float64 on
// the CPU): tells a base checkpoint apart from another one, even a few steps later.
double weights_fingerprint(const torch::nn::Module& module);

}  // namespace difflab

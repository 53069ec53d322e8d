// The Trainer owns one training run: model, EMA copy, AdamW, seeded RNGs and the batch
// sampler. It runs single steps so that callers (the CLI loop, the GUI's worker) decide
// when to log, evaluate, sample and checkpoint, and can pause between any two steps.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/config/config.h"
#include "core/data/dataset.h"
#include "core/model/denoiser_net.h"
#include "core/sampling/sampler.h"
#include "core/train/checkpoint.h"  // CheckpointError, CheckpointInfo
#include "core/train/run_folder.h"  // checkpoint paths of a run folder

namespace torch::serialize {
class InputArchive;
}

namespace difflab {

class Distributed;  // core/train/distributed.h

class TrainingError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct StepResult {
  int64_t step = 0;     // steps done after this one
  // Mean per-example loss of the batch before importance weights: L_simple (times the
  // min-SNR-γ weight when diffusion.loss_weighting asks), or for the hybrid loss that plus
  // λ·T·L_t (see DiffusionConfig::vlb_weight). edm: the MSE of F against its target
  // (weight λ c_out² = 1), flow_matching: the velocity's MSE (times min-SNR-γ).
  double loss = 0.0;
  double lr = 0.0;
  double grad_norm = 0.0;
  double loss_simple = 0.0;  // mean unweighted MSE of the batch (L_simple for ddpm)
  double loss_vlb = std::nan("");  // hybrid: mean L_t of the batch in bits/dim (unscaled)
  double allreduce_s = 0.0;  // data-parallel: seconds averaging the gradients (0 alone)
  // False while the step's values still wait on the device (train.loss_read_every > 1):
  // loss, grad_norm, loss_simple and loss_vlb are NaN then, and the values come later
  // from Trainer::take_measured().
  bool measured = true;
};

class Trainer {
 public:
  // `config.model.num_classes` is set from the dataset when the model is class-conditional.
  // With `dist` (more than one rank) the run is data-parallel: config.train.batch_size is
  // each rank's batch, every rank draws the same global batch (batch_size × ranks) and
  // trains on its own rows of it, gradients are averaged after backward, and rank 0's
  // initial weights and precision choice are used by all. Every rank must construct its
  // trainer with the same config and call the same methods in the same order (each
  // train_step, precision() and the constructor are collectives).
  Trainer(Config config, std::shared_ptr<const DatasetSplits> data, c10::Device device,
          std::shared_ptr<Distributed> dist = nullptr);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // One optimisation step. A non-finite loss or gradient throws TrainingError before
  // the weights change, so the model, EMA and optimizer keep their last good state, and
  // the generator and batch position go back to before the step (a retry, or a checkpoint
  // written then, starts from exactly the last good step).
  // With a deferred read-back (train.loss_read_every > 1, the default on CUDA) the step's
  // values stay on the device and are read every loss_read_every steps; the check happens
  // then: the run goes back to a copy taken before the first unread step and redoes the
  // good ones, so the error names the bad step with everything (weights, optimizer, EMA,
  // generator, batch position, step count) as it was after the step before it.
  StepResult train_step();
  // Reads the steps whose values still wait on the device (deferred read-back), now:
  // throws TrainingError as train_step would have. Nothing to do when none wait.
  void read_back();
  // The results read since the last call, in step order, each step once (train_step's own
  // when it read them at once). Keeps the newest 4096 when nobody takes them.
  std::vector<StepResult> take_measured();
  // Steps between read-backs as this run does them (train.loss_read_every resolved).
  int loss_read_every() const;
  // train.precision as the steps run it: fp32 or bf16, and for auto what was measured
  // (on the first call: a few timed steps, or the answer cached for this CPU and net).
  const PrecisionChoice& precision();
  // Mean L_simple (the prediction half of a learned-variance net) on `batches` test
  // batches with the EMA weights, using fixed t and
  // noise (seeded), so values are comparable from one evaluation to the next.
  double evaluate(int batches);
  // Samples with the EMA (or raw) weights; `config.sample` supplies the defaults.
  SampleResult sample(const SampleConfig& sample, bool record_trajectory = false,
                      const StepCallback& callback = {});

  // Atomic write (temp file + rename). Holds model, EMA, optimizer, step, RNG,
  // batch-sampler and timestep-sampler (loss history) state, the data shape and the
  // resolved config. Reads back unread steps first (read_back: it may throw
  // TrainingError, and then writes nothing), so a checkpoint holds only checked steps.
  void save_checkpoint(const std::string& path);
  // Restores everything save_checkpoint wrote; the checkpoint's model settings must
  // match this trainer's. Throws CheckpointError naming the file and the problem; on
  // failure the trainer keeps its previous state.
  void load_checkpoint(const std::string& path);
  // The same from an archive the caller opened with open_checkpoint (core/train/checkpoint.h)
  // to read its info first, so the file is read once.
  void load_checkpoint(torch::serialize::InputArchive& archive, const std::string& path);

  // Applies new training settings (lr, EMA, clipping, batch size, steps, ...) to the run
  // in progress; the model, optimizer state and step count stay.
  void set_train_config(const TrainConfig& train);

  int64_t step() const;
  int64_t epoch() const;
  int world_size() const;  // data-parallel ranks (1 alone); the global batch is batch_size × this
  const Config& config() const;
  const DatasetSplits& data() const;
  c10::Device device() const;
  DenoiserNet model() const;
  DenoiserNet ema_model() const;
  int64_t parameter_count() const;
  // Mean L_simple of the recent steps in each of `buckets` equal ranges of t (NaN if none yet).
  std::vector<double> loss_by_timestep(int buckets = 10) const;
  // The per-example loss weight at the centre of each of `buckets` equal ranges of t (the
  // axis of loss_by_timestep): min-SNR-γ's curve, 1 for uniform weighting and for edm
  // (loss_weight_curve in core/diffusion/objectives.h), to draw over the loss chart.
  std::vector<double> loss_weight_by_timestep(int buckets = 10) const;
  // p_t of the timestep sampler (uniform for train.timestep_sampler = uniform, and for
  // loss_aware until every t has its loss history).
  std::vector<double> timestep_probabilities() const;

 private:
  struct Impl;
  struct HostState;  // the host side of the run before a step (trainer.cpp)
  StepResult step_once(HostState& before);
  std::unique_ptr<Impl> m;
};

// The EMA (or raw) network of `trainer` with its schedule, prediction, data shape and
// classes: what run_sampling takes. It shares the trainer's weights.
SamplingModel sampling_model(const Trainer& trainer, bool ema);

}  // namespace difflab

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

namespace difflab {

class TrainingError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct StepResult {
  int64_t step = 0;     // steps done after this one
  // Mean per-example loss of the batch before importance weights: L_simple, or for the
  // hybrid loss L_simple + λ·T·L_t (see DiffusionConfig::vlb_weight).
  double loss = 0.0;
  double lr = 0.0;
  double grad_norm = 0.0;
  double loss_simple = 0.0;  // mean L_simple of the batch
  double loss_vlb = std::nan("");  // hybrid: mean L_t of the batch in bits/dim (unscaled)
};

class Trainer {
 public:
  // `config.model.num_classes` is set from the dataset when the model is class-conditional.
  Trainer(Config config, std::shared_ptr<const DatasetSplits> data, c10::Device device);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // One optimisation step. A non-finite loss or gradient throws TrainingError before
  // the weights change, so the model, EMA and optimizer keep their last good state.
  StepResult train_step();
  // Mean L_simple (the prediction half of a learned-variance net) on `batches` test
  // batches with the EMA weights, using fixed t and
  // noise (seeded), so values are comparable from one evaluation to the next.
  double evaluate(int batches);
  // Samples with the EMA (or raw) weights; `config.sample` supplies the defaults.
  SampleResult sample(const SampleConfig& sample, bool record_trajectory = false,
                      const StepCallback& callback = {});

  // Atomic write (temp file + rename). Holds model, EMA, optimizer, step, RNG,
  // batch-sampler and timestep-sampler (loss history) state, the data shape and the
  // resolved config.
  void save_checkpoint(const std::string& path) const;
  // Restores everything save_checkpoint wrote; the checkpoint's model settings must
  // match this trainer's. Throws CheckpointError naming the file and the problem; on
  // failure the trainer keeps its previous state.
  void load_checkpoint(const std::string& path);

  // Applies new training settings (lr, EMA, clipping, batch size, steps, ...) to the run
  // in progress; the model, optimizer state and step count stay.
  void set_train_config(const TrainConfig& train);

  int64_t step() const;
  int64_t epoch() const;
  const Config& config() const;
  const DatasetSplits& data() const;
  c10::Device device() const;
  DenoiserNet model() const;
  DenoiserNet ema_model() const;
  int64_t parameter_count() const;
  // Mean L_simple of the recent steps in each of `buckets` equal ranges of t (NaN if none yet).
  std::vector<double> loss_by_timestep(int buckets = 10) const;
  // p_t of the timestep sampler (uniform for train.timestep_sampler = uniform, and for
  // loss_aware until every t has its loss history).
  std::vector<double> timestep_probabilities() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> m;
};

// The EMA (or raw) network of `trainer` with its schedule, prediction, data shape and
// classes: what run_sampling takes. It shares the trainer's weights.
SamplingModel sampling_model(const Trainer& trainer, bool ema);

}  // namespace difflab

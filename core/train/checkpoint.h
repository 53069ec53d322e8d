// Checkpoint files: the kinds we write, what a model checkpoint says about itself, the one
// opener every loader goes through, and the run folder's checkpoint paths.
//
// Every file we write carries a format tag naming its kind. open_checkpoint checks it, so a
// file of another of our kinds is refused with both kinds named ("runs/x/classifier.pt is a
// noise classifier checkpoint, not a model checkpoint"). The archive readers and writers
// behind it (torch serialize) are in checkpoint_io.h, internal to the loaders.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "core/config/config.h"
#include "core/model/denoiser_net.h"
#include "core/sampling/sampler.h"

namespace torch::serialize {
class InputArchive;
}

namespace difflab {

class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Every kind of file Diffusion Lab writes with torch serialize.
enum class CheckpointKind {
  Model,       // a training run: model, EMA, optimizer, RNG (Trainer::save_checkpoint)
  ControlNet,  // a ControlNet and the base it belongs to (ControlNetTrainer::save)
  Classifier,  // a noisy classifier for classifier guidance (save_noisy_classifier)
  Evaluator,   // the sample evaluator's classifier, cached per run (Evaluator::save)
  Count
};
// The format tag written into files of `kind` ("difflab-checkpoint-v1", ...).
std::string_view checkpoint_format(CheckpointKind kind);
// What the kind is called in messages ("model checkpoint", "noise classifier checkpoint",
// "ControlNet checkpoint", "sample evaluator cache").
std::string_view checkpoint_kind_name(CheckpointKind kind);

// Reads `path` into `archive` and checks that it is a file of kind `expected`. Throws
// CheckpointError naming the file when it is missing, unreadable, untagged, or of another
// of our kinds (then naming both kinds).
void open_checkpoint(const std::string& path, torch::serialize::InputArchive& archive,
                     CheckpointKind expected);

// A checkpoint named by the user: a file as given, or a run folder's newest checkpoint
// (run_folder.h's latest_checkpoint). `what` names where the path came from ("--base",
// "guide model"); a folder without a checkpoint throws
// CheckpointError "<what> <folder>: a folder with no checkpoint in checkpoints/ ...".
std::string checkpoint_or_newest(const std::string& path, const std::string& what);

// What a model checkpoint says about itself, read without building a trainer.
struct CheckpointInfo {
  Config config;
  DataShape shape;
  int64_t step = 0;
};
// Also of a ControlNet checkpoint (`kind`), which embeds its run's config the same way.
CheckpointInfo read_checkpoint_info(const std::string& path,
                                    CheckpointKind kind = CheckpointKind::Model);
// The network of a model checkpoint (EMA weights when `use_ema`), ready for sampling.
DenoiserNet load_checkpoint_model(const std::string& path, bool use_ema, c10::Device device,
                                  CheckpointInfo* info = nullptr);
// The same with its schedule, prediction, shape and classes: what run_sampling takes.
SamplingModel load_sampling_model(const std::string& path, bool use_ema, c10::Device device,
                                  CheckpointInfo* info = nullptr);

// Autoguidance's weaker model (sample.guide_model: a model checkpoint, or a run folder for
// its newest one) for SampleRequest::guide, or null when `sample` names none. Loaded as the
// model is (EMA weights when sample.use_ema) and checked to answer the same question as
// `model`: the same objective (with the same timesteps and schedule, EDM σ_data and σ
// range, flow time scale), prediction, data shape and classes. A relative path resolves as
// the app's other paths do (core/util/paths.h). Throws CheckpointError naming the file and
// what differs.
DenoiserNet load_guide_model(const SampleConfig& sample, const SamplingModel& model,
                             c10::Device device);

// Checkpoint paths of a run folder (checkpoint_path, latest_checkpoint, ...): run_folder.h.

}  // namespace difflab

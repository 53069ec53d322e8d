// One training run: a Trainer plus everything a run does besides stepping, in one place
// for the GUI's worker and `difflab-cli train` alike — the run folder (run_folder.h),
// test loss, preview samples, checkpoints with `latest`, metrics.csv and TensorBoard
// events (flushed as they are written, so a crash loses no row), the rate and ETA, and a
// wall-clock autosave. Callers drive it step by step and may pause between any two steps.
#pragma once

#include <ATen/core/Tensor.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/train/trainer.h"

namespace difflab {

class MetricsLog;

// Preview grids during training: cheap samples (DDIM, few steps) of the EMA model.
constexpr int kPreviewSamplerSteps = 20;     // at most this many DDIM steps
constexpr int kPreviewImagesPerClass = 4;    // class-conditional models: one column a class
constexpr int kPreviewUnconditional = 36;    // images of an unconditional model (6 × 6)
constexpr int kPreviewPoints = 2000;         // particles of a 2-D toy model
constexpr int kKeepCheckpoints = 3;          // step files kept in checkpoints/ (latest included)

struct RunOptions {
  std::string dir;             // the run folder
  // Append to the run already in `dir` (its metrics continue). Without it, a folder that
  // holds a run is refused: nothing of another run is ever replaced.
  bool resume = false;
  // Steps between preview grids (samples/step_N.png); −1 = config.train.sample_every.
  int64_t preview_every = -1;
  // Seconds of training between previews instead (> 0; the GUI's default, so the first
  // grid comes within a minute whatever the model's speed); 0 = by steps.
  double preview_every_s = 0.0;
};

// What one step did besides training.
struct RunStepReport {
  // This step; with a deferred read-back (train.loss_read_every > 1) its loss values are
  // NaN until read (step.measured false), and `measured` brings them.
  StepResult step;
  // The steps whose values were read during this call, in order: this step alone when each
  // step is read at once, a burst of them (or none) with a deferred read-back.
  std::vector<StepResult> measured;
  bool logged = false;          // a metrics row was written this step
  double window_loss = 0.0;     // mean loss of the steps since the previous row (when logged)
  double test_loss = 0.0;       // NaN unless evaluated this step
  bool previewed = false;       // preview_images holds new samples
  at::Tensor preview_images, preview_labels;  // CPU, (N, ...) and (N)
  std::string checkpoint;       // written this step (periodic or autosave), "" if none
  bool finished = false;        // train.steps reached
};

class TrainingRun {
 public:
  // Takes the trainer (fresh, or after load_checkpoint) and opens the run folder: writes
  // config.yaml, opens metrics.csv / tb/. Throws std::runtime_error naming the folder when
  // it holds another run and options.resume is off.
  TrainingRun(std::unique_ptr<Trainer> trainer, RunOptions options);
  ~TrainingRun();
  TrainingRun(const TrainingRun&) = delete;
  TrainingRun& operator=(const TrainingRun&) = delete;

  // One training step and the periodic work due after it. TrainingError (NaN loss) passes
  // through with the weights of the last good step; the logs are flushed first.
  RunStepReport step();
  // Writes checkpoints/step_N.pt (atomic), marks it latest, keeps kKeepCheckpoints files;
  // returns its path. A second call at the same step rewrites the same file.
  std::string checkpoint();
  // Samples a preview grid of the EMA model: the cheap one (`full` = false) or with the
  // config's own sampler (`full`); writes it to `png_path` when that is not empty.
  SampleResult preview(bool full, const std::string& png_path = "", const StepCallback& callback = {});
  // Flushes metrics.csv and the events (they are also flushed after every row).
  void flush();
  // Restarts the rate window (after a pause: waiting time is not training time).
  void restart_clock();
  // Reads the steps whose values still wait on the device (when training pauses, so the
  // loss chart is complete) and returns them; TrainingError as step() on a non-finite one.
  std::vector<StepResult> read_back();
  // After step() or read_back() threw TrainingError: the steps that were read and good
  // before the bad one (deferred read-back), for the loss chart.
  std::vector<StepResult> take_read_before_error();

  Trainer& trainer() { return *m_trainer; }
  const Trainer& trainer() const { return *m_trainer; }
  const std::string& dir() const { return m_options.dir; }
  int64_t saved_step() const { return m_saved_step; }
  const std::string& saved_path() const { return m_saved_path; }
  int64_t unsaved_steps() const;
  // Seconds of training until the autosave (−1 when train.autosave_minutes is 0).
  double seconds_to_autosave() const;
  double images_per_s() const { return m_rate; }  // all ranks together
  double eta_s() const;
  void set_preview_every(int64_t steps) { m_options.preview_every = steps; }
  int64_t preview_every() const;
  // Previews every `seconds` of training (previews and checkpoints not counted); 0 = by steps.
  void set_preview_every_s(double seconds) { m_options.preview_every_s = seconds; }
  // Seconds of training until the next time-based preview (−1 when previews go by steps).
  double seconds_to_preview() const;
  // Applies new train settings to the trainer and the run (log/eval/preview intervals).
  void set_train_config(const TrainConfig& train);

 private:
  using Clock = std::chrono::steady_clock;
  std::unique_ptr<Trainer> m_trainer;
  RunOptions m_options;
  std::unique_ptr<MetricsLog> m_log;
  bool m_hybrid = false;
  int64_t m_saved_step = -1;
  std::string m_saved_path;
  double m_trained_since_save_s = 0.0;  // training wall time since the last checkpoint
  double m_train_s = 0.0;               // training wall time of the whole run (train_s)
  double m_since_preview_s = 0.0;       // training wall time since the last preview
  Clock::time_point m_last_step_end;
  bool m_clock_running = false;
  // What is due after a step besides its metrics row.
  struct Due {
    bool eval = false, periodic = false, autosave = false, preview = false;
  };
  // step() after the step and its read: clocks, the metrics row, and what is `due`.
  void after_step(RunStepReport& report, const Due& due);
  // Adds read steps to the sums of the next metrics row.
  void absorb(const std::vector<StepResult>& measured);
  // After a TrainingError: keeps the steps read before the bad one, flushes the logs.
  void failed();
  std::vector<StepResult> m_read_before_error;
  // The rate window: steps since it began (at least kRateWindowS, or since the last row).
  Clock::time_point m_window_start;
  int m_window_steps = 0;
  double m_rate = 0.0;
  // The read steps since the last metrics row.
  double m_loss_sum = 0, m_grad_sum = 0, m_simple_sum = 0, m_vlb_sum = 0;
  int m_loss_steps = 0;
};

// Writes a preview grid: one class per column for a class-conditional model, a scatter
// plot for 2-D points.
void write_preview_png(const std::string& path, const SampleResult& result, int num_classes,
                       bool points);
// Preview file of a step: <dir>/samples/step_N.png.
std::string preview_path(const std::string& dir, int64_t step);

}  // namespace difflab

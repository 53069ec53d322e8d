// The Engine: one worker thread that owns every LibTorch object (dataset tensors,
// model, EMA, optimizer, samplers) and runs training and sampling. Callers (the GUI's
// panels, tests, the CLI) talk to it only through commands and immutable snapshots:
//
//   engine.send(cmd::StartTraining{});           // any thread, never blocks on work
//   auto snap = engine.snapshot();               // shared_ptr<const Snapshot>, CPU data only
//
// This header includes no torch: the GUI compiles against plain C++ types.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "core/config/config.h"
#include "core/vision/png.h"

namespace difflab {

class Worker;

// TrainingControlNet / ControlNetPaused: a ControlNet for the current model trains (the
// model itself is frozen meanwhile: Snapshot::controlnet_training says more).
enum class JobStatus { Idle, LoadingData, Training, Paused, Sampling, Error, TrainingControlNet, ControlNetPaused, Count };
constexpr const char* job_status_name(JobStatus s) {
  switch (s) {
    case JobStatus::Idle: return "idle";
    case JobStatus::LoadingData: return "loading data";
    case JobStatus::Training: return "training";
    case JobStatus::Paused: return "paused";
    case JobStatus::Sampling: return "sampling";
    case JobStatus::Error: return "error";
    case JobStatus::TrainingControlNet: return "training ControlNet";
    case JobStatus::ControlNetPaused: return "ControlNet paused";
    case JobStatus::Count: break;
  }
  return "?";
}

// A float image stack on the CPU: n images of c×h×w (NCHW), values roughly in [−1, 1];
// for 2-D point data c = 2, h = w = 1 and each "image" is one point.
struct FloatImages {
  int n = 0, c = 0, h = 0, w = 0;
  std::vector<float> data;
  bool empty() const { return n == 0; }
  const float* image(int i) const { return data.data() + static_cast<size_t>(i) * c * h * w; }
};

// Every recorded step of one sampling run, for the scrubber: frame k holds x_t, the
// predicted x₀ and the predicted ε of all images before denoising step k.
struct TrajectoryFrames {
  std::vector<int> timesteps;       // model timestep of each frame
  std::vector<FloatImages> x_t, x0, eps;  // eps: the velocity v̂ when `velocity`
  bool velocity = false;            // flow matching (Trajectory::velocity)
  FloatImages final_images;         // the result (after the last step)
  std::vector<int64_t> labels;      // requested class per image (−1 = unconditional)
  SampleConfig config;              // what produced it
  double seconds = 0.0;
  // ControlNet runs: the hint every image followed (1 × kHintChannels planes × h × w, in
  // [0, 1]: core/model/hint_planes.h),
  // and its conditioning scale; empty for plain runs.
  FloatImages hint;
  double control_scale = 0.0;
  // The model that made it (Snapshot::model_serial; 0 for a ControlNet's own base).
  uint64_t model_serial = 0;
  // 2-D point runs: the model's field (core/sampling/field.h: the score for ddpm and edm,
  // −v̂ for flow matching) on the points of `field_grid` at each recorded frame.
  FloatImages field_grid;
  std::vector<FloatImages> field;
};

// The ControlNet the worker holds (cmd::LoadControlNet), if any.
struct ControlNetStatus {
  bool ready = false;
  std::string path, base_path;
  int64_t step = 0, base_step = 0;
  ControlNetConfig config;  // hint kind it was trained on, canny thresholds, default scale
  int height = 0, width = 0, channels = 0;
  int num_classes = 0;      // of the base model (0 = unconditional)
};

struct LossPoint {
  int64_t step;
  float value;
};

// A ControlNet trained in the GUI (cmd::TrainControlNet): its folder, progress, loss, and
// the hint-following curve — the mean score (edge F1, IoU or mean absolute difference by
// hint kind: hint_metric) between a fixed set of held-out hints and the samples drawn with
// them (core/eval/control_eval.h, HintCurve), against the same samples drawn by the base
// model alone.
struct ControlNetTraining {
  bool active = false;          // a trainer is held (running or paused)
  std::string dir;              // <run>/controlnets/<hint>-N
  std::string path;             // its controlnet.pt
  std::string base_path;        // the base checkpoint it trains for
  HintKind hint = HintKind::Mixed;
  int64_t step = 0, total_steps = 0;
  double images_per_s = 0.0;
  int64_t saved_step = -1;      // step of the newest controlnet.pt (−1 = none yet)
  std::vector<LossPoint> loss;  // per step (thinned like Snapshot::loss)
  std::vector<LossPoint> f1;    // hint-following score with the ControlNet, per curve point
  double f1_without = -1.0;     // the base model alone on the same hints and seeds (−1 = not yet)
  int64_t curve_every = 0;      // steps between curve points (0 = off)
  int curve_images = 0, curve_steps = 0;  // what one point samples: images, DDIM steps
  double curve_seconds = 0.0;   // what the last point took
};

// A ControlNet checkpoint found in the current model's run folder (cmd::FindControlNets).
struct FoundControlNet {
  std::string path;
  int64_t step = 0;
  HintKind hint = HintKind::Mixed;
  bool fits = false;            // trained for exactly the current model's weights
  std::string why;              // when it does not fit (or cannot be read): the reason
};

// One evaluation of the model's samples (cmd::Evaluate).
struct EvalRecord {
  int64_t step = 0;        // training step of the model evaluated
  SampleConfig config;     // how the samples were drawn
  int64_t n = 0;
  double accuracy = 0;     // against the requested classes (NaN when unconditional)
  double fd = 0;           // Fréchet distance of the evaluator's features to the test split
  double fd_floor = 0;     // the same for n real training images: the best to hope for
  double seconds = 0;
  uint64_t model_serial = 0;  // the model evaluated
};

// The jobs a panel starts. Each keeps its own last outcome in the snapshot, so a panel
// shows the result of what it asked for (and every outcome also goes to the log).
enum class JobKind { Data, Config, Train, Save, Load, Sample, Evaluate, ControlNet, Export, Count };
constexpr size_t kJobKindCount = static_cast<size_t>(JobKind::Count);
enum class JobOutcome {
  None,               // never run
  Running,
  Done,
  Failed,             // `message` says why, naming the file where there is one
  Cancelled,
  NeedsConfirmation,  // nothing was done: it would replace `path`; resend with overwrite
  Count
};
constexpr const char* job_kind_name(JobKind k) {
  switch (k) {
    case JobKind::Data: return "dataset";
    case JobKind::Config: return "config";
    case JobKind::Train: return "training";
    case JobKind::Save: return "save";
    case JobKind::Load: return "load";
    case JobKind::Sample: return "sampling";
    case JobKind::Evaluate: return "evaluation";
    case JobKind::ControlNet: return "ControlNet";
    case JobKind::Export: return "export";
    case JobKind::Count: break;
  }
  return "?";
}
struct JobResult {
  JobKind kind = JobKind::Count;
  JobOutcome outcome = JobOutcome::None;
  uint64_t serial = 0;   // grows with every outcome of any job: "is this new?"
  std::string message;   // one line for the panel (also in the log)
  std::string path;      // the file or folder concerned, if any
};

// The run folder the model trains into and saves to (core/train/training_run.h). Every
// new model gets its own folder; nothing in another run's folder is ever replaced.
struct RunStatus {
  std::string dir;              // "" = no run folder yet (no model, or one never trained/saved)
  int64_t saved_step = -1;      // step of the newest checkpoint written for this model
  std::string saved_path;
  int64_t unsaved_steps = 0;    // trained steps not in any checkpoint (quitting loses them)
  double autosave_in_s = -1.0;  // seconds of training until the next autosave (−1 = off / not training)
  double preview_in_s = -1.0;   // seconds of training until the next preview (−1 = by steps / not training)
};

struct Snapshot {
  uint64_t version = 0;
  JobStatus status = JobStatus::Idle;
  std::string message;     // one line: what the worker is doing or did last
  std::string error;       // last error (bad path, NaN loss, ...), empty if none

  Config config;           // the config in force (the model's, once trained)
  bool model_ready = false;  // a model exists (trained, training or loaded)
  int64_t parameters = 0;
  // Changes whenever the model is replaced (new, loaded, discarded); results carry the
  // serial of the model that made them.
  uint64_t model_serial = 0;
  RunStatus run;
  std::array<JobResult, kJobKindCount> jobs;
  const JobResult& job(JobKind k) const { return jobs[static_cast<size_t>(k)]; }

  // Dataset.
  bool data_ready = false;
  std::string data_description;
  std::vector<std::string> class_names;
  std::vector<int64_t> class_counts;
  bool points = false;     // 2-D toy data
  FloatImages data_preview;  // a few examples per class (images) or up to 4000 points
  std::vector<int64_t> data_preview_labels;

  // Training progress.
  int64_t step = 0, total_steps = 0, epoch = 0;
  double images_per_s = 0.0, lr = 0.0, eta_s = 0.0, grad_norm = 0.0;
  // Loss per step (thinned to at most kMaxLossPoints); for a loaded run, its metrics.csv
  // rows first (means over train.log_every steps).
  std::vector<LossPoint> loss;
  std::vector<LossPoint> test_loss;  // per evaluation
  std::vector<double> loss_by_t;     // mean recent loss in 10 buckets of t (NaN = no data)
  std::vector<double> loss_weight_by_t;  // the loss weight at each bucket's centre (min-SNR-γ; else 1)
  FloatImages preview;               // the latest preview samples of this model
  std::vector<int64_t> preview_labels;
  int64_t preview_step = -1;

  // Sampling.
  int sample_step = 0, sample_total = 0;
  std::shared_ptr<const TrajectoryFrames> samples;  // the last finished run
  std::vector<EvalRecord> evaluations;               // oldest first, of this model
  ControlNetStatus controlnet;
  ControlNetTraining controlnet_training;
  // The ControlNets of the current model's run folder, as last listed for model_serial
  // `controlnets_found_serial` (0 = not listed).
  std::vector<FoundControlNet> controlnets_found;
  uint64_t controlnets_found_serial = 0;
  int64_t controlnets_found_step = -1;  // the model's step then (its weights change as it trains)

  std::vector<std::string> log;      // the last kMaxLogLines lines the worker reported
};

constexpr size_t kMaxLossPoints = 4000;
// Steps between the GUI's preview grids while training (cmd::SetPreviewEvery changes it;
// the CLI uses train.sample_every). What a preview is: core/train/training_run.h.
constexpr int64_t kDefaultPreviewEvery = 200;
constexpr size_t kMaxLogLines = 500;

namespace cmd {
// Applies a config. A change of architecture or data discards the model, but only after
// the new data has loaded: a bad dataset path fails the job and keeps model and data.
struct SetConfig {
  Config config;
};
struct LoadData {};           // (re)load config.data
// From the current model if any, else a fresh one in a new run folder
// (<runs root>/<dataset>-YYYY-MM-DD-N; see EngineOptions::runs_root).
struct StartTraining {};
struct Pause {};
struct Resume {};
struct Stop {};               // stop training after the current step; the model stays
struct ResetModel {};         // drop the model (fresh weights and a new run folder next start)
struct Sample {               // run a sampler; records the trajectory for the scrubber
  SampleConfig config;
  int max_frames = 200;       // frames kept (evenly spread) for long runs
  // Steer with the loaded ControlNet (its own base model, not the trained one): `hint`
  // holds kHintChannels planes of height × width (core/model/hint_planes.h), shared by all images.
  bool controlnet = false;
  std::vector<float> hint;
  double control_scale = 1.0;
};
// A train-controlnet checkpoint. With a model loaded, the ControlNet must have been
// trained for exactly that model (weight fingerprint), else it is refused; with none,
// the base it names is loaded with it.
struct LoadControlNet {
  std::string path;
  std::string base_override;  // "" = the base path stored in the checkpoint
};
struct Evaluate {             // sample config.n images and score them with the evaluator
  SampleConfig config;        // classifier (accuracy, Fréchet distance; core/eval/evaluator.h)
};
struct Cancel {};             // cancel sampling within one denoising step
// "" = the current run's folder (checkpoints/step_N.pt, marked latest). Another path that
// exists is not replaced unless `overwrite`: the job ends NeedsConfirmation instead.
struct SaveCheckpoint {
  std::string path;
  bool overwrite = false;
};
// Loads a checkpoint; when it lies in a run folder (<dir>/checkpoints/), that folder
// becomes the current run and its history (metrics.csv, newest preview) comes back.
struct LoadCheckpoint {
  std::string path;
};
// Loads the newest checkpoint of a run folder and continues training it (`train`).
struct ResumeRun {
  std::string dir;
  bool train = true;
};
struct SetPreviewEvery {      // preview samples during training; 0 = off
  int64_t steps;
  double seconds = 0.0;       // > 0: every this many seconds of training instead of by steps
};
// Trains a ControlNet for the current model (ControlNet panel "Train"). The model must be
// idle; it is frozen while the ControlNet trains. Its newest checkpoint is the base (trained
// steps not in a checkpoint are saved into its run folder first). The ControlNet goes to a
// new folder <run>/controlnets/<hint>-N/ (controlnet.pt, config.yaml, metrics.csv), or
// continues the one in `resume_dir`. Pause, Resume and Stop act on it as on training; when
// it stops or finishes, controlnet.pt is written and becomes the loaded ControlNet.
struct TrainControlNet {
  HintKind hint = HintKind::Mixed;
  int64_t steps = 0;           // train up to this step; 0 = config.controlnet.steps
  std::string resume_dir;      // "" = a new folder
  int64_t curve_every = 100;   // steps between hint-following curve points (0 = off)
};
// Lists the ControlNets in the current model's run folder and below it
// (Snapshot::controlnets_found), each checked against the model's weights.
struct FindControlNets {};
// An outcome of work done outside the worker (e.g. the GUI's exports): recorded as that
// job's result and written to the log.
struct Report {
  JobResult result;
};
}  // namespace cmd

using Command = std::variant<cmd::SetConfig, cmd::LoadData, cmd::StartTraining, cmd::Pause,
                             cmd::Resume, cmd::Stop, cmd::ResetModel, cmd::Sample, cmd::Evaluate, cmd::Cancel,
                             cmd::SaveCheckpoint, cmd::LoadCheckpoint, cmd::ResumeRun,
                             cmd::SetPreviewEvery, cmd::LoadControlNet, cmd::TrainControlNet,
                             cmd::FindControlNets, cmd::Report>;

struct EngineOptions {
  int threads = 0;              // LibTorch threads for the worker; 0 = cores − reserve
  int reserve_cores = 0;        // cores left unused by the worker (at least 1 thread is used)
  // The worker thread, and the OpenMP threads it starts, run this much nicer than the
  // process (Linux), so a GUI thread beside it gets a core the moment it has work.
  int nice = 0;
  std::string device = "auto";  // auto | cpu | cuda
  double publish_interval_s = 0.1;  // at most this often during training
  // Where new run folders go; "" = beside config.train.out_dir (its parent folder).
  std::string runs_root;
};

class Engine {
 public:
  Engine(Config config, EngineOptions options = {});
  ~Engine();  // stops the worker (cancels sampling, stops training) and joins it
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues a command; Cancel and Pause/Stop also raise flags the worker checks inside
  // long operations. Never blocks on the worker's work.
  void send(Command command);
  // The latest published snapshot (never null).
  std::shared_ptr<const Snapshot> snapshot() const;
  // Blocks until the snapshot version exceeds `version` or the timeout passes (tests).
  std::shared_ptr<const Snapshot> wait_for_update(uint64_t version, double timeout_s) const;
  // Number of commands not yet taken by the worker.
  size_t pending() const;
  // Blocks until the queue is empty and the worker is not busy with a command (tests):
  // training keeps running; returns false on timeout.
  bool wait_idle(double timeout_s) const;

 private:
  void run();
  void publish(std::shared_ptr<Snapshot> snapshot);

  mutable std::mutex m_queue_mutex;
  mutable std::condition_variable m_queue_cv;
  std::deque<Command> m_queue;
  bool m_busy = false;

  mutable std::mutex m_snapshot_mutex;
  mutable std::condition_variable m_snapshot_cv;
  std::shared_ptr<const Snapshot> m_snapshot;

  std::atomic<bool> m_shutdown{false};
  std::atomic<bool> m_cancel{false};
  std::unique_ptr<Worker> m_worker;
  std::thread m_thread;
};

}  // namespace difflab

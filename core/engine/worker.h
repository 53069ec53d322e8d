// The Engine's worker: everything the worker thread owns, and one handler per command
// (`on(cmd::X&)`, dispatched with std::visit), as tracy's Worker has one method per
// concern. Internal to core/engine; callers use engine.h.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/data/dataset.h"
#include "core/engine/engine.h"
#include "core/eval/evaluator.h"
#include "core/train/controlnet_trainer.h"
#include "core/train/training_run.h"

namespace difflab {

// What the worker needs from the Engine: publishing, and the flags set from other threads.
struct WorkerLink {
  std::function<void(std::shared_ptr<Snapshot>)> publish;
  const std::atomic<bool>* cancel = nullptr;
  const std::atomic<bool>* shutdown = nullptr;
  // True while a Pause, Stop or Cancel waits in the queue: a long piece of work inside a
  // training tick (the hint-following curve) gives way to it.
  std::function<bool()> interrupted;
};

// A ControlNet training in the worker (cmd::TrainControlNet): the trainer, its files and
// the hint-following curve's fixed probe.
struct ControlNetJob;

class Worker {
 public:
  Worker(Config config, EngineOptions options, WorkerLink link);
  ~Worker();

  // Sets threads, priority and device; reports failures in the log.
  void start();
  // Runs one command; a handler's exception becomes its job's Failed outcome.
  void handle(Command& command);
  // One training step and its periodic work (when training).
  void train_tick();
  bool training() const { return m_status == JobStatus::Training; }
  // One ControlNet training step and its periodic work (curve point, checkpoint).
  void controlnet_tick();
  bool controlnet_training() const { return m_status == JobStatus::TrainingControlNet; }
  std::shared_ptr<Snapshot> make_snapshot() const;
  void publish() { m_link.publish(make_snapshot()); }

  void on(cmd::SetConfig& c);
  void on(cmd::LoadData& c);
  void on(cmd::StartTraining& c);
  void on(cmd::Pause& c);
  void on(cmd::Resume& c);
  void on(cmd::Stop& c);
  void on(cmd::ResetModel& c);
  void on(cmd::Sample& c);
  void on(cmd::Evaluate& c);
  void on(cmd::Cancel& c);
  void on(cmd::SaveCheckpoint& c);
  void on(cmd::LoadCheckpoint& c);
  void on(cmd::ResumeRun& c);
  void on(cmd::SetPreviewEvery& c);
  void on(cmd::LoadControlNet& c);
  void on(cmd::TrainControlNet& c);
  void on(cmd::FindControlNets& c);
  void on(cmd::Report& c);

 private:
  using Clock = std::chrono::steady_clock;

  // The job a command's outcome belongs to.
  static JobKind job_of(const Command& command);
  // Records a job outcome (a new serial) and writes it to the log.
  void finish(JobKind kind, JobOutcome outcome, const std::string& message, const std::string& path = "");
  void say(const std::string& line);

  // A long job (sampling, evaluation): shows `status` while it runs, restores the status
  // before it afterwards (a paused or running training stays so) even when it throws,
  // and hands `body` a progress callback that publishes and checks cancel.
  void long_job(JobStatus status, int total_steps, const std::function<void(const StepCallback&)>& body);

  // The model: a run (with its folder) or, before it trains or saves, a loose trainer.
  Trainer* trainer() const;
  // Gives a loose trainer its run folder: the one it was loaded from, or a new one.
  TrainingRun& ensure_run();
  // Replaces the model (null = none): a new serial, and the results of the old one go.
  void replace_model(std::unique_ptr<Trainer> trainer, const std::string& from_dir);
  std::string runs_root() const;

  // Reads a dataset without touching the worker's state (a failure changes nothing).
  std::shared_ptr<DatasetSplits> read_data(const DataConfig& config);
  // Makes `data` the worker's dataset (summary, preview).
  void adopt_data(std::shared_ptr<DatasetSplits> data);
  // Loads a checkpoint and everything it needs before anything held is replaced.
  void load_checkpoint(const std::string& path);
  void restore_history(const std::string& dir);
  void record_loss(int64_t step, float value);
  // The read steps' losses into the chart (and the newest gradient norm).
  void record_losses(const std::vector<StepResult>& measured);
  // Reads the steps still waiting on the device into the chart (deferred read-back, when
  // training pauses or stops); a non-finite one ends the job as a failed step would.
  bool read_back_losses();
  void set_preview(const at::Tensor& images, const at::Tensor& labels, int64_t step);

  // ControlNet training (worker_controlnet.cpp).
  // The current model's checkpoint for a ControlNet to train on: its newest, after saving
  // steps no checkpoint holds.
  std::string base_checkpoint_for_controlnet();
  // Computes the curve point due at the trainer's step; false when a command interrupted it.
  bool controlnet_curve_point();
  // Writes controlnet.pt; on `finish`, ends the job and loads the result (cmd::LoadControlNet).
  void end_controlnet_training(JobOutcome outcome, const std::string& message);
  void pause_controlnet(bool pause);
  // Reads the ControlNet steps still waiting on the device (controlnet.loss_read_every)
  // into its loss curve; false when one was non-finite: the job has then ended (Failed),
  // its file written at the last good step.
  bool read_back_controlnet();
  ControlNetTraining controlnet_training_status() const;
  Config m_config;
  EngineOptions m_options;
  WorkerLink m_link;
  c10::Device m_device = c10::Device(c10::kCPU);
  std::shared_ptr<DatasetSplits> m_data;
  DataConfig m_data_config;  // what m_data was read from

  std::unique_ptr<TrainingRun> m_run;
  std::unique_ptr<Trainer> m_loose;     // a model without a run folder yet
  std::string m_loose_dir;              // the run folder it was loaded from ("" none)
  int64_t m_loose_saved_step = 0;
  uint64_t m_model_serial = 0;
  int64_t m_preview_every = kDefaultPreviewEvery;
  double m_preview_every_s = 0.0;  // > 0: previews by training time instead

  JobStatus m_status = JobStatus::Idle;
  std::string m_message, m_error;
  std::vector<std::string> m_log;
  std::array<JobResult, kJobKindCount> m_jobs;
  uint64_t m_job_serial = 0;
  Clock::time_point m_last_publish = Clock::now();

  // Training statistics.
  std::vector<LossPoint> m_loss, m_test_loss;
  int64_t m_loss_stride = 1;  // keep every m_loss_stride-th step once the history is full
  double m_lr = 0, m_grad_norm = 0;
  FloatImages m_preview;
  std::vector<int64_t> m_preview_labels;
  int64_t m_preview_step = -1;

  // Sampling.
  int m_sample_step = 0, m_sample_total = 0;
  std::shared_ptr<const TrajectoryFrames> m_samples;
  bool m_samples_controlnet = false;   // the last run used the ControlNet's base
  std::vector<EvalRecord> m_evaluations;
  std::unique_ptr<Evaluator> m_evaluator;
  std::unique_ptr<LoadedControlNet> m_controlnet;
  bool m_controlnet_on_model = false;  // its base is the current model
  std::unique_ptr<ControlNetJob> m_cn_job;  // a ControlNet training (running or paused)
  ControlNetTraining m_cn_last;             // what the last one showed, once it ended
  std::vector<FoundControlNet> m_cn_found;
  uint64_t m_cn_found_serial = 0;
  int64_t m_cn_found_step = -1;
  std::string m_model_home;  // the run folder the model's checkpoint was loaded from ("" none)
  // The model is an exported copy (a starter model, core/train/export.h): it samples, and
  // Train starts a new model from scratch rather than fine-tuning it.
  bool m_model_exported = false;

  // Dataset summary.
  FloatImages m_data_preview;
  std::vector<int64_t> m_data_preview_labels, m_class_counts;
};

}  // namespace difflab

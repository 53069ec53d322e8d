#include "core/engine/worker.h"

#include <torch/torch.h>

#include <cmath>
#include <filesystem>

#include "core/eval/noisy_classifier.h"
#include "core/sampling/field.h"
#include "core/train/checkpoint_io.h"
#include "core/train/export.h"
#include "core/train/run_folder.h"
#include "core/util/runtime.h"
#include "core/vision/png.h"

namespace difflab {
namespace {

namespace fs = std::filesystem;

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// (N, ...) tensor → FloatImages (points become c = 2, h = w = 1).
FloatImages to_float_images(const at::Tensor& t) {
  FloatImages out;
  if (!t.defined() || t.numel() == 0) return out;
  auto f = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  out.n = static_cast<int>(f.size(0));
  out.c = f.dim() > 1 ? static_cast<int>(f.size(1)) : 1;
  out.h = f.dim() > 2 ? static_cast<int>(f.size(2)) : 1;
  out.w = f.dim() > 3 ? static_cast<int>(f.size(3)) : 1;
  out.data.assign(f.data_ptr<float>(), f.data_ptr<float>() + f.numel());
  return out;
}

std::vector<int64_t> to_vector(const at::Tensor& t) {
  auto c = t.to(torch::kCPU, torch::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

// What the snapshot says about a loaded ControlNet.
ControlNetStatus controlnet_status(const LoadedControlNet& cn) {
  ControlNetStatus status;
  status.ready = true;
  status.path = cn.path;
  status.base_path = cn.base_path;
  status.step = cn.step;
  status.base_step = cn.base_info.step;
  status.config = cn.config.controlnet;
  status.height = cn.base_info.shape.height;
  status.width = cn.base_info.shape.width;
  status.channels = cn.base_info.shape.channels;
  status.num_classes = cn.base->num_classes();
  return status;
}

// The trajectory of a finished run, thinned to `max_frames` evenly spread frames.
std::shared_ptr<TrajectoryFrames> to_frames(const SampleResult& result, const SampleConfig& config,
                                            int max_frames) {
  auto frames = std::make_shared<TrajectoryFrames>();
  frames->config = config;
  frames->final_images = to_float_images(result.images);
  frames->labels = to_vector(result.labels);
  const auto& tr = result.trajectory;
  frames->velocity = tr.velocity;
  const int total = static_cast<int>(tr.x_t.size());
  const int keep = std::min(total, std::max(2, max_frames));
  for (int k = 0; k < keep; ++k) {
    const int i = keep == 1 ? 0 : static_cast<int>(std::lround(k * (total - 1.0) / (keep - 1)));
    frames->timesteps.push_back(tr.timesteps[i]);
    frames->x_t.push_back(to_float_images(tr.x_t[i]));
    frames->x0.push_back(to_float_images(tr.x0[i]));
    frames->eps.push_back(to_float_images(tr.eps[i]));
  }
  return frames;
}

// The field's grid for the 2-D toy view: kFieldSide² points over [−kFieldHalfWidth,
// kFieldHalfWidth]² (the toy sets lie within ±2; sampling starts from N(0, I)).
constexpr int kFieldSide = 21;
constexpr double kFieldHalfWidth = 3.0;

// The model's field at every frame of a 2-D run (one batched forward of the grid a frame:
// 441 points through the MLP, about a millisecond each).
void add_field(TrajectoryFrames& frames, const SamplingModel& model, c10::Device device) {
  const auto axis = torch::linspace(-kFieldHalfWidth, kFieldHalfWidth, kFieldSide, torch::kFloat32);
  const auto grid = torch::stack({axis.repeat({kFieldSide}), axis.repeat_interleave(kFieldSide)}, 1);
  frames.field_grid = to_float_images(grid);
  const int64_t label = frames.config.class_label;
  // The sampling run's autoguidance too (a toy model: loading it again is cheap).
  const DenoiserNet guide = load_guide_model(frames.config, model, device);
  for (int t : frames.timesteps)
    frames.field.push_back(to_float_images(
        sampling_field(model, grid, t, label, frames.config.guidance, device,
                       frames.config.guidance_sigma_min, frames.config.guidance_sigma_max, guide)));
}

// A run folder's name stem for a dataset: mnist, fashion_mnist, toy2d-swiss_roll, ...
std::string run_stem(const DataConfig& data) {
  std::string stem(to_string(data.kind));
  if (data.kind == DatasetKind::Toy2d) stem += "-" + std::string(to_string(data.toy));
  return stem;
}

// One line about an existing file that a save would replace.
std::string describe_existing(const std::string& path) {
  try {
    const CheckpointInfo info = read_checkpoint_info(path);
    return path + " holds another checkpoint (" + std::string(to_string(info.config.data.kind)) +
           ", step " + std::to_string(info.step) + ")";
  } catch (const std::exception&) {
    return path + " exists";
  }
}

}  // namespace

// Worker::Worker and ~Worker: in worker_controlnet.cpp, where ControlNetJob is complete.

void Worker::start() {
  try {
    // Before any LibTorch call, so the OpenMP pool this thread creates inherits it.
    if (!lower_thread_priority(m_options.nice)) say("could not lower the worker's priority");
    const int threads = configure_threads(m_options.threads, m_options.reserve_cores);
    m_device = choose_device(m_options.device);
    say("worker ready: " + runtime_summary(m_device) + " (" + std::to_string(threads) + " threads)");
  } catch (const std::exception& e) {
    m_error = e.what();
    say("error: " + m_error);
  }
}

void Worker::say(const std::string& line) {
  m_message = line;
  m_log.push_back(line);
  if (m_log.size() > kMaxLogLines) m_log.erase(m_log.begin(), m_log.begin() + (m_log.size() - kMaxLogLines));
}

void Worker::finish(JobKind kind, JobOutcome outcome, const std::string& message, const std::string& path) {
  JobResult& r = m_jobs[static_cast<size_t>(kind)];
  r.outcome = outcome;
  r.serial = ++m_job_serial;
  r.message = message;
  r.path = path;
  if (outcome == JobOutcome::Failed) {
    m_error = message;
    say("error: " + message);
  } else {
    if (outcome == JobOutcome::Done) m_error.clear();
    say(message);
  }
}

JobKind Worker::job_of(const Command& command) {
  return std::visit(
      [](const auto& c) -> JobKind {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, cmd::SetConfig>) return JobKind::Config;
        if constexpr (std::is_same_v<T, cmd::LoadData>) return JobKind::Data;
        if constexpr (std::is_same_v<T, cmd::SaveCheckpoint>) return JobKind::Save;
        if constexpr (std::is_same_v<T, cmd::LoadCheckpoint> || std::is_same_v<T, cmd::ResumeRun>)
          return JobKind::Load;
        if constexpr (std::is_same_v<T, cmd::Sample>) return c.controlnet ? JobKind::ControlNet : JobKind::Sample;
        if constexpr (std::is_same_v<T, cmd::Evaluate>) return JobKind::Evaluate;
        if constexpr (std::is_same_v<T, cmd::LoadControlNet> || std::is_same_v<T, cmd::TrainControlNet> ||
                      std::is_same_v<T, cmd::FindControlNets>)
          return JobKind::ControlNet;
        if constexpr (std::is_same_v<T, cmd::Report>) return c.result.kind;
        return JobKind::Train;
      },
      command);
}

// Commands that would change the model a ControlNet is training for.
static bool changes_model(const Command& command) {
  return std::holds_alternative<cmd::SetConfig>(command) || std::holds_alternative<cmd::LoadData>(command) ||
         std::holds_alternative<cmd::StartTraining>(command) || std::holds_alternative<cmd::ResetModel>(command) ||
         std::holds_alternative<cmd::LoadCheckpoint>(command) || std::holds_alternative<cmd::ResumeRun>(command);
}

// Commands that use the weights or change the run's settings: with a deferred read-back
// they must see checked steps only.
static bool needs_checked_steps(const Command& command) {
  return std::holds_alternative<cmd::SetConfig>(command) || std::holds_alternative<cmd::Sample>(command) ||
         std::holds_alternative<cmd::Evaluate>(command) || std::holds_alternative<cmd::SaveCheckpoint>(command) ||
         std::holds_alternative<cmd::LoadControlNet>(command) || std::holds_alternative<cmd::TrainControlNet>(command);
}

void Worker::handle(Command& command) {
  if (m_cn_job && changes_model(command)) {
    finish(job_of(command), JobOutcome::Failed,
           "a ControlNet is training for this model (" + controlnet_training_status().dir + "): stop it first; nothing was changed");
    return;
  }
  // Steps whose losses still wait on the device are read first (train.loss_read_every): a
  // bad one ends the training job here, and the command then works on the run as it stood
  // after the last good step (saving it, for one, is what a user would want then).
  std::string read_error;
  if ((m_status == JobStatus::Training || m_status == JobStatus::Paused) && needs_checked_steps(command) &&
      !read_back_losses())
    read_error = m_error;
  try {
    std::visit([this](auto& c) { on(c); }, command);
  } catch (const std::exception& e) {
    if (m_status == JobStatus::LoadingData) m_status = JobStatus::Idle;
    finish(job_of(command), JobOutcome::Failed, e.what());
  }
  if (!read_error.empty() && m_error.empty()) m_error = read_error;  // a job done after it
}

// ---- the model and its run folder ----

Trainer* Worker::trainer() const { return m_run ? &m_run->trainer() : m_loose.get(); }

std::string Worker::runs_root() const {
  if (!m_options.runs_root.empty()) return m_options.runs_root;
  const fs::path parent = fs::path(m_config.train.out_dir).parent_path();
  return parent.empty() ? std::string("runs") : parent.string();
}

TrainingRun& Worker::ensure_run() {
  if (m_run) return *m_run;
  if (!m_loose) throw std::runtime_error("no model: train or load one first");
  // The folder the model was loaded from continues (its newest checkpoint was loaded);
  // anything else gets a new folder of its own.
  const bool resume = !m_loose_dir.empty();
  const std::string dir = resume ? m_loose_dir : new_run_dir(runs_root(), run_stem(m_config.data));
  RunOptions options{dir, resume, m_preview_every, m_preview_every_s};
  m_run = std::make_unique<TrainingRun>(std::move(m_loose), options);
  m_loose_dir.clear();
  remember_last_run(runs_root(), dir);
  say("run folder " + dir);
  return *m_run;
}

void Worker::replace_model(std::unique_ptr<Trainer> trainer, const std::string& from_dir) {
  m_run.reset();  // flushes the old run's logs
  m_loose = std::move(trainer);
  m_loose_dir = from_dir;
  m_loose_saved_step = m_loose ? m_loose->step() : 0;
  ++m_model_serial;
  if (m_status == JobStatus::Training || m_status == JobStatus::Paused) m_status = JobStatus::Idle;
  // Results belong to the model that made them.
  m_loss.clear();
  m_test_loss.clear();
  m_loss_stride = 1;
  m_lr = m_grad_norm = 0;
  m_preview = FloatImages{};
  m_preview_labels.clear();
  m_preview_step = -1;
  m_evaluations.clear();
  m_cn_last = ControlNetTraining{};
  m_cn_found.clear();
  m_cn_found_serial = 0;
  m_cn_found_step = -1;
  m_model_home.clear();
  m_model_exported = false;
  if (!m_samples_controlnet) m_samples.reset();
  if (m_controlnet_on_model) {
    m_controlnet.reset();
    m_controlnet_on_model = false;
    if (m_samples_controlnet) m_samples.reset();
  }
}

void Worker::record_loss(int64_t step, float value) {
  if (step % m_loss_stride == 0) m_loss.push_back({step, value});
  if (m_loss.size() >= kMaxLossPoints) {  // halve the resolution, keep the whole run
    std::vector<LossPoint> thin;
    for (size_t i = 0; i < m_loss.size(); i += 2) thin.push_back(m_loss[i]);
    m_loss = std::move(thin);
    m_loss_stride *= 2;
  }
}

void Worker::set_preview(const at::Tensor& images, const at::Tensor& labels, int64_t step) {
  m_preview = to_float_images(images);
  m_preview_labels = to_vector(labels);
  m_preview_step = step;
}

void Worker::restore_history(const std::string& dir) {
  const int64_t step = trainer()->step();
  const RunHistory h = read_run_history(dir, step);
  for (const auto& [s, v] : h.loss) record_loss(s, static_cast<float>(v));
  for (const auto& [s, v] : h.test_loss) m_test_loss.push_back({s, static_cast<float>(v)});
  if (!h.newest_preview.empty()) {
    try {  // the grid as one picture (no per-image labels)
      const Image8 grid = read_image(h.newest_preview);
      auto t = torch::from_blob(const_cast<uint8_t*>(grid.pixels.data()),
                                {1, grid.height, grid.width, grid.channels}, torch::kUInt8)
                   .permute({0, 3, 1, 2})
                   .to(torch::kFloat32)
                   .div(127.5)
                   .sub(1.0);
      m_preview = to_float_images(t);
      m_preview_labels.clear();
      m_preview_step = h.newest_preview_step;
    } catch (const std::exception& e) {
      say("preview " + h.newest_preview + " not shown: " + e.what());
    }
  }
}

// ---- data ----

std::shared_ptr<DatasetSplits> Worker::read_data(const DataConfig& config) {
  const JobStatus before = m_status;
  m_status = JobStatus::LoadingData;
  say("loading " + std::string(to_string(config.kind)) + " ...");
  publish();
  try {
    auto data = std::make_shared<DatasetSplits>(load_dataset(config));
    m_status = before == JobStatus::LoadingData ? JobStatus::Idle : before;
    return data;
  } catch (...) {
    m_status = before == JobStatus::LoadingData ? JobStatus::Idle : before;
    throw;
  }
}

void Worker::adopt_data(std::shared_ptr<DatasetSplits> data) {
  m_class_counts = to_vector(torch::bincount(data->train.labels));
  std::vector<int64_t> idx;
  if (data->shape.points) {
    for (int64_t i = 0; i < std::min<int64_t>(4000, data->train.size()); ++i) idx.push_back(i);
  } else {
    // Up to 8 examples of each class, laid out class by class.
    const int classes = std::max(1, static_cast<int>(m_class_counts.size()));
    auto labels = data->train.labels;
    for (int k = 0; k < classes; ++k) {
      auto where = (labels == k).nonzero().flatten();
      for (int64_t j = 0; j < std::min<int64_t>(8, where.size(0)); ++j) idx.push_back(where[j].item<int64_t>());
    }
  }
  auto index = torch::tensor(idx, torch::kLong);
  m_data_preview = to_float_images(gather_batch(data->train, index));
  m_data_preview_labels = to_vector(data->train.labels.index_select(0, index));
  m_data = std::move(data);
}

void Worker::on(cmd::SetConfig& c) {
  validate(c.config, "the edited config");
  Trainer* model = trainer();
  const bool model_changes = model && !same_model(model->config(), c.config);
  const bool data_changes = !same_data(m_config.data, c.config.data);
  // The new data must load before anything held is dropped: a bad path keeps it all.
  std::shared_ptr<DatasetSplits> data;
  if (data_changes && (m_data || model)) data = read_data(c.config.data);
  m_config = c.config;
  if (data) {
    adopt_data(data);
    m_data_config = m_config.data;
  } else if (data_changes) {
    m_data.reset();
  }
  if (model && (model_changes || data_changes)) {
    replace_model(nullptr, "");
    finish(JobKind::Config, JobOutcome::Done,
           std::string("config applied: the model was discarded (new ") +
               (data_changes ? "data" : "architecture") + ")");
  } else if (model) {
    if (m_run) m_run->set_train_config(m_config.train);
    else m_loose->set_train_config(m_config.train);
    m_config.model.num_classes = model->config().model.num_classes;  // taken from the data
    finish(JobKind::Config, JobOutcome::Done, "config applied to the current run");
  } else {
    finish(JobKind::Config, JobOutcome::Done, "config applied");
  }
  if (data) finish(JobKind::Data, JobOutcome::Done, m_data->description);
}

void Worker::on(cmd::LoadData&) {
  if (m_data && same_data(m_data_config, m_config.data)) {
    finish(JobKind::Data, JobOutcome::Done, m_data->description);
    return;
  }
  auto data = read_data(m_config.data);
  if (trainer() && !same_data(trainer()->config().data, m_config.data)) {
    replace_model(nullptr, "");
    say("the dataset changed: the model was discarded");
  }
  adopt_data(std::move(data));
  m_data_config = m_config.data;
  finish(JobKind::Data, JobOutcome::Done, m_data->description);
}

// ---- training ----

void Worker::on(cmd::StartTraining&) {
  if (!m_data || !same_data(m_data_config, m_config.data)) {
    cmd::LoadData load;
    on(load);
  };
  if (m_model_exported) {  // also after Save or a ControlNet gave it a run folder
    // A starter model is there to sample; training makes a model of one's own.
    say("the starter model stays as it was: training starts a new model from scratch");
    replace_model(nullptr, "");
  }
  if (!trainer()) {
    auto fresh = std::make_unique<Trainer>(m_config, m_data, m_device);
    m_config = fresh->config();  // num_classes taken from the data
    replace_model(std::move(fresh), "");
    say("new model: " + std::to_string(trainer()->parameter_count()) + " parameters");
  }
  TrainingRun& run = ensure_run();
  if (run.trainer().step() >= m_config.train.steps)
    throw std::runtime_error("already at step " + std::to_string(run.trainer().step()) +
                             " of train.steps = " + std::to_string(m_config.train.steps) +
                             ": raise the step count to train further");
  // train.precision: auto measures fp32 against bf16 here on first use (seconds, once per
  // machine and network), before the clock starts.
  say(run.trainer().precision().reason);
  m_status = JobStatus::Training;
  m_error.clear();
  run.restart_clock();
  finish(JobKind::Train, JobOutcome::Running,
         "training from step " + std::to_string(run.trainer().step()) + " in " + run.dir(), run.dir());
}

void Worker::on(cmd::Pause&) {
  if (m_status == JobStatus::TrainingControlNet) return pause_controlnet(true);
  if (m_status != JobStatus::Training) return;
  if (!read_back_losses()) return;
  m_status = JobStatus::Paused;
  say("paused at step " + std::to_string(trainer()->step()));
}

bool Worker::read_back_losses() {
  if (!m_run) return true;
  try {
    record_losses(m_run->read_back());
    return true;
  } catch (const std::exception& e) {
    record_losses(m_run->take_read_before_error());
    m_status = JobStatus::Error;
    std::string message = e.what();
    if (!m_run->saved_path().empty()) message += "; the last good checkpoint is " + m_run->saved_path();
    finish(JobKind::Train, JobOutcome::Failed, message);
    return false;
  }
}

void Worker::record_losses(const std::vector<StepResult>& measured) {
  for (const StepResult& r : measured) record_loss(r.step, static_cast<float>(r.loss));
  if (!measured.empty()) m_grad_norm = measured.back().grad_norm;
}

void Worker::on(cmd::Resume&) {
  if (m_status == JobStatus::ControlNetPaused) return pause_controlnet(false);
  if (m_status != JobStatus::Paused) return;
  m_status = JobStatus::Training;
  if (m_run) m_run->restart_clock();
  say("resumed");
}

void Worker::on(cmd::Stop&) {
  if (m_cn_job) {
    if (!read_back_controlnet()) return;
    end_controlnet_training(JobOutcome::Done,
                            "ControlNet stopped at step " + std::to_string(controlnet_training_status().step));
    return;
  }
  if (m_status != JobStatus::Training && m_status != JobStatus::Paused) return;
  if (!read_back_losses()) return;
  m_status = JobStatus::Idle;
  finish(JobKind::Train, JobOutcome::Done, "stopped at step " + std::to_string(trainer()->step()));
}

void Worker::on(cmd::ResetModel&) {
  replace_model(nullptr, "");
  m_status = JobStatus::Idle;
  finish(JobKind::Train, JobOutcome::Done, "model discarded: the next Train starts a new run");
}

void Worker::on(cmd::SetPreviewEvery& c) {
  m_preview_every = c.steps;
  m_preview_every_s = std::max(0.0, c.seconds);
  if (m_run) {
    m_run->set_preview_every(c.steps);
    m_run->set_preview_every_s(m_preview_every_s);
  }
}

void Worker::train_tick() {
  TrainingRun& run = *m_run;
  try {
    const RunStepReport r = run.step();
    m_lr = r.step.lr;
    record_losses(r.measured);
    if (!std::isnan(r.test_loss)) m_test_loss.push_back({r.step.step, static_cast<float>(r.test_loss)});
    if (r.previewed) set_preview(r.preview_images, r.preview_labels, r.step.step);
    if (!r.checkpoint.empty()) say("checkpoint " + r.checkpoint);
    if (r.finished) {
      m_status = JobStatus::Idle;
      run.checkpoint();
      finish(JobKind::Train, JobOutcome::Done,
             "training finished at step " + std::to_string(r.step.step) + ": " + run.saved_path(),
             run.saved_path());
    }
  } catch (const std::exception& e) {
    record_losses(run.take_read_before_error());
    m_status = JobStatus::Error;
    std::string message = e.what();
    if (!run.saved_path().empty()) message += "; the last good checkpoint is " + run.saved_path();
    finish(JobKind::Train, JobOutcome::Failed, message);
  }
  if (m_status != JobStatus::Training || seconds_since(m_last_publish) > m_options.publish_interval_s) {
    publish();
    m_last_publish = Clock::now();
  }
}

// ---- checkpoints ----

void Worker::on(cmd::SaveCheckpoint& c) {
  Trainer* model = trainer();
  if (!model) throw std::runtime_error("no model to save: train or load one first");
  if (c.path.empty()) {
    TrainingRun& run = ensure_run();
    const std::string path = run.checkpoint();
    finish(JobKind::Save, JobOutcome::Done, "saved " + path + " (step " + std::to_string(model->step()) + ")", path);
    return;
  }
  std::error_code ec;
  const bool own = m_run && !m_run->saved_path().empty() && fs::equivalent(c.path, m_run->saved_path(), ec);
  if (fs::exists(c.path, ec) && !own && !c.overwrite) {
    finish(JobKind::Save, JobOutcome::NeedsConfirmation,
           describe_existing(c.path) + ": replace it? Nothing was written.", c.path);
    return;
  }
  model->save_checkpoint(c.path);
  if (!m_run) m_loose_saved_step = model->step();
  finish(JobKind::Save, JobOutcome::Done, "saved " + c.path + " (step " + std::to_string(model->step()) + ")", c.path);
}

void Worker::load_checkpoint(const std::string& path) {
  // Everything is read and checked before anything the user has is replaced. The file is
  // read once (it used to be three times: info, export tag, weights).
  torch::serialize::InputArchive archive;
  open_checkpoint(path, archive, CheckpointKind::Model);
  const CheckpointInfo info = read_checkpoint_info(archive, path);
  const bool exported = !exported_precision(archive).empty();
  Config config = info.config;
  config.train.out_dir = m_config.train.out_dir;
  const bool new_data = !m_data || !same_data(m_data_config, config.data);
  auto data = new_data ? read_data(config.data) : m_data;
  auto loaded = std::make_unique<Trainer>(config, data, m_device);
  loaded->load_checkpoint(archive, path);
  // Training continues in the checkpoint's folder only from its newest checkpoint (an
  // older one would move `latest` back); otherwise the next Train or Save makes a new one.
  std::string dir = run_dir_of_checkpoint(path);
  std::error_code ec;
  if (exported || (!dir.empty() && !fs::equivalent(latest_checkpoint(dir), path, ec))) dir.clear();
  m_config = loaded->config();
  if (new_data) {
    adopt_data(data);
    m_data_config = config.data;
  }
  replace_model(std::move(loaded), dir);
  if (exported) {  // its ControlNets lie beside it (assets/starters/<set>/controlnets/)
    m_model_exported = true;
    m_model_home = fs::path(path).parent_path().string();
    return;
  }
  const std::string history_dir = run_dir_of_checkpoint(path);
  m_model_home = history_dir;
  if (!history_dir.empty()) restore_history(history_dir);
}

void Worker::on(cmd::LoadCheckpoint& c) {
  load_checkpoint(c.path);
  finish(JobKind::Load, JobOutcome::Done,
         "loaded " + c.path + " at step " + std::to_string(trainer()->step()) +
             (m_model_exported ? " (a starter model, EMA weights only: Generate, scrub and draw "
                                 "hints now; Train starts a model of your own from scratch)"
                               : ""),
         c.path);
  if (!m_model_exported) return;
  // A starter's ControlNets lie beside it: one is loaded too, so hints work at once (the
  // mixed canny/scribble one where there is one: a drawn scribble is the first thing to try).
  cmd::FindControlNets find;
  on(find);
  const FoundControlNet* pick = nullptr;
  for (const auto& found : m_cn_found)
    if (found.fits && (!pick || (found.hint == HintKind::Mixed && pick->hint != HintKind::Mixed))) pick = &found;
  if (!pick) return;
  const std::string path = pick->path;  // loading lists the ControlNets again
  try {
    cmd::LoadControlNet load{path, ""};
    on(load);
  } catch (const std::exception& e) {
    say("the starter's ControlNet " + path + " did not load: " + e.what());
  }
}

void Worker::on(cmd::ResumeRun& c) {
  const std::string path = latest_checkpoint(c.dir);
  if (path.empty()) throw std::runtime_error("run folder " + c.dir + " holds no checkpoint to resume");
  load_checkpoint(path);
  finish(JobKind::Load, JobOutcome::Done,
         "resumed " + c.dir + " from " + path + " (step " + std::to_string(trainer()->step()) + ")", path);
  if (c.train && trainer()->step() < m_config.train.steps) {
    cmd::StartTraining start;
    on(start);
  };
}

void Worker::on(cmd::LoadControlNet& c) {
  // Loaded and checked completely before the one held is replaced.
  Trainer* model = trainer();
  std::unique_ptr<LoadedControlNet> loaded;
  if (model && c.base_override.empty()) {
    CheckpointInfo base_info{model->config(), model->data().shape, model->step()};
    const std::string label = m_run ? m_run->dir() : std::string("the current model");
    loaded = std::make_unique<LoadedControlNet>(
        load_controlnet_onto(c.path, model->ema_model(), base_info, label, m_device));
  } else {
    loaded = std::make_unique<LoadedControlNet>(load_controlnet(c.path, m_device, c.base_override));
  }
  m_controlnet = std::move(loaded);
  m_controlnet_on_model = model && c.base_override.empty();
  const auto& cn = *m_controlnet;
  finish(JobKind::ControlNet, JobOutcome::Done,
         "ControlNet " + c.path + " (step " + std::to_string(cn.step) + ", hints " +
             std::string(to_string(cn.config.controlnet.hint)) + ") on " +
             (m_controlnet_on_model ? "the current model" : "base " + cn.base_path),
         c.path);
}

void Worker::on(cmd::Report& c) { finish(c.result.kind, c.result.outcome, c.result.message, c.result.path); }

// ---- sampling ----

void Worker::long_job(JobStatus status, int total_steps, const std::function<void(const StepCallback&)>& body) {
  const JobStatus before = m_status;  // a paused or running training stays so afterwards
  struct Restore {
    Worker& w;
    JobStatus before;
    ~Restore() { w.m_status = before == JobStatus::Sampling ? JobStatus::Idle : before; }
  } restore{*this, before};
  m_status = status;
  m_sample_step = 0;
  m_sample_total = total_steps;
  publish();
  auto last_publish = Clock::now();
  body([&](const StepInfo& s) {
    m_sample_step = s.index + 1;
    m_sample_total = s.total;  // a chunked run reports its steps over every chunk
    if (seconds_since(last_publish) > m_options.publish_interval_s) {
      publish();
      last_publish = Clock::now();
    }
    return !m_link.cancel->load() && !m_link.shutdown->load();
  });
}

void Worker::on(cmd::Sample& c) {
  const JobKind kind = c.controlnet ? JobKind::ControlNet : JobKind::Sample;
  if (c.controlnet && !m_controlnet)
    throw std::runtime_error("no ControlNet loaded: load a train-controlnet checkpoint first");
  if (!c.controlnet && !trainer()) throw std::runtime_error("no model to sample from: train or load one first");
  at::Tensor hint;
  if (c.controlnet) {
    const auto& st = m_controlnet->base_info.shape;
    const size_t expected = static_cast<size_t>(kHintChannels) * st.height * st.width;
    if (c.hint.size() != expected)
      throw std::runtime_error("ControlNet hint has " + std::to_string(c.hint.size()) +
                               " values, the model needs " + std::to_string(expected));
    hint = torch::tensor(c.hint).view({1, kHintChannels, st.height, st.width});
  }
  finish(kind, JobOutcome::Running,
         "sampling " + std::to_string(c.config.n) + " with " + std::string(to_string(c.config.sampler)) +
             ", " + std::to_string(c.config.steps) + " steps");
  const auto start = Clock::now();
  SampleResult result;
  long_job(JobStatus::Sampling, c.config.steps, [&](const StepCallback& progress) {
    if (!c.controlnet) {
      result = trainer()->sample(c.config, true, progress);
      return;
    }
    const auto& cn = *m_controlnet;
    const SamplingModel model = sampling_model(cn);
    SampleRequest request;
    request.config = c.config;
    request.record_trajectory = true;
    request.control = {cn.net, hint.to(m_device), c.control_scale};
    request.classifier = load_classifier_guidance(c.config, model, m_device);
    request.guide = load_guide_model(c.config, model, m_device);  // refused with a ControlNet
    result = run_sampling(model, request, m_device, progress);
  });
  if (result.cancelled) {
    finish(kind, JobOutcome::Cancelled, "sampling cancelled at step " + std::to_string(m_sample_step));
    return;
  }
  if (result.precision.measured && !result.precision.cached) say(result.precision.reason);
  auto frames = to_frames(result, c.config, c.max_frames);
  frames->seconds = seconds_since(start);
  if (c.controlnet) {
    frames->hint = to_float_images(hint);
    frames->control_scale = c.control_scale;
  }
  frames->model_serial = c.controlnet && !m_controlnet_on_model ? 0 : m_model_serial;
  if (!c.controlnet && m_data && m_data->shape.points && !frames->x_t.empty())
    add_field(*frames, sampling_model(*trainer(), c.config.use_ema), m_device);
  m_samples = std::move(frames);
  m_samples_controlnet = c.controlnet;
  char line[128];
  std::snprintf(line, sizeof line, "sampled %d %s%s in %.1f s", c.config.n,
                !c.controlnet && m_data && m_data->shape.points ? "points" : "images",
                c.controlnet ? " with the ControlNet" : "", m_samples->seconds);
  finish(kind, JobOutcome::Done, line);
}

void Worker::on(cmd::Evaluate& c) {
  Trainer* model = trainer();
  if (!model) throw std::runtime_error("no model to evaluate: train or load one first");
  if (model->data().shape.points)
    throw std::runtime_error("the evaluator scores images; 2-D points have none to score");
  const auto& data = model->data();
  const auto start = Clock::now();
  SampleResult result;
  long_job(JobStatus::Sampling, c.config.steps, [&](const StepCallback& progress) {
    if (!m_evaluator || m_evaluator->info().dataset_key != dataset_key(data)) {
      const std::string cache = evaluator_cache_path(m_run ? m_run->dir() : m_config.train.out_dir);
      finish(JobKind::Evaluate, JobOutcome::Running,
             "evaluator classifier: " + cache + " (trained on the first use, about 30 s)");
      publish();
      m_evaluator = std::make_unique<Evaluator>(load_or_train_evaluator(
          cache, data, EvaluatorOptions{}, m_device, [&](const std::string& line) {
            say(line);
            publish();
          }));
    }
    finish(JobKind::Evaluate, JobOutcome::Running,
           "evaluating " + std::to_string(c.config.n) + " samples of " +
               std::string(to_string(c.config.sampler)) + ", " + std::to_string(c.config.steps) + " steps");
    publish();
    result = model->sample(c.config, false, progress);
  });
  if (result.cancelled) {
    finish(JobKind::Evaluate, JobOutcome::Cancelled, "evaluation cancelled at step " + std::to_string(m_sample_step));
    return;
  }
  const EvalResult r = evaluate_samples(*m_evaluator, result.images, result.labels, data, c.config.seed);
  m_evaluations.push_back(
      {model->step(), c.config, r.n, r.accuracy, r.fd, r.fd_floor, seconds_since(start), m_model_serial});
  char line[200];
  std::snprintf(line, sizeof line, "evaluated %lld samples: accuracy %.1f %%, FD %.2f (floor %.2f)",
                static_cast<long long>(r.n), 100.0 * r.accuracy, r.fd, r.fd_floor);
  // The run folder keeps the score beside its losses (the Runs panel plots both).
  const std::string run_dir = m_run ? m_run->dir() : m_loose_dir;
  if (!run_dir.empty()) {
    const std::string record = (std::filesystem::path(run_dir) / kRunEvaluationsFile).string();
    try {
      append_evaluation_csv(
          record, evaluation_record("", model->step(), c.config, r, seconds_since(start)));
    } catch (const std::exception& ex) {
      say(std::string("the score was not recorded: ") + ex.what());
    }
  }
  finish(JobKind::Evaluate, JobOutcome::Done, line);
}

void Worker::on(cmd::Cancel&) {
  // Nothing is sampling now (the flag stops a run inside it): the flag has done its work.
}

// ---- the snapshot ----

std::shared_ptr<Snapshot> Worker::make_snapshot() const {
  auto s = std::make_shared<Snapshot>();
  s->status = m_status;
  s->message = m_message;
  s->error = m_error;
  s->config = m_config;
  const Trainer* model = trainer();
  s->model_ready = model != nullptr;
  s->parameters = model ? model->parameter_count() : 0;
  s->model_serial = m_model_serial;
  s->jobs = m_jobs;
  if (m_run) {
    s->run.dir = m_run->dir();
    s->run.saved_step = m_run->saved_path().empty() ? -1 : m_run->saved_step();
    s->run.saved_path = m_run->saved_path();
    s->run.unsaved_steps = m_run->unsaved_steps();
    s->run.autosave_in_s = m_status == JobStatus::Training ? m_run->seconds_to_autosave() : -1.0;
    s->run.preview_in_s = m_status == JobStatus::Training ? m_run->seconds_to_preview() : -1.0;
    s->images_per_s = m_run->images_per_s();
    s->eta_s = std::max(0.0, m_run->eta_s());
  } else if (m_loose) {
    s->run.dir = m_loose_dir;
    s->run.saved_step = m_loose_saved_step;
    s->run.unsaved_steps = m_loose->step() - m_loose_saved_step;
  }
  s->data_ready = m_data != nullptr;
  if (m_data) {
    s->data_description = m_data->description;
    s->class_names = m_data->class_names;
    s->class_counts = m_class_counts;
    s->points = m_data->shape.points;
    s->data_preview = m_data_preview;
    s->data_preview_labels = m_data_preview_labels;
  }
  if (model) {
    s->step = model->step();
    s->epoch = model->epoch();
    s->loss_by_t = model->loss_by_timestep(10);
    s->loss_weight_by_t = model->loss_weight_by_timestep(10);
  }
  s->total_steps = m_config.train.steps;
  s->lr = m_lr;
  s->grad_norm = m_grad_norm;
  s->loss = m_loss;
  s->test_loss = m_test_loss;
  s->preview = m_preview;
  s->preview_labels = m_preview_labels;
  s->preview_step = m_preview_step;
  s->sample_step = m_sample_step;
  s->sample_total = m_sample_total;
  s->samples = m_samples;
  s->evaluations = m_evaluations;
  if (m_controlnet) s->controlnet = controlnet_status(*m_controlnet);
  s->controlnet_training = controlnet_training_status();
  s->controlnets_found = m_cn_found;
  s->controlnets_found_serial = m_cn_found_serial;
  s->controlnets_found_step = m_cn_found_step;
  s->log = m_log;
  return s;
}

}  // namespace difflab

// The worker's ControlNet training (cmd::TrainControlNet): a ControlNetTrainer for the
// current model, stepped between commands like the model's own training (Pause, Resume
// and Stop act on it), with its files in the model's run folder and the hint-following
// curve; and the list of the ControlNets that fit the model (cmd::FindControlNets).
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/engine/worker.h"
#include "core/eval/control_eval.h"
#include "core/train/metrics_log.h"
#include "core/train/run_folder.h"
#include "core/util/paths.h"

namespace difflab {

struct ControlNetJob {
  std::unique_ptr<ControlNetTrainer> trainer;
  std::unique_ptr<MetricsLog> log;
  HintCurve curve;
  SamplingModel base;         // the frozen base, for the curve's samples
  ControlNetTraining status;  // folder, progress, loss and curve (what the snapshot shows)
  int64_t loss_stride = 1;
  bool curve_due = true;  // a curve point is owed before the next step (at the start, too)
  // The steps since the last metrics row, and the rate window.
  int window_steps = 0;
  double window_loss = 0.0, window_grad = 0.0, lr = 0.0;
  std::chrono::steady_clock::time_point window_start = std::chrono::steady_clock::now();
};

namespace {

namespace fs = std::filesystem;

constexpr const char* kControlNetsFolder = "controlnets";  // <run>/controlnets/<hint>-N/
constexpr const char* kControlNetFile = "controlnet.pt";
constexpr int64_t kLogEvery = 25;  // steps per metrics.csv row, as difflab-cli train-controlnet
// One curve point: 8 held-out hints, 10 DDIM steps (a few seconds on 2 CPU cores for MNIST).
constexpr int kCurveImages = 8;
constexpr int kCurveSteps = 10;

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Appends (step, value), halving the resolution once kMaxLossPoints are kept.
void push_thinned(std::vector<LossPoint>& points, int64_t& stride, int64_t step, double value) {
  if (step % stride == 0) points.push_back({step, static_cast<float>(value)});
  if (points.size() >= kMaxLossPoints) {
    std::vector<LossPoint> thin;
    for (size_t i = 0; i < points.size(); i += 2) thin.push_back(points[i]);
    points = std::move(thin);
    stride *= 2;
  }
}

// The steps the trainer has read since the last call (every step on the CPU; with a
// deferred read-back every controlnet.loss_read_every, or when read_back is called): into
// the loss curve and the metrics window.
void take_losses(ControlNetJob& job) {
  for (const ControlNetStepResult& r : job.trainer->take_measured()) {
    push_thinned(job.status.loss, job.loss_stride, r.step, r.loss);
    job.window_loss += r.loss;
    job.window_grad += r.grad_norm;
    ++job.window_steps;
  }
}

// A metrics.csv row at the trainer's step: the means over the steps read since the last
// row, and the rate; the window starts again.
void write_row(ControlNetJob& job) {
  if (job.window_steps == 0) return;
  const double dt = std::max(seconds_since(job.window_start), 1e-9);
  job.status.images_per_s = job.window_steps * job.trainer->config().controlnet.batch_size / dt;
  job.log->write(job.trainer->step(),
                 {job.window_loss / job.window_steps, std::nan(""), std::nan(""), job.lr,
                  job.window_grad / job.window_steps, job.status.images_per_s});
  job.window_loss = job.window_grad = 0.0;
  job.window_steps = 0;
  job.window_start = std::chrono::steady_clock::now();
}

// A new folder <run>/controlnets/<hint>-N (the first free N ≥ 1), created here so that no
// other run's folder is ever reused.
std::string claim_controlnet_dir(const std::string& run_dir, HintKind hint) {
  const fs::path parent = fs::path(run_dir) / kControlNetsFolder;
  make_dirs(parent.string());
  for (int n = 1; n < 100000; ++n) {
    const fs::path dir = parent / (std::string(to_string(hint)) + "-" + std::to_string(n));
    if (file_at(dir.string())) continue;
    std::error_code ec;
    if (fs::create_directory(dir, ec)) return dir.string();
    if (ec)
      throw std::runtime_error("cannot create the ControlNet folder '" + dir.string() +
                               "': " + ec.message());
  }
  throw std::runtime_error("no free ControlNet folder name in " + parent.string());
}

// controlnet.pt files in `dir`, its sub-folders and controlnets/*/, sorted.
std::vector<std::string> controlnet_files(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  auto add = [&](const fs::path& p) {
    if (fs::is_regular_file(p, ec)) out.push_back(p.string());
  };
  add(fs::path(dir) / kControlNetFile);
  for (const fs::path& folder : {fs::path(dir), fs::path(dir) / kControlNetsFolder}) {
    if (!fs::is_directory(folder, ec)) continue;
    for (const auto& entry : fs::directory_iterator(folder, ec))
      if (entry.is_directory(ec)) add(entry.path() / kControlNetFile);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace

Worker::Worker(Config config, EngineOptions options, WorkerLink link)
    : m_config(std::move(config)), m_options(std::move(options)), m_link(std::move(link)) {
  for (size_t k = 0; k < kJobKindCount; ++k) m_jobs[k].kind = static_cast<JobKind>(k);
}

Worker::~Worker() {
  // Quitting while a ControlNet trains keeps what it learned: its folder gets controlnet.pt
  // at the last finished step (the app's worker has stopped between two steps by now).
  if (!m_cn_job) return;
  // A destructor reports nothing. Steps still unread are checked first: a bad one sends the
  // trainer back to the last good step, which is then what the file holds.
  try {
    m_cn_job->trainer->read_back();
  } catch (...) {
  }
  try {
    m_cn_job->trainer->save(m_cn_job->status.path);
  } catch (...) {  // the periodic checkpoint stays
  }
  try {
    m_cn_job->log->flush();
  } catch (...) {
  }
}

std::string Worker::base_checkpoint_for_controlnet() {
  TrainingRun& run = ensure_run();
  if (run.saved_path().empty() || run.unsaved_steps() > 0) {
    const std::string path = run.checkpoint();
    say("saved the model first (a ControlNet trains for a checkpoint): " + path);
  }
  return run.saved_path();
}

void Worker::on(cmd::TrainControlNet& c) {
  if (m_cn_job) throw std::runtime_error("a ControlNet is already training: stop it first");
  if (m_status == JobStatus::Training || m_status == JobStatus::Paused)
    throw std::runtime_error(
        "the model is training: stop it first (a ControlNet trains for a fixed model)");
  Trainer* model = trainer();
  if (!model)
    throw std::runtime_error(
        "no model: train or load one first (a ControlNet steers a trained model)");
  if (model->data().shape.points)
    throw std::runtime_error("a ControlNet needs an image model, not 2-D points");
  if (!m_data || !same_data(m_data_config, model->config().data))
    throw std::runtime_error(
        "the model's dataset is not loaded: load it in the Dataset panel first");
  const CheckpointInfo base_info{model->config(), model->data().shape, model->step()};

  Config config = model->config();
  config.controlnet = m_config.controlnet;
  config.controlnet.hint = c.hint;
  std::string resume_path;
  if (!c.resume_dir.empty()) {
    resume_path = (fs::path(c.resume_dir) / kControlNetFile).string();
    if (!fs::is_regular_file(resume_path))
      throw std::runtime_error("nothing to continue in " + c.resume_dir + ": no " +
                               kControlNetFile);
    // Its settings, and a check that it belongs to this model, before anything is written.
    const LoadedControlNet previous = load_controlnet_onto(
        resume_path, model->ema_model(), base_info, "the current model", m_device);
    config.controlnet = previous.config.controlnet;
  }
  if (c.steps > 0) config.controlnet.steps = c.steps;
  const std::string base_path = base_checkpoint_for_controlnet();
  config.controlnet.base_checkpoint = base_path;

  auto job = std::make_unique<ControlNetJob>();
  job->trainer = std::make_unique<ControlNetTrainer>(config, m_data, m_device);
  ControlNetTrainer& t = *job->trainer;
  std::string dir = c.resume_dir;
  bool exact = true;
  if (!resume_path.empty()) {
    exact = t.resume(resume_path);
    if (t.step() >= t.config().controlnet.steps)
      throw std::runtime_error(resume_path + " is already at step " + std::to_string(t.step()) +
                               " of " + std::to_string(t.config().controlnet.steps) +
                               ": raise the step count to train further");
  } else {
    dir = claim_controlnet_dir(m_run->dir(), c.hint);
  }
  ControlNetTraining& st = job->status;
  st.active = true;
  st.dir = dir;
  st.path = (fs::path(dir) / kControlNetFile).string();
  st.base_path = base_path;
  st.hint = t.config().controlnet.hint;
  st.step = t.step();
  st.saved_step = resume_path.empty() ? -1 : t.step();
  st.total_steps = t.config().controlnet.steps;
  st.curve_every = std::max<int64_t>(0, c.curve_every);
  Config saved = t.config();
  saved.controlnet.out_dir = dir;
  save_config(saved, (fs::path(dir) / "config.yaml").string());
  // The curve's columns name its score: hint_f1, hint_iou or hint_mad (core/vision/hint_preview.h).
  const std::string score = std::string("hint_") + hint_metric(t.config().controlnet.hint).key;
  job->log = std::make_unique<MetricsLog>(
      dir, std::vector<std::string>{"loss", score, score + "_base", "lr", "grad_norm", "images_per_s"});
  if (st.curve_every > 0) {
    HintCurveOptions curve;
    curve.n = kCurveImages;
    curve.steps = kCurveSteps;
    curve.seed = t.config().controlnet.seed + 1;
    job->curve = make_hint_curve(*m_data, t.config().controlnet, curve);
    job->base = sampling_model(t.base(), t.config().diffusion, m_data->shape);
    st.curve_images = static_cast<int>(job->curve.hints.size(0));
    st.curve_steps = kCurveSteps;
  }
  job->curve_due = st.curve_every > 0;
  m_cn_job = std::move(job);
  m_status = JobStatus::TrainingControlNet;
  m_error.clear();
  const std::string from = resume_path.empty() ? "a new ControlNet"
                                               : "ControlNet step " + std::to_string(t.step()) +
                                                     (exact ? "" : " (weights only)");
  finish(JobKind::ControlNet, JobOutcome::Running,
         "training " + from + " (" + std::string(to_string(st.hint)) + " hints, to step " +
             std::to_string(st.total_steps) + ") for " + base_path + " in " + dir,
         dir);
}

bool Worker::controlnet_curve_point() {
  ControlNetJob& job = *m_cn_job;
  const auto start = Clock::now();
  const StepCallback progress = [this](const StepInfo&) {
    return !(m_link.interrupted && m_link.interrupted()) && !m_link.shutdown->load();
  };
  ControlNet net = job.trainer->controlnet();
  EvalModeGuard eval_mode(net);
  if (job.status.f1_without < 0.0) {  // the base alone: once per run, the same hints and seeds
    const double f1 = hint_curve_score(job.curve, job.base, ControlNet{}, 0.0, m_device, progress);
    if (std::isnan(f1)) return false;
    job.status.f1_without = f1;
  }
  const double f1 = hint_curve_score(job.curve, job.base, net, 1.0, m_device, progress);
  if (std::isnan(f1)) return false;
  const int64_t step = job.trainer->step();
  job.status.f1.push_back({step, static_cast<float>(f1)});
  job.status.curve_seconds = seconds_since(start);
  job.curve_due = false;
  job.log->write(
      step, {std::nan(""), f1, job.status.f1_without, std::nan(""), std::nan(""), std::nan("")});
  char line[200];
  std::snprintf(line, sizeof line,
                "ControlNet step %lld: hint-following %s %.3f (base alone %.3f), %.1f s",
                static_cast<long long>(step), hint_metric(job.curve.kind).name, f1,
                job.status.f1_without, job.status.curve_seconds);
  say(line);
  return true;
}

void Worker::controlnet_tick() {
  ControlNetJob& job = *m_cn_job;
  ControlNetTrainer& t = *job.trainer;
  ControlNetTraining& st = job.status;
  try {
    if (job.curve_due && !controlnet_curve_point()) {
      publish();  // a Pause or Stop waits: it goes first, the point comes later
      m_last_publish = Clock::now();
      return;
    }
    const ControlNetStepResult r = t.train_step();
    st.step = r.step;
    job.lr = r.lr;
    const bool last = r.step >= st.total_steps;
    const bool row = r.step % kLogEvery == 0 || last;
    const bool curve = st.curve_every > 0 && (r.step % st.curve_every == 0 || last);
    const int64_t every = t.config().controlnet.checkpoint_every;
    const bool save = every > 0 && r.step % every == 0 && !last;
    // Metrics rows, curve points and checkpoints hold checked steps only.
    if (row || curve || save) t.read_back();  // throws on a non-finite step
    take_losses(job);
    if (row) write_row(job);
    if (curve) job.curve_due = true;
    if (save) {
      t.save(st.path);
      st.saved_step = r.step;
      say("ControlNet checkpoint " + st.path + " (step " + std::to_string(r.step) + ")");
    }
    if (last) {
      if (job.curve_due)
        controlnet_curve_point();  // the end of the curve (skipped if a command waits)
      end_controlnet_training(JobOutcome::Done,
                              "ControlNet trained to step " + std::to_string(r.step));
    }
  } catch (const std::exception& e) {
    end_controlnet_training(JobOutcome::Failed,
                            std::string("ControlNet training stopped: ") + e.what());
  }
  if (m_status != JobStatus::TrainingControlNet ||
      seconds_since(m_last_publish) > m_options.publish_interval_s) {
    publish();
    m_last_publish = Clock::now();
  }
}

void Worker::pause_controlnet(bool pause) {
  if (!m_cn_job) return;
  ControlNetJob& job = *m_cn_job;
  // The paused run shows its checked loss up to the step it stopped at.
  if (pause && !read_back_controlnet()) return;
  m_status = pause ? JobStatus::ControlNetPaused : JobStatus::TrainingControlNet;
  // Waiting is not training: the rate window starts again.
  job.window_start = Clock::now();
  job.window_loss = job.window_grad = 0.0;
  job.window_steps = 0;
  say(pause ? "ControlNet paused at step " + std::to_string(job.trainer->step())
            : "ControlNet resumed");
}

bool Worker::read_back_controlnet() {
  try {
    m_cn_job->trainer->read_back();
  } catch (const std::exception& e) {
    end_controlnet_training(JobOutcome::Failed,
                            std::string("ControlNet training stopped: ") + e.what());
    return false;
  }
  take_losses(*m_cn_job);
  m_cn_job->status.step = m_cn_job->trainer->step();
  return true;
}

void Worker::end_controlnet_training(JobOutcome outcome, const std::string& message) {
  std::unique_ptr<ControlNetJob> job = std::move(m_cn_job);
  ControlNetTraining& st = job->status;
  m_status = JobStatus::Idle;
  std::string text = message;
  try {  // steps still unread: checked before the file is written (a bad one goes back)
    job->trainer->read_back();
  } catch (const std::exception& e) {
    outcome = JobOutcome::Failed;
    text += "; " + std::string(e.what());
  }
  take_losses(*job);
  st.step = job->trainer->step();
  try {
    write_row(*job);  // the steps since the last row (a stop between two rows)
  } catch (const std::exception& e) {
    say(e.what());
  }
  bool written = st.saved_step == job->trainer->step();
  if (!written) {
    try {  // a failed step left the weights of the last good one (ControlNetTrainer)
      job->trainer->save(st.path);
      st.saved_step = job->trainer->step();
      written = true;
    } catch (const std::exception& e) {
      outcome = JobOutcome::Failed;
      text += "; " + std::string(e.what());
    }
  }
  try {
    job->log->flush();
  } catch (const std::exception& e) {
    say(e.what());
  }
  st.active = false;
  m_cn_last = st;
  job.reset();  // `st` goes with it
  const ControlNetTraining& done = m_cn_last;
  if (written) {
    text += ": " + done.path;
    try {  // the result becomes the loaded ControlNet, read back as Load reads it
      cmd::LoadControlNet load{done.path, ""};
      on(load);
      text += " (loaded: draw a hint and Generate)";
    } catch (const std::exception& e) {
      outcome = JobOutcome::Failed;
      text += "; it could not be loaded: " + std::string(e.what());
    }
    cmd::FindControlNets find;
    on(find);
  } else if (done.saved_step >= 0) {
    text += "; the last good checkpoint is " + done.path;
  }
  finish(JobKind::ControlNet, outcome, text, written ? done.path : "");
}

ControlNetTraining Worker::controlnet_training_status() const {
  return m_cn_job ? m_cn_job->status : m_cn_last;
}

void Worker::on(cmd::FindControlNets&) {
  m_cn_found.clear();
  m_cn_found_serial = m_model_serial;
  Trainer* model = trainer();
  m_cn_found_step = model ? model->step() : -1;
  if (!model) return;
  std::vector<std::string> dirs;
  if (m_run) dirs.push_back(m_run->dir());
  if (!m_loose_dir.empty()) dirs.push_back(m_loose_dir);
  if (!m_model_home.empty()) dirs.push_back(m_model_home);
  std::vector<std::string> files;
  for (const auto& dir : dirs)
    for (const auto& f : controlnet_files(dir)) files.push_back(f);
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  const CheckpointInfo base_info{model->config(), model->data().shape, model->step()};
  for (const auto& path : files) {
    FoundControlNet found;
    found.path = path;
    try {  // the same reading and weight check as Load
      const LoadedControlNet cn =
          load_controlnet_onto(path, model->ema_model(), base_info, "the current model", m_device);
      found.step = cn.step;
      found.hint = cn.config.controlnet.hint;
      found.fits = true;
    } catch (const std::exception& e) {
      found.why = e.what();
    }
    m_cn_found.push_back(std::move(found));
  }
}

}  // namespace difflab

#include "core/train/training_run.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <utility>

#include "core/sampling/sampler_registry.h"
#include "core/train/metrics_log.h"
#include "core/util/paths.h"
#include "core/vision/image_grid.h"

namespace difflab {

namespace fs = std::filesystem;

namespace {

// The images/s shown while training is measured over at least this much wall time.
constexpr double kRateWindowS = 1.0;

std::vector<std::string> metrics_columns(bool hybrid) {
  // train_s: seconds of training since the run began (previews and checkpoints not
  // counted; a resumed run continues its count), the x axis of runs compared by time.
  std::vector<std::string> columns = {"loss", "test_loss", "lr", "grad_norm", "images_per_s",
                                      "epoch", "train_s"};
  // The hybrid loss also logs its parts: L_simple and the mean L_t in bits/dim.
  if (hybrid) columns.insert(columns.end(), {"loss_simple", "loss_vlb"});
  return columns;
}

}  // namespace

std::string preview_path(const std::string& dir, int64_t step) {
  char name[64];
  std::snprintf(name, sizeof name, "step_%08lld.png", static_cast<long long>(step));
  return (fs::path(dir) / "samples" / name).string();
}

void write_preview_png(const std::string& path, const SampleResult& result, int num_classes,
                       bool points) {
  if (points) {
    write_png(path, plot_points(result.images));
    return;
  }
  // Labels cycle 0..K−1, so K columns put one class in each column.
  write_png(path, make_grid(result.images, num_classes > 0 ? num_classes : 0, 2, 2));
}

TrainingRun::TrainingRun(std::unique_ptr<Trainer> trainer, RunOptions options)
    : m_trainer(std::move(trainer)), m_options(std::move(options)) {
  if (!m_trainer) throw std::invalid_argument("TrainingRun needs a trainer");
  if (m_options.dir.empty()) throw std::invalid_argument("TrainingRun needs a run folder");
  if (!m_options.resume && holds_run(m_options.dir))
    throw std::runtime_error("run folder '" + m_options.dir +
                             "' already holds a run (config.yaml, metrics.csv or checkpoints/): "
                             "resume it, or choose another folder; nothing in it was changed");
  const Config& c = m_trainer->config();
  // What a process killed mid-write left behind (never a file the run points at).
  for (const char* sub : {"", "checkpoints", "samples"})
    remove_stale_temp_files((fs::path(m_options.dir) / sub).string());
  make_dirs((fs::path(m_options.dir) / "samples").string());
  save_config(c, (fs::path(m_options.dir) / "config.yaml").string());
  m_hybrid = c.diffusion.loss == LossKind::Hybrid;
  if (m_options.resume) {
    // The training time the run had at the checkpoint's step (none for a run logged
    // before train_s: it counts from 0 from here).
    const RunHistory history = read_run_history(m_options.dir, m_trainer->step());
    if (!history.train_s.empty()) m_train_s = history.train_s.back().second;
  }
  m_log = std::make_unique<MetricsLog>(m_options.dir, metrics_columns(m_hybrid));
  if (m_options.resume) {
    m_saved_path = latest_checkpoint(m_options.dir);
    if (!m_saved_path.empty()) m_saved_step = m_trainer->step();
  }
}

TrainingRun::~TrainingRun() {
  try {
    if (m_log) m_log->flush();
  } catch (...) {  // a destructor reports nothing; flush() did after every row
  }
}

int64_t TrainingRun::preview_every() const {
  return m_options.preview_every >= 0 ? m_options.preview_every
                                      : m_trainer->config().train.sample_every;
}

int64_t TrainingRun::unsaved_steps() const {
  return m_trainer->step() - std::max<int64_t>(m_saved_step, 0);
}

double TrainingRun::seconds_to_preview() const {
  if (m_options.preview_every_s <= 0) return -1.0;
  return std::max(0.0, m_options.preview_every_s - m_since_preview_s);
}

double TrainingRun::seconds_to_autosave() const {
  const double minutes = m_trainer->config().train.autosave_minutes;
  if (minutes <= 0) return -1.0;
  return std::max(0.0, minutes * 60.0 - m_trained_since_save_s);
}

double TrainingRun::eta_s() const {
  const auto& t = m_trainer->config().train;
  if (m_rate <= 0) return -1.0;
  return static_cast<double>(t.steps - m_trainer->step()) * t.batch_size *
         m_trainer->world_size() / m_rate;
}

void TrainingRun::restart_clock() { m_clock_running = false; }

void TrainingRun::set_train_config(const TrainConfig& train) {
  m_trainer->set_train_config(train);
}

void TrainingRun::flush() { m_log->flush(); }

RunStepReport TrainingRun::step() {
  const auto& t = m_trainer->config().train;
  if (!m_clock_running) {
    m_last_step_end = m_window_start = Clock::now();
    m_window_steps = 0;
    m_clock_running = true;
  }
  RunStepReport report;
  try {
    report.step = m_trainer->train_step();
  } catch (const TrainingError&) {
    failed();
    throw;
  }
  const StepResult& r = report.step;
  const int64_t s = r.step;
  // What is due after this step, judged on the clocks as they stand before any read.
  const double unread_s = std::chrono::duration<double>(Clock::now() - m_last_step_end).count();
  Due due;
  due.eval = t.eval_every > 0 && s % t.eval_every == 0;
  due.periodic = t.checkpoint_every > 0 && s % t.checkpoint_every == 0;
  due.autosave = t.autosave_minutes > 0 &&
                 m_trained_since_save_s + unread_s >= t.autosave_minutes * 60.0;
  const int64_t every = preview_every();
  due.preview = m_options.preview_every_s > 0
                    ? m_since_preview_s + unread_s >= m_options.preview_every_s
                    : every > 0 && s % every == 0;
  // A row, an evaluation, a checkpoint or a preview needs every step so far read and
  // checked (deferred read-back): none of them may show a step that is then undone.
  if (s % t.log_every == 0 || s >= t.steps || due.eval || due.periodic || due.autosave || due.preview) {
    try {
      m_trainer->read_back();
    } catch (const TrainingError&) {
      failed();
      throw;
    }
  }
  report.measured = m_trainer->take_measured();
  absorb(report.measured);
  if (!report.measured.empty() && report.measured.back().step == s) report.step = report.measured.back();
  try {
    after_step(report, due);
  } catch (...) {
    // An evaluation, preview or checkpoint that fails: the steps read above still reach
    // the loss chart (take_read_before_error).
    m_read_before_error.insert(m_read_before_error.end(), report.measured.begin(), report.measured.end());
    m_log->flush();
    throw;
  }
  return report;
}

void TrainingRun::after_step(RunStepReport& report, const Due& due) {
  const auto& t = m_trainer->config().train;
  const StepResult& r = report.step;
  const int64_t s = r.step;
  // After the read: waiting for the device to finish the queued steps is training time.
  const auto now = Clock::now();
  const double step_s = std::chrono::duration<double>(now - m_last_step_end).count();
  m_trained_since_save_s += step_s;
  m_train_s += step_s;
  m_since_preview_s += step_s;
  m_last_step_end = now;
  ++m_window_steps;

  report.test_loss = std::nan("");
  if (due.eval) report.test_loss = m_trainer->evaluate(t.eval_batches);
  const double window_s = std::chrono::duration<double>(now - m_window_start).count();
  const bool row = s % t.log_every == 0 || !std::isnan(report.test_loss) || s >= t.steps;
  if (window_s >= kRateWindowS || row)
    m_rate = window_s > 0 ? m_window_steps * t.batch_size * m_trainer->world_size() / window_s
                          : m_rate;
  if (row && m_loss_steps > 0) {
    report.logged = true;
    report.window_loss = m_loss_sum / m_loss_steps;
    std::vector<double> values = {report.window_loss, report.test_loss, r.lr,
                                  m_grad_sum / m_loss_steps, m_rate,
                                  static_cast<double>(m_trainer->epoch()), m_train_s};
    if (m_hybrid) values.insert(values.end(), {m_simple_sum / m_loss_steps, m_vlb_sum / m_loss_steps});
    m_log->write(s, values);
    m_log->flush();  // a crash keeps every row written so far
    m_loss_sum = m_grad_sum = m_simple_sum = m_vlb_sum = 0.0;
    m_loss_steps = 0;
  }
  if (row || window_s >= kRateWindowS) {
    m_window_start = now;
    m_window_steps = 0;
  }
  if (due.preview) {
    m_since_preview_s = 0.0;
    const auto result = preview(false, preview_path(m_options.dir, s));
    if (!result.cancelled) {
      report.previewed = true;
      report.preview_images = result.images;
      report.preview_labels = result.labels;
    }
  }
  if (due.periodic || due.autosave) report.checkpoint = checkpoint();
  report.finished = s >= t.steps;
  // Previews and checkpoints are not training time: the rate and autosave clocks skip them.
  m_last_step_end = Clock::now();
  if (report.previewed || !report.checkpoint.empty()) m_window_start = m_last_step_end;
}

void TrainingRun::absorb(const std::vector<StepResult>& measured) {
  for (const StepResult& r : measured) {
    m_loss_sum += r.loss;
    m_grad_sum += r.grad_norm;
    m_simple_sum += r.loss_simple;
    if (m_hybrid) m_vlb_sum += r.loss_vlb;
    ++m_loss_steps;
  }
}

void TrainingRun::failed() {
  auto good = m_trainer->take_measured();  // the steps read before the bad one
  absorb(good);
  m_read_before_error.insert(m_read_before_error.end(), good.begin(), good.end());
  m_log->flush();
}

std::vector<StepResult> TrainingRun::take_read_before_error() {
  return std::exchange(m_read_before_error, {});
}

std::vector<StepResult> TrainingRun::read_back() {
  try {
    m_trainer->read_back();
  } catch (const TrainingError&) {
    failed();
    throw;
  }
  auto measured = m_trainer->take_measured();
  absorb(measured);
  return measured;
}

std::string TrainingRun::checkpoint() {
  const std::string path = checkpoint_path(m_options.dir, m_trainer->step());
  m_trainer->save_checkpoint(path);
  mark_latest_checkpoint(m_options.dir, path, kKeepCheckpoints);
  m_saved_step = m_trainer->step();
  m_saved_path = path;
  m_trained_since_save_s = 0.0;
  return path;
}

SampleResult TrainingRun::preview(bool full, const std::string& png_path, const StepCallback& callback) {
  SampleConfig sc = m_trainer->config().sample;
  const int classes = m_trainer->model()->num_classes();
  const bool points = m_trainer->data().shape.points;
  if (!full) {
    // One network call per step: DDIM for ddpm, Euler (its σ- or t-space twin) for the
    // objectives DDIM does not apply to.
    const Objective objective = m_trainer->config().diffusion.objective;
    sc.sampler = sampler_applies(SamplerKind::Ddim, objective) ? SamplerKind::Ddim : SamplerKind::Euler;
    sc.steps = std::min(sc.steps, kPreviewSamplerSteps);
    sc.eta = 0.0;
    sc.n = classes > 0 ? classes * kPreviewImagesPerClass : kPreviewUnconditional;
  } else if (classes > 0) {
    sc.n = std::max(sc.n, classes) / classes * classes;
  }
  sc.class_label = -1;
  // A preview shows the model being trained as it is: no second model to load each time
  // (and a guide that cannot be read must not stop the training).
  sc.guide_model.clear();
  if (points) sc.n = kPreviewPoints;
  SampleResult result = m_trainer->sample(sc, false, callback);
  if (!result.cancelled && !png_path.empty()) write_preview_png(png_path, result, classes, points);
  return result;
}

}  // namespace difflab

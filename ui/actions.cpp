#include "ui/actions.h"

#include <algorithm>
#include <exception>

#include "core/model/hint_planes.h"
#include "core/util/paths.h"
#include "ui/widgets.h"

namespace difflab {

namespace {

// Frames kept per sampling run for the scrubber (evenly spread over the steps).
constexpr int kMaxTrajectoryFrames = 200;

}  // namespace

bool engine_busy(const Snapshot& snap) {
  return snap.status == JobStatus::LoadingData || snap.status == JobStatus::Training ||
         snap.status == JobStatus::Paused || snap.status == JobStatus::Sampling ||
         snap.status == JobStatus::TrainingControlNet || snap.status == JobStatus::ControlNetPaused;
}

bool training_active(const Snapshot& snap) {
  return snap.status == JobStatus::Training || snap.status == JobStatus::Paused;
}

bool discards_model(const Snapshot& snap, const Config& next) {
  // As the engine decides: a new architecture, schedule or dataset drops the model.
  return snap.model_ready &&
         (!same_model(snap.config, next) || !same_data(snap.config.data, next.data));
}

void sync_edit_config(UiState& ui, const Snapshot& snap) {
  if (snap.version == 0) return;  // the placeholder before the worker's first publish
  if (snap.version == ui.adopted_version && !ui.engine_config_yaml.empty()) return;
  ui.adopted_version = snap.version;
  std::string yaml = config_to_yaml(snap.config);
  if (yaml != ui.engine_config_yaml) {
    ui.edit = snap.config;
    ui.engine_config_yaml = std::move(yaml);
  }
}

bool has_unsaved_training(const Snapshot& snap) {
  return snap.model_ready && snap.run.unsaved_steps > 0;
}

void Actions::send_apply(const Config& next, bool config_changed, bool load_data,
                         bool start_training) {
  if (config_changed) m_engine.send(cmd::SetConfig{next});
  if (load_data) m_engine.send(cmd::LoadData{});
  if (start_training) {
    if (!m_ui.training.preview_sent) send_preview_settings();
    m_engine.send(cmd::StartTraining{});
  }
}

void Actions::apply(const Snapshot& snap, const Config& next, bool load_data, bool start_training,
                    Panel sender) {
  const bool changed = config_to_yaml(next) != config_to_yaml(snap.config);
  if (changed) m_ui.config_sender = sender;
  if (changed && discards_model(snap, next)) {
    UnsavedGuard action;
    action.action = GuardedAction::ApplyConfig;
    action.what = !same_data(snap.config.data, next.data)
                      ? "switch the dataset (a new model for the new data)"
                      : "apply the new settings (a new network or schedule: a new model)";
    action.config = next;
    action.load_data = load_data;
    action.start_training = start_training;
    guard(snap, std::move(action));
    return;
  }
  send_apply(next, changed, load_data, start_training);
}

void Actions::guard(const Snapshot& snap, UnsavedGuard action) {
  if (m_ui.guard.action != GuardedAction::None) return;  // one question at a time
  if (!has_unsaved_training(snap)) {
    carry_out(action);
    return;
  }
  action.open_popup = true;
  action.unsaved_steps = snap.run.unsaved_steps;
  m_ui.guard = std::move(action);
}

void Actions::carry_out(const UnsavedGuard& action) {
  switch (action.action) {
    case GuardedAction::Quit:
      m_ui.quit_requested = true;
      break;
    case GuardedAction::LoadCheckpoint:
      m_engine.send(cmd::LoadCheckpoint{resolve_path(action.path)});
      break;
    case GuardedAction::ApplyConfig:
      send_apply(action.config, true, action.load_data, action.start_training);
      break;
    case GuardedAction::NewRun:
      m_engine.send(cmd::ResetModel{});
      break;
    case GuardedAction::None:
      break;
  }
}

void Actions::answer_unsaved(const Snapshot& snap, Answer answer) {
  UnsavedGuard& g = m_ui.guard;
  switch (answer) {
    case Answer::Save:
      g.saving = true;
      g.error.clear();
      g.save_serial = snap.job(JobKind::Save).serial;
      m_engine.send(cmd::SaveCheckpoint{""});
      return;
    case Answer::Discard:
      carry_out(g);
      break;
    case Answer::Cancel:
      // The editors show the config in force again (a dataset switch is undone).
      if (g.action == GuardedAction::ApplyConfig) m_ui.engine_config_yaml.clear();
      break;
  }
  g = UnsavedGuard{};
}

bool Actions::poll_unsaved(const Snapshot& snap) {
  UnsavedGuard& g = m_ui.guard;
  if (!g.saving) return false;
  const JobResult& save = snap.job(JobKind::Save);
  if (save.serial <= g.save_serial || save.outcome == JobOutcome::Running) return false;
  if (save.outcome == JobOutcome::Done) {
    carry_out(g);
    g = UnsavedGuard{};
    return true;
  }
  g.saving = false;
  g.error = save.message.empty() ? std::string("the save did not finish: nothing else was done")
                                 : save.message;
  return false;
}

void Actions::request_quit(const Snapshot& snap) {
  UnsavedGuard action;
  action.action = GuardedAction::Quit;
  action.what = "quit";
  guard(snap, std::move(action));
}

void Actions::load_dataset(const Snapshot& snap) {
  m_ui.dataset.status.clear();
  apply(snap, m_ui.edit, true, false, Panel::Dataset);
}

void Actions::apply_config(const Snapshot& snap) {
  apply(snap, m_ui.edit, !same_data(snap.config.data, m_ui.edit.data), false, Panel::Model);
}

void Actions::train(const Snapshot& snap) {
  if (snap.status == JobStatus::Paused) {
    resume();
    return;
  }
  apply(snap, m_ui.edit, !snap.data_ready || !same_data(snap.config.data, m_ui.edit.data), true,
        Panel::Model);
}

void Actions::pause() { m_engine.send(cmd::Pause{}); }
void Actions::resume() { m_engine.send(cmd::Resume{}); }
void Actions::stop() { m_engine.send(cmd::Stop{}); }

void Actions::new_run(const Snapshot& snap) {
  UnsavedGuard action;
  action.action = GuardedAction::NewRun;
  action.what = "start a new run (the current model is dropped)";
  guard(snap, std::move(action));
}

void Actions::save_checkpoint() { m_engine.send(cmd::SaveCheckpoint{""}); }

void Actions::save_checkpoint_as(const std::string& path, bool overwrite) {
  cmd::SaveCheckpoint save;
  save.path = path;
  save.overwrite = overwrite;
  m_engine.send(save);
}

void Actions::load_checkpoint(const Snapshot& snap) {
  load_checkpoint_file(snap, m_ui.training.checkpoint_path);
}

void Actions::load_checkpoint_file(const Snapshot& snap, const std::string& path) {
  UnsavedGuard action;
  action.action = GuardedAction::LoadCheckpoint;
  action.what = "load " + path;
  action.path = path;
  guard(snap, std::move(action));
}

void Actions::resume_run(const std::string& dir) { m_engine.send(cmd::ResumeRun{dir, true}); }

void Actions::report(JobKind kind, bool ok, const std::string& message, const std::string& path) {
  JobResult result;
  result.kind = kind;
  result.outcome = ok ? JobOutcome::Done : JobOutcome::Failed;
  result.message = message;
  result.path = path;
  m_engine.send(cmd::Report{result});
}

void Actions::send_preview_settings() {
  auto& t = m_ui.training;
  t.preview_every = std::max<int64_t>(t.preview_every, 0);
  t.preview_every_s = std::max(t.preview_every_s, 0.0);
  // Off is 0 in either unit: by time with 0 s sends 0 steps too.
  const bool off = t.preview_by_time ? t.preview_every_s <= 0 : t.preview_every <= 0;
  m_engine.send(cmd::SetPreviewEvery{off || t.preview_by_time ? 0 : t.preview_every,
                                     off || !t.preview_by_time ? 0.0 : t.preview_every_s});
  t.preview_sent = true;
}

void Actions::set_autosave_minutes(const Snapshot& snap, double minutes) {
  Config config = snap.config;
  config.train.autosave_minutes = minutes;
  m_engine.send(cmd::SetConfig{config});
}

void Actions::generate() {
  m_ui.sampling.playing = false;
  m_ui.sampling.status.clear();
  cmd::Sample sample;
  sample.config = m_ui.edit.sample;
  sample.max_frames = kMaxTrajectoryFrames;
  m_engine.send(sample);
}

void Actions::evaluate(int n) {
  cmd::Evaluate evaluate;
  evaluate.config = m_ui.edit.sample;
  evaluate.config.n = n;
  m_engine.send(evaluate);
}

void Actions::cancel_sampling() { m_engine.send(cmd::Cancel{}); }

void Actions::load_controlnet(const std::string& path, const std::string& base_override) {
  m_ui.controlnet.status.clear();
  m_engine.send(cmd::LoadControlNet{resolve_path(path),
                                    base_override.empty() ? "" : resolve_path(base_override)});
}

void Actions::generate_controlnet(std::vector<float> hint) {
  const ControlNetView& v = m_ui.controlnet;
  m_ui.sampling.playing = false;
  cmd::Sample sample;
  sample.config = m_ui.edit.sample;
  sample.config.n = v.n;
  sample.config.guidance = v.guidance;
  sample.config.class_label = v.class_label;
  sample.config.classifier.clear();
  sample.config.classifier_scale = 0.0;
  sample.config.guide_model.clear();  // autoguidance steers a base alone, not a ControlNet
  sample.max_frames = kMaxTrajectoryFrames;
  sample.controlnet = true;
  // Which planes the hint fills, for scripts (--print-layout): "controlnet hint kind mask
  // planes 3:412" = 412 pixels of plane 3 (mask) are set.
  const size_t plane = hint.size() / kHintChannels;
  std::string planes;
  for (int c = 0; c < kHintChannels && plane > 0; ++c) {
    const auto first = hint.begin() + static_cast<std::ptrdiff_t>(c * plane);
    const auto set = std::count_if(first, first + static_cast<std::ptrdiff_t>(plane), [](float x) { return x > 0.0f; });
    if (set > 0) planes += " " + std::to_string(c) + ":" + std::to_string(set);
  }
  print_event(m_ui, "controlnet hint kind " + std::string(to_string(v.kind)) + " planes" + planes);
  sample.hint = std::move(hint);
  sample.control_scale = v.scale;
  m_engine.send(sample);
}

void Actions::train_controlnet() {
  const ControlNetView& v = m_ui.controlnet;
  cmd::TrainControlNet train;
  train.hint = v.train_hint;
  train.steps = v.train_steps;
  train.resume_dir = v.continue_dir;
  train.curve_every = v.curve_every;
  m_engine.send(train);
}

void Actions::find_controlnets(const Snapshot& snap) {
  m_ui.controlnet.found_requested_serial = snap.model_serial;
  m_ui.controlnet.found_requested_step = snap.step;
  m_engine.send(cmd::FindControlNets{});
}

void Actions::set_frame(const Snapshot& snap, int frame) {
  // Positions 0 .. F−1 are the recorded frames; F is the final result.
  const int frames = snap.samples ? static_cast<int>(snap.samples->x_t.size()) : 0;
  m_ui.sampling.frame = std::clamp(frame, 0, frames);
  print_event(m_ui, "scrub frame " + std::to_string(m_ui.sampling.frame) + " of " + std::to_string(frames));
}

bool Actions::open_config(const Snapshot& snap, const std::string& path, std::string* error) {
  try {
    const Config config = load_config(resolve_path(path));
    m_ui.edit = config;
    apply(snap, config, true, false, Panel::Model);
    return true;
  } catch (const std::exception& e) {
    if (error) *error = e.what();
    return false;
  }
}

bool Actions::save_config(const std::string& path, std::string* error) {
  try {
    difflab::save_config(m_ui.edit, path);
    return true;
  } catch (const std::exception& e) {
    if (error) *error = e.what();
    return false;
  }
}

}  // namespace difflab

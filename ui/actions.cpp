#include "ui/actions.h"

#include <algorithm>
#include <exception>

#include "core/util/paths.h"

namespace difflab {

namespace {

// Frames kept per sampling run for the scrubber (evenly spread over the steps).
constexpr int kMaxTrajectoryFrames = 200;

}  // namespace

bool engine_busy(const Snapshot& snap) {
  return snap.status == JobStatus::LoadingData || snap.status == JobStatus::Training ||
         snap.status == JobStatus::Paused || snap.status == JobStatus::Sampling;
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

void Actions::send_apply(const Config& next, bool config_changed, bool load_data,
                         bool start_training) {
  if (config_changed) m_engine.send(cmd::SetConfig{next});
  if (load_data) m_engine.send(cmd::LoadData{});
  if (start_training) {
    if (m_ui.training.preview_every != m_ui.training.preview_every_sent)
      set_preview_every(m_ui.training.preview_every);
    m_engine.send(cmd::StartTraining{});
  }
}

void Actions::apply(const Snapshot& snap, const Config& next, bool load_data, bool start_training,
                    const std::string& reason) {
  const bool changed = config_to_yaml(next) != config_to_yaml(snap.config);
  if (changed && discards_model(snap, next)) {
    m_ui.pending.active = true;
    m_ui.pending.open_popup = true;
    m_ui.pending.config = next;
    m_ui.pending.load_data = load_data;
    m_ui.pending.start_training = start_training;
    m_ui.pending.reason = reason;
    return;
  }
  send_apply(next, changed, load_data, start_training);
}

void Actions::answer_pending(bool accept) {
  if (m_ui.pending.active && accept)
    send_apply(m_ui.pending.config, true, m_ui.pending.load_data, m_ui.pending.start_training);
  if (!accept) {
    // Back to what the engine has: the editors show the config in force again.
    m_ui.engine_config_yaml.clear();
  }
  m_ui.pending = PendingApply{};
}

void Actions::load_dataset(const Snapshot& snap) {
  m_ui.dataset.status.clear();
  apply(snap, m_ui.edit, true, false, "Loading this dataset changes the model's input shape.");
}

void Actions::apply_config(const Snapshot& snap) {
  apply(snap, m_ui.edit, !same_data(snap.config.data, m_ui.edit.data), false,
        "The new settings change the network or the noise schedule.");
}

void Actions::train(const Snapshot& snap) {
  if (snap.status == JobStatus::Paused) {
    resume();
    return;
  }
  apply(snap, m_ui.edit, !snap.data_ready || !same_data(snap.config.data, m_ui.edit.data), true,
        "The edited settings change the network or the noise schedule.");
}

void Actions::pause() { m_engine.send(cmd::Pause{}); }
void Actions::resume() { m_engine.send(cmd::Resume{}); }
void Actions::stop() { m_engine.send(cmd::Stop{}); }
void Actions::reset_model() { m_engine.send(cmd::ResetModel{}); }

void Actions::save_checkpoint() {
  m_engine.send(cmd::SaveCheckpoint{m_ui.training.checkpoint_path});
}

void Actions::load_checkpoint() {
  m_engine.send(cmd::LoadCheckpoint{resolve_path(m_ui.training.checkpoint_path)});
}

void Actions::set_preview_every(int64_t steps) {
  m_ui.training.preview_every = std::max<int64_t>(steps, 0);
  m_ui.training.preview_every_sent = m_ui.training.preview_every;
  m_engine.send(cmd::SetPreviewEvery{m_ui.training.preview_every});
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
  sample.max_frames = kMaxTrajectoryFrames;
  sample.controlnet = true;
  sample.hint = std::move(hint);
  sample.control_scale = v.scale;
  m_engine.send(sample);
}

void Actions::set_frame(const Snapshot& snap, int frame) {
  // Positions 0 .. F−1 are the recorded frames; F is the final result.
  const int frames = snap.samples ? static_cast<int>(snap.samples->x_t.size()) : 0;
  m_ui.sampling.frame = std::clamp(frame, 0, frames);
}

bool Actions::open_config(const Snapshot& snap, const std::string& path, std::string* error) {
  try {
    const Config config = load_config(resolve_path(path));
    m_ui.edit = config;
    apply(snap, config, true, false, "The opened config changes the network or the schedule.");
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

// The whole UI of one frame, and helpers the panels share.
#include "ui/panels.h"

#include <imgui.h>

#include <algorithm>
#include <string>

#include "ui/widgets.h"

namespace difflab {

std::string class_name(const Snapshot& snap, int64_t label) {
  if (label < 0) return "";
  if (label < static_cast<int64_t>(snap.class_names.size()) && !snap.class_names[label].empty())
    return snap.class_names[static_cast<size_t>(label)];
  return std::to_string(label);
}

std::vector<std::string> class_labels(const Snapshot& snap, const std::vector<int64_t>& labels) {
  std::vector<std::string> out;
  out.reserve(labels.size());
  for (int64_t l : labels) out.push_back(class_name(snap, l));
  return out;
}

std::vector<std::string> run_class_labels(const Snapshot& snap, const TrajectoryFrames& run) {
  const SampleConfig& c = run.config;
  // w = 0 is the unconditional model, except with a guide model: then both models still
  // see the class (autoguidance's w = 0 is the guide alone).
  const bool steered = c.guidance != 0.0 || !c.guide_model.empty() ||
                       (!c.classifier.empty() && c.classifier_scale != 0.0);
  return steered ? class_labels(snap, run.labels) : std::vector<std::string>{};
}

void status_line(const Snapshot& snap) {
  ImVec4 color(0.7f, 0.7f, 0.72f, 1.0f);
  switch (snap.status) {
    case JobStatus::Training:
    case JobStatus::TrainingControlNet: color = ImVec4(0.45f, 0.85f, 0.45f, 1.0f); break;
    case JobStatus::Sampling: color = ImVec4(0.45f, 0.75f, 1.0f, 1.0f); break;
    case JobStatus::Paused:
    case JobStatus::ControlNetPaused: color = ImVec4(1.0f, 0.8f, 0.3f, 1.0f); break;
    case JobStatus::LoadingData: color = ImVec4(0.8f, 0.8f, 1.0f, 1.0f); break;
    case JobStatus::Error: color = ImVec4(1.0f, 0.4f, 0.35f, 1.0f); break;
    default: break;
  }
  ImGui::TextColored(color, "%s", job_status_name(snap.status));
  if (!snap.message.empty()) {
    ImGui::SameLine();
    ImGui::TextDisabled("%s", snap.message.c_str());
  }
}

bool is_points(const FloatImages& images) {
  return images.c == 2 && images.h == 1 && images.w == 1;
}

bool is_points(const TrajectoryFrames& run) {
  return is_points(run.final_images) && (run.x_t.empty() || is_points(run.x_t.front()));
}

namespace {

// A new model (trained, loaded or discarded): the views drop what they kept of the old
// one. The engine's own results are already the new model's.
void forget_old_model(const Snapshot& snap, UiContext& ctx) {
  UiState& ui = ctx.ui;
  if (snap.model_serial == ui.model_serial) return;
  ui.model_serial = snap.model_serial;
  for (const JobResult& job : snap.jobs)
    ui.jobs_before_model = std::max(ui.jobs_before_model, job.serial);
  SamplingView& s = ui.sampling;
  s.run.reset();
  ++s.run_serial;
  s.frame = 0;
  s.selected = 0;
  s.playing = false;
  s.play_clock = 0.0;
  s.status.clear();
  s.export_path.clear();  // re-derived from the new model's run folder
  s.export_dir.clear();
  s.export_gif.clear();
  ctx.textures.clear();
  ctx.points.clear();
}

}  // namespace

void draw_ui(const Snapshot& snap, UiContext& ctx) {
  UiState& ui = ctx.ui;
  sync_edit_config(ui, snap);
  forget_old_model(snap, ctx);
  if (snap.points && !ui.toy.auto_shown) {  // 2-D data: open the toy view once
    panel_visible(ui, Panel::Toy2d) = true;
    ui.toy.auto_shown = true;
  }
  update_scrubber_playback(snap, ctx, ImGui::GetIO().DeltaTime);

  draw_main_menu(snap, ctx);
  for (const PanelInfo& panel : kPanels) {
    bool& visible = panel_visible(ui, panel.id);
    if (!visible) continue;
    place_panel(ui, panel.id);
    if (ImGui::Begin(panel.title, &visible)) panel.draw(snap, ctx);
    ImGui::End();
  }
  draw_frame_overlay(snap, ctx);
  draw_unsaved_dialog(snap, ctx);
  draw_replace_dialog(snap, ctx);
  draw_resume_dialog(snap, ctx);
  ui.reset_layout = false;
}

}  // namespace difflab

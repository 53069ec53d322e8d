// The whole UI of one frame, and helpers the panels share.
#include "ui/panels.h"

#include <imgui.h>

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

void status_line(const Snapshot& snap) {
  ImVec4 color(0.7f, 0.7f, 0.72f, 1.0f);
  switch (snap.status) {
    case JobStatus::Training: color = ImVec4(0.45f, 0.85f, 0.45f, 1.0f); break;
    case JobStatus::Sampling: color = ImVec4(0.45f, 0.75f, 1.0f, 1.0f); break;
    case JobStatus::Paused: color = ImVec4(1.0f, 0.8f, 0.3f, 1.0f); break;
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

void draw_ui(const Snapshot& snap, UiContext& ctx) {
  UiState& ui = ctx.ui;
  sync_edit_config(ui, snap);
  if (snap.points && !ui.toy.auto_shown) {  // 2-D data: open the toy view once
    panel_visible(ui, Panel::Toy2d) = true;
    ui.toy.auto_shown = true;
  }
  update_scrubber_playback(snap, ctx, ImGui::GetIO().DeltaTime);

  draw_main_menu(snap, ctx);
  if (panel_visible(ui, Panel::Dataset)) draw_dataset_panel(snap, ctx);
  if (panel_visible(ui, Panel::Model)) draw_model_panel(snap, ctx);
  if (panel_visible(ui, Panel::Forward)) draw_forward_panel(snap, ctx);
  if (panel_visible(ui, Panel::Training)) draw_training_panel(snap, ctx);
  if (panel_visible(ui, Panel::Schedule)) draw_schedule_panel(snap, ctx);
  if (panel_visible(ui, Panel::Toy2d)) draw_toy2d_panel(snap, ctx);
  if (panel_visible(ui, Panel::Sampling)) draw_sampling_panel(snap, ctx);
  if (panel_visible(ui, Panel::Log)) draw_log_panel(snap, ctx);
  if (panel_visible(ui, Panel::ControlNet)) draw_controlnet_panel(snap, ctx);
  draw_frame_overlay(snap, ctx);
  draw_confirm_dialog(ctx);
  ui.reset_layout = false;
}

}  // namespace difflab

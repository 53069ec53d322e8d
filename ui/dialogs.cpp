// The modal questions about runs: unsaved training (Save / Discard / Cancel) before work
// would be lost, replacing a file that belongs to another run or model, and resuming the
// last run at start-up. With --print-layout each prints "dialog ..." when it opens and the
// rectangles of its buttons (for the xdotool tests).
#include <imgui.h>

#include <algorithm>
#include <string>

#include "ui/panels.h"
#include "ui/widgets.h"

namespace difflab {

namespace {

constexpr const char* kUnsavedTitle = "Unsaved training";
constexpr const char* kReplaceTitle = "Replace a checkpoint?";
constexpr const char* kResumeTitle = "Resume the last run?";

// Opens `title` centred in the window.
void open_modal(UiState& ui, const char* title, const std::string& event) {
  ImGui::OpenPopup(title);
  print_event(ui, event);
}

void center_next_window() {
  const ImVec2 display = ImGui::GetIO().DisplaySize;
  ImGui::SetNextWindowPos(ImVec2(display.x * 0.5f, display.y * 0.45f), ImGuiCond_Appearing,
                          ImVec2(0.5f, 0.5f));
}

// A button of a dialog, tracked for --print-layout as <prefix><name>.
bool dialog_button(UiState& ui, const char* label, const char* track, bool enabled = true) {
  ImGui::BeginDisabled(!enabled);
  const bool pressed = ImGui::Button(label, ImVec2(ImGui::GetFontSize() * 7.0f, 0));
  ImGui::EndDisabled();
  // Not on the first frame: an auto-resized window is placed once its size is known.
  if (!ImGui::IsWindowAppearing()) track_item(ui, track, enabled);
  return pressed && enabled;
}

}  // namespace

void draw_unsaved_dialog(const Snapshot& snap, UiContext& ctx) {
  UiState& ui = ctx.ui;
  UnsavedGuard& g = ui.guard;
  if (g.open_popup) {
    g.open_popup = false;
    open_modal(ui, kUnsavedTitle, "dialog unsaved: " + g.what);
  }
  center_next_window();
  if (!ImGui::BeginPopupModal(kUnsavedTitle, nullptr, ImGuiWindowFlags_AlwaysAutoResize)) {
    if (g.action != GuardedAction::None && !g.saving) g = UnsavedGuard{};  // closed some other way
    return;
  }
  bool close = ctx.actions.poll_unsaved(snap);
  if (g.action == GuardedAction::None) close = true;
  ImGui::Text("The model has %lld trained steps that no checkpoint holds.",
              static_cast<long long>(std::max(g.unsaved_steps, snap.run.unsaved_steps)));
  ImGui::Text("Save them before you %s?", g.what.c_str());
  if (!snap.run.dir.empty())
    ImGui::TextDisabled("Save writes a checkpoint into %s", snap.run.dir.c_str());
  if (g.saving) ImGui::TextDisabled("saving...");
  if (!g.error.empty()) error_text("Save failed: " + g.error);
  ImGui::Spacing();
  if (dialog_button(ui, "Save", "UnsavedSave", !g.saving))
    ctx.actions.answer_unsaved(snap, Actions::Answer::Save);
  ImGui::SameLine();
  if (dialog_button(ui, "Discard", "UnsavedDiscard", !g.saving)) {
    ctx.actions.answer_unsaved(snap, Actions::Answer::Discard);
    close = true;
  }
  ImGui::SameLine();
  if (dialog_button(ui, "Cancel", "UnsavedCancel", !g.saving)) {
    ctx.actions.answer_unsaved(snap, Actions::Answer::Cancel);
    close = true;
  }
  if (close) {
    untrack_items(ui, "Unsaved");
    print_event(ui, "dialog unsaved closed");
    ImGui::CloseCurrentPopup();
  }
  ImGui::EndPopup();
}

void draw_replace_dialog(const Snapshot& snap, UiContext& ctx) {
  UiState& ui = ctx.ui;
  ReplaceQuestion& q = ui.replace;
  const JobResult& save = snap.job(JobKind::Save);
  if (save.serial > q.handled_serial) {
    q.handled_serial = save.serial;
    if (save.outcome == JobOutcome::NeedsConfirmation && !ui.guard.saving) {
      q.path = save.path;
      open_modal(ui, kReplaceTitle, "dialog replace: " + q.path);
    }
  }
  center_next_window();
  if (!ImGui::BeginPopupModal(kReplaceTitle, nullptr, ImGuiWindowFlags_AlwaysAutoResize)) return;
  ImGui::Text("Replace %s?", q.path.c_str());
  ImGui::TextUnformatted("It belongs to another run or model: replacing it loses that checkpoint.");
  if (!save.message.empty()) ImGui::TextDisabled("%s", save.message.c_str());
  if (!snap.run.dir.empty())
    ImGui::TextDisabled("Save (without a path) writes into this model's run folder instead.");
  ImGui::Spacing();
  bool close = false;
  if (dialog_button(ui, "Replace", "ReplaceReplace")) {
    ctx.actions.save_checkpoint_as(q.path, true);
    close = true;
  }
  ImGui::SameLine();
  if (dialog_button(ui, "Cancel", "ReplaceCancel")) close = true;
  if (close) {
    untrack_items(ui, "Replace");
    print_event(ui, "dialog replace closed");
    ImGui::CloseCurrentPopup();
  }
  ImGui::EndPopup();
}

void draw_resume_dialog(const Snapshot& snap, UiContext& ctx) {
  (void)snap;
  UiState& ui = ctx.ui;
  ResumeOffer& r = ui.resume;
  if (r.open_popup) {
    r.open_popup = false;
    open_modal(ui, kResumeTitle, "dialog resume: " + r.dir + " step " + std::to_string(r.step));
  }
  center_next_window();
  if (!ImGui::BeginPopupModal(kResumeTitle, nullptr, ImGuiWindowFlags_AlwaysAutoResize)) return;
  if (r.step >= 0)
    ImGui::Text("Resume the last run %s from step %lld?", r.dir.c_str(),
                static_cast<long long>(r.step));
  else
    ImGui::Text("Resume the last run %s from its newest checkpoint?", r.dir.c_str());
  ImGui::TextDisabled("Resume loads its newest checkpoint and continues training it.");
  ImGui::TextDisabled("Start fresh leaves it on disk (Training panel: Load, to open it later).");
  ImGui::Spacing();
  bool close = false;
  if (dialog_button(ui, "Resume", "ResumeRun")) {
    ctx.actions.resume_run(r.dir);
    close = true;
  }
  ImGui::SameLine();
  if (dialog_button(ui, "Start fresh", "ResumeFresh")) close = true;
  if (close) {
    untrack_items(ui, "Resume");
    print_event(ui, "dialog resume closed");
    ImGui::CloseCurrentPopup();
  }
  ImGui::EndPopup();
}

}  // namespace difflab

// Small ImGui helpers shared by the panels: help markers, enum combos, number
// formatting, and the layout tracker used by --print-layout.
#pragma once

#include <imgui.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "core/config/enums.h"
#include "core/engine/engine.h"
#include "ui/ui_state.h"

namespace difflab {

// A "(?)" after the previous item that shows `text` as a tooltip (imgui_demo's HelpMarker).
void help_marker(const char* text);

// Records the last item's screen rectangle under `name` for --print-layout; prints
// "layout NAME x y w h enabled=0|1" to stdout when it changes (enabled=0 also while the
// item is scrolled or clipped out of its window).
void track_item(UiState& ui, const char* name, bool enabled);

// Combo over an enum's name table; returns true when the value changed. With `track`, the
// combo and its open list's items are tracked for --print-layout as NAME and NAME.<value>.
template <typename E>
bool enum_combo(const char* label, E* value, UiState* track = nullptr, const char* name = nullptr) {
  bool changed = false;
  const auto& names = EnumNames<E>::names;
  const std::string current(names[static_cast<size_t>(*value)]);
  const bool open = ImGui::BeginCombo(label, current.c_str());
  if (track) track_item(*track, name, true);
  if (open) {
    for (size_t i = 0; i < names.size(); ++i) {
      const bool selected = static_cast<size_t>(*value) == i;
      const std::string item(names[i]);
      if (ImGui::Selectable(item.c_str(), selected)) {
        *value = static_cast<E>(i);
        changed = true;
      }
      if (track) track_item(*track, (std::string(name) + "." + item).c_str(), true);
      if (selected) ImGui::SetItemDefaultFocus();
    }
    ImGui::EndCombo();
  }
  return changed;
}

// Integer editors over int64_t fields.
bool input_int64(const char* label, int64_t* value, int64_t step, int64_t min_value);
// Scientific-notation double editor (learning rates).
bool input_sci(const char* label, double* value, double min_value, double max_value);

// "1h 02m 03s" / "2m 05s" / "12s".
std::string format_duration(double seconds);
// "12,345".
std::string format_count(int64_t value);

// Error text in red, wrapped; nothing when empty.
void error_text(const std::string& text);
// Dimmed, wrapped text.
void dim_text(const char* text);

// The default tiling of the panels for a display of `display` pixels with a menu bar of
// `menu_height`: position and size of each panel.
void default_panel_rect(Panel panel, ImVec2 display, float menu_height, ImVec2* pos,
                        ImVec2* size);
// SetNextWindowPos/Size for a panel: FirstUseEver, or Always when the layout is reset.
void place_panel(const UiState& ui, Panel panel);

// "done", "failed", ... (also in --print-layout lines).
const char* job_outcome_name(JobOutcome outcome);
// Which outcomes job_outcome shows: all, or only those that did not succeed (Failed,
// Cancelled, NeedsConfirmation) where the panel shows progress and results itself.
enum class JobShow { All, Problems };
// The last outcome of one job (snap.job(kind)) as one line: red when it failed, amber when
// it waits for a confirmation, dimmed otherwise; nothing before the job first ran.
// `panel` names where it is shown for --print-layout.
void job_outcome(UiState& ui, const Snapshot& snap, JobKind kind, Panel panel,
                 JobShow show = JobShow::All);
// Forgets the --print-layout rectangles whose names start with `prefix`, so they are printed
// again the next time they are drawn (the buttons of a dialog that opens again).
void untrack_items(UiState& ui, const std::string& prefix);
// Prints one line to stdout with --print-layout (dialogs opening, for the tests).
void print_event(const UiState& ui, const std::string& line);

// Colours used across panels for the four named schedules and for plots.
ImU32 schedule_color(int index);
constexpr ImU32 kColorRaw = IM_COL32(110, 160, 230, 110);
constexpr ImU32 kColorSmooth = IM_COL32(90, 170, 255, 255);
constexpr ImU32 kColorTest = IM_COL32(255, 160, 60, 255);
constexpr ImU32 kColorError = IM_COL32(255, 100, 90, 255);
constexpr ImU32 kColorWarning = IM_COL32(255, 200, 80, 255);

}  // namespace difflab

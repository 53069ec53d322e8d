// Small ImGui helpers shared by the panels: help markers, enum combos, number
// formatting, and the layout tracker used by --print-layout.
#pragma once

#include <imgui.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "core/config/enums.h"
#include "ui/ui_state.h"

namespace difflab {

// A "(?)" after the previous item that shows `text` as a tooltip (imgui_demo's HelpMarker).
void help_marker(const char* text);

// Combo over an enum's name table; returns true when the value changed.
template <typename E> bool enum_combo(const char* label, E* value) {
  bool changed = false;
  const auto& names = EnumNames<E>::names;
  const std::string current(names[static_cast<size_t>(*value)]);
  if (ImGui::BeginCombo(label, current.c_str())) {
    for (size_t i = 0; i < names.size(); ++i) {
      const bool selected = static_cast<size_t>(*value) == i;
      const std::string name(names[i]);
      if (ImGui::Selectable(name.c_str(), selected)) {
        *value = static_cast<E>(i);
        changed = true;
      }
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

// Records the last item's screen rectangle under `name` for --print-layout; prints
// "layout NAME x y w h enabled=0|1" to stdout when it changes.
void track_item(UiState& ui, const char* name, bool enabled);

// The default tiling of the panels for a display of `display` pixels with a menu bar of
// `menu_height`: position and size of each panel.
void default_panel_rect(Panel panel, ImVec2 display, float menu_height, ImVec2* pos,
                        ImVec2* size);
// SetNextWindowPos/Size for a panel: FirstUseEver, or Always when the layout is reset.
void place_panel(const UiState& ui, Panel panel);

// Colours used across panels for the four named schedules and for plots.
ImU32 schedule_color(int index);
constexpr ImU32 kColorRaw = IM_COL32(110, 160, 230, 110);
constexpr ImU32 kColorSmooth = IM_COL32(90, 170, 255, 255);
constexpr ImU32 kColorTest = IM_COL32(255, 160, 60, 255);
constexpr ImU32 kColorError = IM_COL32(255, 100, 90, 255);

}  // namespace difflab

#include "ui/ui_settings.h"

#include <imgui.h>
#include <imgui_internal.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace difflab {

namespace {

constexpr const char* kSection = "View";

uint32_t view_flags(const UiState& ui) {
  uint32_t bits = 0;
  for (size_t i = 0; i < kPanelCount; ++i)
    if (ui.visible[i]) bits |= 1u << i;
  if (ui.show_frame_overlay) bits |= 1u << kPanelCount;
  if (ui.retile_on_resize) bits |= 1u << (kPanelCount + 1);
  return bits | (1u << 31);  // never 0, so the first frame always compares unequal
}

void* read_open(ImGuiContext*, ImGuiSettingsHandler* handler, const char* name) {
  return std::strcmp(name, kSection) == 0 ? handler->UserData : nullptr;
}

void read_line(ImGuiContext*, ImGuiSettingsHandler*, void* entry, const char* line) {
  UiState& ui = *static_cast<UiState*>(entry);
  char key[96];
  int value = 0;
  if (std::sscanf(line, "%95[^=]=%d", key, &value) != 2) return;
  for (size_t i = 0; i < kPanelCount; ++i)
    if (std::string("Panel ") + kPanels[i].title == key) ui.visible[i] = value != 0;
  if (std::strcmp(key, "FrameOverlay") == 0) ui.show_frame_overlay = value != 0;
  if (std::strcmp(key, "RetileOnResize") == 0) ui.retile_on_resize = value != 0;
}

void write_all(ImGuiContext*, ImGuiSettingsHandler* handler, ImGuiTextBuffer* out) {
  UiState& ui = *static_cast<UiState*>(handler->UserData);
  out->appendf("[%s][%s]\n", handler->TypeName, kSection);
  for (size_t i = 0; i < kPanelCount; ++i)
    out->appendf("Panel %s=%d\n", kPanels[i].title, ui.visible[i] ? 1 : 0);
  out->appendf("FrameOverlay=%d\n", ui.show_frame_overlay ? 1 : 0);
  out->appendf("RetileOnResize=%d\n\n", ui.retile_on_resize ? 1 : 0);
  ui.persisted_flags = view_flags(ui);
}

}  // namespace

void register_ui_settings(UiState& ui) {
  ImGuiSettingsHandler handler;
  handler.TypeName = "Difflab";
  handler.TypeHash = ImHashStr("Difflab");
  handler.ReadOpenFn = read_open;
  handler.ReadLineFn = read_line;
  handler.WriteAllFn = write_all;
  handler.UserData = &ui;
  ImGui::GetCurrentContext()->SettingsHandlers.push_back(handler);
}

void track_ui_settings(UiState& ui) {
  const uint32_t flags = view_flags(ui);
  if (ui.persisted_flags == 0) ui.persisted_flags = flags;  // as loaded
  if (flags != ui.persisted_flags) {
    ImGui::MarkIniSettingsDirty();
    ui.persisted_flags = flags;
  }
}

}  // namespace difflab

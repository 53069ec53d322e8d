// The main menu bar (File, View, Help), its path dialogs (open / save config, save
// screenshot), the panel shortcuts, and the frame-time overlay.
#include <imgui.h>
#include <imgui_stdlib.h>

#include <algorithm>
#include <filesystem>
#include <cstdio>
#include <functional>
#include <vector>

#include "core/train/export.h"
#include "ui/panels.h"
#include "ui/widgets.h"

namespace difflab {

namespace {

constexpr const char* kOpenConfigPopup = "Open config";
constexpr const char* kSaveConfigPopup = "Save config";
constexpr const char* kScreenshotPopup = "Save screenshot";

// A modal asking for one path. `on_confirm` runs inside the popup when the user presses
// the button or Enter; the dialog closes when it returns true and otherwise stays open
// showing the error in menu.message.
void path_dialog(const char* title, const char* prompt, std::string* path, const char* ok_label,
                 const MenuState& menu, const std::function<bool()>& on_confirm) {
  ImGui::SetNextWindowSize(ImVec2(ImGui::GetFontSize() * 32.0f, 0), ImGuiCond_Appearing);
  if (!ImGui::BeginPopupModal(title, nullptr, ImGuiWindowFlags_AlwaysAutoResize)) return;
  ImGui::TextUnformatted(prompt);
  if (ImGui::IsWindowAppearing()) ImGui::SetKeyboardFocusHere();
  ImGui::SetNextItemWidth(ImGui::GetFontSize() * 30.0f);
  const bool enter = ImGui::InputText("##path", path, ImGuiInputTextFlags_EnterReturnsTrue);
  if (menu.message_is_error) error_text(menu.message);
  if ((ImGui::Button(ok_label) || enter) && on_confirm()) ImGui::CloseCurrentPopup();
  ImGui::SameLine();
  if (ImGui::Button("Cancel") || ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_Escape)))
    ImGui::CloseCurrentPopup();
  ImGui::EndPopup();
}

void draw_file_dialogs(const Snapshot& snap, UiContext& ctx) {
  MenuState& menu = ctx.ui.menu;
  auto open = [&menu](const char* popup) {
    menu.message.clear();
    menu.message_is_error = false;
    ImGui::OpenPopup(popup);
  };
  if (menu.open_config) open(kOpenConfigPopup);
  if (menu.save_config) open(kSaveConfigPopup);
  if (menu.save_screenshot) open(kScreenshotPopup);
  menu.open_config = menu.save_config = menu.save_screenshot = false;

  auto finish = [&menu](bool ok, const std::string& message) {
    menu.message = message;
    menu.message_is_error = !ok;
    return ok;
  };
  path_dialog(kOpenConfigPopup, "YAML config to open (relative: working dir, then source tree):",
              &menu.config_path, "Open", menu, [&] {
                std::string error;
                const bool ok = ctx.actions.open_config(snap, menu.config_path, &error);
                return finish(ok, ok ? "opened " + menu.config_path : error);
              });
  path_dialog(kSaveConfigPopup, "Save the settings shown in the panels as YAML:", &menu.config_path,
              "Save", menu, [&] {
                std::string error;
                const bool ok = ctx.actions.save_config(menu.config_path, &error);
                return finish(ok, ok ? "saved " + menu.config_path : error);
              });
  path_dialog(kScreenshotPopup, "PNG file for a screenshot of the window:", &menu.screenshot_path,
              "Save", menu, [&] {
                ctx.ui.screenshot_request = menu.screenshot_path;
                return finish(true, "screenshot " + menu.screenshot_path);
              });
}

}  // namespace

void draw_main_menu(const Snapshot& snap, UiContext& ctx) {
  UiState& ui = ctx.ui;
  if (ImGui::BeginMainMenuBar()) {
    if (ImGui::BeginMenu("File")) {
      if (ImGui::MenuItem("Open config...")) ui.menu.open_config = true;
      if (ImGui::MenuItem("Save config...")) ui.menu.save_config = true;
      ImGui::Separator();
      // The trained models shipped in assets/starters/ (scripts/make_starters.sh).
      if (ImGui::BeginMenu("Starter model")) {
        const auto starters = starter_models();
        if (starters.empty()) ImGui::TextDisabled("none found in assets/starters/");
        for (const auto& path : starters) {
          const std::string name = std::filesystem::path(path).parent_path().filename().string();
          if (ImGui::MenuItem(name.c_str())) ctx.actions.load_checkpoint_file(snap, path);
          if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", path.c_str());
        }
        ImGui::EndMenu();
      }
      ImGui::Separator();
      if (ImGui::MenuItem("Save screenshot...")) ui.menu.save_screenshot = true;
      if (ImGui::MenuItem("Quick screenshot", "Ctrl+P")) ui.screenshot_request = ui.menu.screenshot_path;
      ImGui::Separator();
      if (ImGui::MenuItem("Quit", "Ctrl+Q")) ctx.actions.request_quit(snap);
      ImGui::EndMenu();
    }
    if (ImGui::BeginMenu("View")) {
      for (const PanelInfo& panel : kPanels) {
        const std::string shortcut =
            panel.shortcut_key ? std::string("Ctrl+") + panel.shortcut_key : "";
        ImGui::MenuItem(panel.title, shortcut.empty() ? nullptr : shortcut.c_str(),
                        &panel_visible(ui, panel.id));
      }
      ImGui::Separator();
      ImGui::MenuItem("Frame-time overlay", nullptr, &ui.show_frame_overlay);
      ImGui::MenuItem("Re-tile when the window resizes", nullptr, &ui.retile_on_resize);
      if (ImGui::MenuItem("Reset layout")) ui.reset_layout = true;
      ImGui::EndMenu();
    }
    if (ImGui::BeginMenu("Help")) {
      ImGui::TextUnformatted("Diffusion Lab: train a small diffusion model and watch it work.");
      ImGui::TextDisabled("1. Dataset: Load   2. Training: Train   3. Sampling: Generate");
      ImGui::TextDisabled("Hover (?) markers for what each setting does.");
      ImGui::TextDisabled("Ctrl + mouse wheel over an image zooms it.");
      ImGui::EndMenu();
    }
    // Right side: status and the last file message.
    const std::string status = std::string(job_status_name(snap.status)) +
                               (snap.message.empty() ? "" : ": " + snap.message);
    const float width = ImGui::CalcTextSize(status.c_str()).x;
    if (!ui.menu.message.empty() && !ui.menu.message_is_error) {
      ImGui::SameLine(0, 30);
      ImGui::TextDisabled("%s", ui.menu.message.c_str());
    }
    ImGui::SameLine(std::max(ImGui::GetWindowWidth() - width - 16.0f, ImGui::GetCursorPosX() + 20.0f));
    ImGui::TextDisabled("%s", status.c_str());
    ImGui::EndMainMenuBar();
  }
  // Shortcuts (ImGui 1.86 indexes keys by the GLFW key code, which is ASCII for letters).
  const ImGuiIO& io = ImGui::GetIO();
  if (io.KeyCtrl && !io.WantTextInput) {
    if (ImGui::IsKeyPressed('Q', false)) ctx.actions.request_quit(snap);
    if (ImGui::IsKeyPressed('P', false)) ui.screenshot_request = ui.menu.screenshot_path;
    for (const PanelInfo& panel : kPanels)
      if (panel.shortcut_key && ImGui::IsKeyPressed(panel.shortcut_key, false))
        panel_visible(ui, panel.id) = !panel_visible(ui, panel.id);
  }
  draw_file_dialogs(snap, ctx);
}

void draw_frame_overlay(const Snapshot& snap, UiContext& ctx) {
  UiState& ui = ctx.ui;
  if (!ui.show_frame_overlay) return;
  const ImVec2 display = ImGui::GetIO().DisplaySize;
  ImGui::SetNextWindowPos(ImVec2(display.x - 10.0f, display.y - 10.0f), ImGuiCond_Always, ImVec2(1, 1));
  ImGui::SetNextWindowBgAlpha(0.75f);
  const ImGuiWindowFlags flags = ImGuiWindowFlags_NoDecoration | ImGuiWindowFlags_AlwaysAutoResize |
                                 ImGuiWindowFlags_NoSavedSettings | ImGuiWindowFlags_NoFocusOnAppearing |
                                 ImGuiWindowFlags_NoNav;
  if (!ImGui::Begin("Frame time", &ui.show_frame_overlay, flags)) {
    ImGui::End();
    return;
  }
  const FrameStats& f = ui.frames;
  std::vector<float> ordered;
  for (size_t i = 0; i < f.count; ++i)
    ordered.push_back(f.ms[(f.head + kFrameHistory - f.count + i) % kFrameHistory]);
  std::vector<float> sorted = ordered;
  std::sort(sorted.begin(), sorted.end());
  auto pct = [&sorted](double p) {
    return sorted.empty() ? 0.0f : sorted[std::min(sorted.size() - 1, static_cast<size_t>(p * sorted.size()))];
  };
  ImGui::Text("frame %.2f ms  p50 %.2f  p99 %.2f  max %.2f", ordered.empty() ? 0.0f : ordered.back(),
              pct(0.5), pct(0.99), sorted.empty() ? 0.0f : sorted.back());
  ImGui::Text("%.0f fps   snapshot v%llu   texture uploads %llu", ImGui::GetIO().Framerate,
              static_cast<unsigned long long>(snap.version),
              static_cast<unsigned long long>(ctx.textures.uploads()));
  if (!ordered.empty())
    ImGui::PlotLines("##frames", ordered.data(), static_cast<int>(ordered.size()), 0, "ms per frame",
                     0.0f, std::max(pct(0.99) * 1.5f, 1.0f), ImVec2(ImGui::GetFontSize() * 22.0f, 50.0f));
  ImGui::End();
}

}  // namespace difflab

// The difflab window: GLFW + OpenGL 3.3 core (glad) + Dear ImGui, one Engine worker,
// and the frame loop (events, snapshot, UI, render, screenshot, throttling).
#pragma once

#include <memory>
#include <string>

#include "app/gui/app_options.h"
#include "core/config/config.h"
#include "ui/ui_state.h"

struct GLFWwindow;

namespace difflab {

class App {
 public:
  App(AppOptions options, Config config);
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  // Opens the window, runs until it is closed (or automation ends), returns the exit code.
  int run();

  // GLFW callbacks mark that input arrived, so the next frames are drawn at full rate.
  void note_event() { m_events = true; }
  void note_resize() { m_resized = true; m_events = true; }
  // The window's close button: asks like File > Quit instead of closing at once.
  void note_close() {
    m_close_requested = true;
    m_events = true;
  }

 private:
  bool open_window();
  void setup_imgui();
  void close_window();

  AppOptions m_options;
  Config m_config;
  GLFWwindow* m_window = nullptr;
  std::string m_ini_path;  // must outlive the ImGui context (io.IniFilename points here)
  UiState m_ui;            // outlives the context too: its ini handler writes from it
  bool m_imgui_ready = false;
  bool m_events = false;
  bool m_resized = false;
  bool m_close_requested = false;
};

}  // namespace difflab

// The frame loop follows Dear ImGui's example_glfw_opengl3: set up GLFW, the GL loader
// and the ImGui context; loop (events, NewFrame, widgets, Render, swap); shut down in
// reverse order. Differences: the loop waits for events when nothing changes (at most
// 100 ms while the worker is busy), sleeps while iconified, and can be driven by
// Automation for tests. Quitting (File > Quit, Ctrl+Q, the window's close button) asks
// first when the model has unsaved training; scripted runs exit through Automation.
#include "app/gui/app.h"

#include <glad/gl.h>
#include <GLFW/glfw3.h>
#include <imgui.h>
#include <imgui_impl_glfw.h>
#include <imgui_impl_opengl3.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>

#include "app/gui/automation.h"
#include "core/engine/engine.h"
#include "core/train/export.h"
#include "core/train/run_folder.h"
#include "ui/actions.h"
#include "ui/colormap.h"
#include "ui/gl_util.h"
#include "ui/panels.h"
#include "ui/point_cloud.h"
#include "ui/texture_cache.h"
#include "ui/ui_settings.h"
#include "ui/ui_state.h"

namespace difflab {

namespace {

// Redraw at most this often while the worker trains or samples and nothing else happens
// (AppOptions::busy_redraw_s, default 0.5 s), and when idle.
constexpr double kIdleRedrawS = 0.5;
// While a script drives the app: about 50 frames a second, leaving the CPU to the worker.
constexpr double kScriptFrameS = 0.02;
// Frames drawn at full rate after any input (hover effects, popups settle).
constexpr int kFramesAfterInput = 3;
// Poll interval while the window is minimised.
constexpr double kIconifiedWaitS = 0.25;
constexpr float kFontSize = 15.0f;
// Latin-1, Greek (+ extended: ᾱ), punctuation, sub/superscripts (x₀), arrows, maths.
constexpr ImWchar kGlyphRanges[] = {0x0020, 0x00FF, 0x0370, 0x03FF, 0x1F00, 0x1FFF, 0x2000, 0x206F,
                                    0x2070, 0x209F, 0x2190, 0x21FF, 0x2200, 0x22FF, 0x25A0, 0x25FF, 0};
constexpr const char* kFontCandidates[] = {
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
};

App* app_of(GLFWwindow* window) { return static_cast<App*>(glfwGetWindowUserPointer(window)); }

void on_glfw_error(int code, const char* text) { std::fprintf(stderr, "glfw error %d: %s\n", code, text); }

void install_event_callbacks(GLFWwindow* window) {
  // Installed before ImGui's backend, which chains to them.
  glfwSetCursorPosCallback(window, [](GLFWwindow* w, double, double) { app_of(w)->note_event(); });
  glfwSetMouseButtonCallback(window, [](GLFWwindow* w, int, int, int) { app_of(w)->note_event(); });
  glfwSetScrollCallback(window, [](GLFWwindow* w, double, double) { app_of(w)->note_event(); });
  glfwSetKeyCallback(window, [](GLFWwindow* w, int, int, int, int) { app_of(w)->note_event(); });
  glfwSetCharCallback(window, [](GLFWwindow* w, unsigned int) { app_of(w)->note_event(); });
  glfwSetWindowFocusCallback(window, [](GLFWwindow* w, int) { app_of(w)->note_event(); });
  glfwSetCursorEnterCallback(window, [](GLFWwindow* w, int) { app_of(w)->note_event(); });
  glfwSetWindowRefreshCallback(window, [](GLFWwindow* w) { app_of(w)->note_event(); });
  glfwSetFramebufferSizeCallback(window, [](GLFWwindow* w, int, int) { app_of(w)->note_resize(); });
  glfwSetWindowCloseCallback(window, [](GLFWwindow* w) {
    glfwSetWindowShouldClose(w, GLFW_FALSE);  // the frame loop asks first (unsaved training)
    app_of(w)->note_close();
  });
}

// Where run folders go when --runs is not given: as the engine decides, beside the
// config's output folder.
std::string default_runs_root(const Config& config) {
  const std::filesystem::path parent = std::filesystem::path(config.train.out_dir).parent_path();
  return parent.empty() ? "runs" : parent.string();
}

void apply_style() {
  ImGui::StyleColorsDark();
  ImGuiStyle& style = ImGui::GetStyle();
  style.WindowRounding = 4.0f;
  style.FrameRounding = 3.0f;
  style.GrabRounding = 3.0f;
  style.ScrollbarRounding = 4.0f;
  style.WindowPadding = ImVec2(8, 6);
  style.FramePadding = ImVec2(5, 3);
  style.ItemSpacing = ImVec2(7, 4);
  style.ItemInnerSpacing = ImVec2(5, 4);
  style.WindowTitleAlign = ImVec2(0.0f, 0.5f);
  ImVec4* c = style.Colors;
  c[ImGuiCol_WindowBg] = ImVec4(0.11f, 0.12f, 0.14f, 1.0f);
  c[ImGuiCol_TitleBgActive] = ImVec4(0.16f, 0.29f, 0.48f, 1.0f);
  c[ImGuiCol_TitleBg] = ImVec4(0.12f, 0.16f, 0.22f, 1.0f);
}

void load_fonts() {
  ImGuiIO& io = ImGui::GetIO();
  for (const char* path : kFontCandidates) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) continue;
    ImFontConfig config;
    config.OversampleH = 1;  // glyphs at screen size on whole pixels: nearest sampling suffices
    config.OversampleV = 1;
    config.PixelSnapH = true;
    if (io.Fonts->AddFontFromFileTTF(path, kFontSize, &config, kGlyphRanges)) return;
  }
  io.Fonts->AddFontDefault();  // ProggyClean: ASCII only, Greek shows as '?'
}

// Every ImGui pixel samples the font atlas (solid shapes use its white texel), and the
// backend samples it bilinearly. Glyphs are rasterised at screen size and snapped to
// whole pixels (load_fonts), so nearest sampling draws the same picture, and in a
// software renderer (llvmpipe under Xvfb) it is much cheaper per pixel.
void use_nearest_font_sampling() {
  const auto texture = static_cast<GLuint>(reinterpret_cast<intptr_t>(ImGui::GetIO().Fonts->TexID));
  if (texture == 0) return;
  GLint previous = 0;
  glGetIntegerv(GL_TEXTURE_BINDING_2D, &previous);
  glBindTexture(GL_TEXTURE_2D, texture);
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
  glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
  glBindTexture(GL_TEXTURE_2D, static_cast<GLuint>(previous));
}

bool write_screenshot(const std::string& path, GLFWwindow* window, std::string* message) {
  int w = 0, h = 0;
  glfwGetFramebufferSize(window, &w, &h);
  try {
    write_png(path, read_framebuffer(w, h));
    *message = "wrote screenshot " + path;
    return true;
  } catch (const std::exception& e) {
    *message = e.what();
    return false;
  }
}

}  // namespace

App::App(AppOptions options, Config config) : m_options(std::move(options)), m_config(std::move(config)) {}

App::~App() { close_window(); }

bool App::open_window() {
  glfwSetErrorCallback(on_glfw_error);
  if (!glfwInit()) {
    std::fprintf(stderr, "difflab: cannot initialise GLFW (no display?)\n");
    return false;
  }
  glfwWindowHint(GLFW_CONTEXT_VERSION_MAJOR, 3);
  glfwWindowHint(GLFW_CONTEXT_VERSION_MINOR, 3);
  glfwWindowHint(GLFW_OPENGL_PROFILE, GLFW_OPENGL_CORE_PROFILE);
  glfwWindowHint(GLFW_OPENGL_FORWARD_COMPAT, GLFW_TRUE);
  m_window = glfwCreateWindow(m_options.width, m_options.height, "Diffusion Lab", nullptr, nullptr);
  if (!m_window) {
    std::fprintf(stderr, "difflab: cannot open an OpenGL 3.3 core window\n");
    glfwTerminate();
    return false;
  }
  glfwMakeContextCurrent(m_window);
  glfwSwapInterval(m_options.bench_frames > 0 ? 0 : 1);
  if (!gladLoadGL(glfwGetProcAddress)) {
    std::fprintf(stderr, "difflab: cannot load the OpenGL functions\n");
    return false;
  }
  glfwSetWindowUserPointer(m_window, this);
  install_event_callbacks(m_window);
  return true;
}

void App::setup_imgui() {
  IMGUI_CHECKVERSION();
  ImGui::CreateContext();
  ImGuiIO& io = ImGui::GetIO();
  if (m_options.ini == "none" || (m_options.ini == "default" && m_options.automated()))
    m_ini_path.clear();
  else if (m_options.ini == "default")
    m_ini_path = default_ini_path();
  else
    m_ini_path = m_options.ini;
  io.IniFilename = m_ini_path.empty() ? nullptr : m_ini_path.c_str();
  io.ConfigWindowsMoveFromTitleBarOnly = true;  // dragging inside plots must not move panels
  apply_style();
  load_fonts();
  ImGui_ImplGlfw_InitForOpenGL(m_window, true);
  ImGui_ImplOpenGL3_Init("#version 330 core");
  m_imgui_ready = true;
}

void App::close_window() {
  if (m_imgui_ready) {
    ImGui_ImplOpenGL3_Shutdown();
    ImGui_ImplGlfw_Shutdown();
    ImGui::DestroyContext();  // also writes imgui.ini
    m_imgui_ready = false;
  }
  if (m_window) {
    glfwDestroyWindow(m_window);
    glfwTerminate();
    m_window = nullptr;
  }
}

int App::run() {
  if (!open_window()) return 1;
  setup_imgui();

  UiState& ui = m_ui;
  ui.print_layout = m_options.print_layout;
  ui.edit = m_config;
  ui.menu.config_path = m_options.config_path;
  register_ui_settings(ui);  // before the first NewFrame reads imgui.ini

  // GL objects live in this scope so they are deleted before the context.
  ColormapRenderer colormap;
  PointRenderer point_renderer;
  std::string error;
  if (!colormap.init(&error) || !point_renderer.init(&error)) {
    std::fprintf(stderr, "difflab: %s\n", error.c_str());
    return 1;
  }
  EngineOptions engine_options;
  engine_options.threads = m_options.threads;
  engine_options.nice = m_options.worker_nice;
  engine_options.device = m_options.device;
  engine_options.runs_root = m_options.runs_root;
  // The Runs panel lists the folders where this app's runs go.
  ui.runs.root = m_options.runs_root.empty() ? default_runs_root(m_config) : m_options.runs_root;
  Engine engine(m_config, engine_options);
  Actions actions(engine, ui);
  TextureCache textures(colormap);
  PointCanvasCache points(point_renderer);
  UiContext ctx{ui, actions, textures, points};
  Automation automation(m_options, engine, ui, actions);
  if (m_options.autoload && !automation.driving()) actions.load_dataset(*engine.snapshot());
  actions.send_preview_settings();
  if (!m_options.controlnet.empty()) {
    ui.controlnet.path = m_options.controlnet;
    panel_visible(ui, Panel::ControlNet) = true;
    actions.load_controlnet(ui.controlnet.path, "");
  } else if (!automation.driving()) {
    // The last GUI run (remembered when its folder was made), if it holds a checkpoint.
    const std::string runs_root =
        m_options.runs_root.empty() ? default_runs_root(m_config) : m_options.runs_root;
    ui.resume.dir = last_run(runs_root);
    if (!ui.resume.dir.empty()) {
      ui.resume.step = checkpoint_step_from_name(latest_checkpoint(ui.resume.dir));
      ui.resume.open_popup = true;
    }
    // A new user meets a trained model: sample, scrub and scribble at once.
    std::string starter = m_options.starter;
    if (starter == "auto")
      starter = ui.resume.dir.empty() && !m_options.config_given && m_options.autoload
                    ? starter_model(std::string(to_string(m_config.data.kind)))
                    : std::string();
    if (!starter.empty() && starter != "none") actions.load_checkpoint_file(*engine.snapshot(), starter);
  }

  // Scripted runs park the pointer on the menu bar's right end, where hovering shows
  // nothing, so screenshots carry no stray tooltips (Xvfb starts it mid-screen).
  if (m_options.automated()) glfwSetCursorPos(m_window, m_options.width - 4.0, 4.0);
  const double start = glfwGetTime();
  int active_frames = kFramesAfterInput;
  FrameTimes last;
  int64_t frame = 0;
  int exit_code = 0;
  while (!glfwWindowShouldClose(m_window)) {
    std::shared_ptr<const Snapshot> snap = engine.snapshot();
    if (automation.fast_pacing()) {
      glfwWaitEventsTimeout(kScriptFrameS);
    } else if (active_frames > 0) {
      glfwPollEvents();
      --active_frames;
    } else {
      double wait = engine_busy(*snap) ? m_options.busy_redraw_s : kIdleRedrawS;
      if (ui.sampling.playing) wait = std::min(wait, 1.0 / std::max(ui.sampling.play_fps, 1.0f));
      glfwWaitEventsTimeout(wait);
    }
    if (m_events) {
      active_frames = kFramesAfterInput;
      m_events = false;
    }
    if (m_close_requested) {
      m_close_requested = false;
      actions.request_quit(*snap);
    }
    if (m_resized) {
      m_resized = false;
      if (ui.retile_on_resize && frame > 0) ui.reset_layout = true;
    }
    if (glfwGetWindowAttrib(m_window, GLFW_ICONIFIED) && !m_options.automated()) {
      glfwWaitEventsTimeout(kIconifiedWaitS);
      continue;
    }

    const double frame_start = glfwGetTime();
    snap = engine.snapshot();
    ImGui_ImplOpenGL3_NewFrame();  // builds the font texture on the first frame
    if (frame == 0) use_nearest_font_sampling();
    ImGui_ImplGlfw_NewFrame();
    ImGui::NewFrame();
    draw_ui(*snap, ctx);
    track_ui_settings(ui);
    const AutomationResult result = automation.update(*snap, frame_start - start, last);
    if (result.screenshot) ui.screenshot_request = m_options.screenshot;
    ImGui::Render();
    const double ui_done = glfwGetTime();
    last.ui_ms = static_cast<float>((ui_done - frame_start) * 1000.0);

    int fb_w = 0, fb_h = 0;
    glfwGetFramebufferSize(m_window, &fb_w, &fb_h);
    glViewport(0, 0, fb_w, fb_h);
    glClearColor(0.06f, 0.06f, 0.07f, 1.0f);
    glClear(GL_COLOR_BUFFER_BIT);
    ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());
    if (m_options.bench_frames > 0 || m_options.frames > 0) glFinish();  // so benchmarks can split draw and swap
    last.draw_ms = static_cast<float>((glfwGetTime() - ui_done) * 1000.0);
    if (!ui.screenshot_request.empty()) {
      std::string message;
      const bool ok = write_screenshot(ui.screenshot_request, m_window, &message);
      std::printf("%s\n", message.c_str());
      std::fflush(stdout);
      actions.report(JobKind::Export, ok, message, ui.screenshot_request);
      ui.sampling.export_shown_here = false;  // the menu bar shows it
      ui.menu.message = message;
      ui.menu.message_is_error = !ok;
      ui.screenshot_request.clear();
      if (result.screenshot && !ok) exit_code = 1;
    }
    glfwSwapBuffers(m_window);
    textures.end_frame();
    last.frame_ms = static_cast<float>((glfwGetTime() - frame_start) * 1000.0);
    ui.frames.add(last.frame_ms);
    ++frame;
    if (result.exit) {
      exit_code = std::max(exit_code, result.code);
      break;
    }
    if (ui.quit_requested) glfwSetWindowShouldClose(m_window, GLFW_TRUE);
  }
  return exit_code;
}

}  // namespace difflab

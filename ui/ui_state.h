// Everything the GUI remembers between frames: which panels are open, the settings being
// edited (a working copy of the config), and per-panel view state. Panels read and write
// this struct; nothing in ui/ keeps static locals.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/config/config.h"
#include "core/train/run_folder.h"
#include "core/vision/hint_preview.h"
#include "ui/panel_table.h"

namespace difflab {

struct TrajectoryFrames;

// Which table the Schedule panel plots.
enum class ScheduleCurve { Beta, Alpha, AlphaBar, LogSnr, Count };
// What the scrubber's grid shows.
enum class FrameField { Xt, X0, Eps, Count };

// Frames shown in the frame-time overlay and kept for its percentiles.
constexpr size_t kFrameHistory = 240;

struct ScheduleView {
  int timesteps = 1000;   // T of the curves drawn (independent of the training config)
  int respace = 1000;     // K ≤ T: respaced steps drawn
  ScheduleCurve curve = ScheduleCurve::AlphaBar;
  bool log_y = false;
  int image_index = 0;    // which data_preview image is noised in the strip
  uint64_t noise_seed = 1;
  bool initialised = false;  // T taken from the config on first use
};

struct DatasetView {
  float zoom = 0.0f;      // preview zoom; 0 = fit the panel's width
  std::string status;     // inline message from the last Load
};

struct ModelView {
  // Text of the integer-list fields while they are being typed.
  std::string channel_mult_text, attention_text;
  bool editing_mult = false, editing_attention = false;
};

struct TrainingView {
  std::string checkpoint_path;  // the "Save as" / "Load" path field
  // Preview samples while training (cmd::SetPreviewEvery): every `preview_every_s` seconds
  // of training (the default: a first grid within a minute, whatever the model's speed), or
  // every `preview_every` steps; 0 = off.
  bool preview_by_time = true;
  double preview_every_s = 30.0;
  int64_t preview_every = 200;
  bool preview_sent = false;    // the engine has the settings above
  float smoothing = 0.95f;      // EMA factor of the smoothed loss curve
  bool log_y = true;
  float zoom = 2.0f;
};

struct SamplingView {
  float zoom = 2.0f;
  float detail_zoom = 4.0f;
  int selected = 0;             // image shown large in the scrubber
  int frame = 0;                // scrubber position (index into TrajectoryFrames)
  bool playing = false;
  float play_fps = 12.0f;
  double play_clock = 0.0;      // time accumulated towards the next frame
  FrameField grid_field = FrameField::Xt;
  float eps_range = 3.0f;       // diverging colormap spans [−range, range]
  // The trajectory the scrubber was set for, held so its address cannot be reused by a
  // later run while we compare against it; run_serial counts runs seen and keys textures.
  std::shared_ptr<const TrajectoryFrames> run;
  uint64_t run_serial = 0;
  std::string export_path;      // frame PNG
  std::string export_dir;       // trajectory PNG sequence
  std::string export_gif;       // trajectory as an animated GIF
  bool gif_requested = false;   // the Export GIF button (or a script) asked for one
  int eval_n = 200;             // samples the Evaluate button scores
  std::string status;           // the last export's message (also reported to the engine)
  bool export_shown_here =
      false;  // the Export job's last outcome is the scrubber's (not a screenshot)
};

// Where the ControlNet panel's hint comes from: drawn on the canvas, or made from a picture.
enum class HintSource { Draw, Picture, Count };

struct ControlNetView {
  std::string path = "runs/mnist_controlnet/controlnet.pt";
  std::string base_override;   // "" = the base named in the ControlNet checkpoint
  bool load_requested = false; // --controlnet at start-up
  HintSource source = HintSource::Draw;
  // The hint's kind (canny, scribble, hough, mask, distance: never mixed); a loaded
  // ControlNet brings its own (a mixed one: scribble to draw, canny from a picture).
  HintKind kind = HintKind::Scribble;
  // The canvas at the model's resolution, row-major, 0/1; undo keeps earlier canvases.
  int height = 0, width = 0;
  std::vector<float> canvas;
  std::vector<std::vector<float>> undo;
  int brush = 2;               // brush width in pixels (1-4; 1-8 for mask and distance)
  bool eraser = false;
  bool stroking = false;       // the mouse is down on the canvas
  float last_x = -1, last_y = -1;  // previous brush position (canvas pixels), for continuous strokes
  float line_x = -1, line_y = -1;  // hough: where the straight line being drawn starts
  float canvas_zoom = 10.0f;
  // What the canvas means as a hint of `drawn_kind` (drawn_hint: the strokes, or the
  // enclosed region filled, or its distance map), for the canvas `drawn_from`.
  GrayPicture drawn;
  std::vector<float> drawn_from;
  HintKind drawn_kind = HintKind::Count;
  // The picture whose hint map is the hint (a PNG/JPG or a dataset image).
  std::string picture_path;
  GrayPicture picture;
  std::string picture_name;
  int dataset_index = 0;
  float canny_low = 100.0f, canny_high = 200.0f;
  float object_threshold = 0.2f;  // mask and distance: brightness that counts as the object
  uint64_t picture_serial = 0; // counts pictures taken
  // The hint map of `map_kind` of picture `map_serial` at (map_low, map_high, map_object).
  GrayPicture picture_map;
  HintKind map_kind = HintKind::Count;
  float map_low = -1.0f, map_high = -1.0f, map_object = -1.0f;
  uint64_t map_serial = 0;
  std::string adopted;         // the ControlNet (path, step) whose kind, thresholds and scale were taken
  // Generation.
  float scale = 1.0f;
  float guidance = 0.0f;       // 0 = unconditional: the hint alone decides
  int class_label = -1;
  int n = 8;
  bool overlay = true;
  float zoom = 3.0f;
  std::string status;
  bool status_is_error = false;
  // Training a ControlNet for the current model (the panel's Train tab).
  HintKind train_hint = HintKind::Scribble;
  int64_t train_steps = 2000;
  int64_t curve_every = 100;    // steps between hint-following curve points (0 = off)
  std::string continue_dir;     // "" = a new ControlNet; else the folder Train continues
  uint64_t found_requested_serial = 0;  // the model (serial, step) whose ControlNets were asked for
  int64_t found_requested_step = -1;
  int select_tab = -1;          // a tab to bring to the front next frame (0 Generate, 1 Train)
  bool was_training = false;    // a ControlNet trained last frame (its end brings Generate to the front)
};

struct ForwardView {
  int image_index = 0;
  int t = 250;
  uint64_t noise_seed = 7;
  float zoom = 4.0f;
};

struct ToyView {
  int forward_t = 0;            // noise the data cloud to this t (0 = clean data)
  bool show_data = true;
  bool show_samples = true;
  bool show_x0 = false;
  bool show_trails = true;
  bool show_field = true;       // the model's field at the scrubbed step, as arrows
  bool show_density = false;    // a density estimate of the particles at that step
  int trail_count = 200;        // particles whose path is drawn
  float point_size = 3.0f;
  float range = 2.0f;           // half-width of the view in data units
  bool auto_shown = false;      // opened once automatically for 2-D data
};

struct LogView {
  bool auto_scroll = true;
  std::string filter;
};

// The Runs panel: run folders under `root`, read from disk (metrics.csv), compared.
struct RunsView {
  struct Entry {
    std::string dir, name;
    RunHistory history;
    std::vector<RunEvaluation> evals;  // evals.csv: GUI Evaluate and difflab-cli eval
    bool chosen = false;
    bool current = false;  // the folder the app's model trains into
    int64_t modified = 0;  // metrics.csv's last write, for the newest-first order
  };
  std::string root;           // "" = the runs root the app was started with
  std::vector<Entry> runs;    // newest first
  bool scanned = false;
  double scanned_at = 0.0;    // ImGui::GetTime() of the last scan
  std::string scanned_current;  // the current run folder at the last scan
  bool by_minutes = false;    // x axis: training minutes (train_s) instead of steps
  bool show_test = true;
  bool log_y = true;
  std::string last_event;     // the plot's last "runs plot ..." line (--print-layout)
};

// Work that would lose unsaved training waits here for the answer to "Save / Discard /
// Cancel". After Save it runs once the Save job newer than `save_serial` is Done.
enum class GuardedAction { None, Quit, LoadCheckpoint, ApplyConfig, NewRun };
struct UnsavedGuard {
  GuardedAction action = GuardedAction::None;
  bool open_popup = false;
  std::string what;           // "quit", "load …": what happens after the answer
  int64_t unsaved_steps = 0;  // when asked
  bool saving = false;
  uint64_t save_serial = 0;
  std::string error;  // the Save failed: the action was not carried out
  // The action's arguments.
  std::string path;  // LoadCheckpoint
  Config config;     // ApplyConfig
  bool load_data = false, start_training = false;
};

// A Save that came back NeedsConfirmation: "Replace <path>?".
struct ReplaceQuestion {
  uint64_t handled_serial = 0;  // Save job results up to this one were looked at
  bool open_popup = false;
  std::string path;
};

// At start-up: the last GUI run, offered for resuming.
struct ResumeOffer {
  bool open_popup = false;
  std::string dir;
  int64_t step = -1;
};

struct MenuState {
  bool open_config = false;     // request to open the dialog this frame
  bool save_config = false;
  bool save_screenshot = false;
  std::string config_path = "configs/mnist.yaml";
  std::string screenshot_path = "difflab_screenshot.png";
  std::string message;          // result of the last file action
  bool message_is_error = false;
};

struct FrameStats {
  std::array<float, kFrameHistory> ms{};  // CPU time of each recent frame
  size_t head = 0, count = 0;
  void add(float v) {
    ms[head] = v;
    head = (head + 1) % kFrameHistory;
    if (count < kFrameHistory) ++count;
  }
};

struct UiState {
  std::array<bool, kPanelCount> visible = default_panel_visibility();
  bool show_frame_overlay = false;
  bool retile_on_resize = true;
  bool reset_layout = false;    // apply the default tiling this frame
  uint32_t persisted_flags = 0; // the view flags as last written to imgui.ini

  // The working copy of the config that every editor changes; applied with SetConfig.
  Config edit;
  std::string engine_config_yaml;  // the engine's config last adopted into `edit`
  uint64_t adopted_version = 0;
  Panel config_sender = Panel::Model;  // the panel whose SetConfig shows the Config job
  uint64_t model_serial = 0;           // of the model the views were last set for
  // The newest job serial when the model last changed: the outcomes of the old model's
  // saves, training, sampling and exports (serial ≤ this) are no longer shown.
  uint64_t jobs_before_model = 0;

  ScheduleView schedule;
  DatasetView dataset;
  ModelView model;
  TrainingView training;
  SamplingView sampling;
  ForwardView forward;
  ControlNetView controlnet;
  ToyView toy;
  LogView log;
  RunsView runs;
  UnsavedGuard guard;
  ReplaceQuestion replace;
  ResumeOffer resume;
  MenuState menu;
  FrameStats frames;

  std::string screenshot_request;  // written at the end of this frame when non-empty
  bool quit_requested = false;

  // --print-layout: screen rectangles of named widgets, printed when they change.
  bool print_layout = false;
  std::map<std::string, std::string> layout;
};

inline bool& panel_visible(UiState& ui, Panel p) { return ui.visible[static_cast<size_t>(p)]; }

}  // namespace difflab

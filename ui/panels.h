// The panels, one file each (ui/panel_*.cpp), registered in ui/panel_table.h. Each draws
// the contents of one window from the latest snapshot and its own slice of UiState;
// buttons call Actions.
//
//   panel_dataset.cpp   data source, Load, preview grid, class counts
//   panel_schedule.cpp  β, α, ᾱ, log-SNR of the four schedules; noised strip per schedule
//   panel_model.cpp     UNet / MLP and diffusion settings, parameter count
//   panel_training.cpp  Train / Pause / Stop, checkpoints, loss plots, preview samples
//   panel_sampling.cpp  sampler settings, Generate / Cancel, results (+ scrubber.cpp)
//   panel_forward.cpp   x_t = √ᾱ x₀ + √(1−ᾱ) ε for one image, t dragged by the user
//   panel_toy2d.cpp     2-D data and samples as GPU point clouds, reverse trajectories
//   panel_log.cpp       the worker's log
//   panel_controlnet.cpp  scribble canvas / picture canny → hint, ControlNet generation
//   main_menu.cpp       File / View menus, file dialogs, frame-time overlay
//   dialogs.cpp         unsaved training (save / discard / cancel), replace a file, resume
#pragma once

#include "core/engine/engine.h"
#include "ui/actions.h"
#include "ui/point_cloud.h"
#include "ui/texture_cache.h"
#include "ui/ui_state.h"

namespace difflab {

// What a panel may use besides the snapshot.
struct UiContext {
  UiState& ui;
  Actions& actions;
  TextureCache& textures;
  PointCanvasCache& points;
};

// The grid of the latest preview samples taken during training (null when none).
const CachedImage* training_preview_texture(const Snapshot& snap, UiContext& ctx);

// The scrubber over the last sampling run (inside the Sampling panel).
void draw_scrubber(const Snapshot& snap, UiContext& ctx);
// Advances the scrubber while playing; `dt` seconds since the last frame.
void update_scrubber_playback(const Snapshot& snap, UiContext& ctx, double dt);

// The 2-D picture of the toy view (data, particles at the scrubber's frame, trails),
// `side` pixels square; `name` keys its cached render.
void draw_point_view(const Snapshot& snap, UiContext& ctx, const char* name, float side);

void draw_main_menu(const Snapshot& snap, UiContext& ctx);
void draw_frame_overlay(const Snapshot& snap, UiContext& ctx);
// The modal questions of dialogs.cpp (each draws nothing unless asked).
void draw_unsaved_dialog(const Snapshot& snap, UiContext& ctx);
void draw_replace_dialog(const Snapshot& snap, UiContext& ctx);
void draw_resume_dialog(const Snapshot& snap, UiContext& ctx);

// Draws every visible panel and the menus (the whole UI for one frame).
void draw_ui(const Snapshot& snap, UiContext& ctx);

// Class name of label `label` ("3" when the dataset has no names; "" for −1).
std::string class_name(const Snapshot& snap, int64_t label);
// Labels for a grid of images with these class labels.
std::vector<std::string> class_labels(const Snapshot& snap, const std::vector<int64_t>& labels);
// The class names a sampling run's images were drawn for; none when nothing steered them
// toward a class (guidance 0 without classifier guidance is the unconditional model alone).
std::vector<std::string> run_class_labels(const Snapshot& snap, const TrajectoryFrames& run);
// One line: status, step, message; coloured by status.
void status_line(const Snapshot& snap);

// True when `images` holds 2-D points (c = 2, h = w = 1) rather than pictures: what a
// trajectory is drawn as follows its own data, never the current dataset's kind.
bool is_points(const FloatImages& images);
bool is_points(const TrajectoryFrames& run);

}  // namespace difflab

// Every panel, registered by one row of kPanels: its window title, the function that
// draws its contents, whether it is open on a first start, where the default layout puts
// it, and its View-menu shortcut. draw_ui, the View menu, the shortcuts, the default
// tiling and the saved visibility (imgui.ini) all iterate this table.
//
// A new panel: one file ui/panel_<name>.cpp defining draw_<name>_panel, and here one
// enum value, one declaration and one row (the static_asserts below catch a missing row).
#pragma once

#include <array>
#include <cstddef>

namespace difflab {

struct Snapshot;
struct UiContext;

enum class Panel {
  Dataset,
  Schedule,
  Model,
  Training,
  Sampling,
  Forward,
  Toy2d,
  Log,
  ControlNet,
  Runs,
  Count
};
constexpr size_t kPanelCount = static_cast<size_t>(Panel::Count);

// The contents of a panel's window: draw_ui has already called Begin (and calls End).
using DrawPanel = void (*)(const Snapshot& snap, UiContext& ctx);
void draw_dataset_panel(const Snapshot& snap, UiContext& ctx);
void draw_schedule_panel(const Snapshot& snap, UiContext& ctx);
void draw_model_panel(const Snapshot& snap, UiContext& ctx);
void draw_training_panel(const Snapshot& snap, UiContext& ctx);
void draw_sampling_panel(const Snapshot& snap, UiContext& ctx);
void draw_forward_panel(const Snapshot& snap, UiContext& ctx);
void draw_toy2d_panel(const Snapshot& snap, UiContext& ctx);
void draw_log_panel(const Snapshot& snap, UiContext& ctx);
void draw_controlnet_panel(const Snapshot& snap, UiContext& ctx);
void draw_runs_panel(const Snapshot& snap, UiContext& ctx);

// A rectangle of the default tiling: one of three columns (26 % | 37 % | 37 % of the
// width) and the band [top, bottom) of the height below the menu bar, as fractions.
struct PanelSlot {
  int column;
  float top, bottom;
};

struct PanelInfo {
  Panel id;
  const char* title;  // the window title, also its ImGui ID (keys its layout in imgui.ini)
  DrawPanel draw;
  bool open_by_default;
  PanelSlot slot;
  char shortcut_key;  // Ctrl + this key (a digit or capital letter) toggles it; '\0' = none
};

// In the order draw_ui submits them (later ones are drawn on top where they overlap).
constexpr PanelInfo kPanels[] = {
    {Panel::Dataset, "Dataset", draw_dataset_panel, true, {0, 0.0f, 0.40f}, '1'},
    {Panel::Schedule, "Schedule", draw_schedule_panel, true, {1, 0.56f, 1.0f}, '2'},
    {Panel::Model, "Model", draw_model_panel, true, {0, 0.40f, 0.66f}, '3'},
    {Panel::Training, "Training", draw_training_panel, true, {1, 0.0f, 0.56f}, '4'},
    {Panel::Sampling, "Sampling", draw_sampling_panel, true, {2, 0.0f, 0.80f}, '5'},
    {Panel::Forward, "Forward process", draw_forward_panel, true, {0, 0.66f, 1.0f}, '6'},
    {Panel::Toy2d, "2-D toy view", draw_toy2d_panel, false, {1, 0.56f, 1.0f}, '7'},
    {Panel::Log, "Log", draw_log_panel, true, {2, 0.80f, 1.0f}, '8'},
    // Over Training + Schedule when opened.
    {Panel::ControlNet, "ControlNet", draw_controlnet_panel, false, {1, 0.0f, 1.0f}, '9'},
    // Over Training + Schedule when opened, like the ControlNet panel.
    {Panel::Runs, "Runs", draw_runs_panel, false, {1, 0.0f, 1.0f}, 'R'},
};

constexpr bool panel_rows_in_order() {
  for (size_t i = 0; i < kPanelCount; ++i)
    if (static_cast<size_t>(kPanels[i].id) != i || kPanels[i].title == nullptr ||
        kPanels[i].draw == nullptr)
      return false;
  return true;
}
static_assert(std::size(kPanels) == kPanelCount, "one row of kPanels per Panel value");
static_assert(panel_rows_in_order(), "kPanels rows must follow the Panel enum's order");

constexpr const PanelInfo& panel_info(Panel p) { return kPanels[static_cast<size_t>(p)]; }
constexpr const char* panel_title(Panel p) { return panel_info(p).title; }

// The visibility of every panel on a first start.
constexpr std::array<bool, kPanelCount> default_panel_visibility() {
  std::array<bool, kPanelCount> v{};
  for (size_t i = 0; i < kPanelCount; ++i) v[i] = kPanels[i].open_by_default;
  return v;
}

}  // namespace difflab

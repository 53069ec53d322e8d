// Dataset panel: choose the source (MNIST, Fashion-MNIST, CIFAR-10, image folder, IDX
// folder, 2-D toy set), its path, Load; then a preview grid with labels, class counts
// and the image size. The outcome of the data job (and of the config the Load applied)
// shows inline: a path that does not load fails there and keeps the model and data.
#include <imgui.h>
#include <imgui_stdlib.h>

#include <algorithm>
#include <cstdio>
#include <exception>

#include "core/util/paths.h"
#include "ui/image_view.h"
#include "ui/line_plot.h"
#include "ui/panels.h"
#include "ui/widgets.h"

namespace difflab {

namespace {

// Preset configs shipped in configs/, adopted when the user switches dataset kind so the
// model and schedule suit the new data (28×28 grey, 32×32 RGB, or 2-D points).
const char* preset_for(DatasetKind kind) {
  switch (kind) {
    case DatasetKind::Mnist: return "configs/mnist.yaml";
    case DatasetKind::FashionMnist: return "configs/fashion_mnist.yaml";
    case DatasetKind::Cifar10: return "configs/cifar10.yaml";
    case DatasetKind::Toy2d: return "configs/toy2d.yaml";
    default: return nullptr;
  }
}

// Preview columns: the engine sends a few examples per class, class after class.
constexpr int kPreviewColumns = 8;

const char* path_hint(DatasetKind kind) {
  switch (kind) {
    case DatasetKind::Mnist: return "empty = <data dir>/mnist";
    case DatasetKind::FashionMnist: return "empty = /usr/share/datasets/fashion-mnist";
    case DatasetKind::Cifar10: return "folder with data_batch_*.bin";
    case DatasetKind::ImageFolder: return "folder of images; sub-folders = classes";
    case DatasetKind::Idx: return "folder with *-images-idx3-ubyte (+ labels)";
    case DatasetKind::Toy2d: return "(generated, no path)";
    case DatasetKind::Count: break;
  }
  return "";
}

// Switching kind: take the preset's settings when there is one, else keep the current
// model but make sure it fits images rather than points (and the other way round).
void switch_kind(UiState& ui, DatasetKind kind) {
  const DatasetKind before = ui.edit.data.kind;
  if (const char* preset = preset_for(kind)) {
    try {
      ui.edit = load_config(resolve_path(preset));
      ui.dataset.status = std::string("settings from ") + preset;
      return;
    } catch (const std::exception& e) {
      ui.dataset.status = std::string("preset not usable: ") + e.what();
    }
  }
  ui.edit.data.kind = kind;
  ui.edit.data.path.clear();
  if (kind == DatasetKind::Toy2d) {
    ui.edit.model.kind = ModelKind::Mlp;
    ui.edit.model.class_conditional = false;
  } else if (before == DatasetKind::Toy2d) {
    ui.edit.model = ModelConfig{};
    ui.edit.diffusion = DiffusionConfig{};
  }
}

void draw_source_editor(UiContext& ctx) {
  UiState& ui = ctx.ui;
  DataConfig& data = ui.edit.data;
  DatasetKind kind = data.kind;
  if (enum_combo("Dataset", &kind, &ui, "DatasetKind") && kind != data.kind) switch_kind(ui, kind);
  help_marker("Where the training images come from. Switching loads the matching preset "
              "from configs/ (model, schedule and training settings tuned for that data).");
  if (data.kind == DatasetKind::Toy2d) {
    enum_combo("Toy set", &data.toy);
    help_marker("A 2-D distribution small enough to watch the whole reverse process.");
    input_int64("Points", &data.toy_points, 1000, 100);
    help_marker("Size of the generated set (training + test split).");
    float noise = static_cast<float>(data.toy_noise);
    if (ImGui::SliderFloat("Jitter", &noise, 0.0f, 0.3f, "%.3f")) data.toy_noise = noise;
    help_marker("Standard deviation of the noise added to every generated point.");
  } else {
    ImGui::InputTextWithHint("Path", path_hint(data.kind), &data.path);
    track_item(ui, "DatasetPath", true);
    help_marker("Folder of the dataset. Relative paths are tried against the working "
                "directory, then the source tree.");
  }
  if (data.kind == DatasetKind::ImageFolder) {
    ImGui::SliderInt("Image size", &data.image_size, 8, 64);
    help_marker("Images are resized and centre-cropped to this size.");
    ImGui::SliderInt("Channels", &data.channels, 1, 3);
    if (data.channels == 2) data.channels = 3;
  }
}

}  // namespace

void draw_dataset_panel(const Snapshot& snap, UiContext& ctx) {
  UiState& ui = ctx.ui;
  const bool busy = engine_busy(snap);
  ImGui::PushItemWidth(ImGui::GetFontSize() * 12.0f);
  ImGui::BeginDisabled(busy);
  draw_source_editor(ctx);
  const bool clicked = ImGui::Button("Load");
  ImGui::EndDisabled();
  track_item(ui, "Load", !busy);
  if (clicked) ctx.actions.load_dataset(snap);
  ImGui::PopItemWidth();
  if (snap.status == JobStatus::LoadingData) {
    ImGui::SameLine();
    ImGui::TextDisabled("loading...");
  } else if (!ui.dataset.status.empty()) {
    ImGui::SameLine();
    ImGui::TextDisabled("%s", ui.dataset.status.c_str());
  }
  // A loaded set is described below; failures (the model and data kept) show here.
  job_outcome(ui, snap, JobKind::Data, Panel::Dataset, JobShow::Problems);
  if (ui.config_sender == Panel::Dataset) job_outcome(ui, snap, JobKind::Config, Panel::Dataset);
  const bool failed = snap.job(JobKind::Data).outcome == JobOutcome::Failed ||
                      (ui.config_sender == Panel::Dataset &&
                       snap.job(JobKind::Config).outcome == JobOutcome::Failed);
  if (failed && snap.data_ready)
    dim_text(snap.model_ready ? "Nothing changed: the data below and the model are kept."
                              : "Nothing changed: the data below is kept.");

  ImGui::Separator();
  if (!snap.data_ready) {
    dim_text("No data loaded yet.");
    return;
  }
  ImGui::TextWrapped("%s", snap.data_description.c_str());
  const FloatImages& preview = snap.data_preview;
  if (snap.points) {
    ImGui::Text("2-D points, %d shown", preview.n);
  } else if (!preview.empty()) {
    ImGui::Text("Images %d×%d, %d channel%s, scaled to [−1, 1]", preview.w, preview.h, preview.c,
                preview.c == 1 ? "" : "s");
  }

  if (ImGui::CollapsingHeader("Preview", ImGuiTreeNodeFlags_DefaultOpen)) {
    if (snap.points) {
      // Square, fitted to the space left in the panel so the whole cloud is in view.
      const ImVec2 avail = ImGui::GetContentRegionAvail();
      const float side = std::clamp(std::min(avail.x, avail.y), 96.0f, 360.0f);
      const uint64_t stamp = ctx.textures.content_stamp("dataset.points", snap.version, preview);
      const RenderTarget& target = ctx.points.get(
          "dataset.points", stamp, 2.0f, static_cast<int>(side), [&preview] {
            PointLayer layer;
            layer.xy.assign(preview.data.begin(), preview.data.end());
            layer.color = ImVec4(0.55f, 0.75f, 1.0f, 0.6f);
            layer.size = 2.5f;
            return std::vector<PointLayer>{layer};
          });
      ImGui::Image(target.texture().imgui_id(), ImVec2(side, side), ImVec2(0, 1), ImVec2(1, 0));
    } else if (!preview.empty()) {
      const uint64_t stamp = ctx.textures.content_stamp("dataset.preview", snap.version, preview);
      const int columns = std::min(preview.n, kPreviewColumns);
      const CachedImage& grid = ctx.textures.get(
          "dataset.preview", stamp, Colormap::Image, 1.0f, [&](GridLayout* layout) {
            FloatPlane plane;
            *layout = compose_grid(preview, 0, preview.n, columns, 2, false, &plane);
            return plane;
          });
      // Name each run of one class once (the preview is laid out class by class).
      const std::vector<std::string> names = class_labels(snap, snap.data_preview_labels);
      std::vector<std::string> labels(names.size());
      for (size_t i = 0; i < names.size(); ++i)
        if (i == 0 || names[i] != names[i - 1] || i % static_cast<size_t>(columns) == 0) labels[i] = names[i];
      float zoom = ui.dataset.zoom > 0.0f
                       ? ui.dataset.zoom
                       : fit_zoom(static_cast<float>(grid.width()), ImGui::GetContentRegionAvail().x, 0.5f, 3.0f);
      const float fitted = zoom;
      ImageViewOptions options;
      options.labels = &labels;
      options.tooltips = &names;
      options.tooltip_prefix = "example";
      const ImageViewResult r = image_view("preview", grid, &zoom, options);
      if (zoom != fitted) ui.dataset.zoom = zoom;  // Ctrl + wheel: the user's zoom from now on
      if (r.clicked >= 0) {
        ui.forward.image_index = r.clicked;  // the Forward and Schedule panels follow
        ui.schedule.image_index = r.clicked;
      }
      dim_text("Click an image to use it in the Forward process and Schedule panels.");
    }
  }
  if (!snap.class_counts.empty() &&
      ImGui::CollapsingHeader("Class counts", ImGuiTreeNodeFlags_DefaultOpen)) {
    std::vector<double> counts(snap.class_counts.begin(), snap.class_counts.end());
    std::vector<std::string> names;
    for (size_t i = 0; i < snap.class_counts.size(); ++i)
      names.push_back(class_name(snap, static_cast<int64_t>(i)));
    bar_chart("counts", counts, names, ImGui::GetFontSize() * 3.5f, IM_COL32(90, 170, 255, 200),
              "%.0f images");
  }
}

}  // namespace difflab

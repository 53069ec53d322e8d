// ControlNet panel (Zhang et al. 2023). Train tab: train a ControlNet for the current model
// in the worker (hint kind, steps; Train / Pause / Stop), with its loss and the
// hint-following curve (the kind's score with and without it, on fixed held-out hints).
// Generate tab: pick one of the model's ControlNets (listed from its run folder, checked
// against its weights) or load one, make a hint of one kind — drawn on a canvas at the
// model's resolution (freehand strokes for canny and scribble, straight lines for Hough,
// a painted region for mask and distance, whose holes are filled; eraser, clear, undo), or
// the kind's map of a picture (a PNG/JPG or a dataset image) with live thresholds — then
// Generate: the samples appear with the hint overlaid, and the Sampling panel's scrubber
// replays the run. The hint maps are computed on this thread through
// core/vision/hint_preview.h (pure functions on one small picture, about a millisecond),
// only when the canvas, picture, kind or a threshold changed; the models stay with the
// engine's worker.
#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "core/model/hint_planes.h"
#include "ui/float_grid.h"
#include "ui/image_view.h"
#include "ui/line_plot.h"
#include "ui/panels.h"
#include "ui/widgets.h"

namespace difflab {
namespace {

constexpr size_t kMaxUndo = 64;
// The kinds a hint can be (mixed is a way of training, not a hint).
constexpr HintKind kHintKinds[] = {HintKind::Canny, HintKind::Scribble, HintKind::Hough, HintKind::Mask,
                                   HintKind::Distance};
constexpr double kLossSmoothing = 0.98;  // EMA weight of the ControlNet loss plot's smoothed line
constexpr ImU32 kCanvasBackground = IM_COL32(12, 12, 16, 255);
constexpr ImU32 kCanvasGrid = IM_COL32(255, 255, 255, 14);
constexpr ImU32 kStrokeColor = IM_COL32(245, 245, 245, 255);
constexpr ImU32 kEdgeColor = IM_COL32(255, 90, 60, 255);
constexpr ImU32 kOverlayColor = IM_COL32(255, 80, 50, 110);

// Sizes the canvas for the loaded ControlNet's resolution (clearing it on a change).
void fit_canvas(ControlNetView& v, int height, int width) {
  if (v.height == height && v.width == width &&
      v.canvas.size() == static_cast<size_t>(height) * width)
    return;
  v.height = height;
  v.width = width;
  v.canvas.assign(static_cast<size_t>(height) * width, 0.0f);
  v.undo.clear();
  v.picture = GrayPicture{};
  v.picture_map = GrayPicture{};
  v.drawn = GrayPicture{};
  v.drawn_from.clear();
}

// Paints a square brush of v.brush pixels centred at canvas position (x, y).
void stamp(ControlNetView& v, float x, float y) {
  const float half = 0.5f * static_cast<float>(v.brush);
  const int x0 = static_cast<int>(std::floor(x - half + 0.5f));
  const int y0 = static_cast<int>(std::floor(y - half + 0.5f));
  for (int dy = 0; dy < v.brush; ++dy)
    for (int dx = 0; dx < v.brush; ++dx) {
      const int px = x0 + dx, py = y0 + dy;
      if (px < 0 || py < 0 || px >= v.width || py >= v.height) continue;
      v.canvas[static_cast<size_t>(py) * v.width + px] = v.eraser ? 0.0f : 1.0f;
    }
}

// Strokes from the last position to (x, y) in steps of a quarter pixel, so a fast mouse
// (or xdotool's jumps) still leaves a connected line.
void stroke_to(ControlNetView& v, float x, float y) {
  if (v.last_x < 0) {
    stamp(v, x, y);
  } else {
    const float dx = x - v.last_x, dy = y - v.last_y;
    const int steps = std::max(1, static_cast<int>(std::ceil(4.0f * std::max(std::abs(dx), std::abs(dy)))));
    for (int i = 1; i <= steps; ++i) {
      const float f = static_cast<float>(i) / steps;
      stamp(v, v.last_x + f * dx, v.last_y + f * dy);
    }
  }
  v.last_x = x;
  v.last_y = y;
}

// A straight line between two canvas positions, drawn as Hough hints are (core/vision/hints.h
// draw_segments): Bresenham between the two pixels, 1 px wide; the pixels off the canvas are
// skipped, so a line let go beyond the edge keeps its slope.
void line_to(ControlNetView& v, float x0f, float y0f, float x1f, float y1f) {
  // Pixel of a position, bounded a few canvases out (a pointer far away costs no long walk).
  auto pixel = [&](float f, int size) {
    return static_cast<int>(std::floor(std::clamp(f, -4.0f * size, 5.0f * size)));
  };
  int x = pixel(x0f, v.width), y = pixel(y0f, v.height);
  const int x1 = pixel(x1f, v.width), y1 = pixel(y1f, v.height);
  const int dx = std::abs(x1 - x), dy = -std::abs(y1 - y);
  const int sx = x < x1 ? 1 : -1, sy = y < y1 ? 1 : -1;
  int err = dx + dy;
  for (;;) {
    if (x >= 0 && y >= 0 && x < v.width && y < v.height) v.canvas[static_cast<size_t>(y) * v.width + x] = 1.0f;
    if (x == x1 && y == y1) break;
    const int e2 = 2 * err;
    if (e2 >= dy) { err += dy; x += sx; }
    if (e2 <= dx) { err += dx; y += sy; }
  }
}

// The drawing canvas: what is drawn (draw mode) or the picture (picture mode), enlarged. In
// draw mode the left mouse button paints freehand, or, for Hough hints, draws a straight
// line from where it was pressed to where it is let go (shown while dragging).
void draw_canvas(ControlNetView& v, UiState& ui, bool picture_mode) {
  const float cell = v.canvas_zoom;
  const ImVec2 size(cell * v.width, cell * v.height);
  const ImVec2 p0 = ImGui::GetCursorScreenPos();
  ImGui::InvisibleButton("hint_canvas", size);
  track_item(ui, "ControlNetCanvas", true);
  const bool active = ImGui::IsItemActive() && !picture_mode;
  const bool lines = v.kind == HintKind::Hough && !v.eraser;
  const ImVec2 m = ImGui::GetIO().MousePos;
  const float mx = (m.x - p0.x) / cell, my = (m.y - p0.y) / cell;
  if (active) {
    if (!v.stroking) {
      v.undo.push_back(v.canvas);
      if (v.undo.size() > kMaxUndo) v.undo.erase(v.undo.begin());
      v.stroking = true;
      v.last_x = v.last_y = -1;
      v.line_x = mx;
      v.line_y = my;
    }
    if (!lines) stroke_to(v, mx, my);
  } else if (v.stroking) {
    v.stroking = false;
    // The line is drawn when the button is let go (not when the canvas merely went away
    // mid-drag, e.g. its panel closed).
    if (lines && ImGui::IsMouseReleased(ImGuiMouseButton_Left) && ImGui::IsMousePosValid(&m))
      line_to(v, v.line_x, v.line_y, mx, my);
    v.last_x = v.last_y = -1;
  }
  ImDrawList* draw = ImGui::GetWindowDrawList();
  draw->AddRectFilled(p0, ImVec2(p0.x + size.x, p0.y + size.y), kCanvasBackground);
  auto pixel = [&](int x, int y, ImU32 color) {
    const ImVec2 a(p0.x + x * cell, p0.y + y * cell);
    draw->AddRectFilled(a, ImVec2(a.x + cell, a.y + cell), color);
  };
  for (int y = 0; y < v.height; ++y)
    for (int x = 0; x < v.width; ++x) {
      const size_t i = static_cast<size_t>(y) * v.width + x;
      if (picture_mode) {
        if (!v.picture.empty()) {
          const int g = static_cast<int>(std::lround(255.0f * std::clamp(v.picture.pixels[i], 0.0f, 1.0f)));
          if (g > 0) pixel(x, y, IM_COL32(g, g, g, 255));
        }
      } else if (v.canvas[i] > 0.5f) {
        pixel(x, y, kStrokeColor);
      }
    }
  if (cell >= 6.0f) {  // pixel grid: shows the model's resolution
    for (int x = 1; x < v.width; ++x)
      draw->AddLine(ImVec2(p0.x + x * cell, p0.y), ImVec2(p0.x + x * cell, p0.y + size.y), kCanvasGrid);
    for (int y = 1; y < v.height; ++y)
      draw->AddLine(ImVec2(p0.x, p0.y + y * cell), ImVec2(p0.x + size.x, p0.y + y * cell), kCanvasGrid);
  }
  if (active && lines)
    draw->AddLine(ImVec2(p0.x + v.line_x * cell, p0.y + v.line_y * cell), m, IM_COL32(120, 200, 255, 220), cell);
  if (!picture_mode && ImGui::IsItemHovered()) {
    const float half = 0.5f * (lines ? 1 : v.brush) * cell;
    draw->AddRect(ImVec2(m.x - half, m.y - half), ImVec2(m.x + half, m.y + half),
                  v.eraser ? kEdgeColor : IM_COL32(120, 200, 255, 220));
  }
}

// A small enlarged view of one plane (the hint that will be sent): each pixel in `color`
// at its value's opacity (0/1 maps, and the distance map's levels).
void draw_plane(const std::vector<float>& plane, int h, int w, float cell, ImU32 color) {
  const ImVec2 p0 = ImGui::GetCursorScreenPos();
  const ImVec2 size(cell * w, cell * h);
  ImGui::Dummy(size);
  ImDrawList* draw = ImGui::GetWindowDrawList();
  draw->AddRectFilled(p0, ImVec2(p0.x + size.x, p0.y + size.y), kCanvasBackground);
  const ImU32 rgb = color & ~IM_COL32_A_MASK;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const float value = std::clamp(plane[static_cast<size_t>(y) * w + x], 0.0f, 1.0f);
      if (value <= 0.0f) continue;
      const auto alpha = static_cast<ImU32>(std::lround(55.0f + 200.0f * value));
      const ImVec2 a(p0.x + x * cell, p0.y + y * cell);
      draw->AddRectFilled(a, ImVec2(a.x + cell, a.y + cell), rgb | (alpha << IM_COL32_A_SHIFT));
    }
}

// Brings the hint maps up to date: the picture's map of the current kind and thresholds,
// and what the canvas means for the current kind (each only when something changed).
void update_maps(ControlNetView& v) {
  if (v.picture.empty()) {
    v.picture_map = GrayPicture{};
  } else if (v.map_low != v.canny_low || v.map_high != v.canny_high || v.map_object != v.object_threshold ||
             v.map_kind != v.kind || v.map_serial != v.picture_serial || v.picture_map.empty()) {
    v.picture_map = picture_hint(v.picture, v.kind, v.canny_low, v.canny_high, v.object_threshold);
    v.map_low = v.canny_low;
    v.map_high = v.canny_high;
    v.map_object = v.object_threshold;
    v.map_kind = v.kind;
    v.map_serial = v.picture_serial;
  }
  if (v.stroking) return;  // a stroke in progress: the map follows when it ends
  if (v.drawn_kind != v.kind || v.drawn_from != v.canvas || v.drawn.empty()) {
    v.drawn = drawn_hint(GrayPicture{v.height, v.width, v.canvas}, v.kind);
    v.drawn_from = v.canvas;
    v.drawn_kind = v.kind;
  }
}

// The hint the Generate button sends: the map in its kind's plane, the others zero.
std::vector<float> make_hint(const ControlNetView& v) {
  const size_t plane = static_cast<size_t>(v.height) * v.width;
  std::vector<float> hint(kHintChannels * plane, 0.0f);
  const GrayPicture& map = v.source == HintSource::Picture ? v.picture_map : v.drawn;
  if (map.pixels.size() == plane)
    std::copy(map.pixels.begin(), map.pixels.end(), hint.begin() + hint_plane(v.kind) * plane);
  return hint;
}

void draw_load_row(const Snapshot& snap, UiContext& ctx) {
  ControlNetView& v = ctx.ui.controlnet;
  char path[512];
  std::snprintf(path, sizeof path, "%s", v.path.c_str());
  ImGui::SetNextItemWidth(ImGui::GetContentRegionAvail().x - ImGui::GetFontSize() * 4.5f);
  if (ImGui::InputText("##controlnet_path", path, sizeof path)) v.path = path;
  track_item(ctx.ui, "ControlNetPath", true);
  ImGui::SameLine();
  const bool busy = snap.status == JobStatus::Sampling || snap.status == JobStatus::LoadingData;
  ImGui::BeginDisabled(busy);
  if (ImGui::Button("Load##controlnet")) ctx.actions.load_controlnet(v.path, v.base_override);
  ImGui::EndDisabled();
  track_item(ctx.ui, "ControlNetLoad", !busy);
  help_marker("A ControlNet checkpoint written by `difflab-cli train-controlnet` (controlnet.pt). "
              "It names the base model it steers; that base is loaded with it.");
  const auto& c = snap.controlnet;
  if (c.ready) {
    ImGui::TextDisabled("step %lld, hints: %s, base %s (step %lld), %dx%d", static_cast<long long>(c.step),
                        std::string(to_string(c.config.hint)).c_str(), c.base_path.c_str(),
                        static_cast<long long>(c.base_step), c.width, c.height);
  } else {
    dim_text(
        "No ControlNet loaded. Train one in the Train tab, or for a model's run folder with\n"
        "  difflab-cli train-controlnet --base runs/mnist-YYYY-MM-DD-N [--hint KIND]\nthen Load "
        "it here (with that model loaded, or none).");
  }
}

// Whether a ControlNet trained on `trained` hints was trained on hints of `kind`.
bool trained_on(HintKind trained, HintKind kind) {
  return trained == kind || (trained == HintKind::Mixed && (kind == HintKind::Canny || kind == HintKind::Scribble));
}

void draw_source(const Snapshot& snap, UiContext& ctx) {
  ControlNetView& v = ctx.ui.controlnet;
  ImGui::SetNextItemWidth(ImGui::GetFontSize() * 7.0f);
  if (ImGui::BeginCombo("Hint", std::string(to_string(v.kind)).c_str())) {
    for (HintKind kind : kHintKinds) {
      const std::string name(to_string(kind));
      if (ImGui::Selectable(name.c_str(), v.kind == kind)) v.kind = kind;
      track_item(ctx.ui, ("ControlNetHintKind." + name).c_str(), true);
    }
    ImGui::EndCombo();
  }
  track_item(ctx.ui, "ControlNetHintKind", true);
  help_marker("canny: edge outlines. scribble: centre lines, as a hand draws them. hough: "
              "straight segments (drag from one end to the other). mask: the object's filled "
              "shape (paint it, or draw its outline: enclosed holes are filled). distance: how "
              "far inside that shape each pixel lies (paint the shape; the map is computed), "
              "a depth-like hint for flat grey pictures.");
  ImGui::SameLine();
  int source = static_cast<int>(v.source);
  ImGui::RadioButton("Draw", &source, static_cast<int>(HintSource::Draw));
  ImGui::SameLine();
  ImGui::RadioButton("From a picture", &source, static_cast<int>(HintSource::Picture));
  track_item(ctx.ui, "ControlNetPictureMode", true);
  // A mixed ControlNet knows both: draw scribbles, take a picture's canny edges.
  if (source != static_cast<int>(v.source) && snap.controlnet.ready &&
      snap.controlnet.config.hint == HintKind::Mixed && (v.kind == HintKind::Canny || v.kind == HintKind::Scribble))
    v.kind = source == static_cast<int>(HintSource::Picture) ? HintKind::Canny : HintKind::Scribble;
  v.source = static_cast<HintSource>(source);
  if (snap.controlnet.ready && !trained_on(snap.controlnet.config.hint, v.kind))
    error_text("This ControlNet was trained on " + std::string(to_string(snap.controlnet.config.hint)) +
               " hints, not " + std::string(to_string(v.kind)) + ".");

  if (v.source == HintSource::Draw) {
    const bool region = !hint_is_lines(v.kind);
    ImGui::SetNextItemWidth(ImGui::GetFontSize() * 6.0f);
    v.brush = std::clamp(v.brush, 1, region ? 8 : 4);
    ImGui::BeginDisabled(v.kind == HintKind::Hough && !v.eraser);  // lines are 1 px; the eraser has a size
    ImGui::SliderInt("Brush", &v.brush, 1, region ? 8 : 4, "%d px");
    ImGui::EndDisabled();
    ImGui::SameLine();
    ImGui::Checkbox("Eraser", &v.eraser);
    ImGui::SameLine();
    ImGui::BeginDisabled(v.undo.empty());
    if (ImGui::Button("Undo")) {
      v.canvas = v.undo.back();
      v.undo.pop_back();
    }
    ImGui::EndDisabled();
    ImGui::SameLine();
    if (ImGui::Button("Clear")) {
      v.undo.push_back(v.canvas);
      std::fill(v.canvas.begin(), v.canvas.end(), 0.0f);
    }
    const char* how =
        v.kind == HintKind::Hough ? "Drag from one end of a straight segment to the other: a 1-pixel line, "
                                    "as Hough hints are (one square = one pixel of the model); the eraser "
                                    "rubs out freehand."
        : region                  ? "Paint the object's shape, or draw its closed outline: holes it encloses "
                                    "are filled. The hint on the right is what is sent."
                                  : "Draw the strokes the samples should follow, at the model's resolution "
                                    "(one square = one pixel). Thin centre lines suit scribble ControlNets "
                                    "(they learned from skeletons of the training images).";
    help_marker(how);
    return;
  }
  // Picture source: a file, or a dataset image.
  char path[512];
  std::snprintf(path, sizeof path, "%s", v.picture_path.c_str());
  ImGui::SetNextItemWidth(ImGui::GetContentRegionAvail().x - ImGui::GetFontSize() * 4.5f);
  if (ImGui::InputTextWithHint("##picture_path", "picture.png / .jpg", path, sizeof path)) v.picture_path = path;
  ImGui::SameLine();
  if (ImGui::Button("Open##picture")) {
    try {
      v.picture = load_gray_picture(v.picture_path, v.height, v.width);
      v.picture_name = v.picture_path;
      ++v.picture_serial;
      v.status.clear();
    } catch (const std::exception& e) {
      v.status = e.what();
      v.status_is_error = true;
    }
  }
  const FloatImages& preview = snap.data_preview;
  const bool same_size = !preview.empty() && preview.h == v.height && preview.w == v.width;
  ImGui::BeginDisabled(!same_size);
  ImGui::SetNextItemWidth(ImGui::GetFontSize() * 8.0f);
  const int last = std::max(0, preview.n - 1);
  v.dataset_index = std::clamp(v.dataset_index, 0, last);
  const bool moved = ImGui::SliderInt("Dataset image", &v.dataset_index, 0, last);
  ImGui::SameLine();
  const bool take = ImGui::Button("Use");
  ImGui::EndDisabled();
  track_item(ctx.ui, "ControlNetUseDatasetImage", same_size);
  if (same_size && (take || (moved && v.picture_name.rfind("dataset", 0) == 0))) {
    GrayPicture p{v.height, v.width, {}};
    const float* src = preview.image(v.dataset_index);
    const size_t plane = static_cast<size_t>(v.height) * v.width;
    p.pixels.assign(plane, 0.0f);
    for (int ch = 0; ch < preview.c; ++ch)  // mean of the channels, [−1, 1] → [0, 1]
      for (size_t i = 0; i < plane; ++i) p.pixels[i] += (src[ch * plane + i] + 1.0f) * 0.5f / preview.c;
    v.picture = std::move(p);
    v.picture_name = "dataset image " + std::to_string(v.dataset_index);
    ++v.picture_serial;
  }
  help_marker("The hint is this picture's map of the chosen kind (resized to the model's size): "
              "its canny edges, its bright strokes thinned, the Hough segments of its edges, its "
              "filled silhouette or that silhouette's distance map. Dataset images come from the "
              "Dataset panel's preview.");
  if (!hint_is_lines(v.kind)) {
    ImGui::SetNextItemWidth(ImGui::GetFontSize() * 8.0f);
    ImGui::SliderFloat("Object above", &v.object_threshold, 0.0f, 0.95f, "%.2f");
    help_marker("Pixels brighter than this (0 = black, 1 = white) belong to the object; holes "
                "inside it are filled. The ControlNet's own value (controlnet.mask_threshold) "
                "is set when it loads.");
    return;
  }
  if (v.kind == HintKind::Scribble) return;
  ImGui::SetNextItemWidth(ImGui::GetFontSize() * 8.0f);
  ImGui::SliderFloat("Low", &v.canny_low, 0.0f, 1000.0f, "%.0f");
  ImGui::SameLine();
  ImGui::SetNextItemWidth(ImGui::GetFontSize() * 8.0f);
  ImGui::SliderFloat("High", &v.canny_high, 0.0f, 1000.0f, "%.0f");
  v.canny_high = std::max(v.canny_high, v.canny_low);
  help_marker("Canny hysteresis thresholds on the gradient magnitude (0-255 image scale, "
              "|gx| + |gy| of 3×3 Sobel, as OpenCV): pixels above High start an edge, pixels "
              "above Low continue one. Hough hints look for straight segments in these edges.");
}

// The last ControlNet run's samples with the hint drawn over each.
void draw_results(const Snapshot& snap, UiContext& ctx) {
  ControlNetView& v = ctx.ui.controlnet;
  if (!snap.samples || snap.samples->hint.empty() || is_points(*snap.samples)) return;
  const TrajectoryFrames& run = *snap.samples;
  const FloatImages& images = run.final_images;
  if (images.empty()) return;
  ImGui::Separator();
  ImGui::TextUnformatted("Samples");
  ImGui::Checkbox("Overlay hint", &v.overlay);
  ImGui::SameLine();
  ImGui::TextDisabled("scale %.2f, w %.1f, %s %d steps, %.1f s", run.control_scale, run.config.guidance,
                      std::string(to_string(run.config.sampler)).c_str(), run.config.steps, run.seconds);
  // As many columns as show the images largest in the space left.
  const ImVec2 avail = ImGui::GetContentRegionAvail();
  const int columns = best_columns(images.n, images.w, images.h, 2, ImVec2(avail.x, std::max(avail.y - 4.0f, 0.0f)));
  const CachedImage& img =
      ctx.textures.get("controlnet.samples", mix_stamp(ctx.ui.sampling.run_serial, 11),
                       Colormap::Image, 1.0f, [&](GridLayout* layout) {
                         FloatPlane plane;
                         *layout = compose_grid(images, 0, images.n, columns, 2, false, &plane);
                         return plane;
                       });
  v.zoom = std::min(fit_zoom(static_cast<float>(img.width()), avail.x, 1.0f, 8.0f),
                    avail.y > 40.0f ? fit_zoom(static_cast<float>(img.height()), avail.y - 4.0f, 1.0f, 8.0f) : 8.0f);
  const auto labels = run_class_labels(snap, run);
  ImageViewOptions options;
  options.labels = &labels;
  image_view("controlnet_samples", img, &v.zoom, options);
  if (!v.overlay) return;
  // The hint over every cell: the line planes' pixels, and the outline of the region planes
  // (mask, distance: their inside would hide the sample).
  const ImVec2 p0 = ImGui::GetItemRectMin();
  const float z = v.zoom;
  const GridLayout& g = img.layout;
  const int h = run.hint.h, w = run.hint.w;
  const size_t plane = static_cast<size_t>(h) * w;
  auto at = [&](int c, int x, int y) {
    if (x < 0 || y < 0 || x >= w || y >= h) return 0.0f;
    return run.hint.data[c * plane + static_cast<size_t>(y) * w + x];
  };
  std::vector<uint8_t> shown(plane, 0);
  for (int c = 0; c < run.hint.c; ++c) {
    const bool lines = c < hint_plane(HintKind::Mask);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        if (lines ? at(c, x, y) < 0.5f
                  : at(c, x, y) <= 0.0f || (at(c, x - 1, y) > 0.0f && at(c, x + 1, y) > 0.0f &&
                                            at(c, x, y - 1) > 0.0f && at(c, x, y + 1) > 0.0f))
          continue;
        shown[static_cast<size_t>(y) * w + x] = 1;
      }
  }
  ImDrawList* draw = ImGui::GetWindowDrawList();
  for (int i = 0; i < g.count; ++i) {
    const float cx = p0.x + g.cell_x(i) * z, cy = p0.y + g.cell_y(i) * z;
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        if (!shown[static_cast<size_t>(y) * w + x]) continue;
        const ImVec2 a(cx + x * z, cy + y * z);
        draw->AddRectFilled(a, ImVec2(a.x + z, a.y + z), kOverlayColor);
      }
  }
}

// The ControlNets found in the current model's run folder: a click loads one that fits.
void draw_found(const Snapshot& snap, UiContext& ctx) {
  if (snap.controlnets_found.empty()) return;
  UiState& ui = ctx.ui;
  const bool busy = snap.status == JobStatus::Sampling || snap.status == JobStatus::LoadingData;
  ImGui::TextDisabled("This model's ControlNets (click to load):");
  for (size_t i = 0; i < snap.controlnets_found.size(); ++i) {
    const FoundControlNet& f = snap.controlnets_found[i];
    namespace fs = std::filesystem;
    const std::string name = fs::path(f.path).parent_path().filename().string();
    char label[300];
    if (f.fits)
      std::snprintf(label, sizeof label, "%s  step %lld, %s hints", name.c_str(), static_cast<long long>(f.step),
                    std::string(to_string(f.hint)).c_str());
    else
      std::snprintf(label, sizeof label, "%s  (not for these weights)", name.c_str());
    const bool loaded = snap.controlnet.ready && snap.controlnet.path == f.path;
    ImGui::PushID(static_cast<int>(i));
    ImGui::BeginDisabled(!f.fits || busy);
    if (ImGui::Selectable(label, loaded) && !loaded) ctx.actions.load_controlnet(f.path, "");
    ImGui::EndDisabled();
    track_item(ui, ("ControlNetFound." + name).c_str(), f.fits && !busy);  // by its folder's name
    if (ImGui::IsItemHovered(ImGuiHoveredFlags_AllowWhenDisabled))
      ImGui::SetTooltip("%s", f.fits ? f.path.c_str() : f.why.c_str());
    ImGui::PopID();
  }
}

// The training settings, buttons, progress, loss and hint-following curve.
void draw_train_tab(const Snapshot& snap, UiContext& ctx) {
  UiState& ui = ctx.ui;
  ControlNetView& v = ui.controlnet;
  const ControlNetTraining& t = snap.controlnet_training;
  const bool running = snap.status == JobStatus::TrainingControlNet;
  const bool paused = snap.status == JobStatus::ControlNetPaused;
  const bool active = running || paused;
  if (!snap.model_ready) {
    dim_text("Train or load a model first: a ControlNet steers a trained model, which stays frozen.");
  } else if (!active) {
    std::string what = "For the current model (step " + std::to_string(snap.step) + ")";
    if (snap.run.dir.empty()) what += "; its checkpoint is saved into a new run folder first";
    else if (snap.run.unsaved_steps > 0 || snap.run.saved_step < 0)
      what += " in " + snap.run.dir + "; its unsaved steps are saved there first";
    else what += " in " + snap.run.dir;
    dim_text((what + ". The ControlNet goes to <run>/controlnets/<hints>-N.").c_str());
  }

  ImGui::BeginDisabled(active);
  ImGui::PushItemWidth(ImGui::GetFontSize() * 8.0f);
  enum_combo("Hints##train", &v.train_hint, &ui, "ControlNetTrainHint");
  help_marker("What the ControlNet learns to follow, made from each training image: canny "
              "edge maps; scribbles (its thinned strokes, jittered and broken); mixed (each "
              "image gets one of those two at random); hough (the straight segments of its "
              "edges); mask (its filled silhouette); distance (how far inside the silhouette "
              "each pixel lies).");
  ImGui::SameLine();
  input_int64("Steps##train", &v.train_steps, 100, 1);
  help_marker("Train up to this step (controlnet.lr, batch_size and the rest come from the "
              "config's controlnet section).");
  input_int64("Curve every", &v.curve_every, 50, 0);
  help_marker("Steps between points of the hint-following curve: 8 held-out test images' "
              "hints of this kind, sampled with 10 DDIM steps and fixed seeds, with the "
              "ControlNet and (once) without it; a point compares the samples' maps with the "
              "hints: edge F1 for line hints, IoU for mask, mean absolute difference for "
              "distance. A point costs a few seconds on a CPU. 0 = off.");
  // Continue one of this model's ControlNets, or start a new one.
  std::string current = "a new ControlNet";
  for (const auto& f : snap.controlnets_found)
    if (f.fits && f.path == v.continue_dir + "/controlnet.pt") current = "continue " + f.path;
  if (current == "a new ControlNet") v.continue_dir.clear();
  ImGui::SetNextItemWidth(ImGui::GetFontSize() * 16.0f);
  if (ImGui::BeginCombo("Start##train", current.c_str())) {
    if (ImGui::Selectable("a new ControlNet", v.continue_dir.empty())) v.continue_dir.clear();
    for (const auto& f : snap.controlnets_found) {
      if (!f.fits) continue;
      const std::string dir = std::filesystem::path(f.path).parent_path().string();
      const std::string item = "continue " + std::filesystem::path(dir).filename().string() +
                               " (step " + std::to_string(f.step) + ")";
      if (ImGui::Selectable(item.c_str(), v.continue_dir == dir)) {
        v.continue_dir = dir;
        v.train_hint = f.hint;
      }
    }
    ImGui::EndCombo();
  }
  help_marker("Continue one of this model's ControlNets in its own folder (its optimizer and "
              "batch position too), or start a new one in a new folder.");
  ImGui::PopItemWidth();
  ImGui::EndDisabled();

  const bool quiet = snap.status == JobStatus::Idle || snap.status == JobStatus::Error;
  const bool can_train = snap.model_ready && !snap.points && quiet;
  ImGui::BeginDisabled(!can_train);
  if (ImGui::Button("Train##controlnet", ImVec2(ImGui::GetFontSize() * 6.0f, 0))) ctx.actions.train_controlnet();
  ImGui::EndDisabled();
  track_item(ui, "ControlNetTrain", can_train);
  if (ImGui::IsItemHovered(ImGuiHoveredFlags_AllowWhenDisabled) && !can_train)
    ImGui::SetTooltip("%s", !snap.model_ready ? "Train or load a model first."
                            : snap.points     ? "A ControlNet needs an image model."
                            : active          ? "A ControlNet is training."
                                              : "Wait for the current job (stop the model's training first).");
  ImGui::SameLine();
  ImGui::BeginDisabled(!active);
  if (ImGui::Button(paused ? "Resume##controlnet" : "Pause##controlnet", ImVec2(ImGui::GetFontSize() * 5.0f, 0))) {
    if (paused) ctx.actions.resume();
    else ctx.actions.pause();
  }
  track_item(ui, "ControlNetPause", active);
  ImGui::SameLine();
  if (ImGui::Button("Stop##controlnet", ImVec2(ImGui::GetFontSize() * 5.0f, 0))) ctx.actions.stop();
  track_item(ui, "ControlNetStop", active);
  ImGui::EndDisabled();
  help_marker("Pause and Stop act between two steps (a curve point in progress gives way). Stop "
              "writes controlnet.pt and loads it: draw a hint in the Generate tab.");

  if (t.dir.empty()) return;
  ImGui::Separator();
  const char* state = running ? "training" : paused ? "paused" : "stopped";
  ImGui::Text("%s: step %lld / %lld, %.0f img/s", state, static_cast<long long>(t.step),
              static_cast<long long>(t.total_steps), t.images_per_s);
  ImGui::TextDisabled("%s (%s hints)%s", t.path.c_str(), std::string(to_string(t.hint)).c_str(),
                      t.saved_step >= 0 ? (", saved at step " + std::to_string(t.saved_step)).c_str() : "");
  ImGui::ProgressBar(t.total_steps > 0 ? static_cast<float>(t.step) / static_cast<float>(t.total_steps) : 0.0f,
                     ImVec2(-1, 0));
  const float plot_height = std::clamp(ImGui::GetContentRegionAvail().y * 0.4f, 80.0f, 180.0f);
  if (!t.loss.empty()) {
    PlotSeries raw, smooth;
    raw.label = "loss";
    raw.color = kColorRaw;
    raw.thickness = 1.0f;
    smooth.label = "smoothed";
    smooth.color = kColorSmooth;
    smooth.thickness = 2.0f;
    double ema = 0.0, weight = 0.0;  // bias-corrected EMA, as the Training panel's
    for (const auto& p : t.loss) {
      raw.x.push_back(static_cast<double>(p.step));
      raw.y.push_back(p.value);
      if (std::isfinite(p.value)) {
        ema = kLossSmoothing * ema + (1.0 - kLossSmoothing) * p.value;
        weight = kLossSmoothing * weight + (1.0 - kLossSmoothing);
      }
      smooth.x.push_back(static_cast<double>(p.step));
      smooth.y.push_back(weight > 0.0 ? ema / weight : NAN);
    }
    PlotOptions options;
    options.height = plot_height;
    options.log_y = true;
    options.x_label = "step";
    line_plot("controlnet_loss", {raw, smooth}, options);
  }
  if (t.curve_every <= 0) return;
  const HintMetric metric = hint_metric(t.hint);
  ImGui::Text("Hint following (%s, %s is better)", metric.name, metric.higher_is_better ? "higher" : "lower");
  help_marker("Each point: the ControlNet at that step samples the same 8 held-out hints with "
              "the same seeds; the score compares the same kind of map of each sample with its "
              "hint: edge F1 (1 px tolerance) for canny, scribble and hough hints, IoU of the "
              "silhouettes for mask, mean absolute difference of the distance maps for distance. "
              "The flat line is the base model alone on the same hints.");
  if (t.f1.empty()) {
    dim_text("The first point is on its way (sampling with and without the ControlNet).");
    return;
  }
  PlotSeries with, without;
  with.label = "with ControlNet";
  with.color = kColorSmooth;
  with.markers = true;
  for (const auto& p : t.f1) {
    with.x.push_back(static_cast<double>(p.step));
    with.y.push_back(p.value);
  }
  without.label = "base alone";
  without.color = kColorTest;
  const double last = std::max(static_cast<double>(t.f1.back().step), static_cast<double>(t.step));
  without.x = {static_cast<double>(t.f1.front().step), std::max(last, t.f1.front().step + 1.0)};
  without.y = {t.f1_without, t.f1_without};
  PlotOptions options;
  options.height = plot_height;
  options.x_label = "step";
  options.y_from_zero = true;
  line_plot("controlnet_f1", {with, without}, options);
  char caption[240];
  std::snprintf(caption, sizeof caption,
                "last point: %s %.3f at step %lld (base alone %.3f); %d hints, %d DDIM steps, %.1f s",
                metric.name, t.f1.back().value, static_cast<long long>(t.f1.back().step), t.f1_without, t.curve_images,
                t.curve_steps, t.curve_seconds);
  dim_text(caption);
}

void draw_generate_tab(const Snapshot& snap, UiContext& ctx) {
  UiState& ui = ctx.ui;
  ControlNetView& v = ui.controlnet;
  draw_load_row(snap, ctx);
  draw_found(snap, ctx);
  const auto& c = snap.controlnet;
  const int height = c.ready ? c.height : (snap.data_preview.empty() ? 28 : snap.data_preview.h);
  const int width = c.ready ? c.width : (snap.data_preview.empty() ? 28 : snap.data_preview.w);
  fit_canvas(v, height, width);
  // A newly loaded ControlNet brings its hint kind, the thresholds it was trained with and
  // its scale (once: afterwards the choices are the user's).
  const std::string key = c.path + "@" + std::to_string(c.step);
  if (c.ready && v.adopted != key) {
    if (!trained_on(c.config.hint, v.kind))  // a mixed one: scribbles to draw, a picture's edges
      v.kind = c.config.hint != HintKind::Mixed     ? c.config.hint
               : v.source == HintSource::Picture ? HintKind::Canny
                                                 : HintKind::Scribble;
    v.canny_low = static_cast<float>(c.config.canny_low);
    v.canny_high = static_cast<float>(c.config.canny_high);
    v.object_threshold = static_cast<float>(c.config.mask_threshold);
    v.scale = static_cast<float>(c.config.scale);
    v.path = c.path;  // the path field names what is loaded (a listed or trained one too)
    v.adopted = key;
  }
  ImGui::Separator();
  draw_source(snap, ctx);
  const bool picture_mode = v.source == HintSource::Picture;

  // Canvas (left) and the hint that will be sent (right).
  const float avail = ImGui::GetContentRegionAvail().x;
  v.canvas_zoom = std::clamp(std::floor(avail * 0.58f / std::max(v.width, 1)), 4.0f, 12.0f);
  ImGui::BeginGroup();
  const std::string caption =
      picture_mode ? "picture: " + (v.picture_name.empty() ? std::string("none") : v.picture_name)
                   : "canvas " + std::to_string(v.width) + "x" + std::to_string(v.height) + " (draw here)";
  ImGui::TextDisabled("%s", caption.c_str());
  draw_canvas(v, ui, picture_mode);
  ImGui::EndGroup();
  ImGui::SameLine();
  ImGui::BeginGroup();
  update_maps(v);
  const std::vector<float> hint = make_hint(v);
  const size_t plane = static_cast<size_t>(v.height) * v.width;
  const auto first = hint.begin() + static_cast<std::ptrdiff_t>(hint_plane(v.kind) * plane);
  const std::vector<float> shown(first, first + static_cast<std::ptrdiff_t>(plane));
  const int hint_pixels = static_cast<int>(std::count_if(shown.begin(), shown.end(), [](float x) { return x > 0.0f; }));
  ImGui::TextDisabled("%s hint: %d px", std::string(to_string(v.kind)).c_str(), hint_pixels);
  draw_plane(shown, v.height, v.width, std::max(2.0f, std::floor(v.canvas_zoom * 0.5f)),
             picture_mode ? kEdgeColor : kStrokeColor);
  ImGui::Spacing();
  ImGui::PushItemWidth(ImGui::GetFontSize() * 7.0f);
  ImGui::SliderFloat("Control scale", &v.scale, 0.0f, 2.0f, "%.2f");
  help_marker("How strongly the ControlNet's residuals steer the base model: 0 = the base model "
              "alone, 1 = as trained.");
  ImGui::BeginDisabled(c.num_classes == 0);
  ImGui::SliderFloat("Guidance", &v.guidance, 0.0f, 6.0f, "%.1f");
  help_marker("Classifier-free guidance toward the class below; 0 = unconditional (the hint "
              "alone decides what is drawn).");
  const std::string current = v.class_label < 0 ? "all (cycle)" : class_name(snap, v.class_label);
  if (ImGui::BeginCombo("Class", current.c_str())) {
    if (ImGui::Selectable("all (cycle)", v.class_label < 0)) v.class_label = -1;
    for (int k = 0; k < c.num_classes; ++k) {
      ImGui::PushID(k);
      if (ImGui::Selectable(class_name(snap, k).c_str(), v.class_label == k)) v.class_label = k;
      ImGui::PopID();
    }
    ImGui::EndCombo();
  }
  ImGui::EndDisabled();
  ImGui::SliderInt("Count", &v.n, 1, 32);
  ImGui::PopItemWidth();
  const bool idle = snap.status == JobStatus::Idle || snap.status == JobStatus::Error;
  const bool can_generate = c.ready && idle && hint_pixels > 0;
  ImGui::BeginDisabled(!can_generate);
  if (ImGui::Button("Generate##controlnet", ImVec2(ImGui::GetFontSize() * 7.0f, 0))) ctx.actions.generate_controlnet(hint);
  ImGui::EndDisabled();
  track_item(ui, "ControlNetGenerate", can_generate);
  if (ImGui::IsItemHovered(ImGuiHoveredFlags_AllowWhenDisabled) && !can_generate)
    ImGui::SetTooltip("%s", !c.ready ? "Load a ControlNet first."
                            : hint_pixels == 0 ? "Draw a hint or pick a picture first."
                                               : "Wait for the current job (training can be paused).");
  ImGui::TextDisabled("%s %d steps, seed %llu", std::string(to_string(ui.edit.sample.sampler)).c_str(),
                      ui.edit.sample.steps, static_cast<unsigned long long>(ui.edit.sample.seed));
  help_marker("Sampler, steps and seed come from the Sampling panel; its scrubber replays this run.");
  ImGui::EndGroup();
  if (!v.status.empty()) {
    if (v.status_is_error) error_text(v.status);
    else dim_text(v.status.c_str());
  }
  draw_results(snap, ctx);
}


}  // namespace

void draw_controlnet_panel(const Snapshot& snap, UiContext& ctx) {
  UiState& ui = ctx.ui;
  ControlNetView& v = ui.controlnet;
  // The model's ControlNets, listed again when the model or its weights changed.
  const bool quiet = snap.status == JobStatus::Idle || snap.status == JobStatus::Error;
  if (snap.model_ready && quiet &&
      (v.found_requested_serial != snap.model_serial || v.found_requested_step != snap.step))
    ctx.actions.find_controlnets(snap);
  // A ControlNet that finished training is the loaded one: show where to use it.
  const bool training = snap.controlnet_training.active;
  if (v.was_training && !training) v.select_tab = 0;
  v.was_training = training;
  job_outcome(ui, snap, JobKind::ControlNet, Panel::ControlNet);
  if (!ImGui::BeginTabBar("controlnet_tabs")) return;
  const char* titles[] = {"Generate", "Train"};
  const char* names[] = {"ControlNetTabGenerate", "ControlNetTabTrain"};
  for (int tab = 0; tab < 2; ++tab) {
    const ImGuiTabItemFlags flags = v.select_tab == tab ? ImGuiTabItemFlags_SetSelected : 0;
    const bool open = ImGui::BeginTabItem(titles[tab], nullptr, flags);
    track_item(ui, names[tab], true);
    if (!open) continue;
    if (tab == 0) draw_generate_tab(snap, ctx);
    else draw_train_tab(snap, ctx);
    ImGui::EndTabItem();
  }
  v.select_tab = -1;
  ImGui::EndTabBar();
}

}  // namespace difflab

#include "ui/image_view.h"

#include <imgui_internal.h>

#include <algorithm>
#include <cmath>

namespace difflab {

namespace {
// Zoom change per wheel notch with Ctrl held.
constexpr float kWheelZoomFactor = 1.25f;
}  // namespace

ImageViewResult image_view(const char* id, const CachedImage& image, float* zoom,
                           const ImageViewOptions& options) {
  ImageViewResult result;
  if (!image.valid || image.width() <= 0) {
    ImGui::Dummy(ImVec2(1, 1));
    return result;
  }
  const ImVec2 size(image.width() * *zoom, image.height() * *zoom);
  const ImVec2 p0 = ImGui::GetCursorScreenPos();
  ImGui::InvisibleButton(id, size);
  const bool hovered = ImGui::IsItemHovered();
  const bool clicked = ImGui::IsItemClicked(ImGuiMouseButton_Left);
  result.hovered_image = hovered;
  ImDrawList* draw = ImGui::GetWindowDrawList();
  const ImVec2 p1(p0.x + size.x, p0.y + size.y);
  if (options.flip_y)
    draw->AddImage(image.imgui_id(), p0, p1, ImVec2(0, 1), ImVec2(1, 0));
  else
    draw->AddImage(image.imgui_id(), p0, p1);

  ImGuiIO& io = ImGui::GetIO();
  if (hovered && io.KeyCtrl && io.MouseWheel != 0.0f) {
    ImGui::SetItemUsingMouseWheel();
    *zoom = std::clamp(*zoom * std::pow(kWheelZoomFactor, io.MouseWheel), options.min_zoom,
                       options.max_zoom);
  }

  const GridLayout& grid = image.layout;
  if (grid.count <= 0) return result;
  const float z = *zoom;
  auto cell_rect = [&](int i, ImVec2* a, ImVec2* b) {
    *a = ImVec2(p0.x + grid.cell_x(i) * z, p0.y + grid.cell_y(i) * z);
    *b = ImVec2(a->x + grid.cell_w * z, a->y + grid.cell_h * z);
  };
  // Labels only when a cell is wide enough to hold them.
  const bool show_labels = options.labels && grid.cell_w * z >= ImGui::GetFontSize() * 1.6f;
  ImFont* font = ImGui::GetFont();
  const float label_size = ImGui::GetFontSize() * 0.8f;
  for (int i = 0; i < grid.count; ++i) {
    ImVec2 a, b;
    cell_rect(i, &a, &b);
    if (show_labels && i < static_cast<int>(options.labels->size()) &&
        !(*options.labels)[i].empty()) {
      const char* text = (*options.labels)[i].c_str();
      const ImVec2 ts = font->CalcTextSizeA(label_size, FLT_MAX, 0.0f, text);
      draw->AddRectFilled(ImVec2(a.x, a.y), ImVec2(a.x + ts.x + 3, a.y + ts.y + 1),
                          IM_COL32(0, 0, 0, 150));
      draw->AddText(font, label_size, ImVec2(a.x + 1.5f, a.y), IM_COL32(255, 220, 120, 255), text);
    }
    if (i == options.selected)
      draw->AddRect(ImVec2(a.x - 1, a.y - 1), ImVec2(b.x + 1, b.y + 1),
                    IM_COL32(255, 200, 40, 255), 0.0f, 0, 2.0f);
  }
  if (hovered) {
    const ImVec2 m = io.MousePos;
    const int col = static_cast<int>((m.x - p0.x) / z - grid.pad) / (grid.cell_w + grid.pad);
    const int row = static_cast<int>((m.y - p0.y) / z - grid.pad) / (grid.cell_h + grid.pad);
    const int i = row * grid.columns + col;
    if (col >= 0 && col < grid.columns && i >= 0 && i < grid.count) {
      ImVec2 a, b;
      cell_rect(i, &a, &b);
      if (m.x >= a.x && m.x < b.x && m.y >= a.y && m.y < b.y) {
        result.hovered = i;
        if (clicked) result.clicked = i;
        draw->AddRect(a, b, IM_COL32(255, 255, 255, 160));
        if (options.tooltip_prefix) {
          const std::vector<std::string>* names = options.tooltips ? options.tooltips : options.labels;
          const bool has_label = names && i < static_cast<int>(names->size()) && !(*names)[i].empty();
          ImGui::SetTooltip("%s #%d%s%s", options.tooltip_prefix, i, has_label ? ": " : "",
                            has_label ? (*names)[i].c_str() : "");
        }
      }
    }
  }
  return result;
}

float fit_zoom(float pixels, float avail, float lo, float hi) {
  if (pixels <= 0.0f) return lo;
  const float z = std::floor(avail / pixels * 2.0f) / 2.0f;
  return std::clamp(z, lo, hi);
}

int best_columns(int n, int cell_w, int cell_h, int pad, ImVec2 avail) {
  if (n <= 0 || cell_w <= 0 || cell_h <= 0) return 1;
  const bool use_height = avail.y >= 2.0f * (cell_h + pad);
  if (!use_height) return std::min(n, 8);
  // Largest zoom (in the half steps fit_zoom uses); then fewest empty cells; then wider.
  int best = 1, best_empty = 0;
  float best_zoom = -1.0f;
  for (int c = 1; c <= n; ++c) {
    const int rows = (n + c - 1) / c;
    const float z = std::min(fit_zoom(static_cast<float>(pad + c * (cell_w + pad)), avail.x, 0.0f, 64.0f),
                             fit_zoom(static_cast<float>(pad + rows * (cell_h + pad)), avail.y, 0.0f, 64.0f));
    const int empty = rows * c - n;
    if (z > best_zoom || (z == best_zoom && empty < best_empty)) {
      best = c;
      best_zoom = z;
      best_empty = empty;
    }
  }
  return best;
}

}  // namespace difflab

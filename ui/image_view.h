// Image views: a cached texture drawn at an integer-friendly zoom with nearest filtering;
// grids get per-cell labels, a selection outline and hover/click reporting.
// Ctrl + mouse wheel over an image changes its zoom.
#pragma once

#include <imgui.h>

#include <string>
#include <vector>

#include "ui/texture_cache.h"

namespace difflab {

struct ImageViewOptions {
  const std::vector<std::string>* labels = nullptr;  // one per grid cell
  int selected = -1;                                  // outlined cell
  bool flip_y = false;                                // GL-rendered pictures (y up)
  float min_zoom = 0.5f;
  float max_zoom = 16.0f;
  const char* tooltip_prefix = nullptr;               // hover tooltip "prefix #i: label"
  const std::vector<std::string>* tooltips = nullptr; // labels for the tooltip (else labels)
};

struct ImageViewResult {
  int hovered = -1;  // grid cell under the mouse
  int clicked = -1;  // grid cell clicked this frame
  bool hovered_image = false;
};

ImageViewResult image_view(const char* id, const CachedImage& image, float* zoom,
                           const ImageViewOptions& options = {});

// The largest zoom (in steps of 0.5) at which `pixels` fit into `avail`, within [lo, hi].
float fit_zoom(float pixels, float avail, float lo, float hi);

// The number of columns that shows `n` cells of cell_w×cell_h (with `pad` pixels
// between) largest inside `avail`; when avail.y is small only the width counts.
int best_columns(int n, int cell_w, int cell_h, int pad, ImVec2 avail);

}  // namespace difflab

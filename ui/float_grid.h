// Float images from snapshots arranged for display: one plane (HWC, 1 or 3 channels)
// holding a grid of images, padded with a sentinel the colormap shader draws as
// background. Pure CPU code, no GL.
#pragma once

#include <cstdint>
#include <vector>

#include "core/engine/engine.h"

namespace difflab {

// Padding value; the colormap shader paints anything below kPadThreshold as background.
constexpr float kPadValue = -1e30f;
constexpr float kPadThreshold = -1e29f;

struct FloatPlane {
  int width = 0, height = 0, channels = 1;
  std::vector<float> data;  // HWC
  bool empty() const { return data.empty(); }
};

struct GridLayout {
  int count = 0, columns = 1, rows = 0;
  int cell_w = 0, cell_h = 0, pad = 0;
  // Pixel rectangle of cell i inside the plane.
  int cell_x(int i) const { return pad + (i % columns) * (cell_w + pad); }
  int cell_y(int i) const { return pad + (i / columns) * (cell_h + pad); }
};

// Images [first, first + count) of `images` in a grid of `columns` columns (0 = about
// square) with `pad` pixels around cells. `mean_channels` averages RGB into one channel
// (for ε shown with a diverging map). Returns the layout; writes the plane.
GridLayout compose_grid(const FloatImages& images, int first, int count, int columns, int pad,
                        bool mean_channels, FloatPlane* out);
// One image as a plane.
FloatPlane single_image(const FloatImages& images, int index, bool mean_channels);
// A plane from CHW data of one image.
FloatPlane plane_from_chw(const float* chw, int c, int h, int w, bool mean_channels);

// FNV-1a over the shape and values: identifies content across snapshots.
uint64_t content_hash(const FloatImages& images);
uint64_t mix_stamp(uint64_t a, uint64_t b);

}  // namespace difflab

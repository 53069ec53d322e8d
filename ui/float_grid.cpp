#include "ui/float_grid.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace difflab {

FloatPlane plane_from_chw(const float* chw, int c, int h, int w, bool mean_channels) {
  FloatPlane plane;
  plane.width = w;
  plane.height = h;
  plane.channels = (mean_channels || c != 3) ? 1 : 3;
  plane.data.resize(static_cast<size_t>(w) * h * plane.channels);
  const size_t hw = static_cast<size_t>(h) * w;
  for (size_t p = 0; p < hw; ++p) {
    if (plane.channels == 3) {
      for (int k = 0; k < 3; ++k) plane.data[p * 3 + k] = chw[k * hw + p];
    } else if (mean_channels && c > 1) {
      float sum = 0.0f;
      for (int k = 0; k < c; ++k) sum += chw[k * hw + p];
      plane.data[p] = sum / static_cast<float>(c);
    } else {
      plane.data[p] = chw[p];
    }
  }
  return plane;
}

FloatPlane single_image(const FloatImages& images, int index, bool mean_channels) {
  if (index < 0 || index >= images.n) return {};
  return plane_from_chw(images.image(index), images.c, images.h, images.w, mean_channels);
}

GridLayout compose_grid(const FloatImages& images, int first, int count, int columns, int pad,
                        bool mean_channels, FloatPlane* out) {
  GridLayout layout;
  *out = FloatPlane{};
  first = std::max(first, 0);
  count = std::min(count, images.n - first);
  if (count <= 0 || images.h <= 0 || images.w <= 0) return layout;
  layout.count = count;
  layout.columns =
      columns > 0 ? std::min(columns, count)
                  : std::max(1, static_cast<int>(std::ceil(std::sqrt(static_cast<double>(count)))));
  layout.rows = (count + layout.columns - 1) / layout.columns;
  layout.cell_w = images.w;
  layout.cell_h = images.h;
  layout.pad = pad;
  out->channels = (mean_channels || images.c != 3) ? 1 : 3;
  out->width = pad + layout.columns * (images.w + pad);
  out->height = pad + layout.rows * (images.h + pad);
  out->data.assign(static_cast<size_t>(out->width) * out->height * out->channels, kPadValue);
  for (int i = 0; i < count; ++i) {
    const FloatPlane cell =
        plane_from_chw(images.image(first + i), images.c, images.h, images.w, mean_channels);
    const int x0 = layout.cell_x(i), y0 = layout.cell_y(i);
    const size_t row = static_cast<size_t>(images.w) * out->channels;
    for (int y = 0; y < images.h; ++y) {
      float* dst = out->data.data() +
                   (static_cast<size_t>(y0 + y) * out->width + x0) * out->channels;
      std::memcpy(dst, cell.data.data() + y * row, row * sizeof(float));
    }
  }
  return layout;
}

uint64_t content_hash(const FloatImages& images) {
  uint64_t h = 1469598103934665603ull;
  auto add = [&h](const void* p, size_t bytes) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < bytes; ++i) {
      h ^= b[i];
      h *= 1099511628211ull;
    }
  };
  const int shape[4] = {images.n, images.c, images.h, images.w};
  add(shape, sizeof(shape));
  add(images.data.data(), images.data.size() * sizeof(float));
  return h;
}

uint64_t mix_stamp(uint64_t a, uint64_t b) {
  // splitmix64-style mixing so that nearby stamps do not collide.
  uint64_t z = a + 0x9e3779b97f4a7c15ull + (b << 6) + (b >> 2);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace difflab

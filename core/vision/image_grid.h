// Tensors to 8-bit pictures: image grids and 2-D scatter plots, for PNG files and
// GUI textures.
#pragma once

#include <ATen/core/Tensor.h>

#include "core/vision/png.h"

namespace difflab {

// (N, C, H, W) values in [−1, 1] → a grid of `columns` columns (0 = about square) with
// `padding` pixels between cells, each cell scaled up `scale` times (nearest).
Image8 make_grid(const at::Tensor& images, int columns = 0, int padding = 2, int scale = 1);
// An 8-bit picture as a (1, 1, height, width) grey tensor in [0, 1] (luma for colour,
// alpha ignored), resized by area averaging (or bilinear when enlarging) when its size
// differs: how a user's PNG/JPG becomes a hint source at the model's resolution.
at::Tensor image_to_gray_tensor(const Image8& image, int height, int width);
// (N, 2) points in about [−range, range]² → a size×size scatter plot (white on dark).
Image8 plot_points(const at::Tensor& points, int size = 512, double range = 1.5);

}  // namespace difflab

#include "core/vision/image_grid.h"

#include <torch/torch.h>

#include <cmath>
#include <stdexcept>

namespace difflab {

Image8 make_grid(const at::Tensor& images, int columns, int padding, int scale) {
  if (images.dim() != 4) throw std::invalid_argument("make_grid needs (N, C, H, W) images");
  const int64_t n = images.size(0), c = images.size(1);
  const int64_t h = images.size(2) * scale, w = images.size(3) * scale;
  if (columns <= 0) columns = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n))));
  const int64_t rows = (n + columns - 1) / columns;
  auto bytes = ((images.detach().to(torch::kCPU, torch::kFloat32).clamp(-1, 1) + 1.0) * 127.5)
                   .round()
                   .to(torch::kUInt8);
  if (scale > 1) bytes = bytes.repeat_interleave(scale, 2).repeat_interleave(scale, 3);
  // Interleaved HWC, grey stays 1 channel.
  bytes = bytes.permute({0, 2, 3, 1}).contiguous();
  Image8 out;
  out.channels = static_cast<int>(c);
  out.width = static_cast<int>(columns * w + (columns + 1) * padding);
  out.height = static_cast<int>(rows * h + (rows + 1) * padding);
  out.pixels.assign(static_cast<size_t>(out.width) * out.height * c, 40);
  const uint8_t* src = bytes.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t x0 = padding + (i % columns) * (w + padding);
    const int64_t y0 = padding + (i / columns) * (h + padding);
    for (int64_t y = 0; y < h; ++y) {
      const uint8_t* row = src + ((i * h + y) * w) * c;
      std::copy(row, row + w * c, out.pixels.begin() + ((y0 + y) * out.width + x0) * c);
    }
  }
  return out;
}

at::Tensor image_to_gray_tensor(const Image8& image, int height, int width) {
  if (image.width < 1 || image.height < 1 || image.channels < 1 ||
      image.pixels.size() != static_cast<size_t>(image.width) * image.height * image.channels)
    throw std::invalid_argument("image_to_gray_tensor: empty or inconsistent image");
  auto hwc = torch::from_blob(const_cast<uint8_t*>(image.pixels.data()),
                              {image.height, image.width, image.channels}, torch::kUInt8)
                 .to(torch::kFloat32)
                 .div(255.0);
  torch::Tensor gray;
  if (image.channels >= 3) {
    gray = hwc.select(2, 0) * 0.299 + hwc.select(2, 1) * 0.587 + hwc.select(2, 2) * 0.114;
  } else {
    gray = hwc.select(2, 0);
  }
  gray = gray.view({1, 1, image.height, image.width});
  if (image.height == height && image.width == width) return gray.clone();
  namespace F = torch::nn::functional;
  const bool shrink = image.height >= height && image.width >= width;
  auto options = F::InterpolateFuncOptions().size(std::vector<int64_t>{height, width});
  if (shrink)
    options.mode(torch::kArea);
  else
    options.mode(torch::kBilinear).align_corners(false);
  return F::interpolate(gray, options).clamp(0.0, 1.0);
}

Image8 plot_points(const at::Tensor& points, int size, double range) {
  auto p = points.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  Image8 out;
  out.width = out.height = size;
  out.channels = 3;
  out.pixels.assign(static_cast<size_t>(size) * size * 3, 24);
  const float* d = p.data_ptr<float>();
  for (int64_t i = 0; i < p.size(0); ++i) {
    const double fx = (d[2 * i] / range + 1.0) * 0.5 * (size - 1);
    const double fy = (1.0 - (d[2 * i + 1] / range + 1.0) * 0.5) * (size - 1);
    const int x = static_cast<int>(std::lround(fx)), y = static_cast<int>(std::lround(fy));
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) {
        const int xx = x + dx, yy = y + dy;
        if (xx < 0 || yy < 0 || xx >= size || yy >= size) continue;
        uint8_t* px = &out.pixels[(static_cast<size_t>(yy) * size + xx) * 3];
        px[0] = 250; px[1] = 200; px[2] = 90;
      }
  }
  return out;
}

}  // namespace difflab

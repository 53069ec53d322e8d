#include "core/vision/hint_preview.h"

#include <torch/torch.h>

#include <stdexcept>

#include "core/vision/canny.h"
#include "core/vision/hints.h"
#include "core/vision/image_grid.h"
#include "core/vision/png.h"

namespace difflab {

GrayPicture load_gray_picture(const std::string& path, int height, int width) {
  const Image8 image = read_image(path);
  const auto gray = image_to_gray_tensor(image, height, width).contiguous();
  GrayPicture out{height, width, {}};
  out.pixels.assign(gray.data_ptr<float>(), gray.data_ptr<float>() + gray.numel());
  return out;
}

namespace {

// `picture` as a (1, 1, H, W) tensor (a view of its pixels), checked.
at::Tensor as_tensor(const GrayPicture& picture, const char* what) {
  if (picture.pixels.size() != static_cast<size_t>(picture.height) * picture.width || picture.empty())
    throw std::invalid_argument(std::string(what) + ": empty or inconsistent picture");
  return torch::from_blob(const_cast<float*>(picture.pixels.data()),
                          {1, 1, picture.height, picture.width}, torch::kFloat32);
}

GrayPicture to_picture(const at::Tensor& map, int height, int width) {
  const auto values = map.to(torch::kCPU, torch::kFloat32).contiguous();
  GrayPicture out{height, width, {}};
  out.pixels.assign(values.data_ptr<float>(), values.data_ptr<float>() + values.numel());
  return out;
}

}  // namespace

GrayPicture canny_edges(const GrayPicture& picture, double low, double high) {
  return picture_hint(picture, HintKind::Canny, low, high);
}

GrayPicture picture_hint(const GrayPicture& picture, HintKind kind, double low, double high,
                         double object) {
  c10::InferenceMode inference;
  const auto input = as_tensor(picture, "picture_hint");
  HintMapOptions options;
  options.canny.low = low;
  options.canny.high = high;
  if (kind == HintKind::Mask || kind == HintKind::Distance) options.threshold = object;
  return to_picture(hint_map(input, kind, options), picture.height, picture.width);
}

GrayPicture drawn_hint(const GrayPicture& canvas, HintKind kind) {
  if (kind != HintKind::Mask && kind != HintKind::Distance) {
    as_tensor(canvas, "drawn_hint");
    return canvas;
  }
  c10::InferenceMode inference;
  const auto region = silhouette(as_tensor(canvas, "drawn_hint"), 0.5);
  return to_picture(kind == HintKind::Mask ? region : distance_hint(region), canvas.height, canvas.width);
}

HintMetric hint_metric(HintKind kind) {
  if (kind == HintKind::Mask) return {"iou", "IoU", true};
  if (kind == HintKind::Distance) return {"mad", "mean abs diff", false};
  return {"f1", "edge F1", true};
}

}  // namespace difflab

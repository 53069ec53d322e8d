#include "core/vision/hint_preview.h"

#include <torch/torch.h>

#include <stdexcept>

#include "core/vision/canny.h"
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

GrayPicture canny_edges(const GrayPicture& picture, double low, double high) {
  if (picture.pixels.size() != static_cast<size_t>(picture.height) * picture.width || picture.empty())
    throw std::invalid_argument("canny_edges: empty or inconsistent picture");
  c10::InferenceMode inference;
  const auto input = torch::from_blob(const_cast<float*>(picture.pixels.data()),
                                      {1, 1, picture.height, picture.width}, torch::kFloat32);
  CannyOptions options;
  options.low = low;
  options.high = high;
  const auto edges = canny(input, options).to(torch::kFloat32).contiguous();
  GrayPicture out{picture.height, picture.width, {}};
  out.pixels.assign(edges.data_ptr<float>(), edges.data_ptr<float>() + edges.numel());
  return out;
}

}  // namespace difflab

// An image file as the image-folder reader sees it: read_image_folder on a folder holding
// one class with this one file, so read_image's checks, the stb_image decoders (PNG, JPEG,
// BMP, GIF, TGA, PNM, and the others stb sniffs), the resize and the crop all run. Odd
// input sizes read grey, even ones RGB.
#include <cstdint>
#include <string>

#include "core/data/image_set.h"
#include "tests/fuzz/fuzz_util.h"

namespace {
// Output side: small, so the resize always runs and each input stays fast.
constexpr int kSide = 16;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const difflab::fuzz::Scratch scratch;
  const std::string dir = scratch.fresh_dir("images");
  const std::string class_dir = dir + "/class";
  std::filesystem::create_directories(class_dir);
  difflab::fuzz::write_file(class_dir + "/image.png", data, size);
  const int channels = size % 2 == 1 ? 1 : 3;
  difflab::fuzz::expect_clean(dir, [&] { difflab::read_image_folder(dir, kSide, channels); });
  return 0;
}

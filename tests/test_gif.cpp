// The animated GIF writer, checked by decoding its output with stb_image's GIF reader
// (an independent decoder): sizes, frame count, delays and pixels.
#include <gtest/gtest.h>
#include <stb_image.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>

#include "core/vision/gif.h"

namespace difflab {
namespace {

struct Decoded {
  int width = 0, height = 0, frames = 0;
  std::vector<int> delays_ms;
  std::vector<uint8_t> rgba;  // frames × height × width × 4
};

Decoded decode(const std::vector<uint8_t>& bytes) {
  Decoded d;
  int* delays = nullptr;
  int comp = 0;
  stbi_uc* data = stbi_load_gif_from_memory(bytes.data(), static_cast<int>(bytes.size()), &delays, &d.width,
                                            &d.height, &d.frames, &comp, 4);
  if (data == nullptr) {
    ADD_FAILURE() << "stb_image could not decode the GIF: " << stbi_failure_reason();
    return d;
  }
  d.rgba.assign(data, data + static_cast<size_t>(d.frames) * d.width * d.height * 4);
  if (delays != nullptr) d.delays_ms.assign(delays, delays + d.frames);
  stbi_image_free(data);
  stbi_image_free(delays);
  return d;
}

Image8 grey_ramp(int w, int h, int shift) {
  Image8 im{w, h, 1, {}};
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) im.pixels.push_back(static_cast<uint8_t>((x * 7 + y * 13 + shift) % 256));
  return im;
}

TEST(Gif, GreyFramesRoundTripExactly) {
  // 256 grey levels fit the palette exactly, so decoding must give the input back.
  std::vector<Image8> frames = {grey_ramp(61, 37, 0), grey_ramp(61, 37, 40), grey_ramp(61, 37, 200)};
  GifOptions options;
  options.delay_cs = 5;
  options.last_delay_cs = 120;
  const Decoded d = decode(encode_gif(frames, options));
  ASSERT_EQ(d.frames, 3);
  ASSERT_EQ(d.width, 61);
  ASSERT_EQ(d.height, 37);
  ASSERT_EQ(d.delays_ms.size(), 3u);
  EXPECT_EQ(d.delays_ms[0], 50);
  EXPECT_EQ(d.delays_ms[2], 1200);
  for (int f = 0; f < 3; ++f)
    for (size_t i = 0; i < frames[f].pixels.size(); ++i) {
      const uint8_t* px = &d.rgba[(static_cast<size_t>(f) * 61 * 37 + i) * 4];
      ASSERT_EQ(px[0], frames[f].pixels[i]) << "frame " << f << " pixel " << i;
      ASSERT_EQ(px[1], frames[f].pixels[i]);
      ASSERT_EQ(px[2], frames[f].pixels[i]);
    }
}

TEST(Gif, NoiseFillsTheCodeTableAndStillDecodes) {
  // Uniform noise over 200 colours defeats LZW, so the 4096-entry table fills and giflib
  // must emit clear codes at the right width: exact colours, exact pixels.
  std::mt19937 rng(3);
  Image8 im{300, 200, 3, {}};
  std::vector<std::array<uint8_t, 3>> colours(200);
  for (auto& c : colours) c = {static_cast<uint8_t>(rng()), static_cast<uint8_t>(rng()), static_cast<uint8_t>(rng())};
  std::vector<int> choice;
  for (int i = 0; i < 300 * 200; ++i) {
    const int k = static_cast<int>(rng() % colours.size());
    choice.push_back(k);
    im.pixels.insert(im.pixels.end(), colours[k].begin(), colours[k].end());
  }
  const Decoded d = decode(encode_gif({im}));
  ASSERT_EQ(d.frames, 1);
  for (int i = 0; i < 300 * 200; ++i)
    for (int c = 0; c < 3; ++c) ASSERT_EQ(d.rgba[i * 4 + c], colours[choice[i]][c]) << "pixel " << i;
}

TEST(Gif, ManyColoursAreQuantisedCloselyByMedianCut) {
  // A smooth RGB gradient has 64k colours; 256 median-cut colours keep each pixel close.
  Image8 im{256, 256, 4, {}};
  for (int y = 0; y < 256; ++y)
    for (int x = 0; x < 256; ++x)
      im.pixels.insert(im.pixels.end(), {static_cast<uint8_t>(x), static_cast<uint8_t>(y),
                                          static_cast<uint8_t>((x + y) / 2), 255});
  const Decoded d = decode(encode_gif({im}));
  ASSERT_EQ(d.frames, 1);
  double squared = 0;
  int worst = 0;
  for (size_t i = 0; i < 256 * 256; ++i)
    for (int c = 0; c < 3; ++c) {
      const int e = static_cast<int>(d.rgba[i * 4 + c]) - im.pixels[i * 4 + c];
      squared += e * e;
      worst = std::max(worst, std::abs(e));
    }
  const double rms = std::sqrt(squared / (256.0 * 256 * 3));
  // 256 boxes over a 256×256 plane of colours: each box spans about 16 levels a side.
  EXPECT_LT(rms, 6.0);
  EXPECT_LT(worst, 24);
}

TEST(Gif, TwoColourImageUsesTheSmallestCodeSize) {
  Image8 im{8, 8, 1, std::vector<uint8_t>(64, 0)};
  for (int i = 0; i < 64; i += 3) im.pixels[i] = 255;
  const std::vector<uint8_t> bytes = encode_gif({im});
  const Decoded d = decode(bytes);
  ASSERT_EQ(d.frames, 1);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(d.rgba[i * 4], im.pixels[i]);
}

TEST(Gif, OneColourGetsATwoEntryTable) {
  // A colour table has at least 2 entries; the single grey is entry 0, the other is padding.
  const Image8 im{5, 3, 1, std::vector<uint8_t>(15, 77)};
  const std::vector<uint8_t> bytes = encode_gif({im});
  ASSERT_GT(bytes.size(), 13u + 6u);
  EXPECT_EQ(bytes[10] & 0x87, 0x80);  // global table present, 2^(0+1) entries
  EXPECT_EQ(bytes[13], 77);
  const Decoded d = decode(bytes);
  ASSERT_EQ(d.frames, 1);
  for (int i = 0; i < 15; ++i) EXPECT_EQ(d.rgba[i * 4], 77) << "pixel " << i;
}

TEST(Gif, Gif89aWithLoopExtensionOnlyWhenAnimated) {
  auto has_loop = [](const std::vector<uint8_t>& bytes) {
    const std::string text(bytes.begin(), bytes.end());
    return text.find("NETSCAPE2.0") != std::string::npos;
  };
  const std::vector<Image8> two = {grey_ramp(9, 7, 0), grey_ramp(9, 7, 5)};
  const std::vector<uint8_t> looping = encode_gif(two);
  EXPECT_EQ(std::string(looping.begin(), looping.begin() + 6), "GIF89a");
  EXPECT_EQ(looping.back(), 0x3B);  // trailer
  EXPECT_TRUE(has_loop(looping));
  GifOptions once;
  once.loop = false;
  EXPECT_FALSE(has_loop(encode_gif(two, once)));
  EXPECT_FALSE(has_loop(encode_gif({two[0]})));
  EXPECT_EQ(decode(encode_gif(two, once)).frames, 2);
}

TEST(Gif, BadInputIsAnErrorNamingTheFile) {
  const std::string path = std::string(DIFFLAB_TEST_TMP) + "/gif/bad.gif";
  try {
    write_gif(path, {grey_ramp(4, 4, 0), grey_ramp(5, 4, 0)});
    FAIL() << "frames of different sizes were accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("differ in size"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_THROW(encode_gif({}), std::runtime_error);
}

TEST(Gif, WritesAFile) {
  const std::string path = std::string(DIFFLAB_TEST_TMP) + "/gif/ok.gif";
  write_gif(path, {grey_ramp(10, 10, 0), grey_ramp(10, 10, 1)});
  ASSERT_TRUE(std::filesystem::exists(path));
  EXPECT_GT(std::filesystem::file_size(path), 30u);
}

}  // namespace
}  // namespace difflab

#include "core/vision/gif.h"

#include <algorithm>
#include <array>
#include <new>
#include <stdexcept>
#include <string>

#include <gif_lib.h>

#include "core/util/paths.h"

namespace difflab {

namespace {

constexpr int kMaxColours = 256;
// Colour resolution in the screen descriptor: 8 bits per primary (GIF89a §18).
constexpr int kColourResolutionBits = 8;
// NETSCAPE2.0 application extension: sub-block id 1 carries the loop count, 0 = forever.
constexpr GifByteType kNetscapeLoopBlock[3] = {1, 0, 0};

uint32_t pack_rgb(uint8_t r, uint8_t g, uint8_t b) {
  return (static_cast<uint32_t>(r) << 16) | (static_cast<uint32_t>(g) << 8) | b;
}
int channel_of(uint32_t rgb, int c) { return static_cast<int>((rgb >> (16 - 8 * c)) & 0xFF); }

uint32_t pixel_rgb(const Image8& im, size_t i) {
  const uint8_t* p = im.pixels.data() + i * static_cast<size_t>(im.channels);
  return im.channels >= 3 ? pack_rgb(p[0], p[1], p[2]) : pack_rgb(p[0], p[0], p[0]);
}

struct ColourCount {
  uint32_t rgb;
  uint64_t count;
};

// Distinct colours of all frames with their pixel counts, sorted by colour.
std::vector<ColourCount> count_colours(const std::vector<Image8>& frames) {
  std::vector<uint32_t> all;
  size_t total = 0;
  for (const Image8& f : frames) total += static_cast<size_t>(f.width) * f.height;
  all.reserve(total);
  for (const Image8& f : frames)
    for (size_t i = 0, n = static_cast<size_t>(f.width) * f.height; i < n; ++i) all.push_back(pixel_rgb(f, i));
  std::sort(all.begin(), all.end());
  std::vector<ColourCount> out;
  for (uint32_t c : all) {
    if (out.empty() || out.back().rgb != c) out.push_back({c, 0});
    ++out.back().count;
  }
  return out;
}

// Median cut (Heckbert 1982): split the box with the widest channel range at the
// pixel-weighted median of that channel until there are `max_colours` boxes; each box's
// colour is its weighted mean.
std::vector<uint32_t> median_cut(std::vector<ColourCount> colours, int max_colours) {
  struct Box {
    size_t begin, end;
    int widest_channel = 0, range = 0;
  };
  auto measure = [&](Box& b) {
    std::array<int, 3> lo{255, 255, 255}, hi{0, 0, 0};
    for (size_t i = b.begin; i < b.end; ++i)
      for (int c = 0; c < 3; ++c) {
        lo[c] = std::min(lo[c], channel_of(colours[i].rgb, c));
        hi[c] = std::max(hi[c], channel_of(colours[i].rgb, c));
      }
    b.range = -1;
    for (int c = 0; c < 3; ++c)
      if (hi[c] - lo[c] > b.range) {
        b.range = hi[c] - lo[c];
        b.widest_channel = c;
      }
  };
  std::vector<Box> boxes{{0, colours.size()}};
  measure(boxes[0]);
  while (static_cast<int>(boxes.size()) < max_colours) {
    auto it = std::max_element(boxes.begin(), boxes.end(),
                               [](const Box& a, const Box& b) { return a.range < b.range; });
    if (it->range <= 0 || it->end - it->begin < 2) break;
    Box box = *it;
    const int c = box.widest_channel;
    std::sort(colours.begin() + box.begin, colours.begin() + box.end,
              [c](const ColourCount& a, const ColourCount& b) { return channel_of(a.rgb, c) < channel_of(b.rgb, c); });
    uint64_t weight = 0;
    for (size_t i = box.begin; i < box.end; ++i) weight += colours[i].count;
    uint64_t acc = 0;
    size_t split = box.begin + 1;
    for (size_t i = box.begin; i < box.end - 1; ++i) {
      acc += colours[i].count;
      split = i + 1;
      if (2 * acc >= weight) break;
    }
    Box left{box.begin, split}, right{split, box.end};
    measure(left);
    measure(right);
    *it = left;
    boxes.push_back(right);
  }
  std::vector<uint32_t> palette;
  for (const Box& b : boxes) {
    std::array<double, 3> sum{0, 0, 0};
    double weight = 0;
    for (size_t i = b.begin; i < b.end; ++i) {
      for (int c = 0; c < 3; ++c) sum[c] += static_cast<double>(channel_of(colours[i].rgb, c)) * colours[i].count;
      weight += static_cast<double>(colours[i].count);
    }
    auto mean = [&](int c) { return static_cast<uint8_t>(std::clamp(sum[c] / weight + 0.5, 0.0, 255.0)); };
    palette.push_back(pack_rgb(mean(0), mean(1), mean(2)));
  }
  return palette;
}

int nearest(const std::vector<uint32_t>& palette, uint32_t rgb) {
  int best = 0;
  int best_d = 1 << 30;
  for (size_t k = 0; k < palette.size(); ++k) {
    int d = 0;
    for (int c = 0; c < 3; ++c) {
      const int e = channel_of(palette[k], c) - channel_of(rgb, c);
      d += e * e;
    }
    if (d < best_d) {
      best_d = d;
      best = static_cast<int>(k);
    }
  }
  return best;
}

// giflib writes through this: the bytes go into `bytes`. Returns the count written, as
// giflib expects; a short count (no memory) becomes giflib's E_GIF_ERR_WRITE_FAILED.
int append_bytes(GifFileType* gif, const GifByteType* data, int size) {
  auto* bytes = static_cast<std::vector<uint8_t>*>(gif->UserData);
  try {
    bytes->insert(bytes->end(), data, data + size);
  } catch (const std::bad_alloc&) {
    return 0;  // no exception may cross giflib's C frames
  }
  return size;
}

// An encoder open on a byte vector; closes (and frees) itself if an error leaves early.
class GifEncoder {
 public:
  explicit GifEncoder(std::vector<uint8_t>& bytes) {
    int error = 0;
    m_gif = EGifOpen(&bytes, append_bytes, &error);
    if (m_gif == nullptr) fail("EGifOpen", error);
  }
  ~GifEncoder() {
    if (m_gif != nullptr) EGifCloseFile(m_gif, nullptr);
  }
  GifEncoder(const GifEncoder&) = delete;
  GifEncoder& operator=(const GifEncoder&) = delete;

  GifFileType* get() const { return m_gif; }

  // Throws unless a giflib call returned GIF_OK; the message carries GifErrorString.
  void check(int result, const char* call) const {
    if (result != GIF_OK) fail(call, m_gif->Error);
  }

  // Writes the trailer and frees the encoder.
  void close() {
    int error = 0;
    const int result = EGifCloseFile(m_gif, &error);
    m_gif = nullptr;
    if (result != GIF_OK) fail("EGifCloseFile", error);
  }

 private:
  [[noreturn]] static void fail(const char* call, int error) {
    const char* what = GifErrorString(error);
    throw std::runtime_error(std::string("giflib ") + call + " failed: " +
                             (what != nullptr ? what : "error " + std::to_string(error)));
  }

  GifFileType* m_gif = nullptr;
};

// giflib's colour map: the palette padded with black to 2^bits entries, 2..256.
ColorMapObject* make_colour_map(const std::vector<uint32_t>& palette) {
  int size = 2;
  while (size < static_cast<int>(palette.size())) size *= 2;
  std::vector<GifColorType> colours(static_cast<size_t>(size), GifColorType{0, 0, 0});
  for (size_t k = 0; k < palette.size(); ++k) {
    colours[k].Red = static_cast<GifByteType>(channel_of(palette[k], 0));
    colours[k].Green = static_cast<GifByteType>(channel_of(palette[k], 1));
    colours[k].Blue = static_cast<GifByteType>(channel_of(palette[k], 2));
  }
  ColorMapObject* map = GifMakeMapObject(size, colours.data());
  if (map == nullptr) throw std::runtime_error("giflib GifMakeMapObject failed (out of memory)");
  return map;
}

}  // namespace

std::vector<uint8_t> encode_gif(const std::vector<Image8>& frames, const GifOptions& options) {
  if (frames.empty()) throw std::runtime_error("an animated GIF needs at least one frame");
  const int w = frames[0].width, h = frames[0].height;
  if (w <= 0 || h <= 0 || w > 0xFFFF || h > 0xFFFF)
    throw std::runtime_error("GIF frames must be 1..65535 pixels wide and high, got " + std::to_string(w) + "x" +
                             std::to_string(h));
  for (const Image8& f : frames) {
    if (f.width != w || f.height != h)
      throw std::runtime_error("GIF frames differ in size: " + std::to_string(w) + "x" + std::to_string(h) + " and " +
                               std::to_string(f.width) + "x" + std::to_string(f.height));
    if (f.channels < 1 || f.channels > 4 || f.pixels.size() != static_cast<size_t>(w) * h * f.channels)
      throw std::runtime_error("GIF frame has a bad pixel buffer");
  }

  std::vector<ColourCount> colours = count_colours(frames);
  std::vector<uint32_t> palette;
  if (static_cast<int>(colours.size()) <= kMaxColours)
    for (const ColourCount& c : colours) palette.push_back(c.rgb);
  else
    palette = median_cut(colours, kMaxColours);
  // Index of every distinct colour (binary search over the sorted distinct colours).
  std::vector<uint8_t> index_of(colours.size());
  for (size_t i = 0; i < colours.size(); ++i) index_of[i] = static_cast<uint8_t>(nearest(palette, colours[i].rgb));

  std::vector<uint8_t> out;
  GifEncoder gif(out);
  EGifSetGifVersion(gif.get(), true);  // GIF89a: the extensions below need it
  {
    ColorMapObject* map = make_colour_map(palette);
    // giflib copies the map; background colour index 0.
    const int result = EGifPutScreenDesc(gif.get(), w, h, kColourResolutionBits, 0, map);
    GifFreeMapObject(map);
    gif.check(result, "EGifPutScreenDesc");
  }
  if (options.loop && frames.size() > 1) {
    gif.check(EGifPutExtensionLeader(gif.get(), APPLICATION_EXT_FUNC_CODE),
              "EGifPutExtensionLeader");
    gif.check(EGifPutExtensionBlock(gif.get(), 11, "NETSCAPE2.0"), "EGifPutExtensionBlock");
    gif.check(EGifPutExtensionBlock(gif.get(), sizeof kNetscapeLoopBlock, kNetscapeLoopBlock),
              "EGifPutExtensionBlock");
    gif.check(EGifPutExtensionTrailer(gif.get()), "EGifPutExtensionTrailer");
  }
  std::vector<GifPixelType> indices(static_cast<size_t>(w) * h);
  for (size_t f = 0; f < frames.size(); ++f) {
    for (size_t i = 0; i < indices.size(); ++i) {
      const uint32_t rgb = pixel_rgb(frames[f], i);
      const auto it = std::lower_bound(colours.begin(), colours.end(), rgb,
                                       [](const ColourCount& c, uint32_t v) { return c.rgb < v; });
      indices[i] = index_of[static_cast<size_t>(it - colours.begin())];
    }
    // Graphic control: leave the frame in place (each covers the whole image), no
    // transparency, and the frame's delay.
    GraphicsControlBlock control{};
    control.DisposalMode = DISPOSE_DO_NOT;
    control.UserInputFlag = false;
    control.DelayTime = f + 1 == frames.size() ? options.last_delay_cs : options.delay_cs;
    control.TransparentColor = NO_TRANSPARENT_COLOR;
    GifByteType extension[4];
    const size_t length = EGifGCBToExtension(&control, extension);
    gif.check(
        EGifPutExtension(gif.get(), GRAPHICS_EXT_FUNC_CODE, static_cast<int>(length), extension),
        "EGifPutExtension");
    // The whole screen, no local colour table, not interlaced; giflib LZW-codes the rows.
    gif.check(EGifPutImageDesc(gif.get(), 0, 0, w, h, false, nullptr), "EGifPutImageDesc");
    for (int y = 0; y < h; ++y)
      gif.check(EGifPutLine(gif.get(), indices.data() + static_cast<size_t>(y) * w, w),
                "EGifPutLine");
  }
  gif.close();
  return out;
}

void write_gif(const std::string& path, const std::vector<Image8>& frames,
               const GifOptions& options, IfExists if_exists) {
  std::vector<uint8_t> bytes;
  try {
    bytes = encode_gif(frames, options);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot write GIF '" + path + "': " + e.what());
  }
  write_file_atomic(path, std::string(bytes.begin(), bytes.end()), if_exists);
}

}  // namespace difflab

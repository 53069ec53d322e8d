#include "core/vision/gif.h"

#include <algorithm>
#include <array>
#include <stdexcept>

#include "core/util/paths.h"

namespace difflab {

namespace {

constexpr int kMaxColours = 256;
constexpr int kMaxCodeBits = 12;               // GIF89a §22: codes are at most 12 bits wide
constexpr int kMaxCodes = 1 << kMaxCodeBits;  // 4096
constexpr int kMaxSubBlock = 255;

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

// LSB-first bit packer that cuts its output into GIF data sub-blocks.
class BitWriter {
 public:
  explicit BitWriter(std::vector<uint8_t>& out) : m_out(out) {}
  void put(int code, int bits) {
    m_acc |= static_cast<uint32_t>(code) << m_nbits;
    m_nbits += bits;
    while (m_nbits >= 8) {
      push_byte(static_cast<uint8_t>(m_acc & 0xFF));
      m_acc >>= 8;
      m_nbits -= 8;
    }
  }
  void finish() {
    if (m_nbits > 0) push_byte(static_cast<uint8_t>(m_acc & 0xFF));
    m_acc = 0;
    m_nbits = 0;
    flush_block();
    m_out.push_back(0);  // block terminator
  }

 private:
  void push_byte(uint8_t b) {
    m_block.push_back(b);
    if (m_block.size() == kMaxSubBlock) flush_block();
  }
  void flush_block() {
    if (m_block.empty()) return;
    m_out.push_back(static_cast<uint8_t>(m_block.size()));
    m_out.insert(m_out.end(), m_block.begin(), m_block.end());
    m_block.clear();
  }
  std::vector<uint8_t>& m_out;
  std::vector<uint8_t> m_block;
  uint32_t m_acc = 0;
  int m_nbits = 0;
};

// GIF89a appendix F: variable-length-code LZW. The decoder adds one table entry per
// code after the first, so it runs one entry behind the encoder; the code width grows
// when the code just assigned no longer fits, which is when the decoder's grows.
void lzw_encode(const std::vector<uint8_t>& indices, int min_code_size, std::vector<uint8_t>& out) {
  const int clear = 1 << min_code_size;
  const int end_of_information = clear + 1;
  // next[code * 256 + byte] = the code of (string of `code`) + byte, or 0 when absent.
  std::vector<uint16_t> next(static_cast<size_t>(kMaxCodes) * 256, 0);
  int width = min_code_size + 1;
  int next_code = clear + 2;
  BitWriter bits(out);
  out.push_back(static_cast<uint8_t>(min_code_size));
  bits.put(clear, width);
  auto reset = [&] {
    std::fill(next.begin(), next.end(), 0);
    width = min_code_size + 1;
    next_code = clear + 2;
  };
  int current = indices.empty() ? -1 : indices[0];
  for (size_t i = 1; i < indices.size(); ++i) {
    const uint8_t byte = indices[i];
    uint16_t& slot = next[static_cast<size_t>(current) * 256 + byte];
    if (slot != 0) {
      current = slot;
      continue;
    }
    bits.put(current, width);
    slot = static_cast<uint16_t>(next_code);
    if (next_code >= (1 << width) && width < kMaxCodeBits) ++width;
    ++next_code;
    if (next_code == kMaxCodes) {
      bits.put(clear, width);
      reset();
    }
    current = byte;
  }
  if (current >= 0) bits.put(current, width);
  bits.put(end_of_information, width);
  bits.finish();
}

void put_text(std::vector<uint8_t>& out, const char* text) {
  for (; *text != 0; ++text) out.push_back(static_cast<uint8_t>(*text));
}

void put_u16(std::vector<uint8_t>& out, int v) {
  out.push_back(static_cast<uint8_t>(v & 0xFF));
  out.push_back(static_cast<uint8_t>((v >> 8) & 0xFF));
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

  int table_bits = 1;  // the colour table holds 2^table_bits entries, 2..256
  while ((1 << table_bits) < static_cast<int>(palette.size())) ++table_bits;
  const int min_code_size = std::max(2, table_bits);

  std::vector<uint8_t> out;
  put_text(out, "GIF89a");
  put_u16(out, w);
  put_u16(out, h);
  // Global colour table present, 8 bits of colour resolution, table size 2^table_bits.
  out.push_back(static_cast<uint8_t>(0x80 | (7 << 4) | (table_bits - 1)));
  out.push_back(0);  // background colour index
  out.push_back(0);  // no aspect ratio
  for (int k = 0; k < (1 << table_bits); ++k) {
    const uint32_t rgb = k < static_cast<int>(palette.size()) ? palette[k] : 0;
    for (int c = 0; c < 3; ++c) out.push_back(static_cast<uint8_t>(channel_of(rgb, c)));
  }
  if (options.loop && frames.size() > 1) {
    out.insert(out.end(), {0x21, 0xFF, 0x0B});
    put_text(out, "NETSCAPE2.0");
    out.insert(out.end(), {0x03, 0x01});
    put_u16(out, 0);  // loop forever
    out.push_back(0);
  }
  std::vector<uint8_t> indices(static_cast<size_t>(w) * h);
  for (size_t f = 0; f < frames.size(); ++f) {
    for (size_t i = 0; i < indices.size(); ++i) {
      const uint32_t rgb = pixel_rgb(frames[f], i);
      const auto it = std::lower_bound(colours.begin(), colours.end(), rgb,
                                       [](const ColourCount& c, uint32_t v) { return c.rgb < v; });
      indices[i] = index_of[static_cast<size_t>(it - colours.begin())];
    }
    // Graphic control extension: no disposal (each frame covers the whole image), delay.
    out.insert(out.end(), {0x21, 0xF9, 0x04, 0x04});
    put_u16(out, f + 1 == frames.size() ? options.last_delay_cs : options.delay_cs);
    out.insert(out.end(), {0x00, 0x00});
    // Image descriptor: the whole screen, no local colour table, not interlaced.
    out.push_back(0x2C);
    put_u16(out, 0);
    put_u16(out, 0);
    put_u16(out, w);
    put_u16(out, h);
    out.push_back(0);
    lzw_encode(indices, min_code_size, out);
  }
  out.push_back(0x3B);  // trailer
  return out;
}

void write_gif(const std::string& path, const std::vector<Image8>& frames, const GifOptions& options) {
  std::vector<uint8_t> bytes;
  try {
    bytes = encode_gif(frames, options);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot write GIF '" + path + "': " + e.what());
  }
  write_file_atomic(path, std::string(bytes.begin(), bytes.end()));
}

}  // namespace difflab

#include "core/vision/png.h"

// Debian's libstb provides the implementations; only the declarations are needed.
#include <stb_image.h>
#include <stb_image_write.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <limits>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <utility>

#include "core/util/paths.h"

namespace difflab {

namespace fs = std::filesystem;

namespace {

void check_shape(const std::string& what, const Image8& image) {
  if (image.width <= 0 || image.height <= 0 || image.channels < 1 || image.channels > 4) {
    throw std::runtime_error(what + "bad image shape " + std::to_string(image.width) + "x" +
                             std::to_string(image.height) + "x" +
                             std::to_string(image.channels));
  }
  const size_t expected = static_cast<size_t>(image.width) * static_cast<size_t>(image.height) *
                          static_cast<size_t>(image.channels);
  if (image.pixels.size() != expected) {
    throw std::runtime_error(what + std::to_string(image.pixels.size()) +
                             " bytes of pixels, expected " + std::to_string(expected));
  }
}

void append_bytes(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data),
                                             static_cast<size_t>(size));
}

// Psd, Hdr and Pic: stb_image decodes them too, read_image refuses them
// (refused_before_decoding).
enum class Format { Png, Jpeg, Bmp, Gif, Pnm, Tga, Psd, Hdr, Pic, Other };

// Which decoder stb_image will pick, by the same signatures it tests (stbi__*_test). TGA
// has none: stb tries it last, on a plausible header (colour-map type 0 or 1, a known
// image type).
Format sniff(const std::string& bytes) {
  auto starts = [&](std::string_view magic) { return bytes.compare(0, magic.size(), magic) == 0; };
  if (starts("\x89PNG\r\n\x1a\n")) return Format::Png;
  // stb needs only the start-of-image marker (D8), after any number of 0xFF fill bytes.
  if (const size_t marker = bytes.find_first_not_of('\xFF');
      marker != std::string::npos && marker >= 1 && bytes[marker] == '\xD8')
    return Format::Jpeg;
  if (starts("BM")) return Format::Bmp;
  if (starts("GIF87a") || starts("GIF89a")) return Format::Gif;
  if (starts("P5") || starts("P6")) return Format::Pnm;
  if (starts("8BPS")) return Format::Psd;
  if (starts("#?RADIANCE\n") || starts("#?RGBE\n")) return Format::Hdr;
  if (starts("\x53\x80\xF6\x34") && bytes.size() >= 92 && bytes.compare(88, 4, "PICT") == 0)
    return Format::Pic;
  if (bytes.size() >= 18) {
    const int colour_map = static_cast<uint8_t>(bytes[1]);
    const int type = static_cast<uint8_t>(bytes[2]);
    if (colour_map <= 1 &&
        (type == 1 || type == 2 || type == 3 || type == 9 || type == 10 || type == 11))
      return Format::Tga;
  }
  return Format::Other;
}

const char* format_name(Format f) {
  switch (f) {
    case Format::Png: return "PNG";
    case Format::Jpeg: return "JPEG";
    case Format::Bmp: return "BMP";
    case Format::Gif: return "GIF";
    case Format::Pnm: return "PNM";
    case Format::Tga: return "TGA";
    case Format::Psd: return "Photoshop (PSD)";
    case Format::Hdr: return "Radiance HDR";
    case Format::Pic: return "Softimage PIC";
    case Format::Other: break;
  }
  return "image";
}

uint32_t le16(const std::string& b, size_t at) {
  return static_cast<uint32_t>(static_cast<uint8_t>(b[at])) |
         static_cast<uint32_t>(static_cast<uint8_t>(b[at + 1])) << 8;
}

uint32_t be16(const std::string& b, size_t at) {
  return static_cast<uint32_t>(static_cast<uint8_t>(b[at])) << 8 |
         static_cast<uint32_t>(static_cast<uint8_t>(b[at + 1]));
}

uint32_t be32(const std::string& b, size_t at) { return be16(b, at) << 16 | be16(b, at + 2); }

uint32_t le32(const std::string& b, size_t at) {
  return static_cast<uint32_t>(static_cast<uint8_t>(b[at])) |
         static_cast<uint32_t>(static_cast<uint8_t>(b[at + 1])) << 8 |
         static_cast<uint32_t>(static_cast<uint8_t>(b[at + 2])) << 16 |
         static_cast<uint32_t>(static_cast<uint8_t>(b[at + 3])) << 24;
}

// A JPEG Huffman table holds at most 256 codes (ITU-T T.81, B.2.4.2). The stb_image of
// Debian 12 (2.27) adds up the 16 code counts without checking them and writes that many
// entries into 257-entry tables, past the end of its decoder state: such a file must not
// reach stb at all, not even stbi_info. Every marker segment is visited, those between the
// scans of a progressive JPEG too, reading each table as stb does: the first whatever the
// segment length says, the next while the length is not used up.
constexpr size_t kMaxHuffmanCodes = 256;

std::string bad_jpeg_tables(const std::string& b) {
  auto byte = [&](size_t at) -> size_t { return at < b.size() ? static_cast<uint8_t>(b[at]) : 0; };
  size_t at = 0;  // fill bytes and the start-of-image marker are skipped like the others
  while (at + 1 < b.size()) {
    if (byte(at) != 0xFF) {  // entropy-coded data, or junk stb skips to find a marker
      ++at;
      continue;
    }
    const size_t marker = byte(at + 1);
    if (marker == 0xFF) {  // fill byte before a marker
      ++at;
      continue;
    }
    // A stuffed 0xFF data byte, TEM, RST0..7 and SOI have no length field.
    if (marker == 0x00 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) {
      at += 2;
      continue;
    }
    if (marker == 0xD9 || at + 4 > b.size()) return {};  // end of image
    const size_t length = be16(b, at + 2);
    if (marker == 0xC4) {  // DHT: tables of <class|id> <16 counts> <the codes' symbols>
      int64_t left = static_cast<int64_t>(length) - 2;
      for (size_t table = at + 4; left > 0 && table < b.size();) {
        size_t codes = 0;
        for (size_t i = 1; i <= 16; ++i) codes += byte(table + i);
        if (codes > kMaxHuffmanCodes)
          return "corrupt JPEG: a Huffman table declares " + std::to_string(codes) +
                 " codes (at most " + std::to_string(kMaxHuffmanCodes) + ")";
        table += 17 + codes;
        left -= static_cast<int64_t>(17 + codes);
      }
    }
    at += 2 + length;
  }
  return {};
}

// The header of a binary PNM (P5 grey, P6 RGB), read as stb_image reads it: blanks and #
// comments between width, height and maximum value, then exactly one blank before the
// samples. Numbers above kMaxPnmNumber are refused (`problem`): stb's reader would
// overflow an int on them.
constexpr int64_t kMaxPnmNumber = int64_t{1} << 24;

struct PnmHeader {
  int64_t width = 0;
  int64_t height = 0;
  int64_t max_value = 0;
  size_t data_start = 0;
  std::string problem;
};

PnmHeader read_pnm_header(const std::string& b) {
  PnmHeader header;
  size_t at = 2;  // after P5 / P6
  auto is_blank = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
  auto skip_blanks = [&] {
    for (;;) {
      while (at < b.size() && is_blank(b[at])) ++at;
      if (at >= b.size() || b[at] != '#') return;
      while (at < b.size() && b[at] != '\n' && b[at] != '\r') ++at;
    }
  };
  const std::pair<const char*, int64_t*> fields[] = {
      {"width", &header.width}, {"height", &header.height}, {"maximum value", &header.max_value}};
  for (const auto& [name, value] : fields) {
    skip_blanks();
    while (at < b.size() && b[at] >= '0' && b[at] <= '9') {
      *value = *value * 10 + (b[at] - '0');
      ++at;
      if (*value > kMaxPnmNumber) {
        header.problem = std::string("corrupt PNM header (its ") + name + " is over " +
                         std::to_string(kMaxPnmNumber) + ")";
        return header;
      }
    }
  }
  header.data_start = at + 1;
  return header;
}

// PNG chunks (<length> <type> <data> <CRC>, ISO/IEC 15948, 5.3) up to IEND must lie in the
// file. stb_image 2.27 grows its buffer for an IDAT chunk to the declared length before
// reading it: a 200-byte file declaring a 2 GB chunk had it allocate 2 GiB (fuzz_image).
constexpr size_t kPngSignatureSize = 8;
constexpr size_t kPngChunkOverhead = 12;  // length, type, CRC

// The bytes a PNG's image data inflates to, at most: one filter byte per row and the
// packed samples (ISO/IEC 15948, 7.2), doubled for the Adam7 passes' extra row starts and
// padding, plus a little slack. 0 when the header is not one stb reads.
uint64_t png_inflated_bound(const std::string& ihdr) {
  const uint64_t width = be32(ihdr, 0), height = be32(ihdr, 4);
  const int depth = static_cast<uint8_t>(ihdr[8]);
  const int colour = static_cast<uint8_t>(ihdr[9]);
  const int channels = colour == 0 || colour == 3 ? 1 : colour == 2 ? 3 : colour == 4 ? 2 : 4;
  if (width > kMaxImageSide || height > kMaxImageSide) return 0;  // stbi_info refuses it
  const uint64_t row = 1 + (width * channels * depth + 7) / 8;
  return 2 * height * row + 4096;
}

// How many bytes the zlib stream split over `pieces` (views into the file: the IDAT
// chunks' data, in order) inflates to, counting no further than `limit` + 1 (nothing is
// kept). -1 when it is not a zlib stream (stb reports that itself).
int64_t inflated_size(const std::vector<std::string_view>& pieces, uint64_t limit) {
  z_stream z{};
  if (inflateInit(&z) != Z_OK) return -1;
  unsigned char scratch[1 << 15];
  uint64_t total = 0;
  int rc = Z_OK;
  for (size_t i = 0; i < pieces.size() && rc == Z_OK && total <= limit; ++i) {
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(pieces[i].data()));
    z.avail_in = static_cast<uInt>(pieces[i].size());
    while (rc == Z_OK && total <= limit) {
      z.next_out = scratch;
      z.avail_out = sizeof scratch;
      rc = inflate(&z, Z_NO_FLUSH);
      total += sizeof scratch - z.avail_out;
      if (rc == Z_BUF_ERROR && z.avail_in == 0) {  // this piece is used up: on to the next
        rc = Z_OK;
        break;
      }
    }
  }
  inflateEnd(&z);
  return (rc == Z_OK || rc == Z_STREAM_END) ? static_cast<int64_t>(total) : -1;
}

std::string bad_png_chunks(const std::string& b) {
  std::string ihdr;
  std::vector<std::string_view> idat;
  for (size_t at = kPngSignatureSize; b.size() - at >= kPngChunkOverhead;) {
    const uint64_t length = be32(b, at);
    const std::string type = b.substr(at + 4, 4);
    if (length > b.size() - at - kPngChunkOverhead)
      return "truncated or corrupt PNG (its " + type + " chunk at byte " + std::to_string(at) +
             " declares " + std::to_string(length) + " bytes, the file has " +
             std::to_string(b.size() - at - kPngChunkOverhead) + " left)";
    if (type == "IEND") break;
    if (type == "IHDR" && length >= 13) ihdr = b.substr(at + 8, 13);
    if (type == "IDAT") idat.push_back(std::string_view(b).substr(at + 8, length));
    at += kPngChunkOverhead + length;
  }
  // A "zlib bomb": stb_image 2.27 inflates the image data whole, growing its buffer up to
  // 4 GiB, whatever the header promised. The stream is measured first, keeping nothing.
  if (ihdr.empty() || idat.empty()) return {};
  const uint64_t bound = png_inflated_bound(ihdr);
  if (bound == 0) return {};
  const int64_t inflated = inflated_size(idat, bound);
  if (inflated > static_cast<int64_t>(bound))
    return "corrupt PNG (its image data inflates to more than " + std::to_string(bound) +
           " bytes, the most a " + std::to_string(be32(ihdr, 0)) + "x" +
           std::to_string(be32(ihdr, 4)) + " image needs)";
  return {};
}

// What stb_image must not see: formats read_image does not offer (see png.h; stb's PSD,
// HDR and PIC readers are the least used and least checked), and headers that trip it.
std::string refused_before_decoding(Format format, const std::string& b) {
  if (format == Format::Psd || format == Format::Hdr || format == Format::Pic)
    return std::string("a ") + format_name(format) +
           " file; only PNG, JPEG, BMP, GIF, TGA and PNM images are read";
  if (format == Format::Png) return bad_png_chunks(b);
  if (format == Format::Jpeg) return bad_jpeg_tables(b);
  if (format == Format::Pnm) return read_pnm_header(b).problem;
  return {};
}

// "the pixel data ends after N of M bytes (truncated FORMAT)".
std::string ends_early(const std::string& b, int64_t need, const char* format) {
  return "the pixel data ends after " + std::to_string(b.size()) + " of " + std::to_string(need) +
         " bytes (truncated " + format + ")";
}

// Empty when the file holds all it declares; else what is missing.
std::string incomplete(Format format, const std::string& b) {
  if (format == Format::Jpeg) {
    // Entropy-coded data stuffs 0xFF as FF 00, so an end-of-image marker after the first
    // start-of-scan can only be the real one (bytes after it, as some cameras add, are fine).
    const size_t scan = b.find("\xFF\xDA", 2);
    if (scan == std::string::npos) return "the file ends before the image data (no start-of-scan marker: truncated JPEG)";
    if (b.find("\xFF\xD9", scan + 2) == std::string::npos)
      return "the file ends before the end-of-image marker (truncated JPEG)";
    return {};
  }
  if (format == Format::Bmp && b.size() >= 34) {
    const uint32_t offset = le32(b, 10);
    const uint32_t header = le32(b, 14);
    if (header < 40) return {};  // OS/2 core header: leave it to stb
    const int64_t width = static_cast<int32_t>(le32(b, 18));
    const int64_t height = static_cast<int32_t>(le32(b, 22));
    const int64_t bits = static_cast<uint8_t>(b[28]) | static_cast<uint8_t>(b[29]) << 8;
    // stb refuses 1 and 2 (RLE) and 4 up (JPEG, PNG), but reads the field as a signed int:
    // negative values pass and decode as plain pixels, so they are checked like 0 and 3.
    const auto compression = static_cast<int32_t>(le32(b, 30));
    if (compression == 1 || compression == 2 || compression >= 4) return {};
    if (width <= 0 || height == 0 || bits <= 0) return {};
    const int64_t stride = (width * bits + 31) / 32 * 4;
    const int64_t need = int64_t{offset} + stride * (height < 0 ? -height : height);
    if (static_cast<int64_t>(b.size()) < need) return ends_early(b, need, "BMP");
  }
  if (format == Format::Pnm) {
    // stb copies the samples only when all of them are there, and otherwise returns the
    // picture uninitialised: a short file would decode as whatever the memory held.
    const PnmHeader h = read_pnm_header(b);
    const int64_t channels = b[1] == '5' ? 1 : 3;
    const int64_t need = static_cast<int64_t>(h.data_start) +
                         h.width * h.height * channels * (h.max_value > 255 ? 2 : 1);
    if (h.problem.empty() && static_cast<int64_t>(b.size()) < need)
      return ends_early(b, need, "PNM");
  }
  if (format == Format::Tga) {
    // Truevision TGA 2.0: an 18-byte header, the image id, the colour map, then the pixels,
    // stored (types 1-3) or run-length coded (9-11: packets of at most 128 pixels, each a
    // count byte and at least one pixel). stb reads what is missing as zeros.
    const int64_t id_length = static_cast<uint8_t>(b[0]);
    const bool colour_map = b[1] == 1;
    const bool run_length = static_cast<uint8_t>(b[2]) >= 9;
    const int64_t map_bytes =
        colour_map ? int64_t{le16(b, 5)} * ((static_cast<uint8_t>(b[7]) + 7) / 8) : 0;
    const int64_t pixels = int64_t{le16(b, 12)} * le16(b, 14);
    const int64_t pixel_bytes = (static_cast<uint8_t>(b[16]) + 7) / 8;
    const int64_t header = 18 + id_length + map_bytes;
    const int64_t need = run_length ? header + (pixels + 127) / 128 * (1 + pixel_bytes)
                                    : header + pixels * pixel_bytes;
    if (static_cast<int64_t>(b.size()) < need) {
      if (!run_length) return ends_early(b, need, "TGA");
      return "the file has " + std::to_string(b.size()) + " bytes, too few for " +
             std::to_string(pixels) + " run-length coded pixels (truncated TGA)";
    }
  }
  return {};
}

}  // namespace

std::string encode_png(const Image8& image) {
  check_shape("cannot encode PNG: ", image);
  std::string bytes;
  if (stbi_write_png_to_func(append_bytes, &bytes, image.width, image.height, image.channels,
                             image.pixels.data(), image.width * image.channels) == 0) {
    throw std::runtime_error("cannot encode PNG: out of memory");
  }
  return bytes;
}

void write_png(const std::string& path, const Image8& image, IfExists if_exists) {
  check_shape("cannot write PNG '" + path + "': ", image);
  write_file_atomic(path, encode_png(image), if_exists);
}

Image8 read_image(const std::string& path, int channels) {
  const std::string what = "cannot read image '" + path + "': ";
  if (channels < 0 || channels > 4)
    throw std::runtime_error(what + "asked for " + std::to_string(channels) + " channels");
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw std::runtime_error(what + "it is a folder, not an image file");
  std::string bytes, why;
  if (!read_file(path, &bytes, &why)) throw std::runtime_error(what + why);
  if (bytes.empty()) throw std::runtime_error(what + "the file is empty");
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()))
    throw std::runtime_error(what + "larger than 2 GiB");
  const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int size = static_cast<int>(bytes.size());
  const Format format = sniff(bytes);
  if (const std::string refused = refused_before_decoding(format, bytes); !refused.empty())
    throw std::runtime_error(what + refused);

  int width = 0;
  int height = 0;
  int stored_channels = 0;
  if (stbi_info_from_memory(data, size, &width, &height, &stored_channels) == 0) {
    const char* reason = stbi_failure_reason();
    const std::string stb = reason != nullptr ? reason : "unknown error";
    if (format == Format::Other)
      throw std::runtime_error(what + "not a PNG, JPEG, BMP, GIF, TGA or PNM image (" + stb + ")");
    throw std::runtime_error(what + "corrupt " + format_name(format) + " header (" + stb + ")");
  }
  if (width <= 0 || height <= 0 || width > kMaxImageSide || height > kMaxImageSide ||
      int64_t{width} * height > kMaxImagePixels) {
    throw std::runtime_error(what + "the file declares " + std::to_string(width) + "x" +
                             std::to_string(height) + " pixels; images up to " +
                             std::to_string(kMaxImagePixels >> 20) + " Mi pixels (" +
                             std::to_string(kMaxImageSide) + " a side) are read");
  }
  if (const std::string missing = incomplete(format, bytes); !missing.empty())
    throw std::runtime_error(what + missing);
  // stb_image 2.27 converts the channels of a 16-bit PNM as if its samples were bytes, and
  // then reads twice the buffer it made (a heap overrun; fuzz_image). Read as stored, or
  // refused.
  if (format == Format::Pnm && channels != 0 && channels != stored_channels &&
      read_pnm_header(bytes).max_value > 255)
    throw std::runtime_error(what + "a 16-bit PNM of " + std::to_string(stored_channels) +
                             " channel(s) cannot be read as " + std::to_string(channels) +
                             " (Debian's stb_image 2.27 overruns its buffer converting one); "
                             "save it with 8 bits or as PNG");

  unsigned char* pixels = stbi_load_from_memory(data, size, &width, &height, &stored_channels, channels);
  if (pixels == nullptr) {
    const char* reason = stbi_failure_reason();
    throw std::runtime_error(what + "truncated or corrupt " + format_name(format) + " (" +
                             (reason != nullptr ? reason : "unknown error") + ")");
  }
  Image8 image;
  image.width = width;
  image.height = height;
  image.channels = channels != 0 ? channels : stored_channels;
  const size_t count = static_cast<size_t>(width) * static_cast<size_t>(height) *
                       static_cast<size_t>(image.channels);
  image.pixels.assign(pixels, pixels + count);
  stbi_image_free(pixels);
  return image;
}

}  // namespace difflab

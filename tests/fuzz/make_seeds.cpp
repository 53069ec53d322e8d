// Writes the seed inputs of the fuzz targets (tests/fuzz/make_corpus.sh calls it):
//   make_seeds DIR            idx/, cifar10/ and image/ seeds under DIR, in the layouts the
//                             targets read (fuzz_idx.cpp, fuzz_cifar10.cpp, fuzz_image.cpp)
//   make_seeds unseal IN OUT  a copy of checkpoint IN without its CRC-32 zip comment
// Small on purpose: libFuzzer mutates from these, and the corpus is checked in.
#include <stb_image_write.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "make_seeds: cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "make_seeds: cannot read %s\n", path.c_str());
    std::exit(1);
  }
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void append_to(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), size);
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string gzip(const std::string& bytes) {
  z_stream z{};
  // 15 window bits + 16: a gzip header and trailer rather than zlib's.
  deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, bytes.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string zlib_compress(const std::string& bytes) {
  uLongf size = compressBound(bytes.size());
  std::string out(size, '\0');
  compress2(reinterpret_cast<Bytef*>(out.data()), &size,
            reinterpret_cast<const Bytef*>(bytes.data()), bytes.size(), Z_BEST_COMPRESSION);
  out.resize(size);
  return out;
}

// A grey picture with a diagonal ramp and a bright square, n_ch interleaved channels.
std::vector<uint8_t> picture(int w, int h, int n_ch) {
  std::vector<uint8_t> px(static_cast<size_t>(w) * h * n_ch);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < n_ch; ++c) {
        const bool square = x > w / 4 && x < 3 * w / 4 && y > h / 4 && y < 3 * h / 4;
        px[(static_cast<size_t>(y) * w + x) * n_ch + c] =
            static_cast<uint8_t>(square ? 230 - 40 * c : (x * 9 + y * 5 + c * 60) % 256);
      }
  return px;
}

// ---- IDX: <4-byte big-endian images length><images file><labels file> ----
std::string idx_images(uint32_t n, uint32_t rows, uint32_t cols) {
  std::string b = be32(0x00000803) + be32(n) + be32(rows) + be32(cols);
  for (uint32_t i = 0; i < n * rows * cols; ++i) b.push_back(static_cast<char>((i * 37) % 256));
  return b;
}

std::string idx_labels(uint32_t n) {
  std::string b = be32(0x00000801) + be32(n);
  for (uint32_t i = 0; i < n; ++i) b.push_back(static_cast<char>(i % 10));
  return b;
}

std::string idx_seed(const std::string& images, const std::string& labels) {
  return be32(static_cast<uint32_t>(images.size())) + images + labels;
}

void write_idx(const std::string& dir) {
  write_bytes(dir + "/mnist_3x28x28", idx_seed(idx_images(3, 28, 28), idx_labels(3)));
  write_bytes(dir + "/mnist_3x28x28_gz",
              idx_seed(gzip(idx_images(3, 28, 28)), gzip(idx_labels(3))));
  write_bytes(dir + "/small_5x4x3", idx_seed(idx_images(5, 4, 3), idx_labels(5)));
  write_bytes(dir + "/empty_set", idx_seed(idx_images(0, 28, 28), idx_labels(0)));
}

// ---- CIFAR-10: <4-byte big-endian batch length><data_batch_1.bin><batches.meta.txt> ----
std::string cifar_records(int n) {
  std::string b;
  const std::vector<uint8_t> rgb = picture(32, 32, 3);
  for (int r = 0; r < n; ++r) {
    b.push_back(static_cast<char>(r % 10));
    for (int c = 0; c < 3; ++c)  // planes: all red, then green, then blue
      for (int i = 0; i < 32 * 32; ++i) b.push_back(static_cast<char>(rgb[i * 3 + c] + r));
  }
  return b;
}

void write_cifar(const std::string& dir) {
  const std::string names =
      "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
  write_bytes(dir + "/two_records_meta", be32(2 * 3073) + cifar_records(2) + names);
  write_bytes(dir + "/one_record", be32(3073) + cifar_records(1));
}

// ---- Images: whole files, as they would lie in an image folder ----
std::string png_chunk(const std::string& type, const std::string& data) {
  const std::string body = type + data;
  const auto crc = static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size())));
  return be32(static_cast<uint32_t>(data.size())) + body + be32(crc);
}

// A PNG by hand, for what stb_image_write does not make: `depth` bits, colour `type`,
// Adam7 when `interlace`, `extra` chunks (PLTE, tRNS) before the data, and `rows`
// already filtered (a filter byte in front of each row).
std::string png_by_hand(uint32_t w, uint32_t h, int depth, int type, bool interlace,
                        const std::string& extra, const std::string& rows) {
  const std::string ihdr = be32(w) + be32(h) +
                           std::string{static_cast<char>(depth), static_cast<char>(type), 0, 0,
                                       static_cast<char>(interlace ? 1 : 0)};
  return std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) + extra +
         png_chunk("IDAT", zlib_compress(rows)) + png_chunk("IEND", "");
}

void write_images(const std::string& dir) {
  struct Written {
    const char* name;
    std::string bytes;
  };
  std::vector<Written> out;
  auto stb = [&](const char* name, int w, int h, int n_ch, const char* kind) {
    const std::vector<uint8_t> px = picture(w, h, n_ch);
    std::string b;
    const std::string k = kind;
    if (k == "png") stbi_write_png_to_func(append_to, &b, w, h, n_ch, px.data(), w * n_ch);
    if (k == "jpg") stbi_write_jpg_to_func(append_to, &b, w, h, n_ch, px.data(), 80);
    if (k == "bmp") stbi_write_bmp_to_func(append_to, &b, w, h, n_ch, px.data());
    if (k == "tga") stbi_write_tga_to_func(append_to, &b, w, h, n_ch, px.data());
    out.push_back({name, b});
  };
  stb("grey_8x8.png", 8, 8, 1, "png");
  stb("rgb_20x12.png", 20, 12, 3, "png");
  stb("rgba_5x9.png", 5, 9, 4, "png");
  stb("rgb_24x16.jpg", 24, 16, 3, "jpg");
  stb("grey_9x17.jpg", 9, 17, 1, "jpg");
  stb("rgb_7x5.bmp", 7, 5, 3, "bmp");
  stb("rgba_6x4.bmp", 6, 4, 4, "bmp");
  stbi_write_tga_with_rle = 1;
  stb("rgb_rle_6x6.tga", 6, 6, 3, "tga");
  stbi_write_tga_with_rle = 0;
  stb("grey_raw_3x4.tga", 3, 4, 1, "tga");

  // 16-bit grey + alpha, 3x2, filter types 0..2 on its rows.
  std::string rows16;
  for (int y = 0; y < 2; ++y) {
    rows16.push_back(static_cast<char>(y));
    for (int i = 0; i < 3 * 4; ++i) rows16.push_back(static_cast<char>(i * 20 + y));
  }
  out.push_back({"ga16_3x2.png", png_by_hand(3, 2, 16, 4, false, "", rows16)});
  // Palette, 2 bits, with transparency: 4x2.
  const std::string plte = png_chunk("PLTE", std::string("\x00\x00\x00\xff\x00\x00\x00\xff\x00"
                                                         "\x00\x00\xff", 12));
  const std::string trns = png_chunk("tRNS", std::string("\x00\x80", 2));
  out.push_back({"palette2_4x2.png",
                 png_by_hand(4, 2, 2, 3, false, plte + trns, std::string("\x00\x1b\x01\xe4", 4))});
  // Adam7 interlaced 1x1 RGB: only the first pass holds a pixel.
  out.push_back({"adam7_1x1.png", png_by_hand(1, 1, 8, 2, true, "", std::string("\x00\x10\x80\xf0", 4))});
  // Binary PNM (P6) and GIF-less formats stb sniffs by header.
  {
    std::string ppm = "P6\n4 3\n255\n";
    const std::vector<uint8_t> px = picture(4, 3, 3);
    ppm.append(px.begin(), px.end());
    out.push_back({"rgb_4x3.ppm", ppm});
  }
  {
    std::string hdr;
    const std::vector<float> px(4 * 2 * 3, 0.5f);
    stbi_write_hdr_to_func(append_to, &hdr, 4, 2, 3, px.data());
    out.push_back({"rgb_4x2.hdr", hdr});
  }
  // A GIF 2x2, by hand: one frame, a 4-colour table, LZW minimum code size 2.
  out.push_back({"rgb_2x2.gif",
                 std::string("GIF89a\x02\x00\x02\x00\x81\x00\x00"
                             "\x00\x00\x00\xff\xff\xff\xff\x00\x00\x00\x00\xff"
                             "\x2c\x00\x00\x00\x00\x02\x00\x02\x00\x00"
                             "\x02\x03\x44\x34\x05\x00\x3b", 42)});
  for (const auto& w : out) write_bytes(dir + "/" + w.name, w.bytes);
}

// A checkpoint without the "difflab-crc32:" zip comment: the end-of-central-directory
// record (signature 0x06054b50, 22 bytes) gets a comment length of 0 and the file ends there.
int unseal(const std::string& in, const std::string& out) {
  std::string b = read_bytes(in);
  const std::string signature("PK\x05\x06", 4);
  const size_t at = b.rfind(signature);
  if (at == std::string::npos || at + 22 > b.size()) {
    std::fprintf(stderr, "make_seeds: %s has no zip end-of-directory record\n", in.c_str());
    return 1;
  }
  b[at + 20] = 0;
  b[at + 21] = 0;
  b.resize(at + 22);
  write_bytes(out, b);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "unseal") return unseal(argv[2], argv[3]);
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds DIR | make_seeds unseal IN OUT\n");
    return 2;
  }
  const std::string dir = argv[1];
  for (const char* sub : {"idx", "cifar10", "image"})
    std::filesystem::create_directories(dir + "/" + sub);
  write_idx(dir + "/idx");
  write_cifar(dir + "/cifar10");
  write_images(dir + "/image");
  return 0;
}

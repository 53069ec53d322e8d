// Writes the bad-input corpus that cli_faults.sh feeds to difflab-cli: pictures whole,
// truncated and lying about their size, and a small class-sorted IDX split.
//   fault_corpus DIR
#include <stb_image_write.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/data/image_set.h"

namespace {

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void append_to(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), size);
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string png_chunk(const std::string& type, const std::string& data) {
  const std::string body = type + data;
  const auto crc = static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size())));
  return be32(static_cast<uint32_t>(data.size())) + body + be32(crc);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fault_corpus DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  std::filesystem::create_directories(dir + "/idx");

  // A 28x28 picture with a bright square: canny finds edges in it.
  const int w = 28;
  const int h = 28;
  std::vector<uint8_t> rgb(static_cast<size_t>(w) * h * 3, 20);
  for (int y = 8; y < 20; ++y)
    for (int x = 8; x < 20; ++x)
      for (int c = 0; c < 3; ++c) rgb[(static_cast<size_t>(y) * w + x) * 3 + c] = 230;
  std::string png, jpg, bmp;
  stbi_write_png_to_func(append_to, &png, w, h, 3, rgb.data(), w * 3);
  stbi_write_jpg_to_func(append_to, &jpg, w, h, 3, rgb.data(), 90);
  stbi_write_bmp_to_func(append_to, &bmp, w, h, 3, rgb.data());
  write_bytes(dir + "/ok.png", png);
  write_bytes(dir + "/ok.jpg", jpg);
  write_bytes(dir + "/ok.bmp", bmp);
  write_bytes(dir + "/cut.jpg", jpg.substr(0, jpg.size() / 2));
  write_bytes(dir + "/cut.bmp", bmp.substr(0, bmp.size() / 2));
  write_bytes(dir + "/cut.png", png.substr(0, png.size() / 2));
  write_bytes(dir + "/empty.png", "");
  write_bytes(dir + "/notes.png", "not a picture\n");
  // 20000x20000 declared in a file of a few hundred bytes.
  std::string ihdr = be32(20000) + be32(20000) + std::string{8, 0, 0, 0, 0};
  write_bytes(dir + "/huge.png", std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) +
                                     png_chunk("IDAT", std::string(300, '\0')) +
                                     png_chunk("IEND", ""));

  // A class-sorted 8x8 IDX split (as the packaged MNIST files are), 20 per class.
  difflab::ImageSet set;
  set.n = 200;
  set.height = 8;
  set.width = 8;
  for (int64_t i = 0; i < set.n; ++i) {
    set.labels.push_back(i / 20);
    for (int p = 0; p < 64; ++p) set.pixels.push_back(static_cast<uint8_t>((i * 13 + p * 7) % 256));
  }
  difflab::write_idx_images(dir + "/idx/train-images-idx3-ubyte", set);
  difflab::write_idx_labels(dir + "/idx/train-labels-idx1-ubyte", set.labels);
  difflab::write_idx_images(dir + "/idx/t10k-images-idx3-ubyte", set);
  difflab::write_idx_labels(dir + "/idx/t10k-labels-idx1-ubyte", set.labels);
  // The same split with its image file cut short.
  std::filesystem::create_directories(dir + "/idx_cut");
  std::ifstream in(dir + "/idx/train-images-idx3-ubyte", std::ios::binary);
  const std::string images((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  write_bytes(dir + "/idx_cut/train-images-idx3-ubyte", images.substr(0, images.size() - 100));
  for (const char* name : {"train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"})
    std::filesystem::copy_file(dir + "/idx/" + name, dir + "/idx_cut/" + name);
  return 0;
}

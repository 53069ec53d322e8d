// Hostile input and faults, in-process: every case asserts the exact message (naming the
// file and the problem) and that what was on disk before is byte for byte the same after.
// The command-line cases, kill -9 and a real full disk are in cli_faults.sh.
#include <gtest/gtest.h>
#include <stb_image_write.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>

#include "core/data/dataset.h"
#include "core/data/image_set.h"
#include "core/train/checkpoint.h"
#include "core/train/checkpoint_io.h"
#include "core/train/run_folder.h"
#include "core/train/trainer.h"
#include "core/train/training_run.h"
#include "core/util/paths.h"
#include "core/vision/png.h"

#ifndef DIFFLAB_TEST_TMP
#error "DIFFLAB_TEST_TMP must be defined by the build (a folder for temporary files)"
#endif

using namespace difflab;
namespace fs = std::filesystem;

namespace {

std::string temp_dir(const std::string& name) {
  const fs::path dir = fs::path(DIFFLAB_TEST_TMP) / ("faults_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// The message of what `f` throws ("" when it throws nothing).
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// Names of the files in `dir` that look like temporaries.
std::vector<std::string> temp_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp") != std::string::npos)
      out.push_back(e.path().filename().string());
  return out;
}

// Turns injected write failures off again whatever the test does.
struct WriteFaultGuard {
  ~WriteFaultGuard() { inject_write_failure_after(-1); }
};

// A PNG chunk: length, type, data, CRC of type + data.
std::string png_chunk(const std::string& type, const std::string& data) {
  auto be32 = [](uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                       static_cast<char>(v >> 8), static_cast<char>(v)};
  };
  const std::string body = type + data;
  const auto crc = static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size())));
  return be32(static_cast<uint32_t>(data.size())) + body + be32(crc);
}

// A valid-looking PNG header declaring width x height grey pixels, with a few bytes of
// image data: small on disk, huge once decoded.
std::string png_declaring(uint32_t width, uint32_t height) {
  std::string ihdr;
  for (uint32_t v : {width, height})
    for (int s = 24; s >= 0; s -= 8) ihdr += static_cast<char>(v >> s);
  ihdr += std::string{8, 0, 0, 0, 0};  // 8-bit grey, deflate, no filter, no interlace
  std::string idat(64, '\0');
  return std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) + png_chunk("IDAT", idat) +
         png_chunk("IEND", "");
}

void append_to(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), size);
}

std::string encoded(const char* format, int w, int h) {
  std::vector<uint8_t> pixels(static_cast<size_t>(w) * h * 3);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 7 % 251);
  std::string bytes;
  if (std::string(format) == "jpg")
    stbi_write_jpg_to_func(append_to, &bytes, w, h, 3, pixels.data(), 90);
  else
    stbi_write_bmp_to_func(append_to, &bytes, w, h, 3, pixels.data());
  return bytes;
}

Config toy_config() {
  Config c;
  c.data.kind = DatasetKind::Toy2d;
  c.data.toy = Toy2dKind::TwoMoons;
  c.data.toy_points = 256;
  c.model.kind = ModelKind::Mlp;
  c.model.mlp_hidden = 32;
  c.model.mlp_layers = 2;
  c.diffusion.timesteps = 50;
  c.train.batch_size = 16;
  c.train.steps = 6;
  c.train.log_every = 1;
  c.train.eval_every = 0;
  c.train.sample_every = 0;
  c.train.checkpoint_every = 0;
  c.train.autosave_minutes = 0;
  c.sample.steps = 4;
  return c;
}

std::unique_ptr<Trainer> make_trainer(const Config& c) {
  auto data = std::make_shared<DatasetSplits>(load_dataset(c.data));
  return std::make_unique<Trainer>(c, data, torch::kCPU);
}

}  // namespace

// ---- the one atomic-write helper ----

TEST(AtomicWrite, FullDiskKeepsThePreviousFileAndLeavesNoTemporary) {
  WriteFaultGuard guard;
  const std::string dir = temp_dir("full_disk");
  const std::string path = dir + "/grid.png";
  write_file_atomic(path, "the user's picture");
  inject_write_failure_after(10);
  EXPECT_EQ(error_of([&] { write_file_atomic(path, std::string(1000, 'x')); }),
            "cannot write '" + path + "': No space left on device");
  EXPECT_EQ(read_bytes(path), "the user's picture");
  EXPECT_TRUE(temp_files(dir).empty());
}

TEST(AtomicWrite, ErrorsNameTheFileAndTheReason) {
  const std::string dir = temp_dir("reasons");
  write_bytes(dir + "/file", "x");
  EXPECT_EQ(error_of([&] { write_file_atomic(dir, "x"); }),
            "cannot write '" + dir + "': it is a folder");
  const std::string under_file = dir + "/file/out.csv";
  EXPECT_EQ(error_of([&] { write_file_atomic(under_file, "x"); }),
            "cannot write '" + under_file + "': cannot create directory '" + dir +
                "/file': Not a directory");
  EXPECT_EQ(error_of([&] { check_can_write(under_file); }),
            "cannot write '" + under_file + "': cannot create directory '" + dir +
                "/file': Not a directory");
  EXPECT_EQ(read_bytes(dir + "/file"), "x");
}

TEST(AtomicWrite, StaleTemporariesOfDeadProcessesAreRemovedOthersKept) {
  const std::string dir = temp_dir("stale");
  const pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);  // `child` is now a pid no process has
  const std::string dead = std::to_string(child);
  const std::string alive = std::to_string(getppid());
  const std::string mine = std::to_string(getpid());
  for (const std::string& name :
       {"step_2.pt.tmp." + dead + ".0", "step_3.pt.tmp" + dead, "s.png.tmp." + dead + ".4.png",
        "step_4.pt.tmp." + alive + ".0", "step_5.pt.tmp." + mine + ".1", std::string("notes.tmp.txt"),
        std::string("step_6.pt")})
    write_bytes(dir + "/" + name, "x");
  EXPECT_EQ(remove_stale_temp_files(dir), 3);
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(dir)) left.push_back(e.path().filename().string());
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"notes.tmp.txt", "step_4.pt.tmp." + alive + ".0",
                                            "step_5.pt.tmp." + mine + ".1", "step_6.pt"}));
  EXPECT_EQ(remove_stale_temp_files(dir + "/missing"), 0);
}

// ---- images: declared sizes, truncation, wrong kinds of file ----

TEST(HostileImages, HugeDeclaredSizeIsRefusedBeforeDecoding) {
  const std::string dir = temp_dir("huge");
  const std::string path = dir + "/huge.png";
  write_bytes(path, png_declaring(20000, 20000));
  EXPECT_EQ(error_of([&] { read_image(path); }),
            "cannot read image '" + path +
                "': the file declares 20000x20000 pixels; images up to 64 Mi pixels (16384 a side) "
                "are read");
  write_bytes(path, png_declaring(1, 100000));
  EXPECT_NE(error_of([&] { read_image(path); }).find("declares 1x100000 pixels"), std::string::npos);
}

// A zlib bomb: a 28x28 grey PNG whose image data inflates to 64 MiB (stb would have
// inflated all of it, and up to 4 GiB). Refused after measuring the stream, keeping nothing.
TEST(HostileImages, PngZlibBombIsRefused) {
  const std::string dir = temp_dir("zlib_bomb");
  const std::string path = dir + "/bomb.png";
  const std::string zeros(64u << 20, '\0');
  uLongf packed_size = compressBound(static_cast<uLong>(zeros.size()));
  std::string packed(packed_size, '\0');
  ASSERT_EQ(compress2(reinterpret_cast<Bytef*>(packed.data()), &packed_size,
                      reinterpret_cast<const Bytef*>(zeros.data()), static_cast<uLong>(zeros.size()), 9),
            Z_OK);
  packed.resize(packed_size);
  std::string ihdr;
  for (uint32_t v : {28u, 28u})
    for (int s = 24; s >= 0; s -= 8) ihdr += static_cast<char>(v >> s);
  ihdr += std::string{8, 0, 0, 0, 0};
  write_bytes(path, std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) +
                        png_chunk("IDAT", packed) + png_chunk("IEND", ""));
  EXPECT_LT(std::filesystem::file_size(path), 200u << 10);
  EXPECT_EQ(error_of([&] { read_image(path); }),
            "cannot read image '" + path +
                "': corrupt PNG (its image data inflates to more than 5720 bytes, the most a "
                "28x28 image needs)");
  // The same picture with honest data still reads.
  const std::string rows(28 * 29, '\0');
  uLongf honest_size = compressBound(static_cast<uLong>(rows.size()));
  std::string honest(honest_size, '\0');
  ASSERT_EQ(compress2(reinterpret_cast<Bytef*>(honest.data()), &honest_size,
                      reinterpret_cast<const Bytef*>(rows.data()), static_cast<uLong>(rows.size()), 9),
            Z_OK);
  honest.resize(honest_size);
  write_bytes(path, std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) +
                        png_chunk("IDAT", honest) + png_chunk("IEND", ""));
  const Image8 image = read_image(path);
  EXPECT_EQ(image.width, 28);
  EXPECT_EQ(image.height, 28);
}

TEST(HostileImages, TruncatedJpegAndBmpAreErrorsNotGreyPictures) {
  const std::string dir = temp_dir("truncated");
  const std::string jpg = encoded("jpg", 64, 48);
  const std::string bmp = encoded("bmp", 30, 20);
  write_bytes(dir + "/whole.jpg", jpg);
  write_bytes(dir + "/whole.bmp", bmp);
  EXPECT_EQ(read_image(dir + "/whole.jpg").width, 64);
  EXPECT_EQ(read_image(dir + "/whole.bmp").height, 20);

  write_bytes(dir + "/cut.jpg", jpg.substr(0, jpg.size() * 2 / 3));
  EXPECT_EQ(error_of([&] { read_image(dir + "/cut.jpg"); }),
            "cannot read image '" + dir +
                "/cut.jpg': the file ends before the end-of-image marker (truncated JPEG)");
  write_bytes(dir + "/head.jpg", jpg.substr(0, 40));
  EXPECT_NE(error_of([&] { read_image(dir + "/head.jpg"); }).find("JPEG"), std::string::npos);
  write_bytes(dir + "/cut.bmp", bmp.substr(0, bmp.size() - 100));
  EXPECT_EQ(error_of([&] { read_image(dir + "/cut.bmp"); }),
            "cannot read image '" + dir + "/cut.bmp': the pixel data ends after " +
                std::to_string(bmp.size() - 100) + " of " + std::to_string(bmp.size()) +
                " bytes (truncated BMP)");
}

TEST(HostileImages, FoldersEmptyAndForeignFilesSayWhatTheyAre) {
  const std::string dir = temp_dir("kinds");
  EXPECT_EQ(error_of([&] { read_image(dir); }),
            "cannot read image '" + dir + "': it is a folder, not an image file");
  EXPECT_EQ(error_of([&] { read_image(dir + "/none.png"); }),
            "cannot read image '" + dir + "/none.png': no such file");
  write_bytes(dir + "/empty.png", "");
  EXPECT_EQ(error_of([&] { read_image(dir + "/empty.png"); }),
            "cannot read image '" + dir + "/empty.png': the file is empty");
  write_bytes(dir + "/notes.png", "these are my notes, not a picture\n");
  EXPECT_NE(error_of([&] { read_image(dir + "/notes.png"); })
                .find("': not a PNG, JPEG, BMP, GIF, TGA or PNM image"),
            std::string::npos);
}

// ---- images: what the fuzzer found (tests/fuzz, fuzz_image) ----

// A little-endian 16-bit field.
std::string le16(uint32_t v) { return {static_cast<char>(v & 0xFF), static_cast<char>(v >> 8)}; }

// An 18-byte TGA header: no id, no colour map, `type`, width x height, `bits` a pixel.
std::string tga_header(int type, uint32_t width, uint32_t height, int bits) {
  return std::string{0, 0, static_cast<char>(type)} + std::string(9, '\0') + le16(width) +
         le16(height) + std::string{static_cast<char>(bits), 0};
}

TEST(HostileImages, JpegHuffmanTablesOfMoreThan256CodesNeverReachStb) {
  // stb_image 2.27 writes such a table past its 257 entries (UBSan: index 257 out of
  // bounds in stbi__build_huffman), already in stbi_info.
  const std::string dir = temp_dir("huffman");
  const std::string jpg = encoded("jpg", 16, 16);
  std::string table = std::string(1, '\0') + std::string(15, static_cast<char>(18)) + '\x1e';
  table += std::string(300, '\0');  // 15 * 18 + 30 = 300 symbols
  const std::string dht = "\xFF\xC4" +
                          std::string{static_cast<char>((2 + table.size()) >> 8),
                                      static_cast<char>((2 + table.size()) & 0xFF)} +
                          table;
  write_bytes(dir + "/dht.jpg", jpg.substr(0, 2) + dht + jpg.substr(2));
  EXPECT_EQ(error_of([&] { read_image(dir + "/dht.jpg"); }),
            "cannot read image '" + dir +
                "/dht.jpg': corrupt JPEG: a Huffman table declares 300 codes (at most 256)");
  // stb takes anything after FF D8 for a JPEG, skips junk to the next marker, and takes
  // any number of 0xFF before D8 for fill bytes.
  for (const std::string& start : {std::string("\xFF\xD8junk"), std::string("\xFF\xFF\xFF\xD8")}) {
    write_bytes(dir + "/odd.jpg", start + dht + jpg.substr(2));
    EXPECT_NE(error_of([&] { read_image(dir + "/odd.jpg"); }).find("declares 300 codes"),
              std::string::npos);
  }
  write_bytes(dir + "/ok.jpg", jpg);
  EXPECT_EQ(read_image(dir + "/ok.jpg").width, 16);
}

TEST(HostileImages, TruncatedTgaPnmAndOddBmpAreErrorsNotBlackPictures) {
  const std::string dir = temp_dir("truncated_more");
  // 104 bytes declaring 6168x6168 grey pixels of 3 bytes: 114 MB of zeros, seconds to
  // decode and scale, before this check.
  write_bytes(dir + "/short.tga", tga_header(3, 6168, 6168, 24) + std::string(86, '\x18'));
  EXPECT_EQ(error_of([&] { read_image(dir + "/short.tga"); }),
            "cannot read image '" + dir + "/short.tga': the pixel data ends after 104 of " +
                std::to_string(18 + int64_t{6168} * 6168 * 3) + " bytes (truncated TGA)");
  write_bytes(dir + "/short_rle.tga", tga_header(10, 4000, 4000, 24) + std::string(100, '\0'));
  EXPECT_EQ(error_of([&] { read_image(dir + "/short_rle.tga"); }),
            "cannot read image '" + dir +
                "/short_rle.tga': the file has 118 bytes, too few for 16000000 run-length coded "
                "pixels (truncated TGA)");
  write_bytes(dir + "/whole.tga", tga_header(3, 4, 2, 8) + std::string(8, '\x40'));
  EXPECT_EQ(read_image(dir + "/whole.tga").width, 4);

  // stb leaves a short PNM's pixels uninitialised.
  write_bytes(dir + "/short.pgm", "P5\n# grey\n4 4\n255\n" + std::string(10, '\x7f'));
  EXPECT_EQ(error_of([&] { read_image(dir + "/short.pgm"); }),
            "cannot read image '" + dir +
                "/short.pgm': the pixel data ends after 28 of 34 bytes "
                "(truncated PNM)");
  write_bytes(dir + "/whole.pgm", "P5\n# grey\n4 4\n255\n" + std::string(16, '\x7f'));
  EXPECT_EQ(read_image(dir + "/whole.pgm").pixels[15], 0x7f);
  write_bytes(dir + "/wide.ppm", "P6 99999999999 1 255\n");
  EXPECT_EQ(error_of([&] { read_image(dir + "/wide.ppm"); }),
            "cannot read image '" + dir +
                "/wide.ppm': corrupt PNM header (its width is over "
                "16777216)");

  // A 16-bit PNM read with other channels than stored: stb 2.27 overran its buffer (ASan:
  // heap-buffer-overflow in stbi__convert_16_to_8).
  write_bytes(dir + "/deep.ppm", "P6\n2 1\n65535\n" + std::string(12, '\x80'));
  EXPECT_EQ(read_image(dir + "/deep.ppm", 3).pixels.size(), 6u);
  EXPECT_EQ(read_image(dir + "/deep.ppm").channels, 3);
  EXPECT_EQ(error_of([&] { read_image(dir + "/deep.ppm", 1); }),
            "cannot read image '" + dir +
                "/deep.ppm': a 16-bit PNM of 3 channel(s) cannot be read as 1 (Debian's stb_image "
                "2.27 overruns its buffer converting one); save it with 8 bits or as PNG");

  // A BMP whose compression field is negative: stb reads it as plain pixels.
  std::string bmp = encoded("bmp", 30, 20);
  bmp[33] = '\xB7';
  write_bytes(dir + "/odd.bmp", bmp.substr(0, bmp.size() - 100));
  EXPECT_NE(error_of([&] { read_image(dir + "/odd.bmp"); }).find("(truncated BMP)"),
            std::string::npos);
}

TEST(HostileImages, PngChunksMustLieInTheFile) {
  // stb 2.27 grew its IDAT buffer to the declared length before reading: a 2 GB chunk in a
  // tiny file was a 2 GiB allocation (libFuzzer: malloc(2147483648)).
  const std::string dir = temp_dir("chunks");
  const std::string whole = png_declaring(8, 8);
  const std::string ihdr = whole.substr(0, 33);  // signature and IHDR chunk
  write_bytes(dir + "/big.png",
              ihdr + std::string("\x7f\xff\xff\x00IDAT", 8) + std::string(20, 'x'));
  EXPECT_EQ(error_of([&] { read_image(dir + "/big.png"); }),
            "cannot read image '" + dir +
                "/big.png': truncated or corrupt PNG (its IDAT chunk at "
                "byte 33 declares 2147483392 bytes, the file has 16 left)");
}

TEST(HostileImages, FormatsReadImageDoesNotOfferAreRefused) {
  const std::string dir = temp_dir("unoffered");
  std::string hdr;
  const std::vector<float> px(4 * 2 * 3, 0.5f);
  stbi_write_hdr_to_func(append_to, &hdr, 4, 2, 3, px.data());
  write_bytes(dir + "/light.png", hdr);
  EXPECT_EQ(error_of([&] { read_image(dir + "/light.png"); }),
            "cannot read image '" + dir +
                "/light.png': a Radiance HDR file; only PNG, JPEG, BMP, GIF, TGA and PNM images "
                "are read");
  write_bytes(dir + "/layers.png", "8BPS" + std::string(40, '\0'));
  EXPECT_NE(error_of([&] { read_image(dir + "/layers.png"); }).find("a Photoshop (PSD) file"),
            std::string::npos);
}

// ---- checkpoints: the checksum ----

TEST(HostileCheckpoints, ACorruptedByteIsFoundAndTheFileLeftAsItWas) {
  const std::string dir = temp_dir("checksum");
  const std::string path = dir + "/step_6.pt";
  auto trainer = make_trainer(toy_config());
  for (int i = 0; i < 3; ++i) trainer->train_step();
  trainer->save_checkpoint(path);
  EXPECT_NO_THROW(load_checkpoint_model(path, true, torch::kCPU));

  std::string bytes = read_bytes(path);
  // Flip bytes in the middle (tensor data: LibTorch itself never notices).
  for (size_t i = bytes.size() / 2; i < bytes.size() / 2 + 64; ++i) bytes[i] = static_cast<char>(~bytes[i]);
  write_bytes(path, bytes);
  const std::string message = error_of([&] { load_checkpoint_model(path, true, torch::kCPU); });
  EXPECT_EQ(message.rfind("model checkpoint " + path + ": corrupt: its checksum is ", 0), 0u) << message;
  EXPECT_NE(message.find("(the file changed after it was written; use an earlier checkpoint)"),
            std::string::npos);
  EXPECT_EQ(read_bytes(path), bytes);
  auto resumed = make_trainer(toy_config());
  EXPECT_EQ(error_of([&] { resumed->load_checkpoint(path); }), message);
}

TEST(HostileCheckpoints, TheChecksumIsAZipCommentOtherReadersSkip) {
  const std::string dir = temp_dir("comment");
  const std::string path = dir + "/c.pt";
  auto trainer = make_trainer(toy_config());
  trainer->save_checkpoint(path);
  const std::string bytes = read_bytes(path);
  const std::string comment_tag = "difflab-crc32:";
  const size_t at = bytes.rfind(comment_tag);
  ASSERT_NE(at, std::string::npos);
  EXPECT_EQ(bytes.size() - at, comment_tag.size() + 8);
  // The zip's end record says how long the comment is (its last two bytes before it).
  EXPECT_EQ(static_cast<uint8_t>(bytes[at - 2]), comment_tag.size() + 8);
  // A checkpoint from before checksums (no comment) still loads.
  std::string old = bytes.substr(0, at);
  old[at - 2] = 0;
  write_bytes(path, old);
  EXPECT_NO_THROW(load_checkpoint_model(path, true, torch::kCPU));
  // A wrong checksum in the comment is reported too.
  std::string wrong = bytes;
  wrong[wrong.size() - 1] = wrong.back() == '0' ? '1' : '0';
  write_bytes(path, wrong);
  EXPECT_NE(error_of([&] { load_checkpoint_model(path, true, torch::kCPU); }).find("corrupt"),
            std::string::npos);
}

// A checkpoint as written before checksums: the seal comment cut off.
std::string without_seal(std::string bytes) {
  const size_t comment = bytes.rfind("difflab-crc32:");
  if (comment == std::string::npos) return bytes;
  bytes.resize(comment);
  bytes[comment - 2] = 0;  // the end record's comment length
  bytes[comment - 1] = 0;
  return bytes;
}

// Rewrites the CRC-32 of every zip member to match its bytes, as a crafted file would.
void match_crcs(std::string& bytes) {
  for (const ZipMember& m : zip_members(bytes, "")) {
    const auto crc = static_cast<uint32_t>(
        crc32(0L, reinterpret_cast<const Bytef*>(bytes.data() + m.data_offset),
              static_cast<uInt>(m.size)));
    for (uint64_t at : {m.central_crc_at, m.local_crc_at})
      for (int i = 0; i < 4; ++i) bytes[at + i] = static_cast<char>(crc >> (8 * i));
  }
}

TEST(HostileCheckpoints, WithoutASealEachZipMemberIsCheckedAgainstItsCrc) {
  // Found by fuzz_checkpoint: in a checkpoint from before checksums one changed byte
  // reached LibTorch's TorchScript reader, which crashed (SEGV in parseClassConstant), or
  // a changed size made LibTorch allocate 47 GB.
  const std::string dir = temp_dir("members");
  const std::string path = dir + "/old.pt";
  auto trainer = make_trainer(toy_config());
  trainer->save_checkpoint(path);
  const std::string old = without_seal(read_bytes(path));
  write_bytes(path, old);
  EXPECT_NO_THROW(load_checkpoint_model(path, true, torch::kCPU));

  std::string flipped = old;
  const size_t code = flipped.find("class Module(Module):");
  ASSERT_NE(code, std::string::npos);
  flipped[code + 20] = '!';
  write_bytes(path, flipped);
  const std::string message = error_of([&] { load_checkpoint_model(path, true, torch::kCPU); });
  EXPECT_EQ(message.rfind("model checkpoint " + path + ": corrupt: zip member '", 0), 0u)
      << message;
  EXPECT_NE(message.find(".py' fails its CRC-32 check (the file changed after it was written; "
                         "use an earlier checkpoint)"),
            std::string::npos)
      << message;

  // The zip64 end record (LibTorch always writes one) sending the directory off the file.
  std::string moved = old;
  const size_t record = moved.rfind(std::string("PK\x06\x06", 4));
  ASSERT_NE(record, std::string::npos);
  moved[record + 48 + 5] = '\x7f';
  write_bytes(path, moved);
  EXPECT_EQ(error_of([&] { load_checkpoint_model(path, true, torch::kCPU); }),
            "model checkpoint " + path +
                ": corrupt: its zip directory lies outside the file (the "
                "file changed after it was written; use an earlier checkpoint)");
}

TEST(HostileCheckpoints, ErrorsOfLibTorchsScriptParserNameTheFile) {
  // Found by fuzz_checkpoint: LibTorch compiles the TorchScript stored in the archive
  // (code/), and its parser throws errors that are not c10::Errors; they came out of
  // open_checkpoint bare ("expected a valid token ..."), without the file's name. Here the
  // changed member's CRC is made to match, as a deliberately crafted file would.
  const std::string dir = temp_dir("script");
  const std::string path = dir + "/c.pt";
  auto trainer = make_trainer(toy_config());
  trainer->save_checkpoint(path);
  std::string bytes = without_seal(read_bytes(path));
  const size_t code = bytes.find("class Module(Module):");
  ASSERT_NE(code, std::string::npos);
  bytes[code + 20] = '!';
  match_crcs(bytes);
  write_bytes(path, bytes);
  const std::string message = error_of([&] { load_checkpoint_model(path, true, torch::kCPU); });
  EXPECT_EQ(message.rfind("model checkpoint " + path +
                              ": cannot be read (truncated or not a model checkpoint): ",
                          0),
            0u)
      << message;
}

TEST(HostileCheckpoints, ADamagedShapeIsRefusedBeforeANetworkIsBuiltToIt) {
  // Found by fuzz_checkpoint: the shape entry's channel count was taken as it stood, and a
  // damaged one asked make_model for a convolution of that many input channels.
  const std::string dir = temp_dir("shape");
  const std::string path = dir + "/c.pt";
  auto trainer = make_trainer(toy_config());
  trainer->save_checkpoint(path);
  std::string bytes = without_seal(read_bytes(path));
  bool found = false;
  for (const ZipMember& m : zip_members(bytes, path)) {
    int64_t shape[5];
    if (m.size != sizeof shape) continue;
    std::memcpy(shape, bytes.data() + m.data_offset, sizeof shape);
    if (shape[0] != 2 || shape[1] != 0 || shape[2] != 0 || shape[3] != 1) continue;  // points
    shape[0] = 1000000000;
    std::memcpy(bytes.data() + m.data_offset, shape, sizeof shape);
    found = true;
  }
  ASSERT_TRUE(found);
  match_crcs(bytes);
  write_bytes(path, bytes);
  const std::string message = error_of([&] { load_checkpoint_model(path, true, torch::kCPU); });
  EXPECT_EQ(message.rfind("checkpoint " + path + ": bad 'shape' entry [1000000000, 0, 0, 1, ", 0),
            0u)
      << message;
}

TEST(HostileCheckpoints, AFullDiskDuringACheckpointKeepsTheRunResumable) {
  WriteFaultGuard guard;
  const std::string dir = temp_dir("run_full_disk");
  const Config c = toy_config();
  RunOptions options;
  options.dir = dir;
  TrainingRun run(make_trainer(c), options);
  for (int i = 0; i < 2; ++i) run.step();
  const std::string first = run.checkpoint();
  const std::string first_bytes = read_bytes(first);
  run.step();
  inject_write_failure_after(1000);
  const std::string message = error_of([&] { run.checkpoint(); });
  EXPECT_EQ(message, "checkpoint: cannot write '" + dir +
                         "/checkpoints/step_00000003.pt': No space left on device");
  inject_write_failure_after(-1);
  EXPECT_EQ(latest_checkpoint(dir), first);
  EXPECT_EQ(read_bytes(first), first_bytes);
  EXPECT_TRUE(temp_files(dir + "/checkpoints").empty());
  // metrics.csv already holds the steps (written as they happen).
  std::ifstream metrics(dir + "/metrics.csv");
  int rows = 0;
  for (std::string line; std::getline(metrics, line);) ++rows;
  EXPECT_EQ(rows, 1 + 3);
}

// ---- data: a subset of a class-sorted split has every class ----

TEST(HostileData, MaxTrainOnAClassSortedSplitKeepsEveryClass) {
  const std::string dir = temp_dir("sorted");
  ImageSet set;
  set.n = 100;
  set.height = 4;
  set.width = 4;
  for (int64_t i = 0; i < set.n; ++i) {
    set.labels.push_back(i / 10);  // 0,0,...,1,1,...: sorted as the packaged splits are
    for (int p = 0; p < 16; ++p) set.pixels.push_back(static_cast<uint8_t>(i));
  }
  write_idx_images(dir + "/train-images-idx3-ubyte", set);
  write_idx_labels(dir + "/train-labels-idx1-ubyte", set.labels);
  write_idx_images(dir + "/t10k-images-idx3-ubyte", set);
  write_idx_labels(dir + "/t10k-labels-idx1-ubyte", set.labels);
  DataConfig c;
  c.kind = DatasetKind::Idx;
  c.path = dir;
  c.image_size = 4;
  c.max_train = 25;
  const DatasetSplits data = load_dataset(c);
  ASSERT_EQ(data.train.size(), 25);
  const auto counts = torch::bincount(data.train.labels, {}, 10);
  for (int k = 0; k < 10; ++k) EXPECT_GE(counts[k].item<int64_t>(), 2) << "class " << k;
  EXPECT_EQ(counts.sum().item<int64_t>(), 25);
}

// Dataset readers on small files each test writes into its own temporary folder.
#include <gtest/gtest.h>
#include <stb_image_write.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <set>
#include <string>
#include <vector>

#include "core/data/image_set.h"

#ifndef DIFFLAB_TEST_TMP
#error "DIFFLAB_TEST_TMP must be defined by the build (a folder for temporary files)"
#endif

namespace difflab {
namespace {

namespace fs = std::filesystem;

constexpr double kPi = 3.14159265358979323846;

class DataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    m_dir = fs::path(DIFFLAB_TEST_TMP) / "test_data" /
            (std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(m_dir);
    fs::create_directories(m_dir);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(m_dir, ec);
  }

  std::string path(const std::string& name) const { return (m_dir / name).string(); }

  fs::path m_dir;
};

// The DataError message `f` throws; fails the test if it throws nothing or another type.
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const DataError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected DataError, got another exception: " << e.what();
    return {};
  }
  ADD_FAILURE() << "expected a DataError, nothing was thrown";
  return {};
}

void expect_mentions(const std::string& message, std::initializer_list<std::string> words) {
  for (const auto& w : words) {
    EXPECT_NE(message.find(w), std::string::npos) << "'" << w << "' not in: " << message;
  }
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

// n grey h x w images with distinct pixels, labels i % 10.
ImageSet make_grey_set(int64_t n, int h, int w) {
  ImageSet set;
  set.n = n;
  set.height = h;
  set.width = w;
  for (int64_t i = 0; i < n; ++i) {
    for (int p = 0; p < h * w; ++p) set.pixels.push_back(static_cast<uint8_t>((i * 31 + p) % 256));
    set.labels.push_back(i % 10);
  }
  return set;
}

// ---- IDX ----

TEST_F(DataTest, IdxRoundTripPlain) {
  const ImageSet set = make_grey_set(7, 5, 4);
  write_idx_images(path("train-images-idx3-ubyte"), set);
  write_idx_labels(path("train-labels-idx1-ubyte"), set.labels);
  EXPECT_EQ(read_bytes(path("train-images-idx3-ubyte")).size(), 16u + 7 * 5 * 4);

  const ImageSet back = read_idx(path("train-images-idx3-ubyte"), path("train-labels-idx1-ubyte"));
  EXPECT_EQ(back.n, 7);
  EXPECT_EQ(back.channels, 1);
  EXPECT_EQ(back.height, 5);
  EXPECT_EQ(back.width, 4);
  EXPECT_EQ(back.pixels, set.pixels);
  EXPECT_EQ(back.labels, set.labels);
  ASSERT_EQ(back.class_names.size(), 10u);
  EXPECT_EQ(back.class_names[0], "0");
  EXPECT_EQ(back.class_names[9], "9");

  const ImageSet folder = read_idx_folder(m_dir.string(), true);
  EXPECT_EQ(folder.pixels, set.pixels);
}

TEST_F(DataTest, IdxRoundTripGzAndDottedNames) {
  const ImageSet set = make_grey_set(12, 3, 6);
  write_idx_images(path("plain-images"), set);
  write_idx_labels(path("plain-labels"), set.labels);
  write_gz(path("t10k-images.idx3-ubyte.gz"), read_bytes(path("plain-images")));
  write_gz(path("t10k-labels.idx1-ubyte.gz"), read_bytes(path("plain-labels")));

  const ImageSet back = read_idx_folder(m_dir.string(), false);
  EXPECT_EQ(back.n, 12);
  EXPECT_EQ(back.height, 3);
  EXPECT_EQ(back.width, 6);
  EXPECT_EQ(back.pixels, set.pixels);
  EXPECT_EQ(back.labels, set.labels);
}

TEST_F(DataTest, IdxWrongMagic) {
  const ImageSet set = make_grey_set(2, 2, 2);
  write_idx_labels(path("labels"), set.labels);
  // A labels file where images are expected.
  const std::string msg = error_of([&] { read_idx(path("labels"), path("labels")); });
  expect_mentions(msg, {path("labels"), "magic", "0x00000801", "0x00000803"});
}

TEST_F(DataTest, IdxTruncatedImages) {
  const ImageSet set = make_grey_set(4, 3, 3);
  write_idx_images(path("images"), set);
  write_idx_labels(path("labels"), set.labels);
  std::string bytes = read_bytes(path("images"));
  bytes.resize(bytes.size() - 5);
  write_bytes(path("images"), bytes);
  const std::string msg = error_of([&] { read_idx(path("images"), path("labels")); });
  expect_mentions(msg, {path("images"), "truncated", "expected 52 bytes", "got 47"});
}

TEST_F(DataTest, IdxTruncatedLabels) {
  const ImageSet set = make_grey_set(4, 3, 3);
  write_idx_images(path("images"), set);
  write_idx_labels(path("labels"), set.labels);
  std::string bytes = read_bytes(path("labels"));
  bytes.resize(bytes.size() - 1);
  write_bytes(path("labels"), bytes);
  const std::string msg = error_of([&] { read_idx(path("images"), path("labels")); });
  expect_mentions(msg, {path("labels"), "truncated", "expected 12 bytes", "got 11"});
}

TEST_F(DataTest, IdxTruncatedGzHeader) {
  write_gz(path("images.gz"), std::string("\x00\x00\x08\x03\x00", 5));
  const std::string msg = error_of([&] { read_idx(path("images.gz"), path("images.gz")); });
  expect_mentions(msg, {path("images.gz"), "truncated"});
}

// A gzip bomb: the header promises one 28x28 image, then 256 MiB of zeros follow (about
// 256 KB compressed). Reading stops one byte past the promised 800 bytes.
TEST_F(DataTest, IdxGzipBombStopsAtTheDeclaredSize) {
  std::string head("\x00\x00\x08\x03", 4);
  for (uint32_t v : {1u, 28u, 28u})
    for (int shift : {24, 16, 8, 0}) head.push_back(static_cast<char>((v >> shift) & 0xFF));
  gzFile f = gzopen(path("bomb.gz").c_str(), "wb9");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, head.data(), static_cast<unsigned>(head.size())), static_cast<int>(head.size()));
  const std::string zeros(1 << 20, '\0');
  for (int i = 0; i < 256; ++i)
    ASSERT_EQ(gzwrite(f, zeros.data(), static_cast<unsigned>(zeros.size())), 1 << 20);
  ASSERT_EQ(gzclose(f), Z_OK);
  EXPECT_LT(std::filesystem::file_size(path("bomb.gz")), 1u << 20);
  const std::string msg = error_of([&] { read_idx(path("bomb.gz"), path("bomb.gz")); });
  expect_mentions(msg, {path("bomb.gz"), "trailing data", "expected 800 bytes"});
}

// A header that declares more than the app loads is refused before any reading.
TEST_F(DataTest, IdxDeclaredSizeLimit) {
  std::string head("\x00\x00\x08\x03", 4);
  for (uint32_t v : {4000000000u, 16384u, 16384u})
    for (int shift : {24, 16, 8, 0}) head.push_back(static_cast<char>((v >> shift) & 0xFF));
  write_gz(path("huge.gz"), head);
  const std::string msg = error_of([&] { read_idx(path("huge.gz"), path("huge.gz")); });
  expect_mentions(msg, {path("huge.gz"), "declares", "more than the 2048 MiB"});
}

TEST_F(DataTest, IdxCountMismatch) {
  const ImageSet set = make_grey_set(5, 2, 2);
  write_idx_images(path("images"), set);
  write_idx_labels(path("labels"), std::vector<int64_t>{1, 2, 3});
  const std::string msg = error_of([&] { read_idx(path("images"), path("labels")); });
  expect_mentions(msg, {path("images"), path("labels"), "mismatch", "3 labels", "5 images"});
}

TEST_F(DataTest, IdxLabelOutOfRange) {
  const ImageSet set = make_grey_set(3, 2, 2);
  write_idx_images(path("images"), set);
  write_idx_labels(path("labels"), std::vector<int64_t>{1, 12, 3});
  const std::string msg = error_of([&] { read_idx(path("images"), path("labels")); });
  expect_mentions(msg, {path("labels"), "out of range", "12", "index 1"});
}

TEST_F(DataTest, IdxMissingFile) {
  const std::string msg = error_of([&] { read_idx(path("nope-images"), path("nope-labels")); });
  expect_mentions(msg, {path("nope-images"), "not found"});
}

TEST_F(DataTest, IdxFolderListsWhatItLookedFor) {
  const std::string msg = error_of([&] { read_idx_folder(m_dir.string(), true); });
  expect_mentions(msg, {m_dir.string(), "looked for", "train-images-idx3-ubyte",
                        "train-images.idx3-ubyte.gz"});
  const std::string missing = error_of([&] { read_idx_folder(path("absent"), true); });
  expect_mentions(missing, {path("absent"), "not found"});
}

TEST_F(DataTest, IdxWriteRejectsColour) {
  ImageSet set = make_grey_set(1, 2, 2);
  set.channels = 3;
  set.pixels.resize(12);
  const std::string msg = error_of([&] { write_idx_images(path("x"), set); });
  expect_mentions(msg, {path("x"), "1 channel"});
}

// ---- CIFAR-10 ----

// `count` records; record r has label (r + first) % 10 and pixels (r * 7 + p) % 256.
std::string cifar_records(int count, int first) {
  std::string bytes;
  for (int r = 0; r < count; ++r) {
    bytes.push_back(static_cast<char>((r + first) % 10));
    for (int p = 0; p < 3072; ++p) bytes.push_back(static_cast<char>((r * 7 + p) % 256));
  }
  return bytes;
}

TEST_F(DataTest, CifarBatchesAndFolder) {
  write_bytes(path("data_batch_1.bin"), cifar_records(3, 0));
  write_bytes(path("data_batch_2.bin"), cifar_records(2, 5));
  write_bytes(path("test_batch.bin"), cifar_records(4, 1));

  const ImageSet two =
      read_cifar10_batches({path("data_batch_1.bin"), path("data_batch_2.bin")});
  EXPECT_EQ(two.n, 5);
  EXPECT_EQ(two.channels, 3);
  EXPECT_EQ(two.height, 32);
  EXPECT_EQ(two.width, 32);
  ASSERT_EQ(two.pixels.size(), 5u * 3072);
  EXPECT_EQ(two.labels, (std::vector<int64_t>{0, 1, 2, 5, 6}));
  // Record 1 of batch 1: the green plane starts at byte 1024 of the record's pixels.
  EXPECT_EQ(two.pixels[3072 + 1024], static_cast<uint8_t>((7 + 1024) % 256));
  EXPECT_EQ(two.class_names.front(), "airplane");
  EXPECT_EQ(two.class_names.back(), "truck");

  const ImageSet train = read_cifar10_folder(m_dir.string(), true);
  EXPECT_EQ(train.n, 5);
  const ImageSet test = read_cifar10_folder(m_dir.string(), false);
  EXPECT_EQ(test.n, 4);
  EXPECT_EQ(test.labels.front(), 1);
}

TEST_F(DataTest, CifarParentFolderAndMeta) {
  const std::string sub = path("cifar-10-batches-bin");
  write_bytes(sub + "/data_batch_3.bin", cifar_records(2, 0));
  write_bytes(sub + "/batches.meta.txt", "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\r\n\n");
  const ImageSet train = read_cifar10_folder(m_dir.string(), true);
  EXPECT_EQ(train.n, 2);
  ASSERT_EQ(train.class_names.size(), 10u);
  EXPECT_EQ(train.class_names[0], "a");
  EXPECT_EQ(train.class_names[9], "j");

  const std::string msg = error_of([&] { read_cifar10_folder(m_dir.string(), false); });
  expect_mentions(msg, {m_dir.string(), "looked for", "test_batch.bin"});
}

TEST_F(DataTest, CifarBadSize) {
  std::string bytes = cifar_records(2, 0);
  bytes.resize(bytes.size() + 5);
  write_bytes(path("data_batch_1.bin"), bytes);
  const std::string msg = error_of([&] { read_cifar10_batches({path("data_batch_1.bin")}); });
  expect_mentions(msg, {path("data_batch_1.bin"), "size", "6151", "multiple", "3073"});
}

TEST_F(DataTest, CifarBadLabel) {
  std::string bytes = cifar_records(2, 0);
  bytes[3073] = 10;
  write_bytes(path("b.bin"), bytes);
  const std::string msg = error_of([&] { read_cifar10_batches({path("b.bin")}); });
  expect_mentions(msg, {path("b.bin"), "record 1", "out of range"});
}

// ---- Image folder ----

// A w x h RGB PNG filled with `rgb`.
void write_solid_png(const std::string& path, int w, int h, uint8_t r, uint8_t g, uint8_t b) {
  fs::create_directories(fs::path(path).parent_path());
  std::vector<uint8_t> px;
  for (int i = 0; i < w * h; ++i) px.insert(px.end(), {r, g, b});
  ASSERT_NE(stbi_write_png(path.c_str(), w, h, 3, px.data(), w * 3), 0) << path;
}

TEST_F(DataTest, ImageFolderTwoClasses) {
  // Created out of order; classes must come back sorted.
  write_solid_png(path("imgs/zebra/b.png"), 40, 20, 200, 10, 10);
  write_solid_png(path("imgs/zebra/a.PNG"), 20, 50, 200, 10, 10);
  write_solid_png(path("imgs/ant/x.png"), 16, 16, 10, 20, 250);
  write_bytes(path("imgs/ant/notes.txt"), "not an image");
  fs::create_directories(path("imgs/empty_class"));

  const ImageSet set = read_image_folder(path("imgs"), 16, 3);
  EXPECT_EQ(set.n, 3);
  EXPECT_EQ(set.channels, 3);
  EXPECT_EQ(set.height, 16);
  EXPECT_EQ(set.width, 16);
  ASSERT_EQ(set.pixels.size(), 3u * 3 * 16 * 16);
  EXPECT_EQ(set.class_names, (std::vector<std::string>{"ant", "zebra"}));
  EXPECT_EQ(set.labels, (std::vector<int64_t>{0, 1, 1}));
  // Planar CHW: each image's red plane, then green, then blue; solid colours survive
  // resizing (to within rounding).
  const size_t plane = 16 * 16;
  for (size_t p = 0; p < plane; ++p) {
    EXPECT_NEAR(set.pixels[p], 10, 1);
    EXPECT_NEAR(set.pixels[2 * plane + p], 250, 1);
    EXPECT_NEAR(set.pixels[3 * plane + p], 200, 1);
    EXPECT_NEAR(set.pixels[3 * plane + plane + p], 10, 1);
  }

  const ImageSet grey = read_image_folder(path("imgs"), 8, 1);
  EXPECT_EQ(grey.channels, 1);
  EXPECT_EQ(grey.pixels.size(), 3u * 8 * 8);
}

TEST_F(DataTest, ImageFolderCentreCrop) {
  // 30 x 10, short side already 10: no resize, the crop keeps columns 10..19.
  std::vector<uint8_t> px(30 * 10, 0);
  for (int y = 0; y < 10; ++y) {
    for (int x = 10; x < 20; ++x) px[size_t(y) * 30 + x] = 255;
  }
  fs::create_directories(path("flat"));
  ASSERT_NE(stbi_write_png(path("flat/wide.png").c_str(), 30, 10, 1, px.data(), 30), 0);

  const ImageSet set = read_image_folder(path("flat"), 10, 1);
  ASSERT_EQ(set.n, 1);
  // No sub-folders: one class named after the folder.
  EXPECT_EQ(set.class_names, (std::vector<std::string>{"flat"}));
  for (uint8_t v : set.pixels) ASSERT_EQ(v, 255);
}

TEST_F(DataTest, ImageFolderEmptyMissingNotAFolder) {
  fs::create_directories(path("nothing/sub"));
  write_bytes(path("nothing/readme.md"), "hi");
  expect_mentions(error_of([&] { read_image_folder(path("nothing"), 8, 1); }),
                  {path("nothing"), "empty", ".png", ".jpg"});
  expect_mentions(error_of([&] { read_image_folder(path("absent"), 8, 1); }),
                  {path("absent"), "not found"});
  expect_mentions(error_of([&] { read_image_folder(path("nothing/readme.md"), 8, 1); }),
                  {path("nothing/readme.md"), "not a folder"});
  expect_mentions(error_of([&] { read_image_folder(path("nothing"), 8, 2); }),
                  {path("nothing"), "channels"});
}

TEST_F(DataTest, ImageFolderCorruptImage) {
  write_solid_png(path("set/good/a.png"), 8, 8, 1, 2, 3);
  std::string junk;
  for (int i = 0; i < 200; ++i) junk.push_back(static_cast<char>((i * 73 + 11) % 256));
  write_bytes(path("set/good/b.png"), junk);
  const std::string msg = error_of([&] { read_image_folder(path("set"), 8, 3); });
  expect_mentions(msg, {path("set/good/b.png"), "cannot read image"});
}

// ---- Toy 2-D sets ----

TEST_F(DataTest, Toy2dDeterministicAndInRange) {
  for (int k = 0; k < static_cast<int>(Toy2dKind::Count); ++k) {
    const auto kind = static_cast<Toy2dKind>(k);
    const PointSet a = make_toy2d(kind, 2000, 0.0, 42);
    const PointSet b = make_toy2d(kind, 2000, 0.0, 42);
    const PointSet c = make_toy2d(kind, 2000, 0.0, 43);
    ASSERT_EQ(a.n, 2000);
    ASSERT_EQ(a.xy.size(), 4000u);
    ASSERT_EQ(a.labels.size(), 2000u);
    EXPECT_EQ(a.xy, b.xy) << to_string(kind);
    EXPECT_EQ(a.labels, b.labels);
    EXPECT_NE(a.xy, c.xy) << to_string(kind);
    float lo = 0.0f;
    float hi = 0.0f;
    for (float v : a.xy) {
      ASSERT_TRUE(std::isfinite(v));
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    EXPECT_GE(lo, -1.0f) << to_string(kind);
    EXPECT_LE(hi, 1.0f) << to_string(kind);
    EXPECT_LT(lo, -0.5f) << to_string(kind);  // fills the square, not a corner of it
    EXPECT_GT(hi, 0.5f) << to_string(kind);

    const PointSet noisy = make_toy2d(kind, 2000, 0.05, 42);
    EXPECT_NE(noisy.xy, a.xy);
    EXPECT_EQ(make_toy2d(kind, 2000, 0.05, 42).xy, noisy.xy);
  }
  EXPECT_EQ(make_toy2d(Toy2dKind::SwissRoll, 0, 0.1, 1).n, 0);
  expect_mentions(error_of([] { make_toy2d(Toy2dKind::SwissRoll, -1, 0.1, 1); }), {"count"});
  expect_mentions(error_of([] { make_toy2d(Toy2dKind::SwissRoll, 5, -0.1, 1); }), {"noise"});
}

TEST_F(DataTest, Toy2dLabels) {
  const PointSet g = make_toy2d(Toy2dKind::EightGaussians, 4000, 0.0, 7);
  std::set<int64_t> seen;
  for (int64_t i = 0; i < g.n; ++i) {
    const int64_t k = g.labels[size_t(i)];
    ASSERT_GE(k, 0);
    ASSERT_LT(k, 8);
    seen.insert(k);
    // With no noise each point sits on its Gaussian's centre.
    const double a = 2.0 * kPi * double(k) / 8.0;
    EXPECT_NEAR(g.xy[size_t(i) * 2], 0.8 * std::cos(a), 1e-5);
    EXPECT_NEAR(g.xy[size_t(i) * 2 + 1], 0.8 * std::sin(a), 1e-5);
  }
  EXPECT_EQ(seen.size(), 8u);

  const PointSet moons = make_toy2d(Toy2dKind::TwoMoons, 1000, 0.0, 3);
  std::set<int64_t> moon_labels(moons.labels.begin(), moons.labels.end());
  EXPECT_EQ(moon_labels, (std::set<int64_t>{0, 1}));

  const PointSet roll = make_toy2d(Toy2dKind::SwissRoll, 100, 0.1, 3);
  for (int64_t l : roll.labels) EXPECT_EQ(l, 0);
}

// ---- Split ----

TEST_F(DataTest, SplitDeterministicAndComplete) {
  const ImageSet all = make_grey_set(50, 2, 2);
  ImageSet train;
  ImageSet test;
  split_image_set(all, 0.2, 9, train, test);
  EXPECT_EQ(train.n, 40);
  EXPECT_EQ(test.n, 10);
  EXPECT_EQ(train.class_names, all.class_names);
  EXPECT_EQ(test.height, 2);
  EXPECT_EQ(train.pixels.size(), 40u * 4);
  // Every item lands in exactly one split (the first pixel identifies the item).
  std::multiset<uint8_t> firsts;
  for (int64_t i = 0; i < train.n; ++i) firsts.insert(train.pixels[size_t(i) * 4]);
  for (int64_t i = 0; i < test.n; ++i) firsts.insert(test.pixels[size_t(i) * 4]);
  std::multiset<uint8_t> expected;
  for (int64_t i = 0; i < all.n; ++i) expected.insert(all.pixels[size_t(i) * 4]);
  EXPECT_EQ(firsts, expected);

  ImageSet train2;
  ImageSet test2;
  split_image_set(all, 0.2, 9, train2, test2);
  EXPECT_EQ(test2.pixels, test.pixels);
  split_image_set(all, 0.2, 10, train2, test2);
  EXPECT_NE(test2.pixels, test.pixels);

  split_image_set(make_grey_set(3, 1, 1), 0.01, 1, train2, test2);
  EXPECT_EQ(test2.n, 1);
  EXPECT_EQ(train2.n, 2);
  expect_mentions(error_of([&] { split_image_set(all, 1.5, 1, train2, test2); }),
                  {"test_fraction"});
}

// ---- MNIST JSON import ----

// Writes <dir>/<c>.json for c = 0..9 with `per_class` digits; digit d of class c has
// pixel p = ((c * 10 + d + p) % 9) / 8 (exact in binary, so rounding is predictable).
void write_mnist_json(const std::string& dir, int per_class) {
  for (int c = 0; c < 10; ++c) {
    std::string text = "{ \"data\": [";
    for (int d = 0; d < per_class; ++d) {
      for (int p = 0; p < 784; ++p) {
        const int v = (c * 10 + d + p) % 9;
        if (d != 0 || p != 0) text += (p % 50 == 0) ? ",\n " : ",";
        text += v == 8 ? "1" : v == 0 ? "0" : std::to_string(v / 8.0);
      }
    }
    text += "] }\n";
    write_bytes(dir + "/" + std::to_string(c) + ".json", text);
  }
}

TEST_F(DataTest, MnistJsonImport) {
  write_mnist_json(path("digits"), 3);
  const MnistImportStats stats = import_mnist_json(path("digits"), path("out/mnist"), 3);
  EXPECT_EQ(stats.train, 20);
  EXPECT_EQ(stats.test, 10);

  const ImageSet train = read_idx_folder(path("out/mnist"), true);
  const ImageSet test = read_idx_folder(path("out/mnist"), false);
  ASSERT_EQ(train.n, 20);
  ASSERT_EQ(test.n, 10);
  EXPECT_EQ(train.height, 28);
  EXPECT_EQ(train.width, 28);
  // Grouped by class: digits 0 and 1 of each class train, digit 2 tests.
  for (int c = 0; c < 10; ++c) {
    EXPECT_EQ(train.labels[size_t(c) * 2], c);
    EXPECT_EQ(train.labels[size_t(c) * 2 + 1], c);
    EXPECT_EQ(test.labels[size_t(c)], c);
  }
  auto expected_px = [](int c, int d, int p) {
    const int v = (c * 10 + d + p) % 9;
    return static_cast<int>(std::lround(v / 8.0 * 255.0));
  };
  for (int p = 0; p < 784; ++p) {
    ASSERT_EQ(train.pixels[size_t(p)], expected_px(0, 0, p)) << p;
    ASSERT_EQ(train.pixels[size_t(3) * 784 + p], expected_px(1, 1, p)) << p;
    ASSERT_EQ(test.pixels[size_t(4) * 784 + p], expected_px(4, 2, p)) << p;
  }
  EXPECT_EQ(train.pixels[0], 0);  // 0 -> 0
  // No temporary files left behind.
  int files = 0;
  for (const auto& e : fs::directory_iterator(path("out/mnist"))) {
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << e.path();
    ++files;
  }
  EXPECT_EQ(files, 4);
}

TEST_F(DataTest, MnistJsonBadLength) {
  write_mnist_json(path("digits"), 1);
  std::string text = "{\"data\":[";
  for (int p = 0; p < 785; ++p) text += p == 0 ? "0.5" : ",0.5";
  text += "]}";
  write_bytes(path("digits/4.json"), text);
  const std::string msg = error_of([&] { import_mnist_json(path("digits"), path("out"), 10); });
  expect_mentions(msg, {path("digits/4.json"), "785", "multiple of 784"});
  EXPECT_FALSE(fs::exists(path("out/train-images-idx3-ubyte")));
}

TEST_F(DataTest, MnistJsonSyntaxAndMissing) {
  write_mnist_json(path("digits"), 1);
  write_bytes(path("digits/2.json"), "{\"data\": [0.5, 0.25 0.1]}");
  expect_mentions(error_of([&] { import_mnist_json(path("digits"), path("out"), 10); }),
                  {path("digits/2.json"), "expected ',' or ']'", "byte"});
  write_bytes(path("digits/2.json"), "{\"pixels\": []}");
  expect_mentions(error_of([&] { import_mnist_json(path("digits"), path("out"), 10); }),
                  {path("digits/2.json"), "unexpected member"});
  fs::remove(path("digits/2.json"));
  expect_mentions(error_of([&] { import_mnist_json(path("digits"), path("out"), 10); }),
                  {path("digits/2.json"), "not found"});
}

TEST_F(DataTest, MnistJsonShapeErrors) {
  // nlohmann-json parses; the shape {"data": [numbers]} is checked on its SAX events.
  write_mnist_json(path("digits"), 1);
  auto error_for = [&](const std::string& text) {
    write_bytes(path("digits/7.json"), text);
    return error_of([&] { import_mnist_json(path("digits"), path("out"), 10); });
  };
  expect_mentions(error_for("{\"data\": [0.5, null]}"),
                  {path("digits/7.json"), "value 1 of \"data\" is null, not a number"});
  expect_mentions(error_for("{\"data\": [0.5, [1]]}"), {"value 1", "an array"});
  expect_mentions(error_for("[0.5]"), {path("digits/7.json"), "expected {\"data\": [numbers]}"});
  expect_mentions(error_for("{}"), {path("digits/7.json"), "no \"data\" member"});
  expect_mentions(error_for("{\"data\": [], \"data\": []}"), {"appears twice"});
  // The parser's own position and words: 17 bytes read when it met the 'x'.
  expect_mentions(error_for("{\"data\": [0.5]} x"),
                  {path("digits/7.json"), "invalid JSON at byte 17", "expected end of input"});
  expect_mentions(error_for("{\"data\": [0.5, "),
                  {"invalid JSON in the \"data\" array", "end of input"});
  EXPECT_FALSE(fs::exists(path("out/train-images-idx3-ubyte")));
}

}  // namespace
}  // namespace difflab

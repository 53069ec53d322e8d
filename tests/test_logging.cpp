// Logging and file helpers: CRC32C, TensorBoard event files (read back with an
// independent TFRecord + protobuf parser), the CSV metrics log, PNG I/O and paths.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/train/metrics_log.h"
#include "core/train/tb_writer.h"
#include "core/util/paths.h"
#include "core/vision/png.h"

namespace fs = std::filesystem;

namespace {

// A fresh, empty folder for one test.
std::string test_dir(const std::string& name) {
  const fs::path dir = fs::path(DIFFLAB_TEST_TMP) / "logging" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  return names;
}

// Expects `fn` to throw std::runtime_error whose message contains `needle`.
template <typename Fn>
void expect_error_naming(Fn fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no exception; expected one naming " << needle;
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// --- An independent reader for TensorBoard event files --------------------------------

// Bit-at-a-time CRC32C, deliberately unlike the table-driven one under test.
uint32_t reference_crc32c(const uint8_t* data, size_t size) {
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < size; ++i) {
    crc ^= data[i];
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

uint32_t reference_masked(const uint8_t* data, size_t size) {
  const uint32_t crc = reference_crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

uint64_t load_le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

struct ScalarValue {
  std::string tag;
  float simple_value = 0.0f;
};

struct ParsedEvent {
  bool has_wall_time = false;
  double wall_time = 0.0;
  int64_t step = 0;
  std::string file_version;
  std::vector<ScalarValue> values;
};

// Cursor over a protobuf message; throws on malformed input.
class ProtoReader {
 public:
  ProtoReader(const uint8_t* data, size_t size) : m_p(data), m_end(data + size) {}
  bool done() const { return m_p == m_end; }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      need(1);
      const uint8_t b = *m_p++;
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    throw std::runtime_error("varint too long");
  }
  uint64_t fixed(int bytes) {
    need(bytes);
    const uint64_t v = load_le(m_p, bytes);
    m_p += bytes;
    return v;
  }
  ProtoReader sub() {
    const uint64_t len = varint();
    need(len);
    ProtoReader r(m_p, len);
    m_p += len;
    return r;
  }
  std::string bytes() {
    ProtoReader r = sub();
    return std::string(reinterpret_cast<const char*>(r.m_p), r.m_end - r.m_p);
  }
  void skip(uint32_t wire) {
    switch (wire) {
      case 0:
        varint();
        break;
      case 1:
        fixed(8);
        break;
      case 2:
        sub();
        break;
      case 5:
        fixed(4);
        break;
      default:
        throw std::runtime_error("bad wire type " + std::to_string(wire));
    }
  }

 private:
  void need(uint64_t n) const {
    if (static_cast<uint64_t>(m_end - m_p) < n) throw std::runtime_error("truncated message");
  }
  const uint8_t* m_p;
  const uint8_t* m_end;
};

ScalarValue parse_value(ProtoReader r) {
  ScalarValue v;
  while (!r.done()) {
    const uint64_t key = r.varint();
    const uint32_t field = static_cast<uint32_t>(key >> 3);
    const uint32_t wire = static_cast<uint32_t>(key & 7);
    if (field == 1 && wire == 2) {
      v.tag = r.bytes();
    } else if (field == 2 && wire == 5) {
      const uint32_t bits = static_cast<uint32_t>(r.fixed(4));
      std::memcpy(&v.simple_value, &bits, sizeof bits);
    } else {
      r.skip(wire);
    }
  }
  return v;
}

ParsedEvent parse_event(const uint8_t* data, size_t size) {
  ParsedEvent ev;
  ProtoReader r(data, size);
  while (!r.done()) {
    const uint64_t key = r.varint();
    const uint32_t field = static_cast<uint32_t>(key >> 3);
    const uint32_t wire = static_cast<uint32_t>(key & 7);
    if (field == 1 && wire == 1) {
      const uint64_t bits = r.fixed(8);
      std::memcpy(&ev.wall_time, &bits, sizeof bits);
      ev.has_wall_time = true;
    } else if (field == 2 && wire == 0) {
      ev.step = static_cast<int64_t>(r.varint());
    } else if (field == 3 && wire == 2) {
      ev.file_version = r.bytes();
    } else if (field == 5 && wire == 2) {
      ProtoReader summary = r.sub();
      while (!summary.done()) {
        const uint64_t skey = summary.varint();
        if ((skey >> 3) == 1 && (skey & 7) == 2) {
          ev.values.push_back(parse_value(summary.sub()));
        } else {
          summary.skip(static_cast<uint32_t>(skey & 7));
        }
      }
    } else {
      r.skip(wire);
    }
  }
  return ev;
}

// Reads every record, checking both CRCs of each (test failures, not exceptions).
std::vector<ParsedEvent> read_events(const std::string& path) {
  const std::string file = read_all(path);
  const auto* p = reinterpret_cast<const uint8_t*>(file.data());
  size_t pos = 0;
  std::vector<ParsedEvent> events;
  while (pos < file.size()) {
    if (file.size() - pos < 12) {
      ADD_FAILURE() << "truncated record header at byte " << pos;
      break;
    }
    const uint64_t len = load_le(p + pos, 8);
    EXPECT_EQ(load_le(p + pos + 8, 4), reference_masked(p + pos, 8))
        << "length CRC of record " << events.size();
    pos += 12;
    if (file.size() - pos < len + 4) {
      ADD_FAILURE() << "truncated record payload at byte " << pos;
      break;
    }
    EXPECT_EQ(load_le(p + pos + len, 4), reference_masked(p + pos, len))
        << "data CRC of record " << events.size();
    events.push_back(parse_event(p + pos, len));
    pos += len + 4;
  }
  return events;
}

// The single event file TensorBoardWriter made in `dir`.
std::string event_file_in(const std::string& dir) {
  std::vector<std::string> found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().rfind("events.out.tfevents.", 0) == 0) {
      found.push_back(entry.path().string());
    }
  }
  EXPECT_EQ(found.size(), 1u) << "in " << dir;
  return found.empty() ? std::string() : found.front();
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

// ---- CRC32C ----------------------------------------------------------------------------

TEST(Crc32c, StandardCheckValues) {
  const char* check = "123456789";
  EXPECT_EQ(difflab::crc32c(check, 9), 0xE3069283u);
  const std::vector<uint8_t> zeros(32, 0);
  EXPECT_EQ(difflab::crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  EXPECT_EQ(difflab::crc32c(nullptr, 0), 0u);
}

TEST(Crc32c, MatchesBitwiseReferenceAndMask) {
  std::string bytes;
  for (int i = 0; i < 1000; ++i) bytes.push_back(static_cast<char>((i * 7919) & 0xff));
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  for (size_t n : {size_t{1}, size_t{13}, size_t{255}, bytes.size()}) {
    EXPECT_EQ(difflab::crc32c(p, n), reference_crc32c(p, n)) << n;
    EXPECT_EQ(difflab::masked_crc32c(p, n), reference_masked(p, n)) << n;
  }
}

// ---- TensorBoard writer ----------------------------------------------------------------

TEST(TensorBoardWriter, WritesReadableScalarEvents) {
  const std::string dir = test_dir("tb_scalars") + "/nested/tb";  // made by the writer
  const double before = now_seconds();
  std::string path;
  struct Written {
    std::string tag;
    float value;
    int64_t step;
  };
  const std::vector<Written> written = {
      {"loss/train", 0.6931472f, 0},
      {"loss/train", 0.125f, 1},
      {"lr", 2e-4f, 1},
      {"loss/test", -3.5f, 1000000000000LL},  // a step beyond 32 bits
      {"grad_norm", std::numeric_limits<float>::infinity(), 7},
  };
  {
    difflab::TensorBoardWriter writer(dir);
    path = writer.path();
    for (const Written& w : written) writer.add_scalar(w.tag, w.value, w.step);
    writer.flush();
  }
  const double after = now_seconds();

  EXPECT_EQ(fs::path(path).parent_path(), fs::path(dir));
  EXPECT_EQ(fs::path(path).filename().string().rfind("events.out.tfevents.", 0), 0u) << path;
  EXPECT_EQ(event_file_in(dir), path);

  const std::vector<ParsedEvent> events = read_events(path);
  ASSERT_EQ(events.size(), written.size() + 1);
  EXPECT_EQ(events[0].file_version, "brain.Event:2");
  EXPECT_TRUE(events[0].values.empty());
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_TRUE(events[i].has_wall_time) << i;
    EXPECT_GE(events[i].wall_time, before - 1.0) << i;
    EXPECT_LE(events[i].wall_time, after + 1.0) << i;
    if (i > 0) {
      EXPECT_GE(events[i].wall_time, events[i - 1].wall_time) << i;
    }
  }
  for (size_t i = 0; i < written.size(); ++i) {
    const ParsedEvent& ev = events[i + 1];
    EXPECT_TRUE(ev.file_version.empty()) << i;
    EXPECT_EQ(ev.step, written[i].step) << i;
    ASSERT_EQ(ev.values.size(), 1u) << i;
    EXPECT_EQ(ev.values[0].tag, written[i].tag) << i;
    EXPECT_EQ(ev.values[0].simple_value, written[i].value) << i;  // bit-exact float
  }
}

TEST(TensorBoardWriter, TwoWritersInOneFolderKeepSeparateFiles) {
  const std::string dir = test_dir("tb_two");
  difflab::TensorBoardWriter a(dir);
  difflab::TensorBoardWriter b(dir);
  EXPECT_NE(a.path(), b.path());
  a.add_scalar("x", 1.0f, 1);
  b.add_scalar("x", 2.0f, 1);
  a.flush();
  b.flush();
  EXPECT_EQ(read_events(a.path()).size(), 2u);
  EXPECT_EQ(read_events(b.path()).size(), 2u);
}

TEST(TensorBoardWriter, UncreatableFolderNamesThePath) {
  const std::string dir = test_dir("tb_blocked");
  write_all(dir + "/file", "not a folder");
  expect_error_naming([&] { difflab::TensorBoardWriter writer(dir + "/file/tb"); }, dir + "/file");
}

// ---- Metrics log -----------------------------------------------------------------------

TEST(MetricsLog, WritesCsvAndTensorBoard) {
  const std::string dir = test_dir("metrics_basic");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  {
    difflab::MetricsLog log(dir, {"loss", "test_loss", "lr"});
    log.write(1, {0.5, nan, 1e-4});
    log.write(2, {0.123456789, 0.25, 1e-4});
    log.flush();
  }
  EXPECT_EQ(read_all(dir + "/metrics.csv"),
            "step,loss,test_loss,lr\n"
            "1,0.5,,0.0001\n"
            "2,0.123456789,0.25,0.0001\n");

  const std::vector<ParsedEvent> events = read_events(event_file_in(dir + "/tb"));
  ASSERT_EQ(events.size(), 1u + 5u);  // version + 2 + 3 (the NaN is skipped)
  const std::vector<std::pair<std::string, int64_t>> expected = {
      {"loss", 1}, {"lr", 1}, {"loss", 2}, {"test_loss", 2}, {"lr", 2}};
  for (size_t i = 0; i < expected.size(); ++i) {
    ASSERT_EQ(events[i + 1].values.size(), 1u);
    EXPECT_EQ(events[i + 1].values[0].tag, expected[i].first);
    EXPECT_EQ(events[i + 1].step, expected[i].second);
  }
  EXPECT_EQ(events[4].values[0].simple_value, 0.25f);
}

TEST(MetricsLog, WrongValueCountThrows) {
  const std::string dir = test_dir("metrics_count");
  difflab::MetricsLog log(dir, {"a", "b"});
  EXPECT_THROW(log.write(1, {1.0}), std::invalid_argument);
}

TEST(MetricsLog, AppendsWhenHeaderMatches) {
  const std::string dir = test_dir("metrics_append");
  {
    difflab::MetricsLog log(dir, {"loss"});
    log.write(1, {1.5});
  }
  {
    difflab::MetricsLog log(dir, {"loss"});
    log.write(2, {0.75});
  }
  EXPECT_EQ(read_all(dir + "/metrics.csv"), "step,loss\n1,1.5\n2,0.75\n");
  EXPECT_FALSE(fs::exists(dir + "/metrics.csv.old-1"));
}

TEST(MetricsLog, AppendAfterTornRowStartsANewLine) {
  const std::string dir = test_dir("metrics_torn");
  write_all(dir + "/metrics.csv", "step,loss\n1,1.5\n2,0.7");  // crash mid-row
  {
    difflab::MetricsLog log(dir, {"loss"});
    log.write(3, {0.5});
  }
  EXPECT_EQ(read_all(dir + "/metrics.csv"), "step,loss\n1,1.5\n2,0.7\n3,0.5\n");
}

TEST(MetricsLog, DifferentHeaderMovesOldFileAside) {
  const std::string dir = test_dir("metrics_rename");
  const std::string first = "step,loss\n1,2\n";
  const std::string second = "step,a,b\n5,6,7\n";
  write_all(dir + "/metrics.csv", first);
  {
    difflab::MetricsLog log(dir, {"a", "b"});
    log.write(5, {6, 7});
  }
  EXPECT_EQ(read_all(dir + "/metrics.csv.old-1"), first);
  EXPECT_EQ(read_all(dir + "/metrics.csv"), second);
  {
    difflab::MetricsLog log(dir, {"c"});
    log.write(9, {1});
  }
  EXPECT_EQ(read_all(dir + "/metrics.csv.old-1"), first);  // untouched
  EXPECT_EQ(read_all(dir + "/metrics.csv.old-2"), second);
  EXPECT_EQ(read_all(dir + "/metrics.csv"), "step,c\n9,1\n");
}

TEST(MetricsLog, AnOlderLayoutWithFewerColumnsIsWidenedAndKept) {
  // A run logged before a column was added at the end (train_s), then resumed.
  const std::string dir = test_dir("metrics_widen");
  const std::string old = "step,loss,lr\n1,2,0.1\n2,1.5,0.1\n";
  write_all(dir + "/metrics.csv", old);
  {
    difflab::MetricsLog log(dir, {"loss", "lr", "train_s"});
    log.write(3, {1, 0.1, 12.5});
  }
  EXPECT_EQ(read_all(dir + "/metrics.csv"),
            "step,loss,lr,train_s\n1,2,0.1,\n2,1.5,0.1,\n3,1,0.1,12.5\n");
  EXPECT_EQ(read_all(dir + "/metrics.csv.old-1"), old);  // the file as it was
}

// ---- PNG -------------------------------------------------------------------------------

namespace {

difflab::Image8 pattern_image(int width, int height, int channels) {
  difflab::Image8 image;
  image.width = width;
  image.height = height;
  image.channels = channels;
  image.pixels.resize(static_cast<size_t>(width) * height * channels);
  for (size_t i = 0; i < image.pixels.size(); ++i) {
    image.pixels[i] = static_cast<uint8_t>((i * 37 + i / 5) & 0xff);
  }
  return image;
}

}  // namespace

TEST(Png, RoundTripGreyAndRgb) {
  const std::string dir = test_dir("png_roundtrip");
  for (int channels : {1, 3, 4}) {
    const difflab::Image8 image = pattern_image(17, 9, channels);
    const std::string path = dir + "/sub/img" + std::to_string(channels) + ".png";
    difflab::write_png(path, image);
    const difflab::Image8 back = difflab::read_image(path);
    EXPECT_EQ(back.width, image.width);
    EXPECT_EQ(back.height, image.height);
    EXPECT_EQ(back.channels, channels);
    EXPECT_EQ(back.pixels, image.pixels) << channels << " channels";
  }
  // Only the three PNGs: no temporary file left behind.
  std::vector<std::string> names = list_dir(dir + "/sub");
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"img1.png", "img3.png", "img4.png"}));
}

TEST(Png, OverwriteAndConvertChannels) {
  const std::string dir = test_dir("png_overwrite");
  const std::string path = dir + "/img.png";
  difflab::write_png(path, pattern_image(4, 4, 3));
  difflab::Image8 grey = pattern_image(5, 3, 1);
  difflab::write_png(path, grey);
  const difflab::Image8 rgb = difflab::read_image(path, 3);
  ASSERT_EQ(rgb.channels, 3);
  ASSERT_EQ(rgb.width, 5);
  ASSERT_EQ(rgb.pixels.size(), 5u * 3u * 3u);
  for (size_t i = 0; i < grey.pixels.size(); ++i) {
    EXPECT_EQ(rgb.pixels[i * 3 + 0], grey.pixels[i]);
    EXPECT_EQ(rgb.pixels[i * 3 + 2], grey.pixels[i]);
  }
  EXPECT_EQ(list_dir(dir).size(), 1u);
}

TEST(Png, ErrorsNameThePath) {
  const std::string dir = test_dir("png_errors");
  const std::string missing = dir + "/missing.png";
  expect_error_naming([&] { difflab::read_image(missing); }, missing);
  const std::string garbage = dir + "/garbage.png";
  write_all(garbage, "this is not an image at all");
  expect_error_naming([&] { difflab::read_image(garbage); }, garbage);

  difflab::Image8 bad = pattern_image(4, 4, 3);
  bad.pixels.pop_back();
  const std::string bad_path = dir + "/bad.png";
  expect_error_naming([&] { difflab::write_png(bad_path, bad); }, bad_path);
  EXPECT_FALSE(fs::exists(bad_path));
}

// ---- Paths -----------------------------------------------------------------------------

TEST(Paths, ResolvePath) {
  EXPECT_EQ(difflab::resolve_path("/no/such/absolute/file.yaml"), "/no/such/absolute/file.yaml");
  const std::string dir = test_dir("paths_resolve");
  EXPECT_EQ(difflab::resolve_path(dir), dir);
  // A relative path missing from the working directory falls back to the source tree.
  const fs::path old_cwd = fs::current_path();
  fs::current_path(dir);
  EXPECT_EQ(fs::path(difflab::resolve_path("tests/test_logging.cpp")),
            fs::path(DIFFLAB_SOURCE_DIR) / "tests/test_logging.cpp");
  write_all(dir + "/local.yaml", "a: 1\n");
  EXPECT_EQ(difflab::resolve_path("local.yaml"), "local.yaml");
  EXPECT_EQ(difflab::resolve_path("nowhere.yaml"), "nowhere.yaml");
  fs::current_path(old_cwd);
}

TEST(Paths, WriteFileAtomicCreatesAndReplaces) {
  const std::string dir = test_dir("paths_atomic");
  const std::string path = dir + "/a/b/config.yaml";
  difflab::write_file_atomic(path, "first\n");
  EXPECT_EQ(read_all(path), "first\n");
  std::string binary("x\0y\n", 4);
  difflab::write_file_atomic(path, binary);
  EXPECT_EQ(read_all(path), binary);
  EXPECT_EQ(list_dir(dir + "/a/b"), std::vector<std::string>{"config.yaml"});
}

TEST(Paths, WriteFileAtomicFailureNamesPathAndLeavesNoTemp) {
  const std::string dir = test_dir("paths_atomic_fail");
  const std::string target = dir + "/target";
  fs::create_directories(target + "/occupied");  // a non-empty folder cannot be replaced
  expect_error_naming([&] { difflab::write_file_atomic(target, "bytes"); }, target);
  EXPECT_EQ(list_dir(dir), std::vector<std::string>{"target"});
}

TEST(Paths, WriteFileAtomicRefuseKeepsWhatIsThere) {
  const std::string dir = test_dir("paths_refuse");
  const std::string path = dir + "/grid.png";
  difflab::write_file_atomic(path, "new", difflab::IfExists::Refuse);  // nothing there: written
  EXPECT_EQ(read_all(path), "new");
  try {
    difflab::write_file_atomic(path, "other", difflab::IfExists::Refuse);
    FAIL() << "a file already there was replaced";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()),
              "cannot write '" + path + "': a file is already there (nothing was replaced)");
  }
  EXPECT_THROW(difflab::check_can_write(path, difflab::IfExists::Refuse), std::runtime_error);
  EXPECT_NO_THROW(difflab::check_can_write(path));  // replacing is allowed by default
  EXPECT_EQ(read_all(path), "new");
  EXPECT_EQ(list_dir(dir), std::vector<std::string>{"grid.png"});  // no temporary left
  // A dangling symbolic link counts as taken too: it is the user's.
  fs::create_symlink(dir + "/nowhere", dir + "/link.png");
  EXPECT_THROW(difflab::write_file_atomic(dir + "/link.png", "x", difflab::IfExists::Refuse),
               std::runtime_error);
  EXPECT_FALSE(fs::exists(dir + "/nowhere"));
}

TEST(Paths, FreePathSkipsTakenNames) {
  const std::string dir = test_dir("paths_free");
  EXPECT_EQ(difflab::free_path(dir + "/sample.png"), dir + "/sample.png");
  difflab::write_file_atomic(dir + "/sample.png", "1");
  EXPECT_EQ(difflab::free_path(dir + "/sample.png"), dir + "/sample_2.png");
  difflab::write_file_atomic(dir + "/sample_2.png", "2");
  EXPECT_EQ(difflab::free_path(dir + "/sample.png"), dir + "/sample_3.png");
  // Folders keep their whole name (a dot is not an extension there).
  fs::create_directories(dir + "/eval.v1");
  EXPECT_EQ(difflab::free_path(dir + "/eval.v1"), dir + "/eval.v1_2");
  EXPECT_EQ(difflab::free_path(dir + "/shot.png.trajectory.gif"), dir + "/shot.png.trajectory.gif");
}

TEST(Paths, MakeDirs) {
  const std::string dir = test_dir("paths_make_dirs");
  difflab::make_dirs(dir + "/x/y/z");
  EXPECT_TRUE(fs::is_directory(dir + "/x/y/z"));
  difflab::make_dirs(dir + "/x/y/z");  // already there: fine
  write_all(dir + "/file", "");
  expect_error_naming([&] { difflab::make_dirs(dir + "/file"); }, dir + "/file");
  expect_error_naming([&] { difflab::make_dirs(dir + "/file/sub"); }, dir + "/file/sub");
}

TEST(Paths, DataDirHonoursEnvironment) {
  const char* saved = std::getenv("DIFFLAB_DATA_DIR");
  const std::string saved_value = saved != nullptr ? saved : "";
  ::setenv("DIFFLAB_DATA_DIR", "/tmp/some/data", 1);
  EXPECT_EQ(difflab::data_dir(), "/tmp/some/data");
  ::setenv("DIFFLAB_DATA_DIR", "", 1);
  EXPECT_EQ(difflab::data_dir(), DIFFLAB_DATA_DIR);
  ::unsetenv("DIFFLAB_DATA_DIR");
  EXPECT_EQ(difflab::data_dir(), DIFFLAB_DATA_DIR);
  if (saved != nullptr) ::setenv("DIFFLAB_DATA_DIR", saved_value.c_str(), 1);
}

